import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { SANDBOX, tag, testConfig, waitFor } from '../support/env.ts';

const dovecotConf = path.join(SANDBOX, 'operator', 'dovecot', 'dovecot.conf');
const imapUp = () => {
  try {
    execFileSync('bash', ['-c', 'exec 3<>/dev/tcp/127.0.0.1/10143'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('IMAP reader when the operator restarts', () => {
  let gateway: Gateway | undefined;
  afterAll(async () => {
    if (!imapUp()) execFileSync('dovecot', ['-c', dovecotConf], { stdio: 'ignore' });
    await gateway?.stop();
  });

  it('reconnects by itself and reads the receipts that arrived meanwhile', async () => {
    const t = tag();
    gateway = await startGateway(testConfig('reconnect'));
    execFileSync('doveadm', ['-c', dovecotConf, 'stop'], { stdio: 'ignore' });
    await waitFor('IMAP down', () => Promise.resolve(!imapUp()));
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    expect((await c.send(makeCisisResult({ controlId: `RC-${t}`, patient: PATIENTS[0]!, doctors: [{ ...DOCTORS[0]!, address: `rc-${t}@cabinet-demo.mssante.test` }] }))).code).toBe('AA');
    await c.close();
    const [resultId] = await gateway.ctx.status.resultsByControlId(`RC-${t}`);
    await waitFor('submitted while IMAP is down', async () => (await gateway!.ctx.status.getResult(resultId!))?.deliveries[0]?.state === 'submitted');
    await new Promise((r) => setTimeout(r, 1500)); // the reader fails and backs off meanwhile
    execFileSync('dovecot', ['-c', dovecotConf], { stdio: 'ignore' });
    // No sweep called by the test: the reader must come back on its own (backoff, then IDLE / sweep).
    await waitFor('delivered after the restart', async () => (await gateway!.ctx.status.getResult(resultId!))?.deliveries[0]?.state === 'delivered', 30_000, 250);
  }, 60_000);
});
