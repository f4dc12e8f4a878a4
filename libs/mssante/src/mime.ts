import { createHash } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import type { MailSpec } from './mail.ts';

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
  filename?: string;
  buildHeaders(): string;
  getTransferEncoding(): string | false;
}

/** The mails of a result carry the same attachments: each is encoded once, for as long as its bytes live. */
const encoded = new WeakMap<Buffer, Buffer>();

/**
 * Base64 in lines of 76 characters (RFC 2045 §6.8): one native encoding, then the lines copied into the output with
 * their CRLF. Slicing and joining strings instead cost 300 KB of short-lived JS heap per result, which the garbage
 * collector then had to sweep.
 */
function base64Lines(content: Buffer): Buffer {
  const cached = encoded.get(content);
  if (cached !== undefined) return cached;
  const flat = Buffer.from(content.toString('base64'), 'latin1');
  const lines = Math.ceil(flat.length / 76);
  let bytes = flat;
  if (lines > 1) {
    bytes = Buffer.allocUnsafe(flat.length + 2 * (lines - 1));
    for (let from = 0, to = 0; from < flat.length; from += 76) {
      if (from) to += bytes.write('\r\n', to, 'latin1');
      to += flat.copy(bytes, to, from, Math.min(from + 76, flat.length));
    }
  }
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

/**
 * Writes a MIME tree the way nodemailer's streaming `build()` lays it out (boundaries, blank lines). `split` receives
 * the position in `out` where the root's first attachment begins.
 */
function render(part: MimePart, out: (string | Buffer)[], split?: (at: number) => void): void {
  out.push(part.buildHeaders() + '\r\n\r\n'); // sets the boundary of a multipart
  if (part.content) out.push(body(part));
  if (!part.multipart) return;
  let attachments = false;
  part.childNodes.forEach((child, i) => {
    if (split && child.filename && !attachments) {
      attachments = true;
      split(out.length);
    }
    out.push(`${i ? '\r\n' : ''}--${String(part.boundary)}\r\n`);
    render(child, out);
  });
  if (split && !attachments) split(out.length);
  out.push(`\r\n--${String(part.boundary)}--\r\n`);
}

/**
 * A mail as an RFC 5322 message in two parts: `head` (its headers and text, which differ from mail to mail) and
 * `attachments` (every part from the first attachment to the end). The mails of a result share their boundary and
 * attachments, so their `attachments` bytes are the same: the router stores them once for all the result's mails.
 */
export interface RenderedMail {
  head: Buffer;
  attachments: Buffer;
  /** Names the attachments part: the same for every mail whose attachments part is the same (same bytes). */
  attachmentsId: string;
}

const toBytes = (parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));

/**
 * The mail rendered once: the router stores it and the dispatcher sends these bytes to each recipient of the mail;
 * `mssgw compose` writes them to an .eml file. `contents` holds the attachments by SHA-256.
 *
 * nodemailer builds the MIME tree and every header (encoded words, RFC 2231 file names, folding); the bodies are
 * written here in one pass instead of through nodemailer's per-part streams, which cost more than the encoding
 * itself on our mails (0.58 → 0.25 ms of CPU per 62 KB mail). The output is byte for byte nodemailer's
 * (test/unit/message.test.ts compares them). The boundary comes from the result id, not from random bytes: the same
 * mail renders to the same bytes, and the mails of a result to the same attachments part.
 */
export function renderMail(spec: MailSpec, contents: ReadonlyMap<string, Buffer>, date?: Date, boundary?: string): RenderedMail {
  const bytes = spec.attachments.map((a) => {
    const content = contents.get(a.sha256);
    if (!content) throw new Error(`attachment ${a.filename} of mail ${spec.mailId} has no content`);
    return content;
  });
  const base = boundary ?? createHash('sha256').update(spec.resultId).digest('hex').slice(0, 16);
  const root = nodemailerTree(spec, bytes, date, base);
  const out: (string | Buffer)[] = [];
  let at = -1;
  render(root, out, (i) => (at = i));
  if (at < 0) at = out.length; // a single-part mail: all head
  const last = out.findLast((p) => p.length > 0)!;
  const end = typeof last === 'string' ? last.charCodeAt(last.length - 1) : last[last.length - 1];
  if (end !== 0x0a) out.push(end === 0x0d ? '\n' : '\r\n');
  const attachmentsId = createHash('sha256')
    .update(JSON.stringify([base, spec.attachments.map((a) => [a.filename, a.contentType, a.sha256])]))
    .digest('hex').slice(0, 32);
  return { head: toBytes(out.slice(0, at)), attachments: toBytes(out.slice(at)), attachmentsId };
}

/** The whole message in one buffer (an .eml file, the tests). */
export function buildEml(spec: MailSpec, contents: ReadonlyMap<string, Buffer>, date?: Date, boundary?: string): Buffer {
  const { head, attachments } = renderMail(spec, contents, date, boundary);
  return Buffer.concat([head, attachments]);
}

function composer(spec: MailSpec, bytes: Buffer[], date: Date | undefined, boundary: string): MailComposer {
  return new MailComposer({ ...mailOptions(spec, bytes), ...(date ? { date } : {}), baseBoundary: boundary });
}

function nodemailerTree(spec: MailSpec, bytes: Buffer[], date: Date | undefined, boundary: string): MimePart {
  return composer(spec, bytes, date, boundary).compile() as unknown as MimePart;
}

/** The same message through nodemailer's own streaming writer: the reference buildEml is held to. */
export function buildEmlWithNodemailer(spec: MailSpec, contents: ReadonlyMap<string, Buffer>, date: Date, boundary: string): Promise<Buffer> {
  return composer(spec, spec.attachments.map((a) => contents.get(a.sha256)!), date, boundary).compile().build();
}
