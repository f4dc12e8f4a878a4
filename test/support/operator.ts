import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import { SANDBOX } from './env.ts';

export interface Received { from: string; to: string; envid?: string; ret?: string; notify?: string[]; orcpt?: string }

/**
 * An in-process operator whose answers a test chooses per recipient, behind the same mutual TLS as the sandbox:
 * "temp-*" is refused once with 451 then accepted, "perm-*" always gets 550 5.1.1, "down-*" always 451 until
 * recover(), "busy-*" 421 (too busy, slow down) on its first two attempts. `dataDelayMs` holds each DATA answer;
 * `refuseSender`, while it returns a reply, refuses every MAIL FROM with it (a mailbox the operator does not take).
 */
export async function faultyOperator(options: { dataDelayMs?: number; refuseSender?: () => { code: number; message: string } | undefined } = {}) {
  const received: Received[] = [];
  const rcptAttempts = new Map<string, number>();
  let failDown = true;
  const pki = path.join(SANDBOX, 'pki');
  const server = new SMTPServer({
    secure: false, hideDSN: false, authOptional: true, disabledCommands: ['AUTH'],
    key: readFileSync(path.join(pki, 'operator.key')), cert: readFileSync(path.join(pki, 'operator.pem')),
    ca: [readFileSync(path.join(pki, 'ca.pem'))], requestCert: true, rejectUnauthorized: true,
    onMailFrom(_address: SMTPServerAddress, _session: SMTPServerSession, cb: (err?: Error | null) => void) {
      const refusal = options.refuseSender?.();
      cb(refusal ? Object.assign(new Error(refusal.message), { responseCode: refusal.code }) : undefined);
    },
    onRcptTo(address: SMTPServerAddress, _session: SMTPServerSession, cb: (err?: Error | null) => void) {
      const n = (rcptAttempts.get(address.address) ?? 0) + 1;
      rcptAttempts.set(address.address, n);
      const err = (code: number, msg: string) => Object.assign(new Error(msg), { responseCode: code });
      if (address.address.startsWith('perm-')) return cb(err(550, '5.1.1 <' + address.address + '>: Recipient address rejected'));
      if (address.address.startsWith('temp-') && n === 1) return cb(err(451, '4.3.0 Try again later'));
      if (address.address.startsWith('down-') && failDown) return cb(err(451, '4.4.1 Mailbox temporarily unavailable'));
      if (address.address.startsWith('busy-') && n <= 2) return cb(err(421, '4.7.0 Too many messages, slow down'));
      cb();
    },
    onData(stream, session, cb) {
      stream.resume();
      stream.on('end', () => setTimeout(() => {
        const env = session.envelope as unknown as { mailFrom: { address: string }; rcptTo: { address: string; dsn?: { notify?: string[]; orcpt?: string } }[]; dsn?: { envid?: string; ret?: string } };
        for (const r of env.rcptTo) received.push({ from: env.mailFrom.address, to: r.address, ...env.dsn, ...r.dsn });
        cb(null, 'Ok: queued as FAKE' + received.length);
      }, options.dataDelayMs ?? 0));
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    received, rcptAttempts,
    port: (server.server.address() as { port: number }).port,
    recover: () => (failDown = false),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

