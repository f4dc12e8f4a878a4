import { dsnTransition, isFinal, mdnTransition } from '@mssgw/lifecycle';
import type { Receipt } from '@mssgw/receipts';
import type { ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';

export type ApplyOutcome = 'applied' | 'late' | 'uncorrelated' | 'not-a-receipt';

/**
 * Records what a receipt says about our deliveries. A DSN names the delivery by its ENVID (our delivery id) and,
 * failing that, by the returned Message-ID and the recipient; an MDN by Original-Message-ID and the recipient.
 */
export async function applyReceipt(ctx: ServiceContext, receipt: Receipt, mailbox: string): Promise<ApplyOutcome> {
  if (receipt.kind === 'other') {
    metrics.receipts.inc({ mailbox, kind: 'other', outcome: receipt.reason });
    return 'not-a-receipt';
  }
  if (receipt.kind === 'dsn') {
    let outcome: ApplyOutcome = 'uncorrelated';
    for (const r of receipt.recipients) {
      const change = dsnTransition(r, Date.now());
      if (!change) continue;
      let deliveryId = receipt.envelopeId && (await ctx.status.getDelivery(receipt.envelopeId)) ? receipt.envelopeId : undefined;
      if (!deliveryId && receipt.originalMessageId) {
        deliveryId = await ctx.status.deliveryForMessage(receipt.originalMessageId, r.originalRecipient ?? r.recipient);
      }
      if (!deliveryId) continue;
      const before = await ctx.status.getDelivery(deliveryId);
      const res = await ctx.status.apply(deliveryId, change);
      metrics.receipts.inc({ mailbox, kind: 'dsn', outcome: res.applied ? change.state : 'late' });
      if (res.applied && before?.submittedAt && isFinal(change.state)) metrics.smtpToDsn.observe({ mailbox }, (Date.now() - before.submittedAt) / 1000);
      outcome = res.applied ? 'applied' : outcome === 'applied' ? 'applied' : 'late';
    }
    if (outcome === 'uncorrelated') metrics.receipts.inc({ mailbox, kind: 'dsn', outcome: 'uncorrelated' });
    return outcome;
  }
  const recipient = receipt.originalRecipient ?? receipt.finalRecipient;
  const deliveryId = receipt.originalMessageId && recipient ? await ctx.status.deliveryForMessage(receipt.originalMessageId, recipient) : undefined;
  if (!deliveryId) {
    metrics.receipts.inc({ mailbox, kind: 'mdn', outcome: 'uncorrelated' });
    return 'uncorrelated';
  }
  const change = mdnTransition(receipt.disposition);
  const before = await ctx.status.getDelivery(deliveryId);
  const res = await ctx.status.apply(deliveryId, change);
  metrics.receipts.inc({ mailbox, kind: 'mdn', outcome: res.applied ? change.state : 'late' });
  if (res.applied && before?.dsnAt) metrics.dsnToMdn.observe({ mailbox }, (Date.now() - before.dsnAt) / 1000);
  return res.applied ? 'applied' : 'late';
}
