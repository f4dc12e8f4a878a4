import MailComposer from 'nodemailer/lib/mail-composer';
import type { MailSpec } from '@mssgw/queue';

/**
 * The nodemailer message of a mail: the same for the dispatcher (which adds the SMTP envelope and DSN parameters)
 * and for `mssgw compose` (which writes it to an .eml file). `contents` are the attachments' bytes, in order.
 */
export function mailOptions(spec: MailSpec, contents: Buffer[]) {
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

/** The mail as an RFC 5322 message (what `mssgw compose` writes): exactly what the dispatcher would send. */
export async function buildEml(spec: MailSpec, contents: Buffer[], date?: Date): Promise<Buffer> {
  const composer = new MailComposer({ ...mailOptions(spec, contents), ...(date ? { date } : {}) });
  return composer.compile().build();
}
