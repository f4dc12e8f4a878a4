import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { SANDBOX, tag, testConfig } from '../support/env.ts';

const pki = path.join(SANDBOX, 'pki');
const read = (f: string) => readFileSync(path.join(pki, f));

describe('MLLP listener over mutual TLS, and large results', () => {
  let gateway: Gateway;
  let port = 0;
  const t = tag();
  beforeAll(async () => {
    gateway = await startGateway(testConfig('mllptls', (c) => {
      // The sandbox PKI's operator certificate stands in for the gateway's; the LIS presents a client certificate.
      c.mllp.listeners[0]!.tls = { certFile: path.join(pki, 'operator.pem'), keyFile: path.join(pki, 'operator.key'), clientCaFile: path.join(pki, 'ca.pem') };
    }), ['intake']);
    port = gateway.intake!.listeners[0]!.port;
  });
  afterAll(async () => gateway?.stop());

  const client = (tls: object) => new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 60_000, tls: { ca: read('ca.pem'), servername: 'localhost', ...tls } });

  it('exports the expiry of its server certificate and of the CA it trusts for clients', async () => {
    const { metrics } = await import('@mssgw/telemetry');
    const usages = (await metrics.certificateExpiry.get()).values.map((v) => v.labels.usage);
    expect(usages).toEqual(expect.arrayContaining(['mllp-server-lab', 'mllp-client-ca-lab']));
  });

  it('acknowledges a result from a client with a trusted certificate', async () => {
    const c = client({ cert: read('clients/labo-noreply@chu-demo.mssante.test.pem'), key: read('clients/labo-noreply@chu-demo.mssante.test.key') });
    await c.connect();
    expect((await c.send(makeCisisResult({ controlId: `TLS-${t}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }))).code).toBe('AA');
    await c.close();
  });

  it('refuses a client without a certificate, or with one from another CA', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-lis-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=stranger', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`], { stdio: 'ignore' });
    for (const tls of [{}, { cert: readFileSync(`${dir}/c.pem`), key: readFileSync(`${dir}/k.pem`) }]) {
      const c = client(tls);
      // TLS 1.3 reports the refused certificate after the handshake: the send fails either way.
      await expect(c.connect().then(() => c.send(makeCisisResult({ controlId: `TLSX-${t}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] })))).rejects.toThrow();
      await c.close();
    }
  });

  it('takes a 30 MB result (a CDA carrying a 16 MB PDF)', async () => {
    const c = client({ cert: read('clients/labo-noreply@chu-demo.mssante.test.pem'), key: read('clients/labo-noreply@chu-demo.mssante.test.key') });
    await c.connect();
    const big = makeCisisResult({ controlId: `BIG-${t}`, patient: PATIENTS[1]!, doctors: [DOCTORS[0]!], pdfBytes: 16 * 1024 * 1024 });
    expect(big.length).toBeGreaterThan(28 * 1024 * 1024);
    const ack = await c.send(big);
    expect(ack.code).toBe('AA');
    await c.close();
    const [resultId] = await gateway.ctx.status.resultsByControlId(`BIG-${t}`);
    expect(resultId).toBeDefined();
  }, 60_000);
});
