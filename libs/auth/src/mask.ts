/**
 * What a viewer sees: identities partly hidden. An INS keeps its first digit (sex) and last two; a name its first
 * letter; an address its domain and the first letter of its local part (a patient's <INS>@patient.mssante.fr is
 * masked as an INS); a recipient without an address ("<field>:<id>", an RPPS...) its field. Free text (an SMTP reply,
 * an event's detail) has its addresses and long digit runs masked. Pure functions: the API applies them to its answers.
 */
const STAR = '*';

/** An INS (or any national id): the first character and the last two kept, the rest starred, length kept. */
export function maskIns(ins: string): string {
  const c = [...ins];
  if (c.length <= 4) return STAR.repeat(c.length);
  return c[0] + STAR.repeat(c.length - 3) + c.slice(-2).join('');
}

/** A name (family or given): its first letter, then three stars whatever its length. */
export function maskName(name: string): string {
  const first = [...name.trim()][0];
  return first ? `${first}${STAR.repeat(3)}` : '';
}

const LONG_ID = /^[0-9A-Za-z]{13,}$/;

/** A recipient: an MSSanté address, or "<field>:<id>" for one without. */
export function maskAddress(recipient: string): string {
  const at = recipient.lastIndexOf('@');
  if (at > 0) {
    const local = recipient.slice(0, at);
    return `${LONG_ID.test(local) ? maskIns(local) : maskName(local)}@${recipient.slice(at + 1)}`;
  }
  const colon = recipient.indexOf(':');
  if (colon > 0) return `${recipient.slice(0, colon)}:${maskName(recipient.slice(colon + 1))}`;
  return maskName(recipient);
}

// Bounded repetitions: linear on any input. Addresses as SMTP replies and DSNs quote them, and runs of 9+ digits
// (an INS, a NIR, an RPPS, an ADELI or FINESS number).
const ADDRESS_IN_TEXT = /[^\s<>"'(),;:@]{1,64}@[A-Za-z0-9.-]{1,253}/g;
const DIGITS_IN_TEXT = /\b[0-9]{9,20}[A-Za-z]?\b/g;

/** Free text with every address and long digit run in it masked. */
export function maskText(text: string): string {
  return text.replace(ADDRESS_IN_TEXT, (a) => maskAddress(a)).replace(DIGITS_IN_TEXT, (d) => maskIns(d));
}

type Obj = Record<string, unknown>;
const str = (v: unknown): v is string => typeof v === 'string';

/** A recipient record (GET /api/v1/deliveries/:id, and each of a result's or a mail's), history included. */
export function maskDelivery<T extends Obj>(d: T): T {
  const out: Obj = { ...d };
  if (str(d['recipient'])) out['recipient'] = maskAddress(d['recipient']);
  if (str(d['recipientId'])) out['recipientId'] = maskName(d['recipientId']);
  for (const k of ['detail', 'smtpResponse'] as const) if (str(d[k])) out[k] = maskText(d[k]);
  if (Array.isArray(d['history'])) out['history'] = (d['history'] as Obj[]).map((h) => (str(h['detail']) ? { ...h, detail: maskText(h['detail']) } : h));
  return out as T;
}

/** A result, or a mail: each of its recipients masked. */
export function maskResult<T extends Obj>(r: T): T {
  return Array.isArray(r['deliveries']) ? { ...r, deliveries: (r['deliveries'] as Obj[]).map(maskDelivery) } : r;
}

/** A search's summary: the patient's INS and name masked. */
export function maskSummary<T extends Obj>(s: T): T {
  const p = s['patient'] as Obj | undefined;
  if (!p) return s;
  const patient: Obj = { ...p };
  if (str(p['ins'])) patient['ins'] = maskIns(p['ins']);
  for (const k of ['family', 'given'] as const) if (str(p[k])) patient[k] = maskName(p[k]);
  return { ...s, patient };
}

/** A results page: summaries (a search) or full results (a lookup). */
export const maskResultsPage = <T extends { results: Obj[] }>(page: T): T => ({
  ...page,
  results: page.results.map((r) => maskResult(maskSummary(r))),
});
