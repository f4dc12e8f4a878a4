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

/**
 * Why a row of the extraction was not imported (stable codes: reports and logs group by them). The row itself is
 * never echoed, only its line number and a detail that names no value.
 */
export type RejectionReason = 'column-count' | 'line-length' | 'mailbox-type' | 'address' | 'no-key';

export interface RejectedRow {
  /** 1-based line of the file, the header being line 1 (blank lines counted), as an editor shows it. */
  line: number;
  reason: RejectionReason;
  detail: string;
}

/** Why the file as a whole cannot be read as an extraction (nothing is imported). */
export class ExtractionFormatError extends Error {
  override name = 'ExtractionFormatError';
  readonly code: 'empty' | 'missing-column' | 'header-length';

  constructor(code: ExtractionFormatError['code'], message: string) {
    super(message);
    this.code = code;
  }
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

/** Columns of the ANS extraction (2025-2026 version). Rows are checked against the header's own count. */
export const EXTRACTION_COLUMNS = 31;

/** Where each column we read sits, and how many fields a row has. */
export interface ExtractionHeader {
  columns: number;
  index: Record<Column, number>;
}

/**
 * Reads the header line: a UTF-8 BOM before it and a trailing `|` after it are not column names. Throws when the
 * mailbox type or address column is missing (not an extraction, or one we cannot read).
 */
export function readHeader(line: string): ExtractionHeader {
  const names = line.replace(/^\uFEFF/, '').split('|').map(normaliseHeader);
  if (names.length > 1 && names.at(-1) === '') names.pop();
  const index = {} as Record<Column, number>;
  for (const [col, spellings] of Object.entries(COLUMNS) as [Column, readonly string[]][]) {
    const i = names.findIndex((n) => spellings.includes(n) || spellings.includes(n.replace(/ structure bal$/, '')));
    if (i < 0 && (col === 'type' || col === 'address')) {
      throw new ExtractionFormatError('missing-column', `not an MSSanté extraction: no "${spellings[0]}" column in the header`);
    }
    index[col] = i;
  }
  return { columns: names.length, index };
}

const ADDRESS = /^[^@\s|<>"]+@([a-z0-9-]+\.)+[a-z0-9-]{2,}$/i;

/** Parses one data row; returns the mailbox or why it was rejected (the row itself is never echoed). */
export function readRow(fields: string[], header: ExtractionHeader, line: number): DirectoryMailbox | RejectedRow {
  // A trailing `|` (one empty field more) is accepted on any row, whether or not the header has one: exports and
  // hand edits mix both. Anything else that does not match the header would shift the columns we read.
  const count = fields.length === header.columns + 1 && fields[header.columns] === '' ? header.columns : fields.length;
  if (count !== header.columns) {
    return { line, reason: 'column-count', detail: `${fields.length} fields, expected ${header.columns} (or ${header.columns} and a trailing |)` };
  }
  const { index } = header;
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

/** A line longer than this is no extraction row (those are a few hundred bytes); it is rejected, not buffered. */
export const MAX_LINE_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Cuts a byte stream into lines ended by LF, CRLF or a lone CR (mixed freely), whatever the chunking: a CRLF or a
 * UTF-8 sequence split across two chunks is still one line end or one character. Memory stays bounded: at most one
 * partial line of `maxBytes` is kept between chunks; a longer line is reported as `undefined` and skipped.
 */
export class LineSplitter {
  private readonly maxBytes: number;
  /** The start of the current line, copied out of earlier chunks. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private overlong = false;
  /** The last chunk ended with CR: an LF at the start of the next one belongs to it. */
  private afterCr = false;
  /** Number of the last line handed out (1-based). */
  line = 0;

  constructor(maxBytes = MAX_LINE_BYTES) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Buffer, onLine: (text: string | undefined, line: number) => void): void {
    if (!chunk.length) return;
    let start = this.afterCr && chunk[0] === LF ? 1 : 0;
    this.afterCr = false;
    // Each of the two searches moves forward only: one pass over the chunk, however its lines end.
    let lf = chunk.indexOf(LF, start);
    let cr = chunk.indexOf(CR, start);
    while (lf >= 0 || cr >= 0) {
      const end = cr >= 0 && (lf < 0 || cr < lf) ? cr : lf;
      let next = end + 1;
      if (end === cr) {
        if (next === chunk.length) this.afterCr = true;
        else if (chunk[next] === LF) next++;
      }
      this.emit(chunk, start, end, onLine);
      start = next;
      if (lf >= 0 && lf < start) lf = chunk.indexOf(LF, start);
      if (cr >= 0 && cr < start) cr = chunk.indexOf(CR, start);
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
  }

  /** The last line, when the input does not end with a line end. */
  end(onLine: (text: string | undefined, line: number) => void): void {
    if (this.pendingBytes || this.overlong) this.emit(Buffer.alloc(0), 0, 0, onLine);
  }

  private keep(part: Buffer): void {
    if (this.overlong) return;
    if (this.pendingBytes + part.length > this.maxBytes) {
      this.pending = [];
      this.pendingBytes = 0;
      this.overlong = true;
      return;
    }
    // A copy: a slice would keep the whole chunk alive.
    this.pending.push(Buffer.from(part));
    this.pendingBytes += part.length;
  }

  private emit(chunk: Buffer, start: number, end: number, onLine: (text: string | undefined, line: number) => void): void {
    this.line++;
    let text: string | undefined;
    if (!this.overlong && this.pendingBytes + end - start <= this.maxBytes) {
      text = this.pending.length
        ? Buffer.concat([...this.pending, chunk.subarray(start, end)]).toString('utf8')
        : chunk.toString('utf8', start, end);
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.overlong = false;
    onLine(text, this.line);
  }
}

/**
 * Streams an extraction: the header, then each row parsed or rejected with its line number. Linear and bounded in
 * memory: the rows of one input chunk at most are held at a time. Blank lines are skipped but counted.
 */
export async function* readExtraction(input: AsyncIterable<Buffer | string>): AsyncGenerator<DirectoryMailbox | RejectedRow> {
  const splitter = new LineSplitter();
  let header: ExtractionHeader | undefined;
  let rows: (DirectoryMailbox | RejectedRow)[] = [];
  const onLine = (text: string | undefined, line: number) => {
    if (text === undefined) {
      if (!header) throw new ExtractionFormatError('header-length', `not an MSSanté extraction: line ${line} is longer than ${MAX_LINE_BYTES} bytes and no header was read`);
      rows.push({ line, reason: 'line-length', detail: `longer than ${MAX_LINE_BYTES} bytes` });
    } else if (!text.trim()) {
      // A blank line (trim() also drops a BOM alone on the first line).
    } else if (!header) header = readHeader(text);
    else rows.push(readRow(text.split('|'), header, line));
  };
  for await (const chunk of input) {
    splitter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk, onLine);
    if (rows.length) {
      const done = rows;
      rows = [];
      yield* done;
    }
  }
  splitter.end(onLine);
  yield* rows;
  if (!header) throw new ExtractionFormatError('empty', 'the extraction is empty (no header line)');
}
