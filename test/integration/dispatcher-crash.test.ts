import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The dispatcher as its own process, as deployed, sharing this test's Redis prefix, PostgreSQL schema and mailbox. */
function dispatcherProcess(config: GatewayConfig): ChildProcess {
  return spawn(path.join(ROOT, 'node_modules/.bin/node'), [path.join(ROOT, 'services/gateway/bin/mssgw.ts'), 'start', 'dispatcher'], {
    env: {
      ...process.env,
      MSSGW_LOG_LEVEL: 'warn',
      MSSGW_ENVIRONMENT: 'test',
      MSSGW_REDIS_PREFIX: config.redis.prefix,
      MSSGW_POSTGRES_SCHEMA: config.postgres.schema,
      MSSGW_HTTP_PORT: '0',
      MSSGW_MAILBOXES: JSON.stringify(config.mailboxes),
      MSSGW_DISPATCHER_CONCURRENCY: '16',
      MSSGW_DISPATCHER_LOCK_MS: '2000',
      MSSGW_DISPATCHER_RECONCILE_MS: '4000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

describe('dispatcher killed with SIGKILL in the middle of a batch', () => {
  const t = tag();
  let gateway: Gateway;
  let config: GatewayConfig;
  const results = 30;
  const perResult = 4;
  const address = (r: number, k: number) => `crash-${t}-${r}-${k}@cabinet-demo.mssante.test`;

  beforeAll(async () => {
    config = testConfig('crash');
    // Intake, router and receipts here; the dispatcher runs apart so that it can be killed.
    gateway = await startGateway(config, ['intake', 'router', 'receipts']);
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    for (let r = 0; r < results; r++) {
      const doctors = Array.from({ length: perResult }, (_, k) => ({ ...DOCTORS[k % 3]!, rpps: `81000000${r}${k}`, address: address(r, k) }));
      expect((await c.send(makeCisisResult({ controlId: `CR-${t}-${r}`, patient: PATIENTS[r % 3]!, doctors, pdfBytes: 40_000 }))).code).toBe('AA');
    }
    await c.close();
  });
  afterAll(async () => gateway?.stop());

  const states = async () => {
    const all = await Promise.all(
      Array.from({ length: results }, async (_, r) => {
        const [id] = await gateway.ctx.status.resultsByControlId(`CR-${t}-${r}`);
        return (await gateway.ctx.status.getResult(id!))?.deliveries ?? [];
      }),
    );
    return all.flat();
  };

  it('sends every mail exactly once and gives every recipient its outcome', async () => {
    await waitFor('all deliveries queued', async () => (await states()).length === results * perResult);
    const first = dispatcherProcess(config);
    // Kill it while the batch is under way: some mails submitted, most not yet.
    await waitFor('part of the batch submitted', async () => (await states()).filter((d) => d.state !== 'queued').length >= 25, 30_000, 20);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const atKill = (await states()).filter((d) => d.state !== 'queued').length;
    expect(atKill).toBeLessThan(results * perResult);

    const second = dispatcherProcess(config);
    try {
      const final = await waitFor('every recipient delivered', async () => {
        await gateway.receipts!.sweep();
        const s = await states();
        return s.every((d) => d.state === 'delivered') ? s : undefined;
      }, 90_000, 500);
      expect(final).toHaveLength(results * perResult);
      // Mails the operator accepted just before the kill, whose 250 was never recorded: the DSN settled them.
      const histories = await Promise.all(final.map((d) => gateway.ctx.status.history(d.deliveryId)));
      const settledByDsn = histories.filter((h) => !h.some((e) => e.state === 'submitted' && e.applied)).length;
      console.log(`crash test: ${atKill} recipients settled at the kill, ${settledByDsn} of them only by their DSN`);
    } finally {
      second.kill('SIGTERM');
      await new Promise((r) => second.once('exit', r));
    }
    // The operator's mailboxes are the witness: one mail per recipient, none twice.
    const counts = Array.from({ length: results * perResult }, (_, i) => mailboxFiles(address(Math.floor(i / perResult), i % perResult)).length);
    expect(counts.filter((n) => n !== 1)).toEqual([]);
  }, 150_000);
});
