import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { metrics } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';
import { freePort } from '../support/mllp-flood.ts';
import { faultyOperator } from '../support/operator.ts';

/** The sandbox operator's SMTP port behind a switch: while it is off, connections are refused, as with an operator down. */
async function operatorSwitch(target: number) {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const on = () => new Promise<void>((resolve) => {
    server = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const off = () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    if (!server) return resolve();
    server.close(() => resolve());
    server = undefined;
  });
  return { port, on, off };
}

const paused = async (mailbox: string, reason: string) =>
  (await metrics.mailboxPaused.get()).values.find((v) => v.labels['mailbox'] === mailbox && v.labels['reason'] === reason)?.value;

async function send(gateway: Gateway, controlIds: string[], address: (i: number) => string): Promise<string[]> {
  const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
  await c.connect();
  try {
    for (const [i, id] of controlIds.entries()) {
      expect((await c.send(makeCisisResult({ controlId: id, patient: PATIENTS[i % 3]!, doctors: [{ ...DOCTORS[i % 3]!, rpps: `8300000${i}`, address: address(i) }] }))).code).toBe('AA');
    }
  } finally {
    await c.close();
  }
  return Promise.all(controlIds.map(async (id) => (await waitFor(`result ${id}`, async () => (await gateway.ctx.status.resultsByControlId(id))[0]))));
}

const deliveriesOf = async (gateway: Gateway, ids: string[]) =>
  (await Promise.all(ids.map((id) => gateway.ctx.status.getResult(id)))).flatMap((r) => r?.deliveries ?? []);

describe('an operator outage longer than the retry budget', () => {
  const t = tag();
  let gateway: Gateway | undefined;
  afterAll(async () => gateway?.stop());

  it('pauses the mailbox without burning attempts, then sends every mail once: no dead letter', async () => {
    const operator = await operatorSwitch(10587);
    let config!: GatewayConfig;
    gateway = await startGateway((config = testConfig('outage', (c) => {
      c.operator.smtpPort = operator.port;
      // A budget of 2 s against an outage of 8 s: counted in attempts, every delivery would be dead-lettered.
      c.dispatcher.retryBudgetMs = 2_000;
      c.dispatcher.backoffMs = 100;
      c.dispatcher.maxBackoffMs = 500;
    })), ['intake', 'router', 'dispatcher', 'receipts']);
    const mailbox = config.mailboxes[0]!.address;
    const address = (i: number) => `outage-${t}-${i}@cabinet-demo.mssante.test`;
    const ids = await send(gateway, Array.from({ length: 10 }, (_, i) => `OUT-${t}-${i}`), address);
    await waitFor('the mailbox paused', async () => (await paused(mailbox, 'unreachable')) === 1);
    await new Promise((r) => setTimeout(r, 8_000));
    const during = await deliveriesOf(gateway, ids);
    expect(during.map((d) => d.state).filter((s) => s !== 'queued')).toEqual([]);
    await operator.on();
    const final = await waitFor('every recipient delivered', async () => {
      await gateway!.receipts!.sweep();
      const all = await deliveriesOf(gateway!, ids);
      return all.length === 10 && all.every((d) => d.state === 'delivered') ? all : undefined;
    }, 60_000, 500);
    expect(final).toHaveLength(10);
    expect(Array.from({ length: 10 }, (_, i) => mailboxFiles(address(i)).length)).toEqual(Array(10).fill(1));
    expect(await paused(mailbox, 'unreachable')).toBe(0);
    // Nothing went through the dead-letter queue, and no history shows a retry of a recipient.
    const histories = await Promise.all(final.map((d) => gateway!.ctx.status.history(d.deliveryId)));
    expect(histories.flat().filter((e) => e.state === 'dead-lettered')).toEqual([]);
    await operator.off();
  }, 120_000);
});

describe('an operator that refuses the mailbox itself', () => {
  const t = tag();
  let gateway: Gateway | undefined;
  let operator: Awaited<ReturnType<typeof faultyOperator>> | undefined;
  afterAll(async () => {
    await gateway?.stop();
    await operator?.close();
  });

  it('pauses the mailbox on 530 (authentication), raises its gauge, fails no recipient, and resumes once the operator takes it', async () => {
    let refusing = true;
    operator = await faultyOperator({ refuseSender: () => (refusing ? { code: 530, message: '5.7.0 Authentication required' } : undefined) });
    const config = testConfig('auth-pause', (c) => {
      c.operator.smtpPort = operator!.port;
      c.dispatcher.retryBudgetMs = 1_000;
      c.dispatcher.backoffMs = 100;
      c.dispatcher.maxBackoffMs = 300;
    });
    gateway = await startGateway(config, ['intake', 'router', 'dispatcher']);
    const mailbox = config.mailboxes[0]!.address;
    const address = (i: number) => `auth-${t}-${i}@cabinet-demo.mssante.test`;
    const ids = await send(gateway, [`AUTH-${t}-0`, `AUTH-${t}-1`, `AUTH-${t}-2`], address);
    await waitFor('the mailbox paused', async () => (await paused(mailbox, 'authentication')) === 1);
    // Longer than the retry budget: the recipients are not the operator's complaint, none is failed or dead-lettered.
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await deliveriesOf(gateway, ids)).map((d) => d.state)).toEqual(['queued', 'queued', 'queued']);
    refusing = false;
    await waitFor('every recipient submitted', async () => (await deliveriesOf(gateway!, ids)).every((d) => d.state === 'submitted'), 30_000, 200);
    expect(operator.received.map((r) => r.to).sort()).toEqual([0, 1, 2].map(address).sort());
    expect(await paused(mailbox, 'authentication')).toBe(0);
  }, 90_000);
});
