import type { Receipt } from '@mssgw/receipts';
import type { ServiceContext } from '@mssgw/runtime';
import type { DeliveryState } from '@mssgw/status';
import { metrics } from '@mssgw/telemetry';

const DSN_STATES: Record<string, DeliveryState> = {
  delivered: 'delivered', relayed: 'relayed', expanded: 'expanded', delayed: 'delayed', failed: 'failed',
};
const MDN_STATES: Record<string, DeliveryState> = {
  displayed: 'displayed', processed: 'processed', deleted: 'deleted', dispatched: 'processed', denied: 'processing-error', failed: 'processing-error',
};

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
      const state = DSN_STATES[r.action];
      if (!state) continue;
      let deliveryId = receipt.envelopeId && (await ctx.status.getDelivery(receipt.envelopeId)) ? receipt.envelopeId : undefined;
      if (!deliveryId && receipt.originalMessageId) {
        deliveryId = await ctx.status.deliveryForMessage(receipt.originalMessageId, r.originalRecipient ?? r.recipient);
      }
      if (!deliveryId) continue;
      const before = await ctx.status.getDelivery(deliveryId);
      const res = await ctx.status.transition(deliveryId, state, 'dsn', {
        dsnStatus: r.status, ...(state === 'failed' ? { reason: r.status } : {}), ...(state !== 'delayed' ? { dsnAt: Date.now() } : {}),
        detail: [r.action, r.status, r.diagnosticCode].filter(Boolean).join(' '),
      });
      metrics.receipts.inc({ mailbox, kind: 'dsn', outcome: res.applied ? state : 'late' });
      if (res.applied && before?.submittedAt && state !== 'delayed') metrics.smtpToDsn.observe({ mailbox }, (Date.now() - before.submittedAt) / 1000);
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
  const state = receipt.disposition.error ? 'processing-error' : (MDN_STATES[receipt.disposition.type] ?? 'processed');
  const before = await ctx.status.getDelivery(deliveryId);
  const res = await ctx.status.transition(deliveryId, state, 'mdn', {
    ...(receipt.disposition.error ? { reason: receipt.disposition.error.code } : {}),
    detail: `${receipt.disposition.actionMode}/${receipt.disposition.sendingMode}; ${receipt.disposition.type}${receipt.disposition.modifier ? `/${receipt.disposition.modifier}` : ''}`,
  });
  metrics.receipts.inc({ mailbox, kind: 'mdn', outcome: res.applied ? state : 'late' });
  if (res.applied && before?.dsnAt) metrics.dsnToMdn.observe({ mailbox }, (Date.now() - before.dsnAt) / 1000);
  return res.applied ? 'applied' : 'late';
}
