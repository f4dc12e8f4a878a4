import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { demoConfig, sandboxDir, type GatewayConfig } from '@mssgw/config';

export const SANDBOX = sandboxDir();
/** The sandbox Redis (deploy/local/redis.sh). */
export const SANDBOX_REDIS_URL = demoConfig().redis.url;
export const tag = () => randomBytes(4).toString('hex');

/** The labo-noreply certificate of the sandbox PKI; the operator trusts any certificate of its test CA. */
const LAB_MAILBOX = 'labo-noreply@chu-demo.mssante.test';

/**
 * A configuration of its own for one test file: a fresh Redis prefix and PostgreSQL schema, its own applicative mailbox (so receipts of
 * other tests never reach it), ephemeral ports. Everything else is the demo's configuration (deploy/demo/gateway.yaml,
 * demoConfig()), which nothing merges in by itself. The copy returned is the caller's to change.
 */
export function testConfig(name: string, patch: (c: GatewayConfig) => void = () => {}): GatewayConfig {
  const t = `${name}-${tag()}`;
  const c = demoConfig();
  const pki = path.join(SANDBOX, 'pki', 'clients');
  c.environment = 'test';
  c.logLevel = (process.env['MSSGW_TEST_LOG_LEVEL'] as GatewayConfig['logLevel'] | undefined) ?? 'silent';
  c.redis.prefix = `test-${t}`;
  // Its own schema in the sandbox's database too (created by the migrations at start).
  c.postgres.schema = `test_${t.toLowerCase().replace(/[^a-z0-9]/g, '_')}`;
  c.http.port = 0;
  c.mllp.listeners = [{ source: 'lab', host: '127.0.0.1', port: 0, maxMessageBytes: 32 * 1024 * 1024, idleTimeoutMs: 60_000 }];
  c.mailboxes = [{
    address: `${t}-noreply@chu-demo.mssante.test`,
    displayName: 'Test lab',
    sources: ['lab'],
    certFile: path.join(pki, `${LAB_MAILBOX}.pem`),
    keyFile: path.join(pki, `${LAB_MAILBOX}.key`),
    imapPassword: { file: path.join(SANDBOX, 'secrets', 'sandbox-imap-password') },
  }];
  c.kafka.groupId = `test-${t}`;
  c.kafka.intakeTopics = [`test-${t}.in`];
  c.kafka.deadLetterTopic = `test-${t}.dlq`;
  c.kafka.statusTopic = `test-${t}.status`;
  c.receipts.sweepIntervalMs = 1_000;
  c.dispatcher.backoffMs = 200;
  patch(c);
  return c;
}

/** `mssgw <args>` run through the launcher, as an operator runs it, on a test configuration's schema and Redis prefix. */
export function mssgwFor(config: GatewayConfig): (...args: string[]) => { status: number | null; stdout: string; stderr: string } {
  const launcher = path.resolve(import.meta.dirname, '../../services/gateway/bin/mssgw');
  const env = { ...process.env, MSSGW_POSTGRES_SCHEMA: config.postgres.schema, MSSGW_REDIS_PREFIX: config.redis.prefix, MSSGW_LOG_LEVEL: 'silent' };
  return (...args) => spawnSync(launcher, args, { encoding: 'utf8', env, timeout: 60_000 });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The mails the sandbox operator stored for an address (its Maildir, new and cur). */
export function mailboxFiles(address: string): Buffer[] {
  const [local, domain] = address.toLowerCase().split('@') as [string, string];
  const base = path.join(SANDBOX, 'mail', domain, local);
  return ['new', 'cur'].flatMap((d) => {
    const dir = path.join(base, d);
    return existsSync(dir) ? readdirSync(dir).map((f) => readFileSync(path.join(dir, f))) : [];
  });
}
