import { createHash } from 'node:crypto';

/**
 * Why a mail was not read. Anyone in the MSSanté space can write to an applicative mailbox, so the reader bounds what
 * one mail may cost; a mail past a bound is set aside whole (quarantined) rather than read in part. These codes are
 * the only thing logged and counted about such a mail: a bounded label set, never its content.
 */
export const QUARANTINE_REASONS = ['too-large', 'too-many-parts', 'too-deep', 'invalid-mime', 'unreadable', 'unrecordable'] as const;
export type QuarantineReason = (typeof QUARANTINE_REASONS)[number];

export class UnreadableMail extends Error {
  readonly reason: QuarantineReason;
  constructor(reason: QuarantineReason) {
    super(`mail not read: ${reason}`);
    this.name = 'UnreadableMail';
    this.reason = reason;
  }
}

export interface ReceiptLimits {
  /** A larger mail is not parsed. */
  maxMailBytes: number;
  /** Of the mail's text and of each report part, only the first this many bytes are read. */
  maxTextBytes: number;
  /** MIME parts (every entity, the mail itself included). */
  maxMimeParts: number;
  /** Nesting of multiparts and attached messages (message/rfc822), each counting one level. */
  maxNestingDepth: number;
}

/** The library's own defaults (the CLI, tests); the service takes them from `receipts` in the configuration. */
export const DEFAULT_RECEIPT_LIMITS: Readonly<ReceiptLimits> = {
  maxMailBytes: 10 * 1024 * 1024,
  maxTextBytes: 64 * 1024,
  maxMimeParts: 100,
  maxNestingDepth: 8,
};

/** Recipients read from one receipt: each costs status-store lookups, and we send one recipient per envelope. */
export const MAX_RECIPIENTS = 100;

const HEADER_FIELD = /^[!-9;-~]+[ \t]*:/;
/** Longest header value kept while scanning (Content-Type with its parameters). */
const MAX_SCANNED_HEADER = 2048;

/** Where the first header line starts: after a UTF-8 BOM and an mbox "From " line, which mail files may carry. */
function headerStart(text: string): number {
  let pos = text.startsWith('\xef\xbb\xbf') ? 3 : 0;
  if (text.startsWith('From ', pos)) {
    const nl = text.indexOf('\n', pos);
    pos = nl < 0 ? text.length : nl + 1;
  }
  return pos;
}

/**
 * Checks a mail's MIME structure against the limits in one pass over its lines, before any parser sees it: the number
 * of parts, their nesting (attached messages in 7bit/8bit/binary are walked into; encoded ones are checked when they
 * are parsed in turn, one level deeper), and a header to start with.
 * `depth` is the nesting level of the mail itself (0 for a mail read from the mailbox).
 */
export function checkStructure(source: Buffer, limits: ReceiptLimits, depth = 0): void {
  if (source.length > limits.maxMailBytes) throw new UnreadableMail('too-large');
  if (depth > limits.maxNestingDepth) throw new UnreadableMail('too-deep');
  const text = source.toString('latin1');
  let pos = headerStart(text);
  const firstEnd = text.indexOf('\n', pos);
  if (!HEADER_FIELD.test(text.slice(pos, Math.min(firstEnd < 0 ? text.length : firstEnd, pos + 1000)))) throw new UnreadableMail('invalid-mime');

  const open: { boundary: string; depth: number }[] = []; // multiparts whose delimiters may still come, innermost last
  let level = depth;
  let inHeaders = true;
  let field: 'type' | 'encoding' | undefined;
  let type = '';
  let encoding = '';
  let parts = 0;
  const startEntity = (at: number) => {
    level = at;
    inHeaders = true;
    field = undefined;
    type = encoding = '';
  };
  const endHeaders = () => {
    if (++parts > limits.maxMimeParts) throw new UnreadableMail('too-many-parts');
    const mediaType = type.split(';', 1)[0]!.trim().toLowerCase();
    inHeaders = false;
    const b = mediaType.startsWith('multipart/') ? /boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(type) : null;
    // A multipart without a boundary (a fold gone wrong, seen from Apache James) is read as one text by the parser.
    const boundary = b?.[1] ?? b?.[2];
    if (boundary) {
      if (level + 1 > limits.maxNestingDepth) throw new UnreadableMail('too-deep');
      open.push({ boundary, depth: level + 1 });
    } else if ((mediaType === 'message/rfc822' || mediaType === 'message/global') && ['', '7bit', '8bit', 'binary'].includes(encoding.trim().toLowerCase())) {
      // The body is a message of its own: its headers come next, one level down.
      if (level + 1 > limits.maxNestingDepth) throw new UnreadableMail('too-deep');
      startEntity(level + 1);
    }
  };

  while (pos <= text.length) {
    // In a body only a delimiter line matters: native indexOf skips to the next candidate.
    if (!inHeaders && !(text.charCodeAt(pos) === 45 && text.charCodeAt(pos + 1) === 45)) {
      const next = open.length ? text.indexOf('\n--', pos) : -1;
      if (next < 0) break;
      pos = next + 1;
    }
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const lineEnd = end > pos && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    // A delimiter line of an open multipart ends whatever part was in progress, however it was nested.
    if (open.length && text.charCodeAt(pos) === 45 && text.charCodeAt(pos + 1) === 45) {
      let k = open.length - 1;
      let close = false;
      for (; k >= 0; k--) {
        const b = open[k]!.boundary;
        if (!text.startsWith(b, pos + 2) || lineEnd - (pos + 2 + b.length) > 64) continue;
        const rest = text.slice(pos + 2 + b.length, lineEnd);
        if (rest.trim() === '') break;
        if (rest.startsWith('--') && rest.slice(2).trim() === '') {
          close = true;
          break;
        }
      }
      if (k >= 0) {
        const d = open[k]!.depth;
        open.length = close ? k : k + 1;
        if (close) inHeaders = false;
        else startEntity(d);
        pos = end + 1;
        continue;
      }
    }
    if (inHeaders) {
      if (lineEnd === pos) endHeaders();
      else {
        const c = text.charCodeAt(pos);
        if (c === 32 || c === 9) {
          const value = field === 'type' ? type : field === 'encoding' ? encoding : undefined;
          if (value !== undefined && value.length < MAX_SCANNED_HEADER) {
            const more = ` ${text.slice(pos, Math.min(lineEnd, pos + MAX_SCANNED_HEADER))}`;
            if (field === 'type') type += more;
            else encoding += more;
          }
        } else if (c === 67 || c === 99) {
          const name = text.slice(pos, Math.min(lineEnd, pos + 26)).toLowerCase();
          const value = (n: number) => text.slice(pos + n, Math.min(lineEnd, pos + n + MAX_SCANNED_HEADER));
          field = undefined;
          if (/^content-type[ \t]*:/.test(name)) {
            field = 'type';
            type = value(name.indexOf(':') + 1);
          } else if (/^content-transfer-encoding[ \t]*:/.test(name)) {
            field = 'encoding';
            encoding = value(name.indexOf(':') + 1);
          }
        } else field = undefined;
      }
    }
    pos = end + 1;
  }
  if (inHeaders) endHeaders(); // a mail or part that is all headers
}

/** A Message-ID header field, folded once at most; bounded, so that a flood of '<' or of one long line is read once. */
export const MESSAGE_ID_FIELD = /^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\r\n]{1,994}>)/im;

/** A short hash of the mail's Message-ID, to name a mail in a log line without its content. */
export function messageIdHash(source: Buffer): string | undefined {
  const head = source.toString('latin1', 0, Math.min(source.length, 64 * 1024));
  const end = head.search(/\r?\n\r?\n/);
  const id = MESSAGE_ID_FIELD.exec(end < 0 ? head : head.slice(0, end))?.[1];
  return id ? createHash('sha256').update(id).digest('hex').slice(0, 16) : undefined;
}
