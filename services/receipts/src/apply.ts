import type { GatewayConfig } from '@mssgw/config';
import { dsnTransition, forgedReceipt, isFinal, mdnTransition, type ForgedReceiptReason, type Transition } from '@mssgw/lifecycle';
import type { DsnRecipient, MailOrigin, Receipt } from '@mssgw/receipts';
import type { ServiceContext } from '@mssgw/runtime';
import type { Delivery } from '@mssgw/status';
import { metrics } from '@mssgw/telemetry';

export type ApplyOutcome = 'applied' | 'late' | 'forged' | 'uncorrelated' | 'not-a-receipt';

/**
 * Whether a mail was written by the operator's own reporting MTA: a null envelope sender (RFC 3464), a Reporting-MTA
 * the configuration names (operator.reportingMtas, else operator.tlsServerName), and a trace without any hop over
 * SMTP (its bounce daemon wrote it inside the operator; a mail from anyone else carries the Received field the
 * operator added when it took it over SMTP). The fields that say so are the first ones, written by the operator.
 */
export function fromOperator(config: GatewayConfig, origin: MailOrigin | undefined, reportingMta: string | undefined): boolean {
  if (!origin || origin.smtpHops > 0 || origin.received === 0 || origin.returnPath !== '') return false;
  const trusted = (config.operator.reportingMtas ?? [config.operator.tlsServerName]).map((h) => h.toLowerCase());
  return reportingMta !== undefined && trusted.includes(reportingMta.trim().toLowerCase());
}

const addresses = (r: DsnRecipient) => [r.originalRecipient, r.recipient].filter((a): a is string => Boolean(a));
const sameAddress = (a: string | undefined, b: string) => a !== undefined && a.toLowerCase() === b.toLowerCase();

/** The delivery a DSN's recipient block reports on, and whether the DSN is believed. */
type Verdict = { delivery: Delivery; forged?: ForgedReceiptReason } | { delivery?: undefined; forged?: ForgedReceiptReason };

/**
 * A DSN names its delivery by ENVID, a random envelope id only the operators that carried the envelope saw; the
 * report must then be about that delivery's address. Without an ENVID that names a delivery (a DSN from an MTA that
 * dropped it, a delivery sent before envelope ids were random), the returned Message-ID and the recipient find it,
 * but only in a DSN the operator's reporting MTA wrote: a co-recipient sees the Message-ID and the To: list and
 * could otherwise report on anyone.
 */
async function locateDsn(ctx: ServiceContext, receipt: Extract<Receipt, { kind: 'dsn' }>, r: DsnRecipient): Promise<Verdict> {
  const named = addresses(r);
  if (receipt.envelopeId) {
    const d = await ctx.status.deliveryForEnvelope(receipt.envelopeId);
    if (d) return named.some((a) => sameAddress(a, d.recipient)) ? { delivery: d } : { delivery: d, forged: 'envelope-recipient' };
  }
  const operator = fromOperator(ctx.config, receipt.origin, receipt.reportingMta);
  let target: Delivery | undefined;
  if (receipt.originalMessageId) {
    for (const a of named) {
      const id = await ctx.status.deliveryForMessage(receipt.originalMessageId, a);
      if ((target = id ? await ctx.status.getDelivery(id) : undefined)) break;
    }
  }
  // An ENVID in the old form (the delivery id, which a co-recipient can compute): the delivery it names.
  if (!target && receipt.envelopeId) {
    const d = await ctx.status.getDelivery(receipt.envelopeId);
    if (d && named.some((a) => sameAddress(a, d.recipient))) target = d;
    else if (d) return { delivery: d, forged: 'envelope-unknown' };
  }
  if (target) return operator ? { delivery: target } : { delivery: target, forged: receipt.envelopeId ? 'envelope-unknown' : 'not-from-operator' };
  return receipt.envelopeId ? { forged: 'envelope-unknown' } : {};
}

/** A receipt not believed: in the history of the delivery it names (if any), counted, never applied. */
async function refuse(ctx: ServiceContext, mailbox: string, kind: 'dsn' | 'mdn', change: Transition, reason: ForgedReceiptReason, delivery?: Delivery): Promise<void> {
  if (delivery) await ctx.status.note(delivery.deliveryId, forgedReceipt(change, reason));
  metrics.receiptsForged.inc({ mailbox, kind, reason });
  metrics.receipts.inc({ mailbox, kind, outcome: 'forged' });
  // Ids and a reason code only: never an address or anything the mail says.
  ctx.log.warn({ mailbox, kind, reason, ...(delivery ? { deliveryId: delivery.deliveryId } : {}) }, 'receipt not believed: recorded, not applied');
}

/**
 * Records what a receipt says about our deliveries, once it is believed (docs/message.md, Receipts): a DSN by its
 * ENVID (the delivery's random envelope id) or, from the operator's reporting MTA only, by the returned Message-ID
 * and the recipient; an MDN by Original-Message-ID and the recipient, only when its sender is that recipient. A
 * receipt not believed goes into the history of the delivery it names as forged, and changes nothing.
 */
export async function applyReceipt(ctx: ServiceContext, receipt: Receipt, mailbox: string): Promise<ApplyOutcome> {
  if (receipt.kind === 'other') {
    metrics.receipts.inc({ mailbox, kind: 'other', outcome: receipt.reason });
    return 'not-a-receipt';
  }
  if (receipt.kind === 'dsn') {
    let outcome: ApplyOutcome = 'uncorrelated';
    const rank: Record<ApplyOutcome, number> = { 'not-a-receipt': 0, uncorrelated: 1, forged: 2, late: 3, applied: 4 };
    const settle = (o: ApplyOutcome) => (outcome = rank[o] > rank[outcome] ? o : outcome);
    for (const r of receipt.recipients) {
      const change = dsnTransition(r, Date.now());
      if (!change) continue;
      const verdict = await locateDsn(ctx, receipt, r);
      if (verdict.forged) {
        await refuse(ctx, mailbox, 'dsn', change, verdict.forged, verdict.delivery);
        // A forged report that names nothing of ours was only counted: the mail stays with the unrecognised ones.
        settle(verdict.delivery ? 'forged' : 'uncorrelated');
        continue;
      }
      const before = verdict.delivery;
      if (!before) continue;
      const res = await ctx.status.apply(before.deliveryId, change);
      metrics.receipts.inc({ mailbox, kind: 'dsn', outcome: res.applied ? change.state : 'late' });
      if (res.applied && before.submittedAt && isFinal(change.state)) metrics.smtpToDsn.observe({ mailbox }, (Date.now() - before.submittedAt) / 1000);
      settle(res.applied ? 'applied' : 'late');
    }
    if (outcome === 'uncorrelated') metrics.receipts.inc({ mailbox, kind: 'dsn', outcome: 'uncorrelated' });
    return outcome;
  }
  // An MDN names the mail and the recipient who read it; the recipient it reports on must be who sent it.
  const origin = receipt.origin;
  const claimed = [receipt.finalRecipient, receipt.originalRecipient, origin?.from].filter((a): a is string => Boolean(a));
  let target: Delivery | undefined;
  if (receipt.originalMessageId) {
    for (const a of claimed) {
      const id = await ctx.status.deliveryForMessage(receipt.originalMessageId, a);
      if ((target = id ? await ctx.status.getDelivery(id) : undefined)) break;
    }
  }
  if (!target) {
    metrics.receipts.inc({ mailbox, kind: 'mdn', outcome: 'uncorrelated' });
    return 'uncorrelated';
  }
  const change = mdnTransition(receipt.disposition);
  const recipient = target.recipient;
  const fromRecipient = sameAddress(origin?.from, recipient)
    && (receipt.finalRecipient === undefined || sameAddress(receipt.finalRecipient, recipient))
    // RFC 8098 wants a null envelope sender; a client that sends its MDN as ordinary mail gives its own address.
    && (origin?.returnPath === undefined || origin.returnPath === '' || sameAddress(origin.returnPath, recipient));
  if (!fromRecipient) {
    await refuse(ctx, mailbox, 'mdn', change, 'mdn-sender', target);
    return 'forged';
  }
  const res = await ctx.status.apply(target.deliveryId, change);
  metrics.receipts.inc({ mailbox, kind: 'mdn', outcome: res.applied ? change.state : 'late' });
  if (res.applied && target.dsnAt) metrics.dsnToMdn.observe({ mailbox }, (Date.now() - target.dsnAt) / 1000);
  return res.applied ? 'applied' : 'late';
}
