// Issue #21, "Done when": the crash test. Every part of the gateway's path is killed with SIGKILL in turn during a
// run of 2,000 results, and restarted: the intake, the router, the dispatcher and the receipts reader (each its own
// process, as deployed), then Redis, then PostgreSQL. The sender is an MLLP sender as hospitals run them: it sends the
// same bytes again after an AE, a timeout or a broken connection, reconnecting as needed, until AA. Afterwards every
// acknowledged result is in PostgreSQL, every recipient has exactly one final outcome (delivered, by its DSN), and
// the operator's mailboxes (Dovecot) hold exactly one mail per recipient, counted by Message-ID: 0 lost, 0 duplicated.
//
// The sandbox's Redis and PostgreSQL are shared with every other test on the machine: this test runs a Redis and a
// PostgreSQL cluster of its own (test/support/private-servers.ts), which it may kill. Only Postfix and Dovecot are
// the sandbox's: they are the witness, never killed.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { MllpClient, type Acknowledgement } from '@mssgw/hl7';
import { QUEUES } from '@mssgw/queue';
import { bullConnection } from '@mssgw/runtime';
import { connectPostgres, type Pool } from '@mssgw/store';
import { freePort } from '../support/mllp-flood.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';
import { GatewayProcess, privatePostgres, privateRedis, tail, type KillableServer, type PrivatePostgres, type PrivateRedis } from '../support/private-servers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** 2,000 by default; MSSGW_TEST_CRASH_RESULTS runs it smaller while working on it. */
const RESULTS = Number(process.env['MSSGW_TEST_CRASH_RESULTS'] ?? 2_000);
/** Results per second the producer offers: below what the gateway carries, so that every stage is at work at each kill. */
const PACE_PER_SECOND = Number(process.env['MSSGW_TEST_CRASH_PACE'] ?? 30);
const CONNECTIONS = 4;
/** What the producer waits for an ACK before it gives the connection up and sends again (the intake answers AE after 5 s without its stores). */
const ACK_TIMEOUT_MS = 15_000;
/** How long a killed part stays down before it is started again, as a supervisor would. */
const DOWN_MS = 1_000;
/**
 * Settings a deployment keeps longer, shortened so that the run ends in a few minutes: the sweeper every second for
 * what waited 3 s; a dispatcher's job taken back 5 s after its worker died; an interrupted attempt waits 60 s for the
 * DSN that would prove it was accepted (production: 120 s). A DSN can come 30 s late here, when the receipts reader
 * was killed and takes long to start on a busy machine (printed as "DSN lag"); a shorter wait would send a mail twice
 * because of the test's settings.
 */
const SETTINGS = {
  MSSGW_POSTGRES_SWEEP_INTERVAL_MS: '1000',
  MSSGW_POSTGRES_SWEEP_GRACE_MS: '3000',
  MSSGW_DISPATCHER_LOCK_MS: '5000',
  MSSGW_DISPATCHER_RECONCILE_MS: '60000',
  MSSGW_LOG_LEVEL: 'info',
  MSSGW_HTTP_PORT: '0',
};

/** What the producer went through for one result. */
interface Sent {
  controlId: string;
  /** The code of the last ACK (AA once acknowledged). */
  code?: string;
  sends: number;
  ae: number;
  timeouts: number;
  broken: number;
  /** Connection attempts refused while the intake was down. */
  refused: number;
  ackAtMs?: number;
}

/**
 * One MLLP connection of a producer that retransmits as MLLP senders do: the same bytes again after an AE, a timeout
 * or a broken connection, reconnecting as needed, until AA. An AR is final (not sent again). An ACK for another
 * control id (a late answer on a connection given up) never counts: the connection is dropped.
 */
class RetransmittingSender {
  private client: MllpClient | undefined;
  private readonly port: number;
  private readonly deadline: number;

  constructor(port: number, deadline: number) {
    this.port = port;
    this.deadline = deadline;
  }

  async deliver(bytes: string, s: Sent, t0: number): Promise<void> {
    while (Date.now() < this.deadline) {
      if (!this.client) {
        const c = new MllpClient({ host: '127.0.0.1', port: this.port, ackTimeoutMs: ACK_TIMEOUT_MS });
        try {
          await c.connect();
          this.client = c;
        } catch {
          s.refused++;
          await sleep(250);
          continue;
        }
      }
      s.sends++;
      let ack: Acknowledgement;
      try {
        ack = await this.client.send(bytes);
      } catch (err) {
        if (/no acknowledgement/.test((err as Error).message)) s.timeouts++;
        else s.broken++;
        this.drop();
        await sleep(100);
        continue;
      }
      s.code = ack.code;
      if (ack.controlId !== s.controlId) {
        s.broken++;
        this.drop();
        continue;
      }
      if (ack.code === 'AA') {
        s.ackAtMs = Date.now() - t0;
        return;
      }
      if (ack.code !== 'AE') return;
      s.ae++;
      await sleep(250);
    }
  }

  drop(): void {
    const c = this.client;
    this.client = undefined;
    void c?.close();
  }
}

/** The Message-ID of a stored mail (its header block only). */
function messageIdOf(mail: Buffer): string | undefined {
  const end = mail.indexOf('\r\n\r\n');
  const head = mail.subarray(0, end < 0 ? Math.min(mail.length, 64 * 1024) : end).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  return /^Message-ID:\s*(<[^>\s]+>)/im.exec(head)?.[1];
}

/** What the message store holds of this run: results, those not routed yet, and recipients by state. */
interface Census {
  results: number;
  unrouted: number;
  states: Record<string, number>;
}

const describeCensus = (c: Census | undefined) =>
  c ? `${c.results} results, ${c.unrouted} not routed, recipients ${JSON.stringify(c.states)}` : 'store unavailable';

interface Kill {
  what: string;
  /** When it was killed, and how long until it answered again, from the start of the run. */
  atMs: number;
  backMs: number;
  /** What the message store held at the kill; whether the part had work in hand (see `busy`). */
  before: Census | undefined;
  busy: boolean;
}

/** The JSON log lines of a file whose message matches. */
function logLines(file: string, msg: RegExp): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => msg.test(l)).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

describe('kill -9 of the intake, the router, the dispatcher, the receipts reader, Redis and PostgreSQL in turn', () => {
  const t = tag();
  const recipientsOf = (r: number) => (r % 2 === 0 ? 1 : 2);
  const address = (r: number, k: number) => `ca-${t}-${r}-${k}@cabinet-demo.mssante.test`;
  const controlId = (r: number) => `CA-${t}-${r}`;
  const message = (r: number) => {
    const doctors = Array.from({ length: recipientsOf(r) }, (_, k) => ({ ...DOCTORS[k % 2]!, rpps: `83${String(r).padStart(8, '0')}${k}`, address: address(r, k) }));
    return makeCisisResult({ controlId: controlId(r), patient: PATIENTS[r % 3]!, doctors, pdfBytes: 4_000 });
  };
  const expected = Array.from({ length: RESULTS }, (_, r) => Array.from({ length: recipientsOf(r) }, (_, k) => ({ r, controlId: controlId(r), address: address(r, k) }))).flat();

  let work: string;
  let redis: PrivateRedis;
  let postgres: PrivatePostgres;
  let config: GatewayConfig;
  let pool: Pool;
  let mllpPort: number;
  let passed = false;
  const services = new Map<string, GatewayProcess>();
  const t0 = Date.now();

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'mssgw-crash-'));
    // Redis as in production (AOF, appendfsync everysec). A SIGKILL takes the process, not the kernel: what Redis
    // wrote to its AOF survives, and it writes before it answers unless a slow disk made it postpone the write (its log
    // then says "Asynchronous AOF fsync is taking too long"), so a kill loses little or nothing. What this exercises
    // is the restart: every connection of every process broken at once, the AOF replayed (LOADING first), the jobs
    // that were active coming back as stalled. Losing everything Redis held is redis-loss.test.ts (FLUSHALL).
    [redis, postgres] = await Promise.all([privateRedis(work, 'aof'), privatePostgres(work)]);
    mllpPort = await freePort();
    config = testConfig('crash-all', (c) => {
      c.redis.url = redis.url;
      c.postgres.url = postgres.url;
      c.postgres.sslMode = 'disable';
      delete c.postgres.password;
      delete c.postgres.caFile;
      c.mllp.listeners = c.mllp.listeners.map((l) => ({ ...l, port: mllpPort }));
    });
    const configFile = path.join(work, 'gateway.json');
    writeFileSync(configFile, JSON.stringify(config));
    for (const service of ['intake', 'router', 'dispatcher', 'receipts']) {
      services.set(service, new GatewayProcess({ service, configFile, env: SETTINGS, logFile: path.join(work, `${service}.log`), t0 }));
    }
    // Downstream first; each applies the migrations under the lock, or finds them applied.
    for (const s of ['receipts', 'dispatcher', 'router', 'intake']) await services.get(s)!.start();
    pool = connectPostgres({ ...config.postgres, poolSize: 2 }, 'mssgw-crash-test');
  }, 240_000);

  afterAll(async () => {
    await Promise.all([...services.values()].map((s) => s.stop()));
    await pool?.end();
    await redis?.stop();
    await postgres?.stop();
    if (passed) rmSync(work, { recursive: true, force: true });
    else if (work) console.log(`crash test: logs and data kept in ${work}`);
  }, 120_000);

  /** What the message store holds of this run now (undefined while it does not answer). */
  const census = async (): Promise<Census | undefined> => {
    try {
      const q = await pool.query<Census>(
        `select count(*)::int as results, (count(*) filter (where routed_at is null and duplicate_of is null))::int as unrouted,
                coalesce((select json_object_agg(state, n) from (select d.state, count(*)::int as n from deliveries d join results r using (result_id)
                 where r.control_id like $1 group by d.state) s), '{}') as states
         from results where control_id like $1`,
        [`CA-${t}-%`],
      );
      return q.rows[0];
    } catch {
      return undefined;
    }
  };

  it('loses no result and sends no mail twice', async () => {
    const sent: Sent[] = Array.from({ length: RESULTS }, (_, r) => ({ controlId: controlId(r), sends: 0, ae: 0, timeouts: 0, broken: 0, refused: 0 }));
    const start = Date.now();
    // Everything within the test's time: the producer's last retransmission, the outcomes, the queue drained.
    const deadline = start + 200_000;
    let next = 0;
    const producer = Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        const sender = new RetransmittingSender(mllpPort, deadline);
        for (let r = next++; r < RESULTS; r = next++) {
          const due = start + (r * 1000) / PACE_PER_SECOND;
          if (due > Date.now()) await sleep(due - Date.now());
          await sender.deliver(message(r), sent[r]!, start);
        }
        sender.drop();
      }),
    );
    const acked = () => sent.filter((s) => s.code === 'AA').length;

    // In turn, each once an eighth more of the results is acknowledged (the last eighths flow after PostgreSQL's
    // restart), and once it has work in hand: results to route, mails to send, DSNs to read, jobs in Redis.
    const n = (c: Census, state: string) => c.states[state] ?? 0;
    const gateway = (what: string, busy: (c: Census) => boolean) =>
      ({ what, busy, kill: () => services.get(what)!.kill(), start: () => services.get(what)!.start() });
    const server = (s: KillableServer, busy: (c: Census) => boolean) => ({ what: s.name, busy, kill: () => s.kill(), start: () => s.start() });
    const parts = [
      gateway('intake', () => true),
      gateway('router', (c) => c.unrouted > 0),
      gateway('dispatcher', (c) => n(c, 'queued') > 0),
      gateway('receipts', (c) => n(c, 'submitted') > 0),
      server(redis, (c) => c.unrouted + n(c, 'queued') > 0),
      server(postgres, () => true),
    ];
    const kills: Kill[] = [];
    const chaos = (async () => {
      for (const [i, part] of parts.entries()) {
        const due = Math.ceil((RESULTS * (i + 1)) / 8);
        await waitFor(`${due} results acknowledged before killing the ${part.what}`, () => Promise.resolve(acked() >= due), 120_000, 50);
        const busy = await waitFor(`the ${part.what} at work`, async () => {
          const c = await census();
          return c && part.busy(c);
        }, 20_000, 100).catch(() => false);
        const before = await census();
        const at = Date.now();
        await part.kill();
        await sleep(DOWN_MS);
        await part.start();
        kills.push({ what: part.what, atMs: at - start, backMs: Date.now() - at, before, busy });
      }
    })();
    await Promise.all([producer, chaos]);
    const producedMs = Date.now() - start;

    // Every recipient of every result sent reaches a final state (or the wait ends, and the assertions below say which did not).
    const rowsNow = async () =>
      (await pool.query<{ control_id: string; result_id: string; delivery_id: string; recipient: string; state: string; message_id: string | null; submitted_at: Date | null; dsn_at: Date | null }>(
        `select r.control_id, d.result_id, d.delivery_id, d.recipient, d.state, d.message_id, d.submitted_at, d.dsn_at
         from deliveries d join results r using (result_id) where r.control_id like $1`,
        [`CA-${t}-%`],
      )).rows;
    let rows = await rowsNow();
    const settled = await waitFor('every recipient delivered', async () => {
      rows = await rowsNow();
      return rows.length >= expected.length && rows.every((d) => d.state === 'delivered');
    }, Math.max(10_000, start + 300_000 - Date.now()), 1_000).then(() => true, () => false);
    const deliveredMs = Date.now() - start;

    // Nothing left on the send queue (an interrupted attempt waiting for its DSN wakes up and finds it delivered): any
    // mail still to come in would be there before the mailboxes are counted.
    const sendQueue = new Queue(QUEUES.send(config.mailboxes[0]!.address), bullConnection(config));
    await waitFor('the send queue drained', async () => {
      const n = await sendQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(n).every((v) => v === 0);
    }, 15_000, 500).catch(() => undefined);
    await sendQueue.close();
    await sleep(2_000);

    // 1. Every acknowledged result is in PostgreSQL, once.
    const stored = new Map((await pool.query<{ control_id: string; n: number }>(
      'select control_id, count(*)::int as n from results where control_id like $1 group by control_id', [`CA-${t}-%`],
    )).rows.map((x) => [x.control_id, x.n]));
    const ackedIds = sent.filter((s) => s.code === 'AA').map((s) => s.controlId);
    const notAcked = sent.filter((s) => s.code !== 'AA').map((s) => `${s.controlId}: ${s.code ?? 'no ACK'} after ${s.sends} sends`);
    const lostResults = ackedIds.filter((id) => !stored.has(id));
    const doubledResults = [...stored].filter(([, n]) => n > 1).map(([id, n]) => `${id}: ${n} rows`);

    // 2. Every recipient: one record, delivered by its DSN, with one final state in its history.
    const byKey = new Map<string, typeof rows>();
    for (const d of rows) byKey.set(`${d.control_id} ${d.recipient}`, [...(byKey.get(`${d.control_id} ${d.recipient}`) ?? []), d]);
    const missingRecipients = expected.filter((e) => ackedIds.includes(e.controlId) && !byKey.has(`${e.controlId} ${e.address}`)).map((e) => `${e.controlId} ${e.address}`);
    const doubledRecipients = [...byKey].filter(([, l]) => l.length > 1).map(([k, l]) => `${k}: ${l.map((d) => d.delivery_id).join(', ')}`);
    const notDelivered = rows.filter((d) => d.state !== 'delivered').map((d) => `${d.control_id} ${d.delivery_id} ${d.recipient}: ${d.state}`);
    const history = (await pool.query<{ delivery_id: string; finals: number; dsns: number }>(
      `select e.delivery_id, count(*) filter (where e.applied and e.state not in ('queued', 'submitted', 'delayed'))::int as finals,
              count(*) filter (where e.source = 'dsn')::int as dsns
       from delivery_events e join deliveries d using (delivery_id) join results r using (result_id)
       where r.control_id like $1 group by e.delivery_id`,
      [`CA-${t}-%`],
    )).rows;
    const notOneOutcome = history.filter((h) => h.finals !== 1).map((h) => `${h.delivery_id}: ${h.finals} final states applied`);
    const dsnReadTwice = history.filter((h) => h.dsns > 1).length;
    const lags = rows.filter((d) => d.submitted_at && d.dsn_at).map((d) => d.dsn_at!.getTime() - d.submitted_at!.getTime()).sort((a, b) => a - b);
    const settledByDsnOnly = rows.filter((d) => d.state === 'delivered' && !d.submitted_at).length;

    // 3. The operator's mailboxes: exactly one mail per recipient, the one its record names (by Message-ID).
    const messageIdOfRecipient = new Map(rows.map((d) => [`${d.control_id} ${d.recipient}`, d.message_id]));
    let mails = 0;
    const lostMails: string[] = [];
    const doubledMails: string[] = [];
    for (const e of expected.filter((x) => ackedIds.includes(x.controlId))) {
      const ids = mailboxFiles(e.address).map(messageIdOf);
      mails += ids.length;
      const want = messageIdOfRecipient.get(`${e.controlId} ${e.address}`);
      if (ids.length === 0) lostMails.push(`${e.controlId} ${e.address}: no mail (record: ${want ?? 'none'})`);
      else if (ids.length > 1) doubledMails.push(`${e.controlId} ${e.address}: ${ids.length} mails, Message-IDs ${ids.join(' ')}`);
      else if (ids[0] !== want) lostMails.push(`${e.controlId} ${e.address}: holds ${ids[0]}, its record names ${want}`);
    }

    const exits = [...services.values()].flatMap((s) => s.unexpectedExits);
    // What the gateway did about the kills, from its logs: the sweeper's requeues, the attempts that waited for their DSN.
    const requeued = (field: string) => logLines(services.get('router')!.logFile, /queued again/).reduce((a, l) => a + Number(l[field] ?? 0), 0);
    const interrupted = logLines(services.get('dispatcher')!.logFile, /interrupted attempt/).length;
    const sum = (f: (s: Sent) => number) => sent.reduce((a, s) => a + f(s), 0);
    const lastAck = Math.max(0, ...sent.map((s) => s.ackAtMs ?? 0));
    console.log(
      `crash test: ${RESULTS} results, ${ackedIds.length} ACKed AA (${sum((s) => s.sends)} sends: ${sum((s) => s.ae)} AE, ${sum((s) => s.timeouts)} timeouts, ` +
        `${sum((s) => s.broken)} broken connections, ${sum((s) => s.refused)} refused connects), ${stored.size} in PostgreSQL, ${lostResults.length} lost, ` +
        `${doubledResults.length} doubled; ${expected.length} recipients: ${rows.filter((d) => d.state === 'delivered').length} delivered ` +
        `(${settledByDsnOnly} settled by their DSN alone, ${dsnReadTwice} with their DSN read twice), ${missingRecipients.length} without a record, ` +
        `${notDelivered.length} not delivered, ${notOneOutcome.length} without exactly one outcome; Dovecot: ${mails} mails, ${lostMails.length} lost, ` +
        `${doubledMails.length} duplicated; DSN lag p50 ${seconds(lags[Math.floor(lags.length / 2)] ?? 0)} s, max ${seconds(lags.at(-1) ?? 0)} s; ` +
        `kills: ${kills.map((k) => `${k.what} at ${seconds(k.atMs)} s${k.busy ? '' : ' (idle)'} (back after ${seconds(k.backMs)} s; ${describeCensus(k.before)})`).join(', ')}; ` +
        `sweeper re-queued ${requeued('results')} results and ${requeued('deliveries')} recipients; ${interrupted} interrupted attempts waited for their DSN; ` +
        `unexpected exits: ${exits.length}; last ACK ${seconds(lastAck)} s, producer done ${seconds(producedMs)} s, ` +
        `${settled ? 'all delivered' : 'gave up waiting'} at ${seconds(deliveredMs)} s, setup ${seconds(start - t0)} s`,
    );
    const evidence = [...lostMails, ...doubledMails, ...notDelivered].slice(0, 20);
    if (evidence.length || exits.length) {
      const ids = new Set(rows.filter((d) => evidence.some((e) => e.includes(d.recipient))).map((d) => d.delivery_id));
      for (const id of ids) {
        const h = await pool.query('select at, state, applied, source, detail from delivery_events where delivery_id = $1 order by id', [id]);
        const sends = logLines(services.get('dispatcher')!.logFile, new RegExp(id)).map((l) => `${new Date(Number(l['time'])).toISOString()} ${JSON.stringify(l['msg'])} ${JSON.stringify(l['queueId'] ?? l['err'] ?? '')}`);
        console.log(`crash test: history of ${id}: ${JSON.stringify(h.rows)}; dispatcher: ${JSON.stringify(sends)}`);
      }
      for (const e of exits) console.log(`crash test: ${e.service} ended by itself at ${seconds(e.atMs)} s (${e.code ?? e.signal}): ${e.log}`);
      for (const s of services.values()) console.log(`crash test: ${s.service} log ${s.logFile}:\n${tail(s.logFile, 5)}`);
    }

    expect.soft(notAcked, 'the producer gets AA for every result in the end (it sends again after AE, timeouts and broken connections)').toEqual([]);
    expect.soft(lostResults, 'every ACKed result is in PostgreSQL').toEqual([]);
    expect.soft(doubledResults, 'a retransmitted result is one result').toEqual([]);
    expect.soft(missingRecipients, 'every recipient of every ACKed result has its record').toEqual([]);
    expect.soft(doubledRecipients, 'one record per result and recipient').toEqual([]);
    expect.soft(notDelivered, 'every recipient delivered, by its DSN').toEqual([]);
    expect.soft(notOneOutcome, 'every recipient has exactly one final outcome').toEqual([]);
    expect.soft(lostMails, 'Dovecot holds the mail of every recipient: 0 lost').toEqual([]);
    // Seen failing when written (1 run in 7): the operator's 250 arrived while PostgreSQL was down; recording it failed
    // with ECONNREFUSED, which the dispatcher took for an SMTP connection refused (smtpFailure: notAccepted), so it
    // cleared its sending marker and, once PostgreSQL was back, sent the mail again without waiting for its DSN.
    expect.soft(doubledMails, 'Dovecot holds one mail per recipient: 0 duplicated').toEqual([]);
    // Seen failing when written (6 runs in 7): the router exits on PostgreSQL's kill, an unhandled 'error' event of the
    // pg client that the sweeper holds checked out (withSweepLock) while it awaits Redis. Here it is started again, as a
    // restart policy would; a single-process gateway would be gone.
    expect.soft(exits.map((e) => `${e.service} at ${seconds(e.atMs)} s: ${e.code ?? e.signal}`), 'no process ends unless killed: without Redis or PostgreSQL a service keeps running and recovers by itself (issue #21)').toEqual([]);
    passed = lostResults.length + doubledResults.length + missingRecipients.length + doubledRecipients.length + notDelivered.length + notOneOutcome.length +
      lostMails.length + doubledMails.length + notAcked.length + exits.length === 0;
  }, 360_000);
});
