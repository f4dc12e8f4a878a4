import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeContext, createContext } from '@mssgw/runtime';
import { listDeadLetters } from '@mssgw/dispatcher';
import { MllpClient } from '@mssgw/hl7';
import { metrics } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mssgwFor, tag, testConfig, waitFor } from '../support/env.ts';
import { faultyOperator } from '../support/operator.ts';

describe('dispatcher against an operator that refuses, defers and recovers', () => {
  const t = tag();
  let operator: Awaited<ReturnType<typeof faultyOperator>>;
  let gateway: Gateway;
  let resultId = '';
  const addr = (p: string) => `${p}-${t}@cabinet-demo.mssante.test`;
  const states = async () => new Map((await gateway.ctx.status.getResult(resultId))!.deliveries.map((d) => [d.recipient, d]));

  beforeAll(async () => {
    operator = await faultyOperator();
    gateway = await startGateway(testConfig('faults', (c) => {
      c.operator.smtpPort = operator.port;
      c.dispatcher.retryBudgetMs = 1_000;
      c.dispatcher.backoffMs = 100;
      c.dispatcher.maxBackoffMs = 200;
    }), ['intake', 'router', 'dispatcher']);
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    const doctors = ['ok', 'temp', 'perm', 'down'].map((p, i) => ({ ...DOCTORS[i % 3]!, address: addr(p) }));
    expect((await c.send(makeCisisResult({ controlId: `FT-${t}`, patient: PATIENTS[0]!, doctors }))).code).toBe('AA');
    await c.close();
    resultId = (await gateway.ctx.status.resultsByControlId(`FT-${t}`))[0]!;
  });
  afterAll(async () => {
    await gateway?.stop();
    await operator?.close();
  });

  it('requests a DSN on every envelope: RET=HDRS, ENVID = the delivery\'s random envelope id, NOTIFY and ORCPT per recipient', async () => {
    await waitFor('the first mail', () => Promise.resolve(operator.received.find((r) => r.to === addr('ok'))));
    const ok = operator.received.find((r) => r.to === addr('ok'))!;
    const d = (await states()).get(addr('ok'))!;
    const { envelopeId } = (await gateway.ctx.bodies.outbound(d.deliveryId))!;
    expect(envelopeId).toMatch(/^[0-9a-f]{32}$/);
    expect(ok).toMatchObject({ from: gateway.ctx.config.mailboxes[0]!.address, envid: envelopeId, ret: 'HDRS', notify: ['SUCCESS', 'FAILURE', 'DELAY'], orcpt: `rfc822;${addr('ok')}` });
    expect(d).toMatchObject({ state: 'submitted', queueId: expect.stringMatching(/^FAKE\d+$/) as unknown });
  });

  it('retries a 451 and succeeds; ends a 550 as failed for that recipient only, without retrying it', async () => {
    const s = await waitFor('temp submitted, perm failed', async () => {
      const m = await states();
      return m.get(addr('temp'))?.state === 'submitted' && m.get(addr('perm'))?.state === 'failed' ? m : undefined;
    });
    expect(operator.rcptAttempts.get(addr('temp'))).toBe(2);
    expect(operator.rcptAttempts.get(addr('perm'))).toBe(1);
    expect(s.get(addr('perm'))).toMatchObject({ reason: '5.1.1' });
    expect(operator.received.filter((r) => r.to === addr('temp'))).toHaveLength(1);
    const retried = (await metrics.mailsRetried.get()).values.find((v) => v.labels.reply_class === '4');
    expect(retried?.value).toBeGreaterThanOrEqual(1);
  });

  it('dead-letters a recipient still deferred when its retry budget ends, and replays it once the operator recovers', async () => {
    const d = await waitFor('dead-lettered', async () => {
      const x = (await states()).get(addr('down'));
      return x?.state === 'dead-lettered' ? x : undefined;
    });
    // Tried all through its budget (1 s, waits of 50–200 ms), the last time when it ended.
    const events = await gateway.ctx.status.history(d.deliveryId);
    expect(events.at(-1)!.at - events[0]!.at).toBeGreaterThanOrEqual(1_000);
    expect(operator.rcptAttempts.get(addr('down'))).toBeGreaterThanOrEqual(5);
    const ctx = createContext(gateway.ctx.config, 'test-cli');
    try {
      const dead = await listDeadLetters(ctx);
      expect(dead.map((x) => x.deliveryId)).toEqual([d.deliveryId]);
      expect(dead[0]!.reason).toMatch(/451 4\.4\.1/);
      operator.recover();
      // Replayed as an operator does it, from the command line: the replay is in the audit trail.
      const mssgw = mssgwFor(gateway.ctx.config);
      const replayed = mssgw('dlq', 'replay', d.deliveryId);
      expect(replayed.stdout, replayed.stderr).toContain(`1 deliveries replayed: ${d.deliveryId}`);
      const audit = JSON.parse(mssgw('audit', '--json', '--limit', '5').stdout) as { route: string; ids: string[]; method: string }[];
      expect(audit.find((e) => e.route === 'mssgw dlq replay')).toMatchObject({ method: 'CLI', ids: [d.deliveryId] });
      await waitFor('replayed delivery submitted', async () => (await states()).get(addr('down'))?.state === 'submitted');
      expect(await listDeadLetters(ctx)).toEqual([]);
      expect((await gateway.ctx.status.history(d.deliveryId)).filter((h) => h.applied).map((h) => h.state)).toEqual(['queued', 'dead-lettered', 'queued', 'submitted']);
    } finally {
      await closeContext(ctx);
    }
  });
});
