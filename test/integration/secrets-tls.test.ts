import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAck, decodeHl7, Er7Message, frame, MllpClient, MllpDecoder, readHeader } from '@mssgw/hl7';
import { zamTls } from '@mssgw/feedback';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { freePort } from '../support/mllp-flood.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { SANDBOX, tag, testConfig, waitFor } from '../support/env.ts';

const pki = path.join(SANDBOX, 'pki');
const pem = (f: string) => path.join(pki, f);
const CLIENT = 'clients/labo-noreply@chu-demo.mssante.test';
/** A TLS handshake with the sandbox CA and the client certificate succeeds on this port. */
const tlsOpen = (port: number) => new Promise<boolean>((resolve) => {
  const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pem('ca.pem')), cert: readFileSync(pem(`${CLIENT}.pem`)), key: readFileSync(pem(`${CLIENT}.key`)) }, () => (s.destroy(), resolve(true)));
  s.on('error', () => resolve(false));
});

/**
 * Secrets and TLS (#22): a Redis of this test's own that asks for a password (requirepass) and speaks only TLS, with
 * client certificates required (tls-auth-clients yes), its certificate from the sandbox PKI; the gateway reads the
 * password from a file. And a producer's ZAM endpoint over mutual TLS (a Node TLS server with the sandbox CA).
 */
describe('Redis with a password from a file over TLS, and ZAM acknowledgements over mutual TLS', () => {
  const t = tag();
  const password = `pw-${t}-${Math.random().toString(36).slice(2)}`;
  let redisServer: ChildProcess;
  let redisPort = 0;
  let gateway: Gateway;
  let dir = '';
  let passwordFile = '';
  const zams: { msg: Er7Message; authorized: boolean; peer: string }[] = [];
  let zamServer: tls.Server;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mssgw-redis-tls-'));
    redisPort = await freePort();
    redisServer = spawn('redis-server', [
      '--port', '0', '--tls-port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--requirepass', password,
      '--tls-cert-file', pem('operator.pem'), '--tls-key-file', pem('operator.key'), '--tls-ca-cert-file', pem('ca.pem'), '--tls-auth-clients', 'yes',
    ], { stdio: 'ignore' });
    await waitFor('the TLS Redis', () => tlsOpen(redisPort), 20_000, 100);

    // The producer's ZAM endpoint: TLS with the sandbox's server certificate, asking for the gateway's client certificate.
    zamServer = tls.createServer({
      cert: readFileSync(pem('operator.pem')), key: readFileSync(pem('operator.key')), ca: readFileSync(pem('ca.pem')), requestCert: true, rejectUnauthorized: true,
    }, (socket) => {
      const d = new MllpDecoder(1 << 20);
      socket.on('data', (chunk: Buffer) => {
        for (const e of d.push(chunk)) {
          if (e.type !== 'message') continue;
          const msg = new Er7Message(decodeHl7(e.payload).text);
          zams.push({ msg, authorized: socket.authorized, peer: String(socket.getPeerCertificate().subject?.CN ?? '') });
          socket.write(frame(buildAck(readHeader(msg), 'AA')));
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => zamServer.listen(0, '127.0.0.1', () => r()));
    const zamPort = (zamServer.address() as { port: number }).port;

    passwordFile = path.join(dir, 'redis-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    gateway = await startGateway(testConfig('redistls', (c) => {
      c.redis.url = `rediss://127.0.0.1:${redisPort}/0`;
      c.redis.password = { file: passwordFile };
      c.redis.caFile = pem('ca.pem');
      c.redis.certFile = pem(`${CLIENT}.pem`);
      c.redis.keyFile = pem(`${CLIENT}.key`);
      c.feedback.zamEndpoints = [{
        source: 'lab', host: '127.0.0.1', port: zamPort,
        tls: { caFile: pem('ca.pem'), certFile: pem(`${CLIENT}.pem`), keyFile: pem(`${CLIENT}.key`), servername: 'localhost' },
      }];
    }), ['intake', 'router', 'feedback']);
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    await new Promise<void>((r) => (zamServer ? zamServer.close(() => r()) : r()));
    redisServer?.kill();
  });

  it('refuses a client without the password, or without TLS: the server is as strict as it claims', async () => {
    const tlsOptions = { ca: readFileSync(pem('ca.pem')), cert: readFileSync(pem(`${CLIENT}.pem`)), key: readFileSync(pem(`${CLIENT}.key`)) };
    const noPassword = new Redis({ host: '127.0.0.1', port: redisPort, tls: tlsOptions, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const errors: string[] = [];
    noPassword.on('error', (err: Error) => errors.push(err.message));
    await expect(noPassword.connect().then(() => noPassword.ping())).rejects.toThrow();
    noPassword.disconnect();
    // ioredis opens with HELLO: the server's NOAUTH comes as the connection's error.
    expect(errors.join('\n')).toMatch(/NOAUTH/);
    const plain = new Redis({ host: '127.0.0.1', port: redisPort, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
    plain.on('error', () => undefined);
    await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    plain.disconnect();
  });

  it('takes a result, queues and routes it through that Redis, and sends the ZAM over mutual TLS', async () => {
    const controlId = `RTLS-${t}`;
    const outside = `dr.tls-${t}@gmail.com`;
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    expect((await c.send(makeCisisResult({ controlId, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!], extraAddresses: [outside] }))).code).toBe('AA');
    await c.close();
    const [resultId] = await gateway.ctx.status.resultsByControlId(controlId);
    const result = await waitFor('the result routed', async () => {
      const r = await gateway.ctx.status.getResult(resultId!, { withDeliveries: true });
      return r?.routedAt ? r : undefined;
    }, 60_000);
    expect(result.deliveries.map((d) => [d.recipient, d.state]).sort()).toEqual([[DOCTORS[0]!.address, 'queued'], [outside, 'refused']].sort());

    // The jobs went through the TLS Redis: its keys hold the gateway's queues.
    const admin = new Redis(`rediss://127.0.0.1:${redisPort}`, { password, tls: { ca: readFileSync(pem('ca.pem')), cert: readFileSync(pem(`${CLIENT}.pem`)), key: readFileSync(pem(`${CLIENT}.key`)) } });
    try {
      expect((await admin.keys(`${gateway.ctx.config.redis.prefix}:*`)).length).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
    }

    // The refused recipient is told to the producer as a negative reception, over the TLS link with our certificate.
    await gateway.feedback!.drain();
    const zam = await waitFor('the ZAM^Z02 over TLS', () => Promise.resolve(zams.find((z) => Er7Message.raw(z.msg.all('OBX')[0], 4) === controlId)), 30_000);
    expect(zam.authorized).toBe(true);
    expect(zam.peer).toBe('labo-noreply@chu-demo.mssante.test');
    expect(zam.msg.get(zam.msg.first('OBX'), 5)).toBe('N');
    // Their certificates' expiry is exported like the mailboxes'.
    const { metrics } = await import('@mssgw/telemetry');
    const usages = (await metrics.certificateExpiry.get()).values.map((v) => v.labels.usage);
    expect(usages).toEqual(expect.arrayContaining(['redis-ca', 'redis-client', 'zam-ca-lab', 'zam-client-lab']));
  }, 120_000);

  it('reaches the same Redis through a Sentinel, the Sentinel and the master both over TLS', async () => {
    const sentinelPort = await freePort();
    const conf = path.join(dir, 'sentinel.conf');
    // The Sentinel speaks TLS only, and reaches the master over TLS with the client certificate (tls-replication).
    writeFileSync(conf, [
      'port 0', `tls-port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `tls-cert-file ${pem('operator.pem')}`, `tls-key-file ${pem('operator.key')}`,
      `tls-client-cert-file ${pem(`${CLIENT}.pem`)}`, `tls-client-key-file ${pem(`${CLIENT}.key`)}`, `tls-ca-cert-file ${pem('ca.pem')}`,
      'tls-auth-clients yes', 'tls-replication yes', 'sentinel resolve-hostnames no', `sentinel monitor mssgw-tls 127.0.0.1 ${redisPort} 1`,
      `sentinel auth-pass mssgw-tls ${password}`, '',
    ].join('\n'));
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    let viaSentinel: Gateway | undefined;
    try {
      await waitFor('the TLS Sentinel', () => tlsOpen(sentinelPort), 20_000, 100);
      viaSentinel = await startGateway(testConfig('sentineltls', (c) => {
        c.redis.url = 'rediss://unused-with-sentinel:6379/0';
        c.redis.password = { file: passwordFile };
        c.redis.caFile = pem('ca.pem');
        c.redis.certFile = pem(`${CLIENT}.pem`);
        c.redis.keyFile = pem(`${CLIENT}.key`);
        c.redis.sentinel = { masterName: 'mssgw-tls', nodes: [`127.0.0.1:${sentinelPort}`] };
      }), ['intake', 'router']);
      const c = new MllpClient({ host: '127.0.0.1', port: viaSentinel.intake!.listeners[0]!.port });
      await c.connect();
      expect((await c.send(makeCisisResult({ controlId: `STLS-${t}`, patient: PATIENTS[1]!, doctors: [DOCTORS[1]!] }))).code).toBe('AA');
      await c.close();
      const [resultId] = await viaSentinel.ctx.status.resultsByControlId(`STLS-${t}`);
      const routed = await waitFor('the result routed', async () => {
        const r = await viaSentinel!.ctx.status.getResult(resultId!, { withDeliveries: true });
        return r?.routedAt ? r : undefined;
      }, 60_000);
      expect(routed.deliveries.map((d) => [d.recipient, d.state])).toEqual([[DOCTORS[1]!.address, 'queued']]);
      const admin = new Redis(`rediss://127.0.0.1:${redisPort}`, { password, tls: { ca: readFileSync(pem('ca.pem')), cert: readFileSync(pem(`${CLIENT}.pem`)), key: readFileSync(pem(`${CLIENT}.key`)) } });
      try {
        expect((await admin.keys(`${viaSentinel.ctx.config.redis.prefix}:*`)).length).toBeGreaterThan(0);
      } finally {
        admin.disconnect();
      }
    } finally {
      await viaSentinel?.stop();
      sentinel.kill();
    }
  }, 120_000);

  it('refuses a producer whose certificate it cannot verify, and a producer refuses a gateway without a certificate', async () => {
    const port = (zamServer.address() as { port: number }).port;
    // Node's own store does not know the sandbox CA.
    const untrusted = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 5_000, tls: zamTls({ certFile: pem(`${CLIENT}.pem`), keyFile: pem(`${CLIENT}.key`) }) });
    await expect(untrusted.connect()).rejects.toThrow(/certificate/i);
    const anonymous = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 5_000, tls: zamTls({ caFile: pem('ca.pem'), servername: 'localhost' }) });
    // TLS 1.3 reports the missing client certificate after the handshake: the send fails either way.
    await expect(anonymous.connect().then(() => anonymous.send(makeCisisResult({ controlId: `ZX-${t}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] })))).rejects.toThrow();
    await anonymous.close();
  });
});
