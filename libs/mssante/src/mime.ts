import MailComposer from 'nodemailer/lib/mail-composer';
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

/**
 * The mail as an RFC 5322 message, rendered once: the router stores it and the dispatcher sends these bytes to each
 * recipient of the mail; `mssgw compose` writes them to an .eml file. `contents` holds the attachments by SHA-256.
 */
export async function buildEml(spec: MailSpec, contents: ReadonlyMap<string, Buffer>, date?: Date): Promise<Buffer> {
  const bytes = spec.attachments.map((a) => {
    const content = contents.get(a.sha256);
    if (!content) throw new Error(`attachment ${a.filename} of mail ${spec.mailId} has no content`);
    return content;
  });
  const composer = new MailComposer({ ...mailOptions(spec, bytes), ...(date ? { date } : {}) });
  return composer.compile().build();
}
