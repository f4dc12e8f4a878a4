// Servers of one test's own, which it may kill with SIGKILL and start again on the same port and data directory:
// a Redis, a PostgreSQL cluster, and gateway services as separate processes (test/integration/crash.test.ts). The
// sandbox's Redis and PostgreSQL are shared with every other test running on the machine and are never touched here.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from './mllp-flood.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for `ok` to hold, polling; throws with `what` (and `why()` when given) past the deadline. */
async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 100, why?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why ? `: ${why()}` : ''}`);
    await sleep(everyMs);
  }
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;
const exitOf = (child: ChildProcess) => (exited(child) ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r())));

/** The last `lines` lines of a file ('' when absent). */
export function tail(file: string, lines = 20): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n') : '';
}

/** A server this test may kill and start again, on the same port and data directory. */
export interface KillableServer {
  readonly name: string;
  readonly port: number;
  /** Its data and log directory. */
  readonly dir: string;
  readonly logFile: string;
  /** Starts it (again); resolves once it answers, e.g. after replaying its log. */
  start(): Promise<void>;
  /** SIGKILL, resolved once it is gone. */
  kill(): Promise<void>;
  /** A clean stop (SIGTERM, then SIGKILL), for the end of the test. */
  stop(): Promise<void>;
}

export interface PrivateRedis extends KillableServer {
  readonly url: string;
}

/**
 * A Redis on a free loopback port with its data in `parent`. `aof`: persistence as in production (deploy/local/redis.sh,
 * appendonly yes, appendfsync everysec), so that a restart replays the AOF; 'none': a restart starts empty.
 */
export async function privateRedis(parent: string, persistence: 'aof' | 'none'): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(parent, 'redis-'));
  const logFile = path.join(dir, 'redis.log');
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', logFile, '--save', '', '--maxmemory-policy', 'noeviction',
    ...(persistence === 'aof' ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']),
  ];
  let child: ChildProcess | undefined;
  const pong = async () => {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      // LOADING (an AOF being replayed) is an error reply: ready means PONG.
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  };
  const server: PrivateRedis = {
    name: 'redis', port, dir, logFile, url: `redis://127.0.0.1:${port}`,
    async start() {
      const c = (child = spawn('redis-server', args, { stdio: 'ignore' }));
      await until('the private Redis to answer PONG', async () => {
        if (exited(c)) throw new Error(`redis-server ended (${c.exitCode ?? c.signalCode}): ${tail(logFile)}`);
        return pong();
      }, 60_000, 50);
    },
    async kill() {
      if (!child || exited(child)) return;
      child.kill('SIGKILL');
      await exitOf(child);
    },
    async stop() {
      if (!child || exited(child)) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exitOf(child);
      clearTimeout(killer);
    },
  };
  await server.start();
  return server;
}

export interface PrivatePostgres extends KillableServer {
  /** postgres://mssgw@127.0.0.1:<port>/mssgw: a login role owning its database, trust authentication, no TLS. */
  readonly url: string;
  readonly version: number;
}

/** The newest PostgreSQL server binaries of the Debian packages (/usr/lib/postgresql/<major>/bin). */
function postgresBin(): { bin: string; version: number } {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base) ? readdirSync(base).map(Number).filter((n) => Number.isInteger(n) && existsSync(path.join(base, String(n), 'bin', 'postgres'))) : [];
  const version = Math.max(0, ...majors);
  if (version < 15) throw new Error(`PostgreSQL 15 or newer is needed under ${base} (found: ${majors.join(', ') || 'none'}); deploy/local/postgres.sh install`);
  return { bin: path.join(base, String(version), 'bin'), version };
}

/** Whom the cluster runs as: initdb and postgres refuse root, so root runs them as the postgres user (as deploy/local/postgres.sh does). */
function clusterOwner(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? uid };
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const owner = { uid: id('-u'), gid: id('-g') };
  if (!Number.isInteger(owner.uid) || owner.uid <= 0) throw new Error('running as root, a postgres user is needed to run the cluster (deploy/local/postgres.sh install)');
  return owner;
}

/** Whether any process of process group `pgid` is left (PostgreSQL's postmaster and its backends share one). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  // A member may be a zombie waiting for init to reap it: it holds no memory, no socket, no shared memory.
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/**
 * A PostgreSQL cluster of the test's own (15 or newer): initdb into a directory under `parent`, loopback only on a
 * free port, trust authentication, no TLS (environment `test` accepts sslMode disable), synchronous_commit and fsync
 * on as in the sandbox and production. The postmaster runs in a process group of its own, so that a kill takes it
 * and every backend at once, as a crash of the server (an OOM kill, a lost node) would.
 */
export async function privatePostgres(parent: string): Promise<PrivatePostgres> {
  const { bin, version } = postgresBin();
  const owner = clusterOwner();
  const port = await freePort();
  const dir = mkdtempSync(path.join(parent, 'postgres-'));
  const data = path.join(dir, 'data');
  const run = path.join(dir, 'run');
  const logFile = path.join(dir, 'postgres.log');
  mkdirSync(run);
  for (const p of [dir, run]) chownSync(p, owner.uid, owner.gid);
  // Whoever runs the cluster must be able to reach its directory: a mkdtemp parent (0700) of ours becomes 0711.
  if (owner.uid !== process.getuid?.()) {
    if (statSync(parent).uid === process.getuid?.()) chmodSync(parent, statSync(parent).mode | 0o011);
    for (let p = parent; p !== path.dirname(p); p = path.dirname(p)) {
      if ((statSync(p).mode & 0o001) === 0) throw new Error(`${p} cannot be traversed by the postgres user: give a parent directory under /tmp`);
    }
  }
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], {
    uid: owner.uid, gid: owner.gid, cwd: '/', encoding: 'utf8', timeout: 120_000,
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout || String(init.error)}`);
  const settings = {
    listen_addresses: '127.0.0.1', port: String(port), unix_socket_directories: run,
    // An acknowledged result is on disk: what the ACK waits for (as deploy/local/postgres.sh sets them).
    synchronous_commit: 'on', fsync: 'on',
    max_connections: '100', shared_buffers: '64MB', logging_collector: 'off', log_min_messages: 'warning',
  };
  const args = ['-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  let child: ChildProcess | undefined;
  const query = async (database: string, sql: string) => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database, connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.query(sql);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const server: PrivatePostgres = {
    name: 'postgres', port, dir, logFile, version, url: `postgres://mssgw@127.0.0.1:${port}/mssgw`,
    async start() {
      const log = openSync(logFile, 'a');
      const c = (child = spawn(path.join(bin, 'postgres'), args, { uid: owner.uid, gid: owner.gid, cwd: '/', detached: true, stdio: ['ignore', log, log] }));
      closeSync(log);
      // Ready once it takes queries: after a crash, only once its recovery from the WAL is done.
      await until('the private PostgreSQL to take queries', async () => {
        if (exited(c)) throw new Error(`postgres ended (${c.exitCode ?? c.signalCode}): ${tail(logFile)}`);
        return query('postgres', 'select 1').then(() => true, () => false);
      }, 120_000, 100);
    },
    async kill() {
      if (!child || exited(child)) return;
      const pgid = child.pid!;
      process.kill(-pgid, 'SIGKILL');
      await exitOf(child);
      // Its backends die with it (same group); a new postmaster refuses to start while one still holds the shared memory.
      await until('every backend of the killed PostgreSQL to be gone', () => !groupAlive(pgid), 30_000, 50);
    },
    async stop() {
      if (!child || exited(child)) return;
      // Fast shutdown: SIGINT to the postmaster.
      child.kill('SIGINT');
      const killer = setTimeout(() => {
        if (child?.pid) process.kill(-child.pid, 'SIGKILL');
      }, 20_000);
      await exitOf(child);
      clearTimeout(killer);
    },
  };
  await server.start();
  await query('postgres', `create role mssgw login`);
  await query('postgres', `create database mssgw owner mssgw`);
  return server;
}

/** Where a log line of a gateway process says it is up (services/gateway/src/start.ts). */
const STARTED = /"msg":"gateway started"/;

/** A run of a gateway process that ended without being told to: when, how, and the end of its log. */
export interface UnexpectedExit {
  service: string;
  atMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  log: string;
}

/**
 * One gateway service as its own process, as deployed: `services/gateway/bin/mssgw start <service> --config FILE`
 * (the launcher with its V8 flags), settings overridden by MSSGW_* variables in `env`, its JSON log lines appended to
 * `logFile`, its standard output and error (a crash's stack) to `<logFile minus .log>.stderr`. Like a container's
 * restart policy, a process that ends without being killed or stopped by the test is started again after
 * `restartDelayMs`, and the exit is kept in `unexpectedExits`.
 */
export class GatewayProcess {
  readonly service: string;
  readonly logFile: string;
  /** Its standard output and error (what is not a log line: a crash's stack). */
  readonly stderrFile: string;
  readonly unexpectedExits: UnexpectedExit[] = [];
  private readonly configFile: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly restartDelayMs: number;
  private readonly t0: number;
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarting: Promise<void> | undefined;
  /** The runs this test killed on purpose: their exit is no surprise. */
  private readonly killed = new WeakSet<ChildProcess>();

  constructor(o: { service: string; configFile: string; env: Record<string, string>; logFile: string; restartDelayMs?: number; t0?: number }) {
    this.service = o.service;
    this.configFile = o.configFile;
    this.logFile = o.logFile;
    this.stderrFile = o.logFile.replace(/(\.log)?$/, '.stderr');
    this.restartDelayMs = o.restartDelayMs ?? 1_000;
    this.t0 = o.t0 ?? Date.now();
    // Only the test's own MSSGW_ settings: none of the caller's environment overrides.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MSSGW_') || k === 'MSSGW_SANDBOX'));
    this.env = { ...inherited, ...o.env, MSSGW_LOG_FILE: o.logFile };
  }

  get pid(): number | undefined {
    return this.child && !exited(this.child) ? this.child.pid : undefined;
  }

  /** Starts the process; resolves once it logs that every service in it is up. */
  async start(timeoutMs = 90_000): Promise<void> {
    this.stopping = false;
    const from = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const errFrom = existsSync(this.stderrFile) ? statSync(this.stderrFile).size : 0;
    const errFd = openSync(this.stderrFile, 'a');
    const child = spawn(path.join(ROOT, 'services/gateway/bin/mssgw'), ['start', this.service, '--config', this.configFile], {
      env: this.env, stdio: ['ignore', errFd, errFd],
    });
    closeSync(errFd);
    this.child = child;
    const stderr = () => readFileSync(this.stderrFile).subarray(errFrom).toString('utf8');
    child.once('exit', (code, signal) => {
      if (this.stopping || this.child !== child || this.killed.has(child)) return;
      const err = stderr();
      this.unexpectedExits.push({
        service: this.service, atMs: Date.now() - this.t0, code, signal,
        log: `${err.length > 3_000 ? `${err.slice(0, 1_500)}\n…\n${err.slice(-1_500)}` : err}\n${tail(this.logFile, 10)}`,
      });
      this.restarting = sleep(this.restartDelayMs).then(() => (this.stopping ? undefined : this.start().catch(() => undefined)));
    });
    const since = () => {
      const text = existsSync(this.logFile) ? readFileSync(this.logFile) : Buffer.alloc(0);
      return text.subarray(from).toString('utf8');
    };
    await until(`${this.service} to start`, () => {
      if (exited(child)) throw new Error(`${this.service} ended at start (${child.exitCode ?? child.signalCode}): ${stderr().slice(-2_000)}\n${since().slice(-2_000)}`);
      return STARTED.test(since());
    }, timeoutMs, 100);
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || exited(child)) return;
    this.killed.add(child);
    child.kill('SIGKILL');
    await exitOf(child);
  }

  /** SIGTERM (a graceful stop), then SIGKILL after 20 s; no restart after it. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.restarting;
    const child = this.child;
    if (!child || exited(child)) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exitOf(child);
    clearTimeout(killer);
  }
}
