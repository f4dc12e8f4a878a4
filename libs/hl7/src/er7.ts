import { Hl7Error } from './errors.ts';

/** The five encoding characters declared in MSH-1 and MSH-2. */
export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export interface Segment {
  id: string;
  /** Position of the segment in the message, from 1 (for ERR-2). */
  index: number;
  /** fields[n] is field n as written (escaped); fields[0] is the segment id. For MSH, fields[1] is MSH-1. */
  fields: string[];
}

/** The k-th (from 0) part of a value split at a delimiter, or "" when there are fewer parts. */
function nth(value: string, delimiter: string, k: number): string {
  if (k < 0) return '';
  let start = 0;
  for (let i = 0; i < k; i++) {
    const next = value.indexOf(delimiter, start);
    if (next < 0) return '';
    start = next + 1;
  }
  const end = value.indexOf(delimiter, start);
  return end < 0 ? value.slice(start) : value.slice(start, end);
}

/**
 * A tolerant ER7 (pipe-and-hat) reader: CR, LF or CRLF between segments, any delimiters declared in MSH,
 * blank lines ignored. It splits segments and fields once and leaves components to the accessors, so a 30 MB
 * message with one huge base64 field costs one pass.
 */
export class Er7Message {
  readonly segments: Segment[];
  readonly delimiters: Delimiters;
  /** Lines that did not start with a segment id and were joined to the segment before them. */
  readonly joinedLines: number;

  constructor(text: string) {
    const start = text.indexOf('MSH');
    if (start < 0 || text.length < start + 8) throw Hl7Error.of('notHl7', 'not an HL7 v2 message: no MSH segment', { segment: 'MSH' });
    if (text.slice(0, start).trim() !== '') throw Hl7Error.of('notHl7', 'the message must begin with MSH', { segment: 'MSH' });
    const f = text[start + 3]!;
    const enc = text.slice(start + 4, start + 8);
    if (/[A-Za-z0-9\r\n]/.test(f) || enc.length < 4 || enc.includes(f)) {
      throw Hl7Error.of('notHl7', 'MSH-1/MSH-2 do not declare valid delimiters', { segment: 'MSH', sequence: 1, field: 2 });
    }
    this.delimiters = { field: f, component: enc[0]!, repetition: enc[1]!, escape: enc[2]!, subcomponent: enc[3]! };
    // Some senders break long segments (at 4096 bytes, say): a line that does not start with a segment id
    // continues the segment before it.
    const segmentStart = new RegExp(`^[A-Z][A-Z0-9]{2}(\\${f}|$)`);
    const lines: string[] = [];
    let joined = 0;
    const body = text.slice(start);
    // HL7's own separator is CR alone: a plain split then, the regular expression only when LFs are present.
    for (const line of body.includes('\n') ? body.split(/\r\n|\r|\n/) : body.split('\r')) {
      if (line.trim() === '') continue;
      if (!segmentStart.test(line) && lines.length > 0) {
        lines[lines.length - 1] += line;
        joined++;
      } else lines.push(line);
    }
    this.joinedLines = joined;
    this.segments = [];
    for (const line of lines) {
      const fields = line.split(f);
      const id = fields[0]!.trim();
      if (id === 'MSH') fields.splice(1, 0, f); // MSH-1 is the separator itself
      this.segments.push({ id, index: this.segments.length + 1, fields });
    }
  }

  all(id: string): Segment[] {
    return this.segments.filter((s) => s.id === id);
  }

  first(id: string): Segment | undefined {
    return this.segments.find((s) => s.id === id);
  }

  /** Field n of a segment as written, or "" when absent. */
  static raw(segment: Segment | undefined, n: number): string {
    return segment?.fields[n] ?? '';
  }

  repetitions(value: string): string[] {
    return value === '' ? [] : value.split(this.delimiters.repetition);
  }

  components(value: string): string[] {
    return value.split(this.delimiters.component);
  }

  subcomponents(value: string): string[] {
    return value.split(this.delimiters.subcomponent);
  }

  /** Component c (from 1) of field n, unescaped; "" when absent. Only the first repetition. */
  get(segment: Segment | undefined, n: number, c = 1, s?: number): string {
    // Cut with indexOf rather than split: a field may be a 30 MB Base64 document, and this runs for every value read.
    const field = nth(Er7Message.raw(segment, n), this.delimiters.repetition, 0);
    const comp = nth(field, this.delimiters.component, c - 1);
    return this.unescape(s === undefined ? comp : nth(comp, this.delimiters.subcomponent, s - 1));
  }

  /** Resolves the HL7 escape sequences (\F\ \S\ \T\ \R\ \E\ \Xhh..\ \.br\) of a value. */
  unescape(value: string): string {
    const e = this.delimiters.escape;
    if (!value.includes(e)) return value;
    const d = this.delimiters;
    let out = '';
    let i = 0;
    while (i < value.length) {
      const ch = value[i]!;
      const close = ch === e ? value.indexOf(e, i + 1) : -1;
      if (close < 0) {
        out += ch;
        i++;
        continue;
      }
      const seq = value.slice(i + 1, close);
      switch (seq[0]) {
        case 'F': out += d.field; break;
        case 'S': out += d.component; break;
        case 'T': out += d.subcomponent; break;
        case 'R': out += d.repetition; break;
        case 'E': out += d.escape; break;
        case 'X': out += Buffer.from(seq.slice(1), 'hex').toString('latin1'); break;
        case '.': out += seq === '.br' ? '\n' : ''; break;
        default: out += e + seq + e;
      }
      i = close + 1;
    }
    return out;
  }
}
