import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import type { RouterService } from '@mssgw/router';
import { metrics } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { privateRedis, type PrivateRedis } from '../support/private-servers.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';

/**
 * Redis is derived state: a Redis of this test's own (no persistence), flushed in the middle of a run. What
 * PostgreSQL holds is queued again by the router's sweeper; every acknowledged result reaches its recipients, each
 * exactly once, as the operator's mailboxes witness.
 */
describe('Redis flushed in the middle of a run', () => {
  const t = tag();
  let redis: PrivateRedis;
  let port: number;
  let gateway: Gateway;
  let senders: Gateway | undefined;
  let config: GatewayConfig;
  const results = 40;
  const perResult = 2;
  const address = (r: number, k: number) => `flush-${t}-${r}-${k}@cabinet-demo.mssante.test`;
  const message = (r: number) => {
    const doctors = Array.from({ length: perResult }, (_, k) => ({ ...DOCTORS[k % 3]!, rpps: `8200000${r}${k}`, address: address(r, k) }));
    return makeCisisResult({ controlId: `FL-${t}-${r}`, patient: PATIENTS[r % 3]!, doctors, pdfBytes: 20_000 });
  };

  const queuedCount = async () =>
    (await gateway.ctx.pg.query<{ n: number }>(`select count(*)::int as n from deliveries where state = 'queued'`)).rows[0]!.n;

  beforeAll(async () => {
    redis = await privateRedis(mkdtempSync(path.join(tmpdir(), 'mssgw-redis-loss-')), 'none');
    port = redis.port;
    config = testConfig('flush', (c) => {
      c.redis.url = `redis://127.0.0.1:${port}`;
      c.postgres.sweepIntervalMs = 500;
      c.postgres.sweepGraceMs = 1_000;
    });
    // Intake and router first; the dispatcher and the receipts reader join once Redis has been flushed.
    gateway = await startGateway(config, ['intake', 'router']);
  });
  afterAll(async () => {
    await senders?.stop();
    await gateway?.stop();
    await redis?.stop();
  });

  it('loses no result and sends no mail twice: the sweeper queues again what PostgreSQL holds', async () => {
    const admin = new Redis({ port, host: '127.0.0.1' });
    const router = gateway.services.find((s) => s.name === 'router') as RouterService;
    const requeued = async (kind: string) => (await metrics.sweeperRequeued.get()).values.find((v) => v.labels['kind'] === kind)?.value ?? 0;
    const before = { result: await requeued('result'), delivery: await requeued('delivery') };
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    const send = async (from: number, to: number) => {
      for (let r = from; r < to; r++) expect((await c.send(message(r))).code).toBe('AA');
    };
    try {
      // Routed, their delivery jobs waiting for a dispatcher.
      await send(0, 20);
      await waitFor('40 recipients queued', async () => (await queuedCount()) === 40);
      // Acknowledged, their routing jobs waiting for a router.
      await router.worker.pause();
      await send(20, 30);
      // Then nothing in Redis: 40 delivery jobs and 10 routing jobs gone.
      expect(await admin.flushall()).toBe('OK');
      await router.worker.resume();
      senders = await startGateway(config, ['dispatcher', 'receipts']);
      await send(30, results);
    } finally {
      await c.close();
    }
    const deliveries = async () => {
      const ids = (await Promise.all(Array.from({ length: results }, (_, r) => gateway.ctx.status.resultsByControlId(`FL-${t}-${r}`)))).map((x) => x[0]);
      expect(ids.filter((id) => !id)).toEqual([]);
      return (await Promise.all(ids.map((id) => gateway.ctx.status.getResult(id!, { withDeliveries: true })))).flatMap((x) => x?.deliveries ?? []);
    };
    const final = await waitFor('every recipient delivered', async () => {
      await senders!.receipts!.sweep();
      const all = await deliveries();
      return all.length === results * perResult && all.every((d) => d.state === 'delivered') ? all : undefined;
    }, 120_000, 500);
    expect(final).toHaveLength(results * perResult);
    // The operator's mailboxes are the witness: one mail per recipient, none twice.
    const counts = Array.from({ length: results * perResult }, (_, i) => mailboxFiles(address(Math.floor(i / perResult), i % perResult)).length);
    expect(counts.filter((n) => n !== 1)).toEqual([]);
    // What was lost went back on the queues through the sweeper (a job it queued twice is harmless, hence at least).
    expect(await requeued('result') - before.result).toBeGreaterThanOrEqual(10);
    expect(await requeued('delivery') - before.delivery).toBeGreaterThanOrEqual(40);
    // Once every recipient is final, nothing of these results is left in Redis but the queues' own bookkeeping.
    const keys = await admin.keys(`${gateway.ctx.config.redis.prefix}:*`);
    const jobKeys = keys.filter((k) => /:(r|d)-[0-9a-f]{24}$/.test(k));
    expect(jobKeys).toEqual([]);
    admin.disconnect();
  }, 180_000);
});
