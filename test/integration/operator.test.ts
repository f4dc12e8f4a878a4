import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { probeOperator } from '@mssgw/dispatcher';
import { SANDBOX, testConfig } from '../support/env.ts';

const pki = path.join(SANDBOX, 'pki');
const ca = readFileSync(path.join(pki, 'ca.pem'));
const labCert = { cert: readFileSync(path.join(pki, 'clients', 'labo-noreply@chu-demo.mssante.test.pem')), key: readFileSync(path.join(pki, 'clients', 'labo-noreply@chu-demo.mssante.test.key')) };

/** A certificate from a CA the operator does not trust. */
function strangerCert() {
  const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-stranger-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=stranger', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`], { stdio: 'ignore' });
  return { cert: readFileSync(`${dir}/c.pem`), key: readFileSync(`${dir}/k.pem`) };
}

const send = (tls: object, extra: object = {}) =>
  nodemailer
    .createTransport({ host: '127.0.0.1', port: 10587, requireTLS: true, tls: { ca, servername: 'mail.operator.test', ...tls }, ...extra })
    .sendMail({ from: 'labo-noreply@chu-demo.mssante.test', to: 'someone@cabinet-demo.mssante.test', subject: 'x', text: 'x' });

describe('sandbox MSSanté operator', () => {
  it('accepts submission from a trusted client certificate over STARTTLS', async () => {
    const info = (await send(labCert)) as { response: string };
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]+/);
  });

  it('refuses a client without a certificate, or with one from another CA', async () => {
    await expect(send({})).rejects.toThrow();
    await expect(send(strangerCert())).rejects.toThrow();
  });

  it('refuses mail without STARTTLS', async () => {
    await expect(send({}, { requireTLS: false, ignoreTLS: true })).rejects.toThrow(/STARTTLS|530|Must issue/i);
  });

  it('refuses TLS 1.2 suites outside the four ECDHE suites of the MSSanté rules', async () => {
    // The same client with an allowed suite gets through, so the refusal is the operator's.
    await expect(send({ ...labCert, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).resolves.toBeDefined();
    await expect(send({ ...labCert, maxVersion: 'TLSv1.2', ciphers: 'AES256-SHA256' })).rejects.toThrow();
    await expect(send({ ...labCert, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' })).rejects.toThrow();
  });

  it('advertises DSN to the gateway', async () => {
    const config = testConfig('operator');
    const probe = await probeOperator(config, config.mailboxes[0]!);
    expect(probe.dsn).toBe(true);
    expect(probe.extensions).toContain('DSN');
  });

  it('opens IMAP only with a trusted client certificate and the mailbox password', async () => {
    const password = readFileSync(path.join(SANDBOX, 'secrets', 'labo-noreply@chu-demo.mssante.test.imap-password'), 'utf8');
    const login = async (tls: object, pass = password) => {
      const c = new ImapFlow({ host: '127.0.0.1', port: 10143, secure: false, doSTARTTLS: true, auth: { user: 'labo-noreply@chu-demo.mssante.test', pass }, tls: { ca, servername: 'mail.operator.test', ...tls }, logger: false });
      await c.connect();
      await c.logout();
    };
    await expect(login(labCert)).resolves.toBeUndefined();
    await expect(login({})).rejects.toThrow();
    await expect(login(labCert, 'wrong-password')).rejects.toThrow();
  });
});
