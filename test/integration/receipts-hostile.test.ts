import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { StatusStore } from '@mssgw/status';
import { connectPostgres, migrate } from '@mssgw/store';
import { metrics } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';
import { folderCounts } from '../support/imap.ts';
import { hostileCorpus, wellFormedDsn } from '../support/hostile-mail.ts';

/** The operator's injection port (plain SMTP, no TLS): mail from the outside world, as anyone may send it. */
const inject = nodemailer.createTransport({ host: '127.0.0.1', port: 10025, ignoreTLS: true });
const send = (to: string, raw: Buffer) => inject.sendMail({ envelope: { from: 'mailer-daemon@mx.hostile.test', to }, raw });

const folders = (config: GatewayConfig) => folderCounts(config, ['INBOX', 'Processed', 'Unrecognised', 'Replies', 'Quarantine']);

async function quarantinedBy(mailbox: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.receiptsQuarantined.get()).values) if (v.labels.mailbox === mailbox) out[String(v.labels.reason)] = v.value;
  return out;
}

/**
 * Deliveries recorded as submitted in the test's own schema, before any gateway runs; returns their envelope ids,
 * which the DSNs the test sends name as ENVID.
 */
async function submitted(config: GatewayConfig, ids: string[], t: string): Promise<string[]> {
  const pool = connectPostgres(config.postgres);
  try {
    await migrate(pool);
    const status = new StatusStore(pool);
    const envelopes: string[] = [];
    for (const [i, deliveryId] of ids.entries()) {
      await status.createDelivery({ deliveryId, resultId: `r-hostile-${t}`, recipient: `h${i}-${t}@cabinet-demo.mssante.test`, kind: 'professional', state: 'queued' });
      await status.transition(deliveryId, 'submitted', 'dispatcher');
      envelopes.push((await status.getDelivery(deliveryId))!.envelopeId!);
    }
    return envelopes;
  } finally {
    await pool.end();
  }
}

describe('receipts reader under hostile mail, on the sandbox operator', () => {
  const t = tag();
  const hex = (n: number) => `${t}${String(n).padStart(16, '0')}`;
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'mssgw-hostile-')), 'gateway.log');
  // Only the sweep on connect and IMAP IDLE read the mailbox: the periodic one would hide a sweep that gave up.
  const config = testConfig('hostile', (c) => {
    c.logLevel = 'info';
    c.receipts.sweepIntervalMs = 3_600_000;
  });
  const mailbox = config.mailboxes[0]!.address;
  const corpus = hostileCorpus();
  const good = [
    { id: `d-${hex(1)}`, action: 'delivered' as const, status: '2.0.0' },
    { id: `d-${hex(2)}`, action: 'failed' as const, status: '5.1.1' },
    { id: `d-${hex(3)}`, action: 'delivered' as const, status: '2.0.0' },
  ];
  let gateway: Gateway | undefined;

  beforeAll(async () => {
    // Everything waits in INBOX before the reader starts: hostile mail first, the DSNs after it.
    const envelopes = await submitted(config, good.map((g) => g.id), t);
    for (const h of corpus) await send(mailbox, h.mail);
    for (const [i, g] of good.entries()) {
      await send(mailbox, wellFormedDsn({ to: mailbox, envelopeId: envelopes[i]!, recipient: `h${i}-${t}@cabinet-demo.mssante.test`, action: g.action, status: g.status }));
    }
    await waitFor('every mail in the mailbox', () => Promise.resolve(mailboxFiles(mailbox).length === corpus.length + good.length), 60_000);
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    delete process.env['MSSGW_LOG_FILE'];
  });

  it('classifies or quarantines every hostile mail and applies the DSNs behind them in the same sweep', async () => {
    process.env['MSSGW_LOG_FILE'] = logFile;
    gateway = await startGateway(config, ['receipts']);
    const state = async (id: string) => (await gateway!.ctx.status.getDelivery(id))?.state;
    await waitFor('the DSNs applied', async () => (await Promise.all(good.map((g) => state(g.id)))).every((s) => s !== 'submitted'), 60_000);
    expect(await Promise.all(good.map((g) => state(g.id)))).toEqual(['delivered', 'failed', 'delivered']);

    const counts = await waitFor('INBOX empty', async () => {
      const f = await folders(config);
      return f['INBOX'] === 0 ? f : undefined;
    }, 30_000);
    // What is neither a DSN nor an MDN is kept as a reply (to no result here): nothing is dropped.
    expect(counts['Processed']! + counts['Unrecognised']! + counts['Replies']! + counts['Quarantine']!).toBe(corpus.length + good.length);
    expect((await gateway.ctx.status.listReplies({ mailbox, unmatched: true })).length).toBe(counts['Replies']);
    // What the operator lets through of each: the 10 MB attachment, the part and nesting floods are set aside.
    const reasons = await quarantinedBy(mailbox);
    expect(reasons).toMatchObject({ 'too-large': 1, 'too-many-parts': 1, 'too-deep': 2 });
    expect(counts['Quarantine']).toBe(Object.values(reasons).reduce((a, b) => a + b, 0));

    // The log names each quarantined mail by UID, size, Message-ID hash and reason: nothing of its content.
    await gateway.stop();
    gateway = undefined;
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('mail quarantined')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(counts['Quarantine']!);
    for (const l of lines) {
      expect(Object.keys(l).sort()).toEqual(expect.arrayContaining(['bytes', 'mailbox', 'reason', 'uid']));
      expect(Object.keys(l).every((k) => ['level', 'time', 'pid', 'hostname', 'service', 'msg', 'mailbox', 'uid', 'bytes', 'reason', 'messageIdHash', 'error'].includes(k))).toBe(true);
      expect(JSON.stringify(l)).not.toMatch(/hostile\.test|Undelivered|nobody@/);
    }
  }, 120_000);

  it('keeps mail it could not record for the next sweep, and quarantines one that never records while others do', async () => {
    const t2 = tag();
    const own = testConfig('hostile-store', (c) => (c.receipts.sweepIntervalMs = 3_600_000));
    const to = own.mailboxes[0]!.address;
    const poison = `d-${t2}${'0'.repeat(15)}9`;
    const fine = `d-${t2}${'0'.repeat(15)}8`;
    const [poisonEnvelope, fineEnvelope] = await submitted(own, [poison, fine], t2);
    gateway = await startGateway(own, ['receipts']);
    const status = gateway.ctx.status;
    const getDelivery = status.getDelivery.bind(status);
    const deliveryForEnvelope = status.deliveryForEnvelope.bind(status);
    let storeDown = true;
    const unavailable = () => Promise.reject(new Error('status store unavailable'));
    status.getDelivery = (id: string) => (storeDown ? unavailable() : getDelivery(id));
    status.deliveryForEnvelope = (id: string) => (storeDown || id === poisonEnvelope ? unavailable() : deliveryForEnvelope(id));

    await send(to, wellFormedDsn({ to, envelopeId: poisonEnvelope!, recipient: `h0-${t2}@cabinet-demo.mssante.test`, action: 'delivered', status: '2.0.0' }));
    await send(to, wellFormedDsn({ to, envelopeId: fineEnvelope!, recipient: `h1-${t2}@cabinet-demo.mssante.test`, action: 'delivered', status: '2.0.0' }));
    await waitFor('both DSNs in the mailbox', () => Promise.resolve(mailboxFiles(to).length === 2));
    // The store is down: nothing is moved, nothing quarantined, the sweep does not fail.
    for (let i = 0; i < 4; i++) await gateway.receipts!.sweep();
    expect(await folders(own)).toMatchObject({ INBOX: 2, Quarantine: 0 });

    // The store is back, but one DSN still cannot be recorded: the other is, and the poison mail goes to Quarantine
    // after its third failure with the store answering.
    storeDown = false;
    await gateway.receipts!.sweep();
    expect((await getDelivery(fine))?.state).toBe('delivered');
    expect(await folders(own)).toMatchObject({ INBOX: 1, Processed: 1 });
    await gateway.receipts!.sweep();
    await gateway.receipts!.sweep();
    expect(await folders(own)).toMatchObject({ INBOX: 0, Processed: 1, Quarantine: 1 });
    expect(await quarantinedBy(to)).toEqual({ unrecordable: 1 });
  }, 120_000);
});
