import type { ApplicativeMailboxConfig } from '@mssgw/config';
import { createMailboxTransport } from '@mssgw/dispatcher';
import { REPLY_MATCHES, type RecordedReply, type Reply } from '@mssgw/status';
import type { Receipt } from '@mssgw/receipts';
import { whitelistReader } from '@mssgw/routing';
import type { ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';

/** Series at zero from the start, so that rates and alerts have data before the first reply. */
export function initReplyMetrics(mailbox: string): void {
  for (const matched of REPLY_MATCHES) metrics.replies.inc({ mailbox, matched }, 0);
  metrics.repliesForwardingBlocked.set({ mailbox }, 0);
  for (const outcome of ['sent', 'failed']) metrics.repliesForwarded.inc({ mailbox, outcome }, 0);
  for (const kind of ['dsn', 'mdn']) metrics.receiptsForged.inc({ mailbox, kind, reason: kind === 'dsn' ? 'envelope-unknown' : 'mdn-sender' }, 0);
}

/**
 * A mail that is neither a DSN nor an MDN: a reply (or an auto-reply). It is matched to the result and recipient it
 * answers, kept whole as a body, noted in the recipient's history by id, and counted; nothing of it is logged.
 */
export async function recordReply(
  ctx: ServiceContext, receipt: Extract<Receipt, { kind: 'other' }>, source: Buffer, mailbox: ApplicativeMailboxConfig,
): Promise<RecordedReply> {
  const reply = receipt.reply ?? { references: [] };
  const from = receipt.origin?.from;
  const auto = receipt.reason === 'auto-reply';
  // Never a copy of what the human mailbox itself sent (its own auto-reply to a copy would come back for ever).
  const forwardTo = mailbox.forwardRepliesTo && !auto && from !== mailbox.forwardRepliesTo.toLowerCase() ? mailbox.forwardRepliesTo : undefined;
  const recorded = await ctx.status.replies.record({
    mailbox: mailbox.address, source, references: reply.references, auto,
    ...(from ? { from } : {}),
    ...(reply.subject !== undefined ? { subject: reply.subject } : {}),
    ...(reply.date !== undefined ? { sentAt: reply.date } : {}),
    ...(reply.inReplyTo ? { inReplyTo: reply.inReplyTo } : {}),
    ...(forwardTo ? { forwardTo } : {}),
  });
  if (recorded.created) {
    metrics.replies.inc({ mailbox: mailbox.address, matched: recorded.matchedBy });
    ctx.log.info({
      mailbox: mailbox.address, replyId: recorded.id, matchedBy: recorded.matchedBy, auto,
      ...(recorded.resultId ? { resultId: recorded.resultId } : {}), ...(recorded.deliveryId ? { deliveryId: recorded.deliveryId } : {}),
    }, 'reply recorded');
  }
  return recorded;
}

/**
 * Sends the copies of a mailbox's replies that the operator has not taken yet, through the operator with the
 * mailbox's own certificate: to mailboxes[].forwardRepliesTo, the reply attached whole (message/rfc822). A copy that
 * fails stays pending and is sent again at the next sweep.
 */
export class ReplyForwarder {
  private transport: ReturnType<typeof createMailboxTransport> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Replies whose copy the operator refused for good (5xx), left pending in the store. */
  private readonly refused = new Set<string>();
  private wasBlocked = false;
  private readonly ctx: ServiceContext;
  private readonly mailbox: ApplicativeMailboxConfig;

  constructor(ctx: ServiceContext, mailbox: ApplicativeMailboxConfig) {
    this.ctx = ctx;
    this.mailbox = mailbox;
  }

  /** Forwards what is pending; one pass at a time, and one more if asked meanwhile. */
  forwardPending(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Whether this mailbox's copies are held back by the liste blanche: a gauge, and one log line when it starts. */
  private blocked(now: boolean): void {
    metrics.repliesForwardingBlocked.set({ mailbox: this.mailbox.address }, now ? 1 : 0);
    if (now && !this.wasBlocked) this.ctx.log.error({ mailbox: this.mailbox.address }, 'forwardRepliesTo is not in the MSSanté liste blanche: replies are kept, not forwarded');
    this.wasBlocked = now;
  }

  private async pass(): Promise<void> {
    const address = this.mailbox.address;
    for (;;) {
      const pending = await this.ctx.status.replies.pendingForwards(address, 20, [...this.refused]);
      if (!pending.length) return;
      for (const r of pending) {
        try {
          // Never outside the MSSanté space: a copy to an address the liste blanche does not allow is not sent. The
          // reply stays pending (GET /api/v1/replies lists it) and goes once the address is allowed again.
          if (r.forwardTo && !(await whitelistReader(this.ctx).allows(r.forwardTo, false))) {
            this.blocked(true);
            return;
          }
          this.blocked(false);
          if (!(await this.forward(r))) {
            this.refused.add(r.id); // its body is gone (retention): nothing to send
            continue;
          }
          await this.ctx.status.replies.markForwarded(r.id);
          metrics.repliesForwarded.inc({ mailbox: address, outcome: 'sent' });
        } catch (err) {
          metrics.repliesForwarded.inc({ mailbox: address, outcome: 'failed' });
          // The error's class and SMTP code only: nodemailer's message may quote an address.
          const e = err as { name?: string; responseCode?: number; code?: string };
          this.ctx.log.warn({ mailbox: address, replyId: r.id, error: e.name, code: e.responseCode ?? e.code }, 'reply not forwarded; tried again later');
          // Refused for good (5xx: too large, an address the operator refuses): the others go on; this process
          // tries it again only after a restart. Anything else: the operator is likely down, everything waits.
          if (e.responseCode !== undefined && e.responseCode >= 500) this.refused.add(r.id);
          else return;
        }
      }
    }
  }

  /** Sends one copy; false when there is nothing to send. */
  private async forward(r: Reply): Promise<boolean> {
    const body = await this.ctx.status.replies.body(r.id);
    if (!body || !r.forwardTo) return false;
    const result = r.resultId ? await this.ctx.status.getResult(r.resultId, { withDeliveries: false }) : undefined;
    this.transport ??= createMailboxTransport(this.ctx.config, this.mailbox);
    const about = result
      ? `Elle répond au résultat ${result.controlId} (${result.sendingApplication}, identifiant ${result.resultId}${r.deliveryId ? `, destinataire ${r.deliveryId}` : ''}).`
      : "Elle ne correspond à aucun résultat connu de la passerelle.";
    await this.transport.sendMail({
      from: this.mailbox.displayName ? { name: this.mailbox.displayName, address: this.mailbox.address } : this.mailbox.address,
      to: r.forwardTo,
      subject: `Réponse reçue : ${r.subject ?? '(sans objet)'}`.slice(0, 998),
      text: [
        `Cette réponse est arrivée le ${new Date(r.receivedAt).toISOString()} dans la boîte applicative ${this.mailbox.address}, que personne ne lit.`,
        about,
        'Le message reçu est joint tel quel. Répondez à son expéditeur depuis une boîte personnelle ou organisationnelle.',
        '',
      ].join('\n'),
      headers: { 'Auto-Submitted': 'auto-forwarded', 'X-MSSGW-Reply-Id': r.id },
      // message/rfc822 is never base64 (RFC 2046): 8bit, the mail as received.
      attachments: [{ filename: `reponse-${r.id}.eml`, content: body, contentType: 'message/rfc822', contentDisposition: 'attachment', contentTransferEncoding: '8bit' }],
    });
    return true;
  }

  async stop(): Promise<void> {
    await this.running;
    this.transport?.close();
  }
}
