/**
 * Index keys of the directory. A practitioner is found by its national id (idNatPs: type prefix + id), whatever
 * form the producer used (RPPS, IDNPS, ADELI); a structure by its national id (1 + FINESS, 3 + SIRET...).
 */

/** idNatPs prefixes (ANS PSIdNat): 0 ADELI, 8 RPPS. */
const PRACTITIONER_PREFIX: Record<string, string> = { RPPS: '8', ADELI: '0' };
/** idNatStruct prefixes (ANS StructIdNat): 1 FINESS, 2 SIREN, 3 SIRET. */
const STRUCTURE_PREFIX: Record<string, string> = { FINESS: '1', FINEG: '1', FINEJ: '1', SIREN: '2', SIRET: '3' };

/** The index keys under which a practitioner identifier may be filed, most specific first. */
export function practitionerKeys(id: string, idType = ''): string[] {
  const type = idType.toUpperCase();
  const clean = id.trim();
  if (!clean) return [];
  const prefix = PRACTITIONER_PREFIX[type];
  // Producers often put the national form (8 + RPPS, 0 + ADELI) in a field typed RPPS or ADELI.
  if (prefix === '8' && /^8\d{11}$/.test(clean)) return [`p:${clean}`];
  if (prefix === '0' && clean.length === 10 && clean.startsWith('0')) return [`p:${clean}`, `p:0${clean}`];
  if (prefix) return [`p:${prefix}${clean}`];
  // Unknown or IDNPS: an 11-digit number is an RPPS, otherwise the value is already a national id.
  if (/^\d{11}$/.test(clean)) return [`p:8${clean}`, `p:${clean}`];
  return [`p:${clean}`];
}

export function structureKeys(id: string, idType = ''): string[] {
  const clean = id.trim();
  if (!clean) return [];
  const prefix = STRUCTURE_PREFIX[idType.toUpperCase()] ?? (/^\d{9}$/.test(clean) ? '1' : /^\d{14}$/.test(clean) ? '3' : '');
  return prefix ? [`s:${prefix}${clean}`, `s:${clean}`] : [`s:${clean}`];
}

/**
 * Keys a directory row is filed under (its address is the record key itself). A structure key lists the
 * structure's organisational and applicative mailboxes, the ones to write to "the service"; personal mailboxes are
 * found by their practitioner (a large hospital has tens of thousands of them).
 */
export function rowKeys(m: { type?: string; practitionerNationalId?: string; practitionerIdType?: string; practitionerId?: string; structureId?: string; structureIdType?: string }): string[] {
  const keys: string[] = [];
  if (m.practitionerNationalId) keys.push(`p:${m.practitionerNationalId}`);
  else if (m.practitionerId) keys.push(`p:${m.practitionerIdType ?? ''}${m.practitionerId}`);
  if (m.structureId && (m.type === 'ORG' || m.type === 'APP')) {
    keys.push(`s:${m.structureId}`);
    if (m.structureIdType && /^\d$/.test(m.structureIdType) && !m.structureId.startsWith(m.structureIdType)) {
      keys.push(`s:${m.structureIdType}${m.structureId}`);
    }
  }
  return keys;
}
