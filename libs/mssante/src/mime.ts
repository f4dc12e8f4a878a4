import { createHash } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import type { MailSpec } from '@mssgw/queue';

/** The nodemailer message of a mail. `contents` are the attachments' bytes, in order. */
function mailOptions(spec: MailSpec, contents: Buffer[]) {
  return {
    from: spec.fromName ? { name: spec.fromName, address: spec.from } : spec.from,
    to: spec.to,
    ...(spec.replyTo ? { replyTo: spec.replyTo } : {}),
    subject: spec.subject,
    text: spec.text,
    headers: spec.headers,
    messageId: spec.messageId,
    attachments: spec.attachments.map((a, i) => ({ filename: a.filename, contentType: a.contentType, content: contents[i]! })),
  };
}

/** The part of nodemailer's MimeNode this writer reads: its tree, and the headers it builds. */
interface MimePart {
  childNodes: MimePart[];
  multipart: string | false;
  boundary: string | false;
  content?: string | Buffer;
  contentType?: string;
  buildHeaders(): string;
  getTransferEncoding(): string | false;
}

/** The mails of a result carry the same attachments: each is encoded once, for as long as its bytes live. */
const encoded = new WeakMap<Buffer, Buffer>();

/** Base64 in lines of 76 characters (RFC 2045 §6.8), as one native encoding and one join. */
function base64Lines(content: Buffer): Buffer {
  const cached = encoded.get(content);
  if (cached !== undefined) return cached;
  const b64 = content.toString('base64');
  let lines = b64;
  if (b64.length > 76) {
    const parts = new Array<string>(Math.ceil(b64.length / 76));
    for (let i = 0, at = 0; at < b64.length; i++, at += 76) parts[i] = b64.slice(at, at + 76);
    lines = parts.join('\r\n');
  }
  const bytes = Buffer.from(lines, 'latin1');
  encoded.set(content, bytes);
  return bytes;
}

function body(part: MimePart): string | Buffer {
  const content = part.content!;
  switch (part.getTransferEncoding()) {
    case 'base64':
      return base64Lines(typeof content === 'string' ? Buffer.from(content) : content);
    case 'quoted-printable':
      return qpWrap(qpEncode(content), 76);
    default:
      return content;
  }
}

/** Writes a MIME tree the way nodemailer's streaming `build()` lays it out (boundaries, blank lines, final CRLF). */
function render(part: MimePart, out: (string | Buffer)[]): void {
  out.push(part.buildHeaders() + '\r\n\r\n'); // sets the boundary of a multipart
  if (part.content) out.push(body(part));
  if (!part.multipart) return;
  part.childNodes.forEach((child, i) => {
    out.push(`${i ? '\r\n' : ''}--${String(part.boundary)}\r\n`);
    render(child, out);
  });
  out.push(`\r\n--${String(part.boundary)}--\r\n`);
}

/**
 * The mail as an RFC 5322 message, rendered once: the router stores it and the dispatcher sends these bytes to each
 * recipient of the mail; `mssgw compose` writes them to an .eml file. `contents` holds the attachments by SHA-256.
 *
 * nodemailer builds the MIME tree and every header (encoded words, RFC 2231 file names, folding); the bodies are
 * written here in one pass instead of through nodemailer's per-part streams, which cost more than the encoding
 * itself on our mails (0.58 → 0.25 ms of CPU per 62 KB mail). The output is byte for byte nodemailer's
 * (test/unit/message.test.ts compares them).
 */
export function buildEml(spec: MailSpec, contents: ReadonlyMap<string, Buffer>, date?: Date, boundary?: string): Buffer {
  const bytes = spec.attachments.map((a) => {
    const content = contents.get(a.sha256);
    if (!content) throw new Error(`attachment ${a.filename} of mail ${spec.mailId} has no content`);
    return content;
  });
  // The boundary comes from the mail id, not from random bytes: the same mail renders to the same bytes.
  const root = nodemailerTree(spec, bytes, date, boundary ?? createHash('sha256').update(spec.mailId).digest('hex').slice(0, 16));
  const out: (string | Buffer)[] = [];
  render(root, out);
  const last = out.findLast((p) => p.length > 0)!;
  const end = typeof last === 'string' ? last.charCodeAt(last.length - 1) : last[last.length - 1];
  if (end !== 0x0a) out.push(end === 0x0d ? '\n' : '\r\n');
  return Buffer.concat(out.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}

function nodemailerTree(spec: MailSpec, bytes: Buffer[], date: Date | undefined, boundary: string): MimePart {
  const composer = new MailComposer({ ...mailOptions(spec, bytes), ...(date ? { date } : {}), baseBoundary: boundary });
  return composer.compile() as unknown as MimePart;
}

/** The same message through nodemailer's own streaming writer: the reference buildEml is held to. */
export function buildEmlWithNodemailer(spec: MailSpec, contents: ReadonlyMap<string, Buffer>, date: Date, boundary: string): Promise<Buffer> {
  const composer = new MailComposer({ ...mailOptions(spec, spec.attachments.map((a) => contents.get(a.sha256)!)), date, baseBoundary: boundary });
  return composer.compile().build();
}
