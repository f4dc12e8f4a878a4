import { describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import type { HistoryNote, Transition } from '@mssgw/lifecycle';
import type { MailOrigin, Receipt } from '@mssgw/receipts';
import { applyReceipt } from '@mssgw/receipts-service';
import type { ServiceContext } from '@mssgw/runtime';
import type { Delivery } from '@mssgw/status';

/** A status store of three deliveries of one mail, in memory: what applyReceipt asks of it. */
function fakeContext() {
  const deliveries: Delivery[] = ['a', 'b', 'c'].map((x) => ({
    deliveryId: `d-${x}`, resultId: 'r-1', recipient: `${x}@cabinet.mssante.test`, kind: 'professional', state: 'submitted',
    messageId: '<r-1-ps@chu>', envelopeId: `${x.repeat(32)}`, updatedAt: 0,
  }));
  const applied: [string, string][] = [];
  const notes: [string, HistoryNote][] = [];
  const status = {
    getDelivery: (id: string) => Promise.resolve(deliveries.find((d) => d.deliveryId === id)),
    deliveryForEnvelope: (id: string) => Promise.resolve(deliveries.find((d) => d.envelopeId === id)),
    deliveryForMessage: (m: string, r: string) =>
      Promise.resolve(deliveries.find((d) => d.messageId!.toLowerCase() === m.toLowerCase() && d.recipient === r.toLowerCase())?.deliveryId),
    apply: (id: string, change: Transition) => {
      applied.push([id, change.state]);
      return Promise.resolve({ applied: true, previous: 'submitted' });
    },
    note: (id: string, note: HistoryNote) => {
      notes.push([id, note]);
      return Promise.resolve(true);
    },
  };
  const log = { warn: () => undefined, info: () => undefined };
  const config = { operator: { tlsServerName: 'mail.operator.test' } } as GatewayConfig;
  return { ctx: { status, log, config } as unknown as ServiceContext, applied, notes };
}

const OPERATOR: MailOrigin = { returnPath: '', smtpHops: 0, received: 1 };
const OUTSIDE: MailOrigin = { returnPath: '', smtpHops: 1, received: 1 };
const dsn = (o: { envelopeId?: string; recipient: string; origin: MailOrigin; action?: string }): Receipt => ({
  kind: 'dsn', reportingMta: 'mail.operator.test', originalMessageId: '<r-1-ps@chu>', inferred: false, origin: o.origin,
  ...(o.envelopeId ? { envelopeId: o.envelopeId } : {}),
  recipients: [{ recipient: o.recipient, action: o.action ?? 'delivered', status: '2.0.0' }],
});
const mdn = (o: { from?: string; finalRecipient?: string; returnPath?: string }): Receipt => ({
  kind: 'mdn', originalMessageId: '<r-1-ps@chu>', disposition: { actionMode: 'manual-action', sendingMode: 'MDN-sent-manually', type: 'displayed' },
  ...(o.finalRecipient ? { finalRecipient: o.finalRecipient } : {}),
  origin: { smtpHops: 1, received: 1, ...(o.from ? { from: o.from } : {}), ...(o.returnPath !== undefined ? { returnPath: o.returnPath } : {}) },
});

describe('which receipts the reader believes', () => {
  it('applies a DSN by its envelope id from anywhere, when it reports on that delivery', async () => {
    const f = fakeContext();
    expect(await applyReceipt(f.ctx, dsn({ envelopeId: 'a'.repeat(32), recipient: 'A@cabinet.mssante.test', origin: OUTSIDE }), 'mb')).toBe('applied');
    expect(f.applied).toEqual([['d-a', 'delivered']]);
    expect(await applyReceipt(f.ctx, dsn({ envelopeId: 'a'.repeat(32), recipient: 'b@cabinet.mssante.test', origin: OPERATOR }), 'mb')).toBe('forged');
    expect(f.notes.map(([id, n]) => [id, n.detail.split(';')[0]])).toEqual([['d-a', 'forged: envelope-recipient']]);
  });

  it('applies a DSN without a known envelope id by Message-ID only when the operator wrote it', async () => {
    const f = fakeContext();
    expect(await applyReceipt(f.ctx, dsn({ recipient: 'b@cabinet.mssante.test', origin: OPERATOR }), 'mb')).toBe('applied');
    // The old ENVID form (the delivery id), from the operator: a delivery sent before the upgrade.
    expect(await applyReceipt(f.ctx, dsn({ envelopeId: 'd-c', recipient: 'c@cabinet.mssante.test', origin: { ...OPERATOR } }), 'mb')).toBe('applied');
    expect(f.applied).toEqual([['d-b', 'delivered'], ['d-c', 'delivered']]);
    for (const origin of [OUTSIDE, { ...OPERATOR, returnPath: 'x@y.test' }, { ...OPERATOR, received: 0 }]) {
      expect(await applyReceipt(f.ctx, dsn({ recipient: 'b@cabinet.mssante.test', origin }), 'mb')).toBe('forged');
    }
    expect(await applyReceipt(f.ctx, dsn({ envelopeId: 'd-b', recipient: 'b@cabinet.mssante.test', origin: OUTSIDE }), 'mb')).toBe('forged');
    expect(await applyReceipt(f.ctx, dsn({ envelopeId: 'd-b', recipient: 'c@cabinet.mssante.test', origin: OPERATOR }), 'mb')).toBe('applied');
    expect(f.notes.map(([id, n]) => [id, n.detail.split(';')[0]])).toEqual([
      ['d-b', 'forged: not-from-operator'], ['d-b', 'forged: not-from-operator'], ['d-b', 'forged: not-from-operator'], ['d-b', 'forged: envelope-unknown'],
    ]);
    // A guessed envelope id that names nothing: counted only, the mail stays unrecognised.
    const g = fakeContext();
    expect(await applyReceipt(g.ctx, { ...dsn({ envelopeId: 'f'.repeat(32), recipient: 'nobody@x.test', origin: OUTSIDE }) }, 'mb')).toBe('uncorrelated');
    expect([g.applied, g.notes]).toEqual([[], []]);
  });

  it('applies an MDN only from the recipient it reports on', async () => {
    const f = fakeContext();
    expect(await applyReceipt(f.ctx, mdn({ from: 'a@cabinet.mssante.test', finalRecipient: 'a@cabinet.mssante.test', returnPath: '' }), 'mb')).toBe('applied');
    expect(await applyReceipt(f.ctx, mdn({ from: 'b@cabinet.mssante.test', finalRecipient: 'b@cabinet.mssante.test', returnPath: 'b@cabinet.mssante.test' }), 'mb')).toBe('applied');
    expect(await applyReceipt(f.ctx, mdn({ from: 'c@cabinet.mssante.test' }), 'mb')).toBe('applied');
    expect(f.applied.map(([id]) => id)).toEqual(['d-a', 'd-b', 'd-c']);
    expect(await applyReceipt(f.ctx, mdn({ from: 'b@cabinet.mssante.test', finalRecipient: 'a@cabinet.mssante.test' }), 'mb')).toBe('forged');
    expect(await applyReceipt(f.ctx, mdn({ from: 'a@cabinet.mssante.test', finalRecipient: 'a@cabinet.mssante.test', returnPath: 'b@cabinet.mssante.test' }), 'mb')).toBe('forged');
    expect(await applyReceipt(f.ctx, mdn({ finalRecipient: 'a@cabinet.mssante.test' }), 'mb')).toBe('forged');
    expect(f.notes.map(([id, n]) => [id, n.source, n.state, n.detail.split(';')[0]])).toEqual([
      ['d-a', 'mdn', 'displayed', 'forged: mdn-sender'], ['d-a', 'mdn', 'displayed', 'forged: mdn-sender'], ['d-a', 'mdn', 'displayed', 'forged: mdn-sender'],
    ]);
    expect(await applyReceipt(f.ctx, mdn({ from: 'z@cabinet.mssante.test' }), 'mb')).toBe('uncorrelated');
  });
});
