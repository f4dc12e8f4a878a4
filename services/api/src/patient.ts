import { randomBytes } from 'node:crypto';
import { smtpAccepted, smtpFailure, type SmtpFailure } from '@mssgw/lifecycle';
import { createMailboxTransport } from '@mssgw/dispatcher';
import { sendQueue, type ServiceContext } from '@mssgw/runtime';
import { buildEml } from '@mssgw/mssante';
import { OppositionStore } from '@mssgw/store';
import { PATIENT_DOMAIN } from '@mssgw/whitelist';

/** The subject, exactly, of the message that ends a conversation with a patient in Mon espace santé. */
export const FIN_SUBJECT = '[FIN]';
const FIN_TEXT = 'Cette conversation est close : il n\'est plus possible de répondre à ce message ni aux messages précédents.\r\n';

/** An INS as PID-3 carries it (NIR or NIA: 13 characters and a 2-digit key; 2A / 2B for Corsica). */
export const INS_PATTERN = /^[0-9][0-9AB][0-9]{11}[0-9]{2}$/;

export class CloseRefused extends Error {
  readonly code: 'bad-ins' | 'unknown-mailbox' | 'patient-opposition';
  constructor(code: CloseRefused['code'], message: string) {
    super(message);
    this.name = 'CloseRefused';
    this.code = code;
  }
}

export interface ClosedConversation {
  /** The closing's own id: the result id its recipient record is filed under (no result row: see docs/message.md). */
  closingId: string;
  deliveryId: string;
  messageId: string;
  /** submitted: the operator took it (250); queued: it failed transiently and waits for the dispatcher; failed: 5xx. */
  state: 'submitted' | 'queued' | 'failed';
  detail: string;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/**
 * Ends the conversation of a sending mailbox with a patient (issue #25): the one message the rules describe, subject
 * exactly `[FIN]`, to <INS>@patient.mssante.fr, sent at once through the mailbox's operator transport (mutual TLS,
 * DSN requested with the delivery's envelope id). It is recorded like any mail: a mail row, and a recipient record of
 * kind `patient` (queued, then submitted on the operator's 250) whose history is the patient's timeline of it, under
 * a closing id `c-…`. A transient failure leaves it queued for the dispatcher, which retries it as any delivery. A
 * patient who opposes mails to the patient is not written to.
 */
export async function closePatientConversation(
  ctx: ServiceContext, request: { ins: string; mailbox: string; by: string },
): Promise<ClosedConversation> {
  const ins = request.ins.trim().toUpperCase();
  if (!INS_PATTERN.test(ins)) throw new CloseRefused('bad-ins', 'the INS must be 15 characters (13 and a 2-digit key)');
  const mailbox = ctx.config.mailboxes.find((m) => m.address.toLowerCase() === request.mailbox.trim().toLowerCase());
  if (!mailbox) throw new CloseRefused('unknown-mailbox', 'no such sending mailbox in the configuration (mailboxes[].address)');
  const opposed = await new OppositionStore(ctx.pg).forPatient({ ins, facility: '' });
  if (opposed.some((o) => o.direction === 'patient')) throw new CloseRefused('patient-opposition', 'the patient opposes mails to the patient: nothing is sent');

  const closingId = `c-${hex(12)}`;
  const deliveryId = `d-${hex(12)}`;
  const mailId = `${closingId}-fin`;
  const recipient = `${ins.toLowerCase()}@${PATIENT_DOMAIN}`;
  const messageId = `<${hex(16)}@${mailbox.address.split('@')[1]}>`;
  // Written as the router writes its mails (libs/mssante), without attachment.
  const head = buildEml({
    mailId, resultId: closingId, messageId, from: mailbox.address, ...(mailbox.displayName ? { fromName: mailbox.displayName } : {}), to: [recipient],
    subject: FIN_SUBJECT, text: FIN_TEXT, headers: { 'X-MSS-NIL': ctx.config.mssante.productReference, 'X-MSS-MES': 'FIN' },
    attachments: [], audience: 'patient', readReceipt: false,
  }, new Map());
  await ctx.bodies.putMails(closingId, [{ mailId, head }]);
  await ctx.status.createDelivery(
    { deliveryId, resultId: closingId, recipient, recipientId: ins, kind: 'patient', state: 'queued', mailId, messageId, mailbox: mailbox.address },
    `closing message ${FIN_SUBJECT} asked by ${request.by}`,
  );
  const envelopeId = (await ctx.status.getDelivery(deliveryId))!.envelopeId!;
  const transport = createMailboxTransport(ctx.config, mailbox);
  try {
    const info = (await transport.sendMail({
      raw: head, messageId,
      envelope: { from: mailbox.address, to: [recipient] },
      dsn: { id: envelopeId, return: 'headers', notify: ['success', 'failure', 'delay'], recipient },
    })) as { response: string };
    const accepted = smtpAccepted(info.response, Date.now());
    await ctx.status.apply(deliveryId, accepted);
    return { closingId, deliveryId, messageId, state: 'submitted', detail: info.response };
  } catch (e) {
    const err = e as Error & SmtpFailure;
    const outcome = smtpFailure(err);
    if (outcome.action === 'fail') {
      await ctx.status.apply(deliveryId, outcome.transition);
      return { closingId, deliveryId, messageId, state: 'failed', detail: outcome.transition.fields.detail ?? '' };
    }
    // Not taken now: the dispatcher sends it as it sends any queued delivery (its retries, its checks).
    const queue = sendQueue(ctx, mailbox.address);
    try {
      await queue.add('deliver', { deliveryId, resultId: closingId }, { jobId: deliveryId });
    } finally {
      await queue.close();
    }
    ctx.log.warn({ deliveryId, err: err.code ?? err.responseCode ?? 'error' }, 'closing message not taken by the operator now: queued for the dispatcher');
    return { closingId, deliveryId, messageId, state: 'queued', detail: err.response ?? err.message };
  } finally {
    transport.close();
  }
}
