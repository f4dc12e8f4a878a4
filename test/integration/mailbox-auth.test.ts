import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import sasl from 'smtp-server/lib/sasl.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplicativeMailboxConfig, GatewayConfig } from '@mssgw/config';
import { createMailboxTransport } from '@mssgw/dispatcher';
import { registry } from '@mssgw/telemetry';
import { SANDBOX, tag, testConfig } from '../support/env.ts';

const PKI = path.join(SANDBOX, 'pki');
const LAB = path.join(PKI, 'clients', 'labo-noreply@chu-demo.mssante.test');

// smtp-server has no SASL EXTERNAL: the fake operator gets one that takes the identity from the client certificate.
(sasl as unknown as Record<string, unknown>)['SASL_EXTERNAL'] = function (this: { _socket: TLSSocket; session: { user?: string }; send(code: number, text: string): void }, args: string[], callback: () => void) {
  const cert = this._socket.getPeerCertificate();
  if (!this._socket.authorized || !cert.subject) {
    this.send(535, '5.7.8 No valid client certificate');
    return callback();
  }
  this.session.user = String(cert.subject.CN) + (args[0] && args[0] !== '=' ? ` as ${Buffer.from(args[0], 'base64').toString()}` : '');
  this.send(235, '2.7.0 Authentication successful');
  callback();
};

/** A fake operator (mutual TLS, like the sandbox) that asks for SASL and records who authenticated. */
async function saslOperator(methods: string[], loginUser: () => string) {
  const users: string[] = [];
  const server = new SMTPServer({
    secure: false, authMethods: methods, authOptional: false,
    key: readFileSync(path.join(PKI, 'operator.key')), cert: readFileSync(path.join(PKI, 'operator.pem')),
    ca: [readFileSync(path.join(PKI, 'ca.pem'))], requestCert: true, rejectUnauthorized: true,
    onAuth(auth: SMTPServerAuthentication, _s: SMTPServerSession, cb: (err: Error | null | undefined, response?: { user: string }) => void) {
      if (auth.method === 'LOGIN' && auth.username === loginUser() && auth.password === 's3cret-login') return cb(null, { user: auth.username });
      cb(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      stream.resume();
      stream.on('end', () => {
        users.push(String(session.user));
        cb(null, 'Ok: queued as SASL' + users.length);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { users, port: (server.server.address() as { port: number }).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const mail = (to: string) => ({ from: 'labo-noreply@chu-demo.mssante.test', to, subject: 'XDM/1.0/DDM+test', text: 'test' });

describe('applicative mailbox credentials: PKCS#12 certificates, SASL EXTERNAL and LOGIN', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-p12-'));
  const pfxFile = path.join(dir, 'labo.p12');
  const passFile = path.join(dir, 'labo.pass');
  let config: GatewayConfig;
  let mailbox: ApplicativeMailboxConfig;

  beforeAll(() => {
    writeFileSync(passFile, 'p12-passphrase\n');
    const r = spawnSync('openssl', ['pkcs12', '-export', '-in', `${LAB}.pem`, '-inkey', `${LAB}.key`, '-out', pfxFile, '-passout', 'pass:p12-passphrase']);
    expect(r.status).toBe(0);
    config = testConfig('auth');
    const { certFile: _c, keyFile: _k, ...rest } = config.mailboxes[0]!;
    mailbox = { ...rest, pfxFile, pfxPassphrase: { file: passFile } };
  });

  it('sends through the sandbox operator (Postfix, client certificate required) with a PKCS#12 certificate', async () => {
    const transport = createMailboxTransport(config, mailbox);
    try {
      const info = (await transport.sendMail(mail(`p12-${tag()}@cabinet-demo.mssante.test`))) as { response: string };
      expect(info.response).toMatch(/^250 .*queued as/);
    } finally {
      transport.close();
    }
    expect(await registry.metrics()).toMatch(new RegExp(`mssgw_tls_certificate_expiry_timestamp_seconds\\{usage="mailbox-client",subject="${mailbox.address.replace(/[.]/g, '\\.')}"\\} \\d{10}`));
  });

  it('says clearly when the PKCS#12 passphrase is wrong', () => {
    writeFileSync(path.join(dir, 'wrong.pass'), 'not-it');
    expect(() => createMailboxTransport(config, { ...mailbox, pfxPassphrase: { file: path.join(dir, 'wrong.pass') } })).toThrow(/mac verify failure|bad decrypt|passphrase/i);
  });

  describe('SASL', () => {
    let external: Awaited<ReturnType<typeof saslOperator>>;
    let login: Awaited<ReturnType<typeof saslOperator>>;
    beforeAll(async () => {
      external = await saslOperator(['EXTERNAL'], () => '');
      login = await saslOperator(['LOGIN'], () => mailbox.address);
    });
    afterAll(async () => {
      await external?.close();
      await login?.close();
    });

    it('authenticates with EXTERNAL: the identity is the mailbox certificate', async () => {
      const c = { ...config, operator: { ...config.operator, smtpPort: external.port, smtpAuth: 'external' as const } };
      const transport = createMailboxTransport(c, mailbox);
      try {
        await transport.sendMail(mail('dr@cabinet-demo.mssante.test'));
      } finally {
        transport.close();
      }
      expect(external.users).toEqual(['labo-noreply@chu-demo.mssante.test']);
    });

    it('authenticates with LOGIN and the mailbox password, and fails cleanly with a wrong one', async () => {
      writeFileSync(path.join(dir, 'login.pass'), 's3cret-login');
      writeFileSync(path.join(dir, 'bad.pass'), 'nope');
      const c = { ...config, operator: { ...config.operator, smtpPort: login.port, smtpAuth: 'login' as const } };
      const good = createMailboxTransport(c, { ...mailbox, smtpPassword: { file: path.join(dir, 'login.pass') } });
      try {
        await good.sendMail(mail('dr@cabinet-demo.mssante.test'));
      } finally {
        good.close();
      }
      expect(login.users).toEqual([mailbox.address]);
      const bad = createMailboxTransport(c, { ...mailbox, smtpPassword: { file: path.join(dir, 'bad.pass') } });
      try {
        await expect(bad.sendMail(mail('dr@cabinet-demo.mssante.test'))).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
      } finally {
        bad.close();
      }
    });
  });
});
