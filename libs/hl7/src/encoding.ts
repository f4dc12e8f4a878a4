import { isUtf8 } from 'node:buffer';

/**
 * Bytes → text, honouring MSH-18. French producers send UTF-8 (MSH-18 "UNICODE UTF-8") or Latin-9 ("8859/15",
 * which has € and Œ where Latin-1 has ¤ and ¼); a UTF-8 BOM may lead the message.
 */
const CHARSETS: Record<string, string> = {
  'UNICODE UTF-8': 'utf-8',
  'UTF-8': 'utf-8',
  UNICODE: 'utf-8',
  '8859/1': 'latin1',
  '8859/15': 'iso-8859-15',
  ASCII: 'utf-8',
};

export interface DecodedText {
  text: string;
  /** The charset actually used. */
  charset: string;
  /** MSH-18 as written (may be empty). */
  declared: string;
}

/** Reads MSH-18 from the raw bytes: the MSH segment is ASCII in every charset we accept. */
function declaredCharset(bytes: Buffer): string {
  const head = bytes.subarray(0, Math.min(bytes.length, 1024)).toString('latin1');
  const start = head.indexOf('MSH');
  if (start < 0 || head.length < start + 4) return '';
  const sep = head[start + 3]!;
  const end = head.slice(start).search(/[\r\n]/);
  const fields = head.slice(start, end < 0 ? undefined : start + end).split(sep);
  // fields[0] = "MSH", fields[1] = encoding characters (MSH-2), so MSH-n is fields[n - 1].
  return (fields[17] ?? '').split(fields[1]?.[0] ?? '^')[0]!.trim();
}

export function decodeHl7(bytes: Buffer): DecodedText {
  let body = bytes;
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) body = body.subarray(3);
  const declared = declaredCharset(body);
  const wanted = CHARSETS[declared.toUpperCase()] ?? 'utf-8';
  if (wanted !== 'utf-8') return { text: new TextDecoder(wanted).decode(body), charset: wanted, declared };
  if (isUtf8(body)) return { text: body.toString('utf8'), charset: 'utf-8', declared };
  // Undeclared or wrongly declared Latin-9 is common in the field; Latin-9 is the French default.
  return { text: new TextDecoder('iso-8859-15').decode(body), charset: 'iso-8859-15', declared };
}
