import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

const SENTINEL_PORT = 26390;
const portOpen = (port: number) => new Promise<boolean>((resolve) => {
  const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
  s.on('error', () => resolve(false));
});

/**
 * Redis behind Sentinel (high availability): a real Sentinel process watching the sandbox Redis as its master. The
 * gateway is given only the Sentinel and the master's name; everything it does with Redis (stores, BullMQ queues
 * and workers) must go through what the Sentinel tells it.
 */
describe('Redis through Sentinel', () => {
  let sentinel: ChildProcess;
  let gateway: Gateway;
  const t = tag();

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-sentinel-'));
    const conf = path.join(dir, 'sentinel.conf');
    writeFileSync(conf, [`port ${SENTINEL_PORT}`, 'bind 127.0.0.1', `dir ${dir}`, 'sentinel resolve-hostnames no', 'sentinel monitor mssgw-test 127.0.0.1 16379 1', ''].join('\n'));
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await waitFor('the Sentinel', () => portOpen(SENTINEL_PORT), 10_000, 100);
    gateway = await startGateway(testConfig('sentinel', (c) => {
      c.redis.url = 'redis://unused-with-sentinel:6379/0';
      c.redis.sentinel = { masterName: 'mssgw-test', nodes: [`127.0.0.1:${SENTINEL_PORT}`] };
    }), ['intake', 'router']);
  });
  afterAll(async () => {
    await gateway?.stop();
    sentinel?.kill();
  });

  it('acknowledges, queues and routes a result with only the Sentinel configured', async () => {
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    expect((await c.send(makeCisisResult({ controlId: `SN-${t}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }))).code).toBe('AA');
    await c.close();
    const [resultId] = await gateway.ctx.status.resultsByControlId(`SN-${t}`);
    const result = await waitFor('the result routed', async () => {
      const r = await gateway.ctx.status.getResult(resultId!, { withDeliveries: true });
      return r?.routedAt ? r : undefined;
    });
    expect(result.deliveries.map((d) => [d.recipient, d.state])).toEqual([[DOCTORS[0]!.address, 'queued']]);
  });
});
