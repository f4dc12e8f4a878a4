import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorRate } from '@mssgw/dispatcher';
import { MllpClient } from '@mssgw/hl7';
import { connectRedis, type Redis } from '@mssgw/queue';
import { registry } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { SANDBOX_REDIS_URL, tag, testConfig, waitFor } from '../support/env.ts';
import { faultyOperator } from '../support/operator.ts';

describe('operator rate: one budget for every dispatcher process, slowed down by 421 / 45x', () => {
  let a: Redis;
  let b: Redis;
  beforeAll(() => {
    a = connectRedis(SANDBOX_REDIS_URL);
    b = connectRedis(SANDBOX_REDIS_URL);
  });
  afterAll(async () => {
    await a.quit();
    await b.quit();
  });
  const options = { maxPerSecond: 20, minPerSecond: 1, slowDownFactor: 0.5, recoveryMs: 400, burst: 1 };

  it('admits at most the configured rate across two processes sharing it', async () => {
    const prefix = `test-rate-${tag()}`;
    const p1 = new OperatorRate(a, prefix, 'smtp.operator.test', options);
    const p2 = new OperatorRate(b, prefix, 'smtp.operator.test', options);
    const t0 = Date.now();
    let admitted = 0;
    // Both "processes" hammer the same budget for one simulated second (time passed explicitly).
    for (let ms = 0; ms < 1000; ms += 5) {
      for (const p of [p1, p2]) if ((await p.acquire(t0 + ms)).waitMs === 0) admitted++;
    }
    expect(admitted).toBeGreaterThanOrEqual(20);
    expect(admitted).toBeLessThanOrEqual(21); // the rate, plus the one-send burst
    const { waitMs } = await p1.acquire(t0 + 1000);
    expect(waitMs).toBeGreaterThanOrEqual(0);
  });

  it('halves the rate on each slow-down answer, not below the minimum, and recovers once the operator is quiet', async () => {
    const prefix = `test-rate-${tag()}`;
    const r = new OperatorRate(a, prefix, 'smtp.operator.test', options);
    const t0 = 1_000_000;
    expect((await r.acquire(t0)).perSecond).toBe(20);
    expect(await r.slowDown(t0)).toBe(10);
    expect(await new OperatorRate(b, prefix, 'smtp.operator.test', options).slowDown(t0 + 1)).toBe(5);
    expect((await r.acquire(t0 + 100)).perSecond).toBe(5);
    for (let i = 0; i < 10; i++) await r.slowDown(t0 + 2);
    expect((await r.acquire(t0 + 3)).perSecond).toBe(1);
    expect((await r.acquire(t0 + 500)).perSecond).toBe(2); // 400 ms without a slow-down: doubled
    expect((await r.acquire(t0 + 600)).perSecond).toBe(2); // not again before another 400 ms
    expect((await r.acquire(t0 + 1000)).perSecond).toBe(4);
  });
});

describe('dispatcher: urgent results first, slow-down on 421, graceful shutdown', () => {
  const t = tag();
  let operator: Awaited<ReturnType<typeof faultyOperator>>;
  let gateway: Gateway | undefined;
  const config = testConfig('flow', (c) => {
    c.dispatcher.concurrency = 1;
    c.dispatcher.backoffMs = 100;
  });
  const send = async (gw: Gateway, controlId: string, address: string) => {
    const c = new MllpClient({ host: '127.0.0.1', port: gw.intake!.listeners[0]!.port });
    await c.connect();
    expect((await c.send(makeCisisResult({ controlId, patient: PATIENTS[0]!, doctors: [{ ...DOCTORS[0]!, address }] }))).code).toBe('AA');
    await c.close();
  };
  const deliveryOf = async (gw: Gateway, controlId: string) => {
    const [id] = await gw.ctx.status.resultsByControlId(controlId);
    return id ? (await gw.ctx.status.getResult(id))?.deliveries[0] : undefined;
  };

  beforeAll(async () => {
    operator = await faultyOperator({ dataDelayMs: 150 });
    config.operator.smtpPort = operator.port;
  });
  afterAll(async () => {
    await gateway?.stop();
    await operator?.close();
  });

  it('sends an urgent result (critical value) before the routine backlog', async () => {
    gateway = await startGateway(config, ['intake', 'router']);
    for (let i = 0; i < 8; i++) await send(gateway, `RT-${t}-${i}`, `routine${i}-${t}@cabinet-demo.mssante.test`);
    // A potassium at 6.9 flagged HH: a critical value, urgent whatever the order priority.
    const critical = makeCisisResult({ controlId: `UR2-${t}`, patient: PATIENTS[0]!, doctors: [{ ...DOCTORS[0]!, address: `urgent2-${t}@cabinet-demo.mssante.test` }] })
      .replace(/\r$/, '\rOBX|20|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH|||F\r');
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    expect((await c.send(critical)).code).toBe('AA');
    await c.close();
    await waitFor('all routed', async () => (await Promise.all([`RT-${t}-7`, `UR2-${t}`].map((id) => deliveryOf(gateway!, id)))).every(Boolean));
    await gateway.stop();
    gateway = await startGateway(config, ['dispatcher']);
    await waitFor('the urgent mail', () => Promise.resolve(operator.received.some((r) => r.to.startsWith('urgent2-'))), 20_000);
    const order = operator.received.map((r) => r.to.split('-')[0]);
    // concurrency 1: at most the mail already taken when the dispatcher started went before it.
    expect(order.indexOf('urgent2')).toBeLessThanOrEqual(1);
  });

  it('slows down when the operator answers 421, for every mailbox of the operator, then delivers', async () => {
    await gateway?.stop();
    gateway = await startGateway(config, ['intake', 'router', 'dispatcher']);
    await send(gateway, `BZ-${t}`, `busy-${t}@cabinet-demo.mssante.test`);
    await waitFor('the busy recipient accepted after its 421s', async () => (await deliveryOf(gateway!, `BZ-${t}`))?.state === 'submitted', 20_000);
    expect(operator.rcptAttempts.get(`busy-${t}@cabinet-demo.mssante.test`)).toBe(3);
    const text = await registry.metrics();
    expect(text).toMatch(/mssgw_operator_slowdowns_total\{operator="127\.0\.0\.1",code="421"\} [1-9]/);
    // Halved at least once from the configured 2,000/s (it grows back only after 10 s without a 421).
    expect(Number(/mssgw_operator_rate_per_second\{operator="127\.0\.0\.1"\} ([\d.]+)/.exec(text)?.[1])).toBeLessThanOrEqual(1000);
  });

  it('holds the configured rate: at 5 mails/s, eight mails take over a second, none refused or doubled', async () => {
    await gateway?.stop();
    const slow = testConfig('flow-rate', (c) => {
      c.operator.smtpPort = operator.port;
      c.operator.rate = { ...c.operator.rate, maxPerSecond: 5, burst: 1 };
      c.dispatcher.concurrency = 4;
    });
    gateway = await startGateway(slow, ['intake', 'router', 'dispatcher']);
    const ids = Array.from({ length: 8 }, (_, i) => `RL-${t}-${i}`);
    for (const [i, id] of ids.entries()) await send(gateway, id, `rate${i}-${t}@cabinet-demo.mssante.test`);
    const done = await waitFor('all eight submitted', async () => {
      const ds = await Promise.all(ids.map((id) => deliveryOf(gateway!, id)));
      return ds.every((d) => d?.state === 'submitted') ? ds : undefined;
    }, 20_000);
    const times = done.map((d) => d!.submittedAt!).sort((x, y) => x - y);
    // Two at once (the burst), then one every 200 ms: the last ≥ 1,200 ms after the first started, less the connection
    // set-up of the first (up to a few hundred ms on a busy machine). Unlimited, four connections send all eight in
    // about 300 ms.
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(900);
    for (const [i] of ids.entries()) expect(operator.received.filter((r) => r.to === `rate${i}-${t}@cabinet-demo.mssante.test`)).toHaveLength(1);
  });

  it('on stop, finishes the mails in flight and leaves the rest queued: after a restart each is sent exactly once', async () => {
    await gateway?.stop();
    gateway = await startGateway(config, ['intake', 'router']);
    const ids = Array.from({ length: 6 }, (_, i) => `GS-${t}-${i}`);
    for (const [i, id] of ids.entries()) await send(gateway, id, `stop${i}-${t}@cabinet-demo.mssante.test`);
    await waitFor('all routed', async () => (await Promise.all(ids.map((id) => deliveryOf(gateway!, id)))).every(Boolean));
    await gateway.stop();
    gateway = await startGateway(config, ['dispatcher']);
    await waitFor('a mail in flight', () => Promise.resolve(operator.received.some((r) => r.to.startsWith('stop'))), 10_000);
    await gateway.stop(); // while the next one is being sent (the operator holds each DATA for 150 ms)
    gateway = undefined;
    const states = await (async () => {
      const gw = await startGateway(config, []);
      try {
        return await Promise.all(ids.map(async (id) => (await deliveryOf(gw, id))!.state));
      } finally {
        await gw.stop();
      }
    })();
    expect(states.filter((s) => s === 'submitted').length).toBeGreaterThanOrEqual(1);
    expect(states.filter((s) => s !== 'submitted' && s !== 'queued')).toEqual([]);
    gateway = await startGateway(config, ['dispatcher']);
    await waitFor('every mail sent', async () => (await Promise.all(ids.map((id) => deliveryOf(gateway!, id)))).every((d) => d?.state === 'submitted'), 20_000);
    for (const [i] of ids.entries()) expect(operator.received.filter((r) => r.to === `stop${i}-${t}@cabinet-demo.mssante.test`)).toHaveLength(1);
  });
});
