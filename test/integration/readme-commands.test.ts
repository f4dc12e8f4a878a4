// The commands the README shows, run as a reader would type them, so the guide cannot drift from the product.
// Every line of the README's sh/bash blocks must be one this file knows how to check; each is then run verbatim.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { demoConfig } from '@mssgw/config';
import { connectPostgres } from '@mssgw/store';
import { SANDBOX_REDIS_URL } from '../support/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The command lines of the README's shell blocks, comments and blank lines left out. */
export function shownCommands(markdown: string): string[] {
  const out: string[] = [];
  let inShell = false;
  for (const line of markdown.split('\n')) {
    if (/^```/.test(line)) {
      inShell = !inShell && /^```(sh|bash|shell)\s*$/.test(line);
      continue;
    }
    const command = line.replace(/\s+#.*$/, '').trim();
    if (inShell && command && !command.startsWith('#')) out.push(command);
  }
  return out;
}

const README_COMMANDS = shownCommands(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));

/** What each kind of command is, by its words; a README line matching none of these fails the first test. */
const KINDS = {
  demo: /^npm run demo$/,
  demoKeepRunning: /^npm run demo -- --keep-running$/,
  // The suite itself: this file runs inside it.
  test: /^npm test$/,
  sandbox: /^npm run sandbox -- (up|status|down)( (redis|postgres|kafka|operator|prometheus))*$/,
  help: /^(services\/gateway\/bin\/mssgw|npm run mssgw --) --help$/,
  start: /^npm run mssgw -- start( [a-z]+)*$/,
  parse: /^npm run mssgw -- parse \S+\.hl7( --json)?$/,
  compose: /^npm run mssgw -- compose \S+\.hl7 --out \S+$/,
  receipt: /^npm run mssgw -- receipt \S+\.eml( --json)?$/,
  migrate: /^npm run mssgw -- migrate( --status)?$/,
} as const;
type Kind = keyof typeof KINDS;
const kindOf = (command: string) => (Object.keys(KINDS) as Kind[]).find((k) => KINDS[k].test(command));
const shown = (kind: Kind) => README_COMMANDS.filter((c) => kindOf(c) === kind);

const run = (command: string, env: Record<string, string> = {}, timeout = 240_000) => {
  const r = spawnSync('bash', ['-c', command], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** Starts a long-running command in its own process group, as a terminal would, and waits for a line of its output. */
async function startUntil(command: string, line: RegExp, env: Record<string, string> = {}, timeoutMs = 180_000) {
  const child = spawn('bash', ['-c', command], { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  while (!line.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`"${command}" ended or timed out before printing ${line}:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, exited, output: () => out };
}

/**
 * Ctrl-C in a terminal: SIGINT to the whole foreground process group. npm itself dies of it at once (exit 130) and
 * the gateway stops on its own, so this waits until no process of the group is left.
 */
async function interrupt(child: ChildProcess): Promise<void> {
  process.kill(-child.pid!, 'SIGINT');
  const alive = () => spawnSync('pgrep', ['-g', String(child.pid)]).status === 0;
  for (let waited = 0; alive(); waited += 100) {
    if (waited > 60_000) throw new Error('the gateway did not stop within 60 s of Ctrl-C');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the commands the README shows', () => {
  it('are all ones this test runs', () => {
    expect(README_COMMANDS.length).toBeGreaterThan(5);
    expect(README_COMMANDS.filter((c) => !kindOf(c))).toEqual([]);
    // The guide's core: the two commands, the kept-running demo, the sandbox and the parse/compose tools.
    for (const kind of ['demo', 'test', 'demoKeepRunning', 'sandbox', 'parse', 'compose'] as const) expect(shown(kind), kind).not.toEqual([]);
  });

  it('npm run demo sends the samples and prints each recipient\'s outcome', () => {
    for (const command of shown('demo')) {
      const r = run(command);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/7 results, \d+ recipients, \d+ deliveries confirmed by DSN/);
      expect(r.out).toMatch(/unknown\.zoe\.inconnu@cabinet-demo\.mssante\.test\s+failed\s+DSN 5\.1\.1/);
    }
  });

  it('npm run demo -- --keep-running keeps the gateway up for the API, then stops cleanly on Ctrl-C', async () => {
    for (const command of shown('demoKeepRunning')) {
      // Its own key prefix and schema (the demo keeps them when given), to look at what it left in each.
      const run = `readme${Date.now()}`;
      const demo = await startUntil(command, /gateway still running \(API on (http:\/\/\S+)\)/, { MSSGW_REDIS_PREFIX: `mssgw-${run}`, MSSGW_POSTGRES_SCHEMA: `mssgw_${run}` });
      const api = /API on (http:\/\/[^)\s]+)\)/.exec(demo.output())![1]!;
      // The API needs a credential: the demo prints an operator key for it.
      expect((await fetch(`${api}/api/v1/results?controlId=DEMO-LAB-0001`)).status).toBe(401);
      const key = /API key \(operator, shown once\): (\S+)/.exec(demo.output())![1]!;
      const res = await fetch(`${api}/api/v1/results?controlId=DEMO-LAB-0001`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { results: { deliveries: { state: string }[] }[] };
      expect(body.results.at(-1)!.deliveries.map((d) => d.state)).toContain('delivered');
      // PostgreSQL holds every result, recipient and event; Redis holds no value over 8 KB (jobs name rows only).
      const pool = connectPostgres({ ...demoConfig().postgres, schema: `mssgw_${run}` });
      try {
        const counts = (await pool.query<{ results: number; deliveries: number; events: number; bodies: number }>(
          `select (select count(*) from results)::int as results, (select count(*) from deliveries)::int as deliveries,
             (select count(*) from delivery_events)::int as events, (select count(*) from bodies where content is not null)::int as bodies`,
        )).rows[0]!;
        // Seven samples, one of them refused at intake (lab-07-incoherent: no record, an AE to its producer).
        expect(counts.results).toBe(6);
        expect(counts.deliveries).toBeGreaterThanOrEqual(7);
        expect(counts.events).toBeGreaterThan(counts.deliveries);
        expect(counts.bodies).toBeGreaterThanOrEqual(7);
      } finally {
        await pool.end();
      }
      const redis = new Redis(SANDBOX_REDIS_URL);
      try {
        const keys = await redis.keys(`mssgw-${run}:*`);
        const sizes = await Promise.all(keys.map(async (k) => [k, (await redis.memory('USAGE', k, 'SAMPLES', '0')) as number] as const));
        expect(sizes.filter(([, n]) => n > 8 * 1024)).toEqual([]);
      } finally {
        redis.disconnect();
      }
      await interrupt(demo.child);
      await demo.exited;
      const log = /gateway log: (\S+)/.exec(demo.output())![1]!;
      expect(readFileSync(log, 'utf8').split('\n').filter(Boolean).at(-1)).toMatch(/"msg":"stopped"/);
      expect(await portOpen(Number(new URL(api).port))).toBe(false);
      // The sandbox stays up for whoever kept it (the Redis the demo used still answers).
      expect(await portOpen(16379)).toBe(true);
    }
  });

  describe('npm run sandbox, on a sandbox of its own', () => {
    // A throwaway sandbox on other ports, without Kafka and Prometheus, so the suite's own sandbox is never touched.
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-readme-sandbox-'));
    const ports = { MSSGW_SANDBOX_REDIS_PORT: 26379, MSSGW_SANDBOX_POSTGRES_PORT: 25432, MSSGW_SANDBOX_SMTP_PORT: 20587, MSSGW_SANDBOX_SMTP_INJECT_PORT: 20025, MSSGW_SANDBOX_IMAP_PORT: 20143 };
    const env = { MSSGW_SANDBOX: dir, MSSGW_SANDBOX_COMPONENTS: 'redis postgres operator', ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
    const allOpen = async () => (await Promise.all(Object.values(ports).map(portOpen))).every(Boolean);
    const noneOpen = async () => !(await Promise.all(Object.values(ports).map(portOpen))).some(Boolean);
    afterAll(() => {
      run('npm run sandbox -- down', env);
      // The daemons' state went to /var/lib/mssgw-sandbox/<id> (deploy/local/lib.sh), linked from the sandbox.
      for (const link of ['operator', 'mail', 'postgres']) {
        const target = path.join(dir, link);
        if (existsSync(target)) rmSync(path.dirname(realpathSync(target)), { recursive: true, force: true });
      }
      rmSync(dir, { recursive: true, force: true });
    });

    it('starts, reports and stops what the README says', async () => {
      for (const command of shown('sandbox')) {
        const r = run(command, env);
        const action = /-- (up|status|down)/.exec(command)![1];
        if (action === 'up') {
          expect(r.code, `${command}\n${r.err}`).toBe(0);
          expect(await allOpen()).toBe(true);
          // A second up returns at once, saying it is already up.
          expect(run(command, env).out).toMatch(/already up/);
        } else if (action === 'down') {
          expect(r.code, `${command}\n${r.err}`).toBe(0);
          expect(await noneOpen()).toBe(true);
          expect(run('npm run sandbox -- status', env).code).not.toBe(0);
        } else {
          expect(r.code, `${command}\n${r.err}`).toBe(0);
          expect(r.out).toMatch(/redis up|postgres up|operator up/);
        }
      }
      // The README's sequence ends stopped; the operator's state was kept where its daemons could reach it.
      expect(existsSync(path.join(dir, 'mail'))).toBe(true);
    });
  });

  it('mssgw --help prints the usage', () => {
    for (const command of shown('help')) {
      const r = run(command);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/mssgw parse FILE/);
    }
  });

  it('mssgw start runs the named services and stops cleanly on Ctrl-C', async () => {
    for (const command of shown('start')) {
      const env = { MSSGW_REDIS_PREFIX: `test-readme-start-${Date.now()}`, MSSGW_LOG_LEVEL: 'info' };
      const started = await startUntil(command, /"gateway started"/, env, 60_000);
      await interrupt(started.child);
      await started.exited;
      expect(started.output()).toMatch(/"signal":"SIGINT","msg":"stopped"/);
      expect(await portOpen(8088)).toBe(false);
    }
  });

  it('mssgw parse prints the normalised result of a shipped sample', () => {
    for (const command of shown('parse')) {
      const r = run(command);
      expect(r.code, r.err).toBe(0);
      const json = r.out.slice(r.out.indexOf('{'));
      const parsed = JSON.parse(json) as { messageType: string; controlId: string };
      expect(parsed.messageType).toMatch(/^(ORU\^R01|MDM\^T0[24]|MDM\^T10)$/);
      expect(parsed.controlId).not.toBe('');
    }
  });

  it('mssgw compose writes the mails the gateway would send', () => {
    for (const command of shown('compose')) {
      const out = path.resolve(ROOT, /--out (\S+)/.exec(command)![1]!);
      rmSync(out, { recursive: true, force: true });
      const r = run(command);
      expect(r.code, r.err).toBe(0);
      const mails = readdirSync(out).filter((f) => f.endsWith('.eml'));
      expect(mails.length).toBeGreaterThan(0);
      for (const m of mails) expect(readFileSync(path.join(out, m), 'latin1')).toMatch(/^X-MSS-|\nX-MSS-/i);
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('mssgw migrate says the message store is up to date', () => {
    for (const command of shown('migrate')) {
      const r = run(command);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/applied +0001 results|up to date/);
    }
  });

  it('mssgw receipt reads a shipped DSN', () => {
    for (const command of shown('receipt')) {
      const r = run(command);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/dsn|DSN/);
    }
  });
});
