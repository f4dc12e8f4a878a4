import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** BAL types of the Annuaire Santé (TRE_R257): personal, liberal practice, organisational, applicative. */
export type MailboxType = 'PER' | 'CAB' | 'ORG' | 'APP';
const MAILBOX_TYPES = new Set<string>(['PER', 'CAB', 'ORG', 'APP']);

/** One MSSanté mailbox as the Annuaire publishes it (directory data about professionals, not patient data). */
export interface DirectoryMailbox {
  address: string;
  type: MailboxType;
  /** "Type Identifiant PP": 8 = RPPS, 0 = ADELI (the prefix of the national id). */
  practitionerIdType?: string;
  practitionerId?: string;
  /** idNatPs: prefix + id, e.g. 810102727017 for RPPS 10102727017. */
  practitionerNationalId?: string;
  structureIdType?: string;
  /** National structure id (FINESS, SIRET... with its type prefix as published). */
  structureId?: string;
  service?: string;
  family?: string;
  given?: string;
  profession?: string;
  structureName?: string;
  postalCode?: string;
  /** FHIR `rank` (1 = preferred); the extraction file has none. */
  rank?: number;
}

/** Why a row of the extraction was not imported. */
export interface RejectedRow {
  line: number;
  reason: 'column-count' | 'mailbox-type' | 'address' | 'no-key';
  detail: string;
}

/** The columns we read, by their meaning; header spellings vary between versions, so we match loosely. */
const COLUMNS = {
  type: ['type de bal'],
  address: ['adresse bal'],
  ppIdType: ['type identifiant pp'],
  ppId: ['identifiant pp'],
  ppNatId: ['identification nationale pp'],
  stIdType: ['type identifiant structure'],
  stId: ['identification structure'],
  service: ['service de rattachement'],
  family: ["nom d'exercice"],
  given: ["prenom d'exercice"],
  profession: ['libelle profession'],
  structureName: ['raison sociale structure bal', 'raison sociale structure'],
  postalCode: ['code postal', 'code postal structure bal'],
} as const;
type Column = keyof typeof COLUMNS;

/** Lower-case, accents removed, spaces folded, trailing " structure BAL" of some versions ignored for addresses. */
const normaliseHeader = (h: string): string =>
  h.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[’`]/g, "'").replace(/\s+/g, ' ').trim().toLowerCase();

export const EXTRACTION_COLUMNS = 31;

/** Maps a header line to the index of each column we need; throws when a required one is missing. */
export function readHeader(line: string): Record<Column, number> {
  const names = line.replace(/^\uFEFF/, '').split('|').map(normaliseHeader);
  const index = {} as Record<Column, number>;
  for (const [col, spellings] of Object.entries(COLUMNS) as [Column, readonly string[]][]) {
    const i = names.findIndex((n) => spellings.includes(n) || spellings.includes(n.replace(/ structure bal$/, '')));
    if (i < 0 && (col === 'type' || col === 'address')) {
      throw new Error(`not an MSSanté extraction: no "${spellings[0]}" column in the header`);
    }
    index[col] = i;
  }
  return index;
}

const ADDRESS = /^[^@\s|<>"]+@([a-z0-9-]+\.)+[a-z0-9-]{2,}$/i;

/** Parses one data row; returns the mailbox or why it was rejected (the row itself is never echoed). */
export function readRow(fields: string[], index: Record<Column, number>, line: number): DirectoryMailbox | RejectedRow {
  if (fields.length !== EXTRACTION_COLUMNS) {
    return { line, reason: 'column-count', detail: `${fields.length} columns, expected ${EXTRACTION_COLUMNS}` };
  }
  const get = (c: Column): string | undefined => {
    const i = index[c];
    const v = i >= 0 ? fields[i]?.trim() : undefined;
    return v ? v : undefined;
  };
  const type = get('type')?.toUpperCase();
  if (!type || !MAILBOX_TYPES.has(type)) return { line, reason: 'mailbox-type', detail: `mailbox type "${type ?? ''}" is not PER, CAB, ORG or APP` };
  const address = get('address')?.toLowerCase();
  if (!address || !ADDRESS.test(address)) return { line, reason: 'address', detail: 'the mailbox address is missing or malformed' };
  const mailbox: DirectoryMailbox = { address, type: type as MailboxType };
  const copy = (col: Column, key: keyof DirectoryMailbox) => {
    const v = get(col);
    if (v) (mailbox as unknown as Record<string, string>)[key] = v;
  };
  copy('ppIdType', 'practitionerIdType');
  copy('ppId', 'practitionerId');
  copy('ppNatId', 'practitionerNationalId');
  copy('stIdType', 'structureIdType');
  copy('stId', 'structureId');
  copy('service', 'service');
  copy('family', 'family');
  copy('given', 'given');
  copy('profession', 'profession');
  copy('structureName', 'structureName');
  copy('postalCode', 'postalCode');
  if ((type === 'PER' || type === 'CAB') && !mailbox.practitionerNationalId && !mailbox.practitionerId) {
    return { line, reason: 'no-key', detail: `a ${type} mailbox with no practitioner identifier` };
  }
  return mailbox;
}

export const isRejected = (r: DirectoryMailbox | RejectedRow): r is RejectedRow => 'reason' in r;

/** Streams an extraction text: the header, then each row parsed or rejected, line by line. */
export async function* readExtraction(input: Readable): AsyncGenerator<DirectoryMailbox | RejectedRow> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let index: Record<Column, number> | undefined;
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!index) {
      index = readHeader(line);
      continue;
    }
    if (!line.trim()) continue;
    yield readRow(line.split('|'), index, n);
  }
  if (!index) throw new Error('the extraction is empty (no header line)');
}
