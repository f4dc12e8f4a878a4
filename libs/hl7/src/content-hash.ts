import { createHash } from 'node:crypto';

/**
 * The content hash of an HL7 message: SHA-256 of its bytes with MSH-7 (when it was sent) left out, so that a producer
 * that rebuilds the message with a fresh timestamp to send it again is still sending the same result.
 */
export function contentHashOf(message: Buffer): string {
  const text = message.toString('latin1');
  const fieldSep = text.charAt(3);
  const end = text.search(/[\r\n]/);
  const msh = end === -1 ? text : text.slice(0, end);
  const fields = msh.split(fieldSep);
  // MSH-1 is the separator itself, so MSH-7 is at index 6 of the split.
  if (text.startsWith('MSH') && fields.length > 6) fields[6] = '';
  const hash = createHash('sha256');
  hash.update(fields.join(fieldSep), 'latin1');
  if (end !== -1) hash.update(message.subarray(Buffer.byteLength(msh, 'latin1')));
  return hash.digest('hex');
}
