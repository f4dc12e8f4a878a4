// The message store on the sandbox's real PostgreSQL: migrations under a lock, the result record and its key, the
// ACK that waits for the commit, and what the gateway does when the store is not there.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoDefaults } from '@mssgw/config';
import { contentHashOf, MllpClient } from '@mssgw/hl7';
import { QUEUES, resultIdOf } from '@mssgw/queue';
import { bullConnection } from '@mssgw/runtime';
import { FINAL_STATES } from '@mssgw/lifecycle';
import { StatusStore } from '@mssgw/status';
import { connectPostgres, MessageBodies, migrate, migrationStatus, pruneRecords, readMigrations, ResultStore, sha256Of, type Pool, type ReceivedResult } from '@mssgw/store';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig } from '../support/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sandboxStore = () => demoDefaults().postgres;

/** A database of its own, made and dropped by the test, so that migrations start from nothing. */
async function withThrowawayDatabase(run: (config: ReturnType<typeof sandboxStore>) => Promise<void>): Promise<void> {
  const admin = connectPostgres(sandboxStore(), 'mssgw-test');
  const name = `mssgw_test_${tag()}`;
  await admin.query(`create database ${name}`);
  try {
    await run({ ...sandboxStore(), url: sandboxStore().url.replace(/\/mssgw$/, `/${name}`) });
  } finally {
    await admin.query(`drop database ${name} with (force)`);
    await admin.end();
  }
}

describe('migrations', () => {
  it('apply each file once when processes start together, and refuse a changed or unknown history', async () => {
    await withThrowawayDatabase(async (config) => {
      const pools = [connectPostgres(config), connectPostgres(config), connectPostgres(config)];
      try {
        const applied = await Promise.all(pools.map((p) => migrate(p)));
        // One process applied everything; the others waited for the lock and found nothing left to do.
        expect(applied.map((a) => a.length).sort()).toEqual([0, 0, readMigrations().length]);
        const status = await migrationStatus(pools[0]!);
        expect(status.applied.map((m) => m.version)).toEqual(readMigrations().map((m) => m.version));
        expect(status.pending).toEqual([]);
        const changed = readMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'edited' } : m));
        await expect(migrate(pools[0]!, changed)).rejects.toMatchObject({ code: 'MSSGW_MIGRATION_CHANGED' });
        await pools[0]!.query(`insert into schema_migrations (version, name, checksum) values (9999, 'from_the_future', 'x')`);
        await expect(migrate(pools[1]!)).rejects.toMatchObject({ code: 'MSSGW_MIGRATION_UNKNOWN' });
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    });
  });
});

describe('the result record', () => {
  let pool: Pool;
  let store: ResultStore;
  const t = tag();
  const received = (hl7: string, source = 'lab'): ReceivedResult => {
    const bytes = Buffer.from(hl7, 'latin1');
    const controlId = /^MSH(?:\|[^|]*){8}\|([^|]*)/.exec(hl7)![1]!;
    const contentSha256 = contentHashOf(bytes);
    return {
      resultId: resultIdOf({ source, sendingFacility: 'CHU-DEMO', controlId, contentSha256 }), source, transport: 'mllp', sendingApplication: 'SIL',
      sendingFacility: 'CHU-DEMO', controlId, contentSha256, hl7: bytes, messageType: 'ORU^R01', action: 'initial', documentCode: '11502-2', receivedAt: Date.now(),
      ackReception: true, ackRead: false,
    };
  };
  const message = (controlId: string) => makeCisisResult({ controlId, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] });

  beforeAll(() => {
    pool = connectPostgres(sandboxStore());
    store = new ResultStore(pool);
  });
  afterAll(async () => pool.end());

  it('takes batches committing side by side that share documents and results, in any order, without a deadlock', async () => {
    // The same few documents (one PDF sent for many results) and the same results (a retransmission landing in two
    // batches), in a different order in each batch: each batch's row locks must be taken in one order.
    const docs = Array.from({ length: 6 }, (_, i) => {
      const content = Buffer.from(`%PDF-1.4 shared ${t} ${i}`);
      return { sha256: sha256Of(content), mediaType: 'application/pdf', content };
    });
    const results = Array.from({ length: 12 }, (_, i) => ({ ...received(message(`DL-${t}-${i}`)), documents: [docs[i % 6]!, docs[(i + 3) % 6]!] }));
    const shuffled = (seed: number) => [...results].sort((a, b) => ((a.controlId.charCodeAt(a.controlId.length - 1) * seed) % 7) - ((b.controlId.charCodeAt(b.controlId.length - 1) * seed) % 7));
    const outcomes = await Promise.all(Array.from({ length: 16 }, (_, k) => store.record(shuffled(k + 2))));
    // Each result new in exactly one batch, a repeat in every other.
    const firsts = results.map((_, i) => outcomes.filter((o, k) => !o[shuffled(k + 2).indexOf(results[i]!)]).length);
    expect(firsts).toEqual(results.map(() => 1));
    // And as the intake sends them (the benchmark met it first): many batches of distinct results, all carrying the
    // same document, one of them already held from before.
    const shared = [docs[0]!, { ...docs[1]!, content: Buffer.from(`%PDF-1.4 another ${t}`), sha256: sha256Of(Buffer.from(`%PDF-1.4 another ${t}`)) }];
    const batches = Array.from({ length: 16 }, (_, k) => Array.from({ length: 24 }, (_, i) => ({ ...received(message(`DB-${t}-${k}-${i}`)), documents: shared })));
    const all = await Promise.all(batches.map((b) => store.record(b)));
    expect(all.flat().filter(Boolean)).toEqual([]);
  });

  it('is new once; a retransmission, even with a fresh MSH-7, is a repeat; a reused control id with other content is a new result', async () => {
    const first = message(`REC-${t}`);
    expect(await store.record([received(first)])).toEqual([false]);
    expect(await store.record([received(first)])).toEqual([true]);
    const resent = first.replace(/^(MSH(?:\|[^|]*){5}\|)\d+/, '$120991231235959');
    expect(resent).not.toBe(first);
    expect(await store.record([received(resent)])).toEqual([true]);
    // The producer reused the control id for another message: recorded as a new result, never dropped.
    const other = received(`${first}\rNTE|1||autre contenu`);
    expect(other.resultId).not.toBe(received(first).resultId);
    expect(await store.record([other])).toEqual([false]);
    expect((await pool.query('select count(*)::int as n from results where control_id = $1', [`REC-${t}`])).rows[0]).toEqual({ n: 2 });
  });

  it('takes a batch in one commit, two copies of one result in it counting once', async () => {
    const a = received(message(`BATCH-A-${t}`));
    const b = received(message(`BATCH-B-${t}`));
    expect(await store.record([a, b, a])).toEqual([false, false, true]);
    const stored = await store.get(a.resultId);
    expect(stored).toMatchObject({ resultId: a.resultId, controlId: `BATCH-A-${t}`, contentSha256: a.contentSha256, source: 'lab' });
    expect((await store.hl7Of(a.resultId))!.equals(a.hl7)).toBe(true);
  });

  it('takes a field with a NUL byte without failing the other results of its batch', async () => {
    const hostile = received(message(`NUL-${t}`).replace(`NUL-${t}`, `NUL-\u0000${t}`));
    const neighbour = received(message(`NEIGHBOUR-${t}`));
    expect(await store.record([hostile, neighbour])).toEqual([false, false]);
    // The message as received keeps its bytes; the indexed text loses the NUL.
    expect((await store.hl7Of(hostile.resultId))!.includes(0)).toBe(true);
    expect((await store.get(hostile.resultId))!.controlId).toBe(`NUL-${t}`);
    const status = new StatusStore(pool);
    await status.createDelivery({ deliveryId: `d-nul-${t}`, resultId: hostile.resultId, recipient: `nul\u0000-${t}@x.mssante.test`, kind: 'professional', state: 'queued' });
    expect((await status.transition(`d-nul-${t}`, 'submitted', 'dispatcher', { smtpResponse: '250 ok\u0000' })).applied).toBe(true);
    expect(await status.deliveryForMessage('<m\u0000@x>', `nul-${t}@x.mssante.test`)).toBeUndefined();
  });

  it('keeps a result received on two sources as two results', async () => {
    const hl7 = message(`TWO-SOURCES-${t}`);
    expect(await store.record([received(hl7, 'lab'), received(hl7, 'imaging')])).toEqual([false, false]);
  });
});

describe('retention', () => {
  it('removes what is over and older than the retention, in batches, keeping a result still awaiting its outcome', async () => {
    const pool = connectPostgres({ ...sandboxStore(), schema: `test_prune_${tag()}` });
    try {
      await migrate(pool);
      const results = new ResultStore(pool);
      const status = new StatusStore(pool);
      const old = Date.now() - 100 * 86_400_000;
      const make = (n: number, receivedAt: number): ReceivedResult => {
        const hl7 = Buffer.from(makeCisisResult({ controlId: `P-${n}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }), 'latin1');
        const contentSha256 = contentHashOf(hl7);
        return {
          resultId: `r-p${n}`, source: 'lab', transport: 'mllp', sendingApplication: 'SIL', sendingFacility: 'CHU', controlId: `P-${n}`, contentSha256, hl7,
          messageType: 'ORU^R01', action: 'initial', documentCode: '11502-2', receivedAt, ackReception: false, ackRead: false,
        };
      };
      // Five old results, each with one recipient delivered; one old result still submitted; one recent, delivered.
      await results.record([0, 1, 2, 3, 4, 5].map((n) => make(n, old)).concat(make(6, Date.now())));
      for (const n of [0, 1, 2, 3, 4, 5, 6]) {
        await status.createDelivery({ deliveryId: `d-p${n}`, resultId: `r-p${n}`, recipient: `p${n}@x.mssante.test`, kind: 'professional', state: 'queued' });
        await status.transition(`d-p${n}`, 'submitted', 'dispatcher');
        if (n !== 5) await status.transition(`d-p${n}`, 'delivered', 'dsn');
      }
      const olderThan = new Date(Date.now() - 90 * 86_400_000);
      expect(await pruneRecords(pool, { olderThan, finalStates: FINAL_STATES, dryRun: true })).toEqual({ results: 5, deliveries: 5, events: 15, bodies: 5, emptied: 0 });
      expect(await pruneRecords(pool, { olderThan, finalStates: FINAL_STATES, batch: 2 })).toEqual({ results: 5, deliveries: 5, events: 15, bodies: 5, emptied: 0 });
      const left = await pool.query<{ result_id: string }>('select result_id from results order by result_id');
      expect(left.rows.map((r) => r.result_id)).toEqual(['r-p5', 'r-p6']);
      expect(await status.getDelivery('d-p0')).toBeUndefined();
      expect(await status.history('d-p0')).toEqual([]);
      expect((await status.getDelivery('d-p5'))!.state).toBe('submitted');
      expect(await pruneRecords(pool, { olderThan, finalStates: FINAL_STATES })).toEqual({ results: 0, deliveries: 0, events: 0, bodies: 0, emptied: 0 });
    } finally {
      await pool.end();
    }
  });

  it('empties the bodies of a result over since the body retention, keeping its record and what another result still holds', async () => {
    const pool = connectPostgres({ ...sandboxStore(), schema: `test_prune_bodies_${tag()}` });
    try {
      await migrate(pool);
      const results = new ResultStore(pool);
      const bodies = new MessageBodies(pool);
      const status = new StatusStore(pool);
      const day = 86_400_000;
      const pdf = Buffer.from('%PDF-1.4 shared by two results');
      const doc = { sha256: sha256Of(pdf), mediaType: 'application/pdf', content: pdf };
      const make = (n: number, receivedAt: number): ReceivedResult => {
        const hl7 = Buffer.from(makeCisisResult({ controlId: `B-${n}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }), 'latin1');
        return {
          resultId: `r-b${n}`, source: 'lab', transport: 'mllp', sendingApplication: 'SIL', sendingFacility: 'CHU', controlId: `B-${n}`,
          contentSha256: contentHashOf(hl7), hl7, messageType: 'ORU^R01', action: 'initial', documentCode: '11502-2', receivedAt,
          ackReception: false, ackRead: false, documents: [doc], normalized: { documents: [{ sha256: doc.sha256 }] },
        };
      };
      // r-b0: over for 40 days. r-b1: recent, shares the PDF. Each has one mail with its own attachments part.
      await results.record([make(0, Date.now() - 40 * day), make(1, Date.now())]);
      for (const n of [0, 1]) {
        const part = Buffer.from(`attachments of ${n}`);
        await bodies.putMails(`r-b${n}`, [{ mailId: `m-b${n}`, head: Buffer.from(`Subject: ${n}\r\n\r\n`), attachments: { sha256: sha256Of(part), mediaType: 'message/rfc822-part', content: part } }]);
        await status.createDelivery({ deliveryId: `d-b${n}`, resultId: `r-b${n}`, recipient: `b${n}@x.mssante.test`, kind: 'professional', state: 'queued', mailId: `m-b${n}` });
        await status.transition(`d-b${n}`, 'submitted', 'dispatcher');
        await status.transition(`d-b${n}`, 'delivered', 'dsn');
      }
      await pool.query(`update deliveries set updated_at = now() - interval '35 days' where delivery_id = 'd-b0'`);
      const options = { olderThan: new Date(Date.now() - 90 * day), bodiesOlderThan: new Date(Date.now() - 30 * day), finalStates: FINAL_STATES };
      expect(await pruneRecords(pool, { ...options, dryRun: true })).toMatchObject({ results: 0, emptied: 1 });
      // Its HL7 text and its attachments part go; the PDF stays, r-b1 still holds it.
      expect(await pruneRecords(pool, options)).toEqual({ results: 0, deliveries: 0, events: 0, bodies: 2, emptied: 1 });
      expect(await results.hl7Of('r-b0')).toBeUndefined();
      expect((await results.hl7Of('r-b1'))!.length).toBeGreaterThan(0);
      expect((await bodies.forRouting('r-b0'))!.normalized).toBeUndefined();
      expect((await bodies.forRouting('r-b1'))!.documents.get(doc.sha256)!.equals(pdf)).toBe(true);
      expect(await bodies.message((await bodies.outbound('d-b0'))!)).toBeUndefined();
      expect((await status.getDelivery('d-b0'))!.state).toBe('delivered');
      expect((await status.history('d-b0')).length).toBeGreaterThan(0);
      expect(await pruneRecords(pool, options)).toMatchObject({ emptied: 0, bodies: 0 });
      // Then the records go too, with the (emptied) bodies nobody else holds: the HL7 text and the attachments part.
      await pool.query(`update results set received_at = now() - interval '100 days' where result_id = 'r-b0'`);
      expect(await pruneRecords(pool, options)).toMatchObject({ results: 1, deliveries: 1, bodies: 2 });
      expect((await pool.query(`select count(*)::int as n from bodies where content is null`)).rows[0]).toEqual({ n: 0 });
    } finally {
      await pool.end();
    }
  });

  it('mssgw prune --dry-run says what would go', () => {
    const r = spawnSync(path.join(ROOT, 'services/gateway/bin/mssgw'), ['prune', '--dry-run'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^would remove \d+ results received before \d{4}-\d\d-\d\dT.* with every recipient final, \d+ recipients, \d+ events, \d+ bodies$/m);
    expect(r.stdout).toMatch(/^would empty the bodies of \d+ results over since before \d{4}-\d\d-\d\dT.* \(their records stay\)$/m);
  });
});

describe('the ACK and the commit', () => {
  let gateway: Gateway;
  let port: number;
  let queue: Queue;
  const t = tag();
  const result = (controlId: string) => makeCisisResult({ controlId, patient: PATIENTS[1]!, doctors: [{ ...DOCTORS[0]!, address: `st-${t}@cabinet-demo.mssante.test` }] });
  const postgres = (action: 'up' | 'down') => {
    const r = spawnSync('bash', [path.join(ROOT, 'deploy/local/postgres.sh'), action], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`postgres.sh ${action}: ${r.stderr}`);
  };

  beforeAll(async () => {
    const config = testConfig('store');
    gateway = await startGateway(config, ['intake']);
    port = gateway.intake!.listeners[0]!.port;
    queue = new Queue(QUEUES.intake, bullConnection(config));
  });
  afterAll(async () => {
    postgres('up');
    await queue?.close();
    await gateway?.stop();
  });

  it('answers AA only once the result is committed, and AE while PostgreSQL is down, then recovers by itself', async () => {
    const c = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 20_000 });
    await c.connect();
    const ok = await c.send(result(`ACK-${t}`));
    expect(ok.code).toBe('AA');
    // Read at the moment the ACK arrives: the row is there, committed.
    const committed = await gateway.ctx.pg.query('select result_id, acknowledged_at from results where control_id = $1', [`ACK-${t}`]);
    expect(committed.rows).toHaveLength(1);

    postgres('down');
    const refused = await c.send(result(`DOWN-${t}`));
    expect(refused.code).toBe('AE');
    expect(refused.raw).toContain('|207^Application internal error^HL70357|');
    // Nothing was queued for it: a job only ever follows a committed record.
    const jobs = await queue.getJobs(['waiting', 'active', 'completed', 'delayed', 'failed']);
    expect(jobs.map((j) => (j.data as { resultId: string }).resultId)).toEqual([(committed.rows[0] as { result_id: string }).result_id]);

    postgres('up');
    // The producer sends it again, as an MLLP sender does after an AE; the same process now records it.
    let again = await c.send(result(`DOWN-${t}`));
    for (let i = 0; again.code !== 'AA' && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 500));
      again = await c.send(result(`DOWN-${t}`));
    }
    expect(again.code).toBe('AA');
    expect((await gateway.ctx.pg.query('select 1 from results where control_id = $1', [`DOWN-${t}`])).rows).toHaveLength(1);
    await c.close();
  }, 180_000);
});

describe('a gateway whose message store is unreachable', () => {
  it('does not start, and says which server, never the password', () => {
    const config = sandboxStore();
    const r = spawnSync(path.join(ROOT, 'services/gateway/bin/mssgw'), ['start', 'intake'], {
      encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, MSSGW_POSTGRES_URL: 'postgres://mssgw@127.0.0.1:1/mssgw', MSSGW_POSTGRES_CONNECT_TIMEOUT_MS: '2000', MSSGW_HTTP_PORT: '0' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/PostgreSQL at 127\.0\.0\.1:1\/mssgw \(schema mssgw\) is unavailable/);
    const password = spawnSync('cat', [config.password!.file!], { encoding: 'utf8' }).stdout.trim();
    expect(password.length).toBeGreaterThan(8);
    expect(r.stderr + r.stdout).not.toContain(password);
  });

  it('mssgw migrate --status lists what is applied', () => {
    const r = spawnSync(path.join(ROOT, 'services/gateway/bin/mssgw'), ['migrate', '--status'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    for (const m of readMigrations()) expect(r.stdout).toMatch(new RegExp(`applied +${String(m.version).padStart(4, '0')} ${m.name}`));
  });
});
