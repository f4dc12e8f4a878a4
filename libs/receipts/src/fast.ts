import { MESSAGE_ID_FIELD } from './limits.ts';

/**
 * A fast path for the receipts the gateway reads all day: a top-level multipart/report whose report part is plain
 * 7bit/8bit text. It splits the MIME parts itself; anything else (nested multiparts, encoded report parts, no
 * boundary) returns undefined and goes through mailparser.
 */
export interface RawReport {
  reportType: 'delivery-status' | 'disposition-notification';
  /** The report parts' bodies (a DSN may carry two). */
  reports: string[];
  /** Message-ID of the returned original, when its headers are attached. */
  returnedMessageId?: string;
  inReplyTo?: string;
}

const HEADER_END = /\r?\n\r?\n/;

function headerBlock(text: string): { headers: string; body: string } {
  const m = HEADER_END.exec(text);
  return m ? { headers: text.slice(0, m.index), body: text.slice(m.index + m[0].length) } : { headers: text, body: '' };
}

function header(headers: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:[ \\t]*((?:.*)(?:\\r?\\n[ \\t].*)*)`, 'im').exec(headers);
  return m ? m[1]!.replace(/\r?\n[ \t]+/g, ' ').trim() : undefined;
}

/** `maxTextBytes` bounds what is kept of each report part. */
export function fastReport(source: Buffer, maxTextBytes: number): RawReport | undefined {
  // Headers are ASCII; a latin1 view keeps byte offsets and never fails.
  const text = source.toString('latin1');
  const { headers, body } = headerBlock(text);
  const type = header(headers, 'content-type');
  if (!type || !/^multipart\/report/i.test(type)) return undefined;
  const reportType = /report-type\s*=\s*"?([a-z-]+)/i.exec(type)?.[1]?.toLowerCase();
  if (reportType !== 'delivery-status' && reportType !== 'disposition-notification') return undefined;
  const boundary = /boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))/i.exec(type);
  const b = boundary?.[1] ?? boundary?.[2];
  if (!b) return undefined;
  const parts = body.split(`--${b}`).slice(1);
  const reports: string[] = [];
  let returnedMessageId: string | undefined;
  for (const part of parts) {
    if (part.startsWith('--')) break;
    const p = headerBlock(part.replace(/^\r?\n/, ''));
    const ct = (header(p.headers, 'content-type') ?? 'text/plain').toLowerCase();
    const cte = (header(p.headers, 'content-transfer-encoding') ?? '7bit').toLowerCase();
    const wanted = reportType === 'delivery-status' ? ct.startsWith('message/delivery-status') : ct.startsWith('message/disposition-notification');
    if (wanted) {
      if (cte !== '7bit' && cte !== '8bit' && cte !== 'binary') return undefined;
      reports.push(Buffer.from(p.body.slice(0, maxTextBytes), 'latin1').toString('utf8'));
    } else if (ct.startsWith('message/global') || ct.startsWith('multipart/')) {
      return undefined; // RFC 6533 or nested structures: the full parser
    } else if (!returnedMessageId && (ct.startsWith('text/rfc822-headers') || ct.startsWith('message/rfc822'))) {
      if (cte !== '7bit' && cte !== '8bit' && cte !== 'binary') return undefined;
      returnedMessageId = MESSAGE_ID_FIELD.exec(p.body.slice(0, maxTextBytes))?.[1];
    }
  }
  if (reports.length === 0) return undefined;
  // [^<>]: a run of '<' without '>' is scanned once, not once per '<'.
  const inReplyTo = header(headers, 'in-reply-to')?.match(/<[^<>]{1,994}>/)?.[0];
  return { reportType, reports, ...(returnedMessageId ? { returnedMessageId } : {}), ...(inReplyTo ? { inReplyTo } : {}) };
}
