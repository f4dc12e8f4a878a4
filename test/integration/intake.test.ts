import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Client as Hl7Client, Message } from 'node-hl7-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, MllpClient, MllpDecoder, parseAck } from '@mssgw/hl7';
import { DeliveryJob, QUEUES } from '@mssgw/queue';
import { bullConnection } from '@mssgw/runtime';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { withCutMailBody } from '../support/damaged.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

describe('MLLP intake', () => {
  let gateway: Gateway;
  let port: number;
  const t = tag();
  const result = (controlId: string) => makeCisisResult({ controlId, patient: PATIENTS[1]!, doctors: [{ ...DOCTORS[0]!, address: `in-${t}@cabinet-demo.mssante.test` }] });

  beforeAll(async () => {
    gateway = await startGateway(testConfig('intake', (c) => (c.mllp.listeners[0]!.maxMessageBytes = 64 * 1024)), ['intake', 'router', 'dispatcher']);
    port = gateway.intake!.listeners[0]!.port;
  });
  afterAll(async () => gateway?.stop());

  it('answers AE with an ERR segment to an invalid result, and the connection keeps working', async () => {
    const c = new MllpClient({ host: '127.0.0.1', port });
    await c.connect();
    const bad = await c.send(result(`BAD-${t}`).replace('||||||F|\rPRT', '||||||D|\rPRT'));
    expect(bad.code).toBe('AE');
    expect(bad.raw).toMatch(/\rERR\|\|OBX\^\d+\^11\|103\^Table value not found\^HL70357\|E\|ACTION_MISMATCH\^[^|^]+\^99MSSGW\|\|\|OBX-11 "D" contradicts ORC-1 "NW"\r/);
    expect((await c.send(result(`OK-${t}`))).code).toBe('AA');
    await c.close();
  });

  it('rejects an oversized frame with AR without buffering it, and non-HL7 bytes without answering them', async () => {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const decoder = new MllpDecoder(1024 * 1024);
    const acks: string[] = [];
    socket.on('data', (d: Buffer) => decoder.push(d).forEach((e) => e.type === 'message' && acks.push(parseAck(e.payload).code)));
    socket.write('GARBAGE BEFORE ANY FRAME\r\n');
    socket.write(frame('MSH|' + 'x'.repeat(200 * 1024)));
    socket.write(frame(result(`AFTER-${t}`)));
    await waitFor('two answers', () => Promise.resolve(acks.length >= 2));
    expect(acks).toEqual(['AR', 'AA']);
    socket.destroy();
  });

  it('acknowledges the same message twice but sends it once', async () => {
    const c = new MllpClient({ host: '127.0.0.1', port });
    await c.connect();
    const controlId = `DUP-${t}`;
    expect((await c.send(result(controlId))).code).toBe('AA');
    expect((await c.send(result(controlId))).code).toBe('AA');
    await c.close();
    // The intake itself recognises it (the log and mssgw_results_duplicate_total say so).
    const third = await gateway.intake!.intake.accept(Buffer.from(result(controlId)), 'lab', 'mllp');
    expect([third.code, third.duplicate]).toEqual(['AA', true]);
    const [resultId, ...others] = await gateway.ctx.status.resultsByControlId(controlId);
    expect(others).toEqual([]);
    const r = await waitFor('the delivery to be submitted', async () => {
      const x = await gateway.ctx.status.getResult(resultId!);
      return x?.deliveries.every((d) => d.state === 'submitted') && x.deliveries.length ? x : undefined;
    });
    expect(r.deliveries).toHaveLength(1);
    const history = await gateway.ctx.status.history(r.deliveries[0]!.deliveryId);
    expect(history.filter((h) => h.state === 'submitted')).toHaveLength(1);
  });

  it('sends a document once even when it comes again under another control id, but sends its deletion', async () => {
    const c = new MllpClient({ host: '127.0.0.1', port });
    await c.connect();
    const doctors = [{ ...DOCTORS[0]!, address: `docv-${t}@cabinet-demo.mssante.test` }];
    const first = makeCisisResult({ controlId: `DOCV-${t}`, patient: PATIENTS[1]!, doctors });
    // Same CDA (same ClinicalDocument/id and version), new MSH-10: the producer resent it.
    const again = first.replace(`|DOCV-${t}|P|`, `|DOCV2-${t}|P|`);
    const deletion = makeCisisResult({ controlId: `DOCV-${t}`, patient: PATIENTS[1]!, doctors, action: 'delete' }).replace(`|DOCV-${t}|P|`, `|DOCV3-${t}|P|`);
    for (const m of [first, again, deletion]) expect((await c.send(m)).code).toBe('AA');
    await c.close();
    const ids = await Promise.all([`DOCV-${t}`, `DOCV2-${t}`, `DOCV3-${t}`].map(async (ctl) => (await gateway.ctx.status.resultsByControlId(ctl))[0]!));
    const results = await waitFor('all three routed', async () => {
      const r = await Promise.all(ids.map((id) => gateway.ctx.status.getResult(id)));
      return r.every((x) => x?.routedAt) ? r : undefined;
    });
    expect(results.map((r) => [r!.deliveries.length, r!.duplicateOf ?? null])).toEqual([[1, null], [0, ids[0]], [1, null]]);
  });

  it('interoperates with a third-party MLLP client (node-hl7-client)', async () => {
    const text = 'MSH|^~\\&|SIL|LAB|MSSGW|CHU|20261126120000||ORU^R01^ORU_R01|NHC-' + t + '|P|2.5\rPID|||1^^^X^PI||DOE^JANE\rOBR|1|||11502-2^CR^LN\rOBX|1|TX|11502-2^CR^LN||Compte rendu normal||||||F\r';
    const client = new Hl7Client({ host: '127.0.0.1', version: '2.5' });
    const ack = await new Promise<string>((resolve, reject) => {
      const conn = client.createConnection({ port, waitAck: true, version: '2.5' }, async (res) => {
        resolve(res.getMessage().get('MSA.1').toString());
        await conn.close();
      });
      conn.on('client.error', reject);
      void conn.sendMessage(new Message({ text }));
    });
    expect(ack).toBe('AA');
  });
});

/** Results handed to the intake four per millisecond, whatever Redis answers: flushes overlap the ones still answered. */
async function acceptPaced(gateway: Gateway, messages: Buffer[]) {
  const pending = [];
  for (const [i, m] of messages.entries()) {
    pending.push(gateway.intake!.intake.accept(m, 'lab', 'mllp'));
    if (i % 4 === 3) await new Promise((r) => setTimeout(r, 1));
  }
  return Promise.all(pending);
}

describe('intake under a burst', () => {
  it('queues a burst of concurrent results (more than one flush) each once, and flags the repeats', async () => {
    const gateway = await startGateway(testConfig('intake-burst'), ['intake']);
    const t = tag();
    try {
      // 300 distinct results, 20 of them sent twice within the same burst: more than one flush of 256.
      const ids = [...Array.from({ length: 300 }, (_, i) => `BURST-${t}-${i}`), ...Array.from({ length: 20 }, (_, i) => `BURST-${t}-${i * 7}`)];
      const message = (id: string) => Buffer.from(makeCisisResult({ controlId: id, patient: PATIENTS[2]!, doctors: [DOCTORS[1]!] }));
      const outcomes = await Promise.all(ids.map((id) => gateway.intake!.intake.accept(message(id), 'lab', 'mllp')));
      expect(outcomes.filter((o) => o.code !== 'AA')).toEqual([]);
      expect(outcomes.filter((o) => o.duplicate).map((o) => o.controlId).sort()).toEqual(ids.slice(300).sort());
      const counts = await gateway.intake!.intake.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed');
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(300);
      const again = await Promise.all(ids.slice(0, 5).map((id) => gateway.intake!.intake.accept(message(id), 'lab', 'mllp')));
      expect(again.map((o) => o.duplicate)).toEqual([true, true, true, true, true]);
    } finally {
      await gateway.stop();
    }
  });
  it('takes no new result for a repeat under sustained load, however the writes of successive flushes overlap', async () => {
    const gateway = await startGateway(testConfig('intake-load'), ['intake']);
    const t = tag();
    try {
      // Results keep arriving, a few every millisecond, whatever Redis answers: each flush is sent while the ones
      // before it are still being answered. Its documents, records and existence check must reach Redis before its
      // jobs, or a new result is taken for a repeat of itself (and a router could take a job before its documents).
      const message = (id: string) => Buffer.from(makeCisisResult({ controlId: id, patient: PATIENTS[0]!, doctors: [DOCTORS[2]!] }));
      const outcomes = await acceptPaced(gateway, Array.from({ length: 2000 }, (_, i) => message(`LOAD-${t}-${i}`)));
      expect(outcomes.filter((o) => o.code !== 'AA')).toEqual([]);
      expect(outcomes.filter((o) => o.duplicate).map((o) => o.controlId)).toEqual([]);
      const counts = await gateway.intake!.intake.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed');
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(2000);
    } finally {
      await gateway.stop();
    }
  });
  it('routes under sustained load with every mail and every delivery record committed before its delivery job', async () => {
    const gateway = await startGateway(testConfig('route-load'), ['intake', 'router']);
    const t = tag();
    const { config } = gateway.ctx;
    // The moment Redis writes a delivery job (its keyspace notifications are published as commands run, scripts and
    // transactions included), its recipient's record and its mail must already be committed in PostgreSQL.
    const admin = new Redis(config.redis.url);
    const [, notifying] = (await admin.config('GET', 'notify-keyspace-events')) as [string, string];
    await admin.config('SET', 'notify-keyspace-events', 'E$h');
    const subscriber = new Redis(config.redis.url);
    const firstWrite = new Map<string, number>();
    const jobKey = `${config.redis.prefix}:${QUEUES.send(config.mailboxes[0]!.address)}:`;
    const recordMissing: Promise<string | undefined>[] = [];
    let seq = 0;
    subscriber.on('pmessage', (_pattern: string, _channel: string, key: string) => {
      if (!key.startsWith(config.redis.prefix) || firstWrite.has(key)) return;
      firstWrite.set(key, seq++);
      const deliveryId = key.startsWith(jobKey) ? key.slice(jobKey.length) : '';
      if (/^d-[0-9a-f]+$/.test(deliveryId)) {
        recordMissing.push(gateway.ctx.pg.query('select 1 from deliveries d join mails m on m.mail_id = d.mail_id where d.delivery_id = $1 and m.head is not null', [deliveryId])
          .then((r) => (r.rowCount === 1 ? undefined : deliveryId)));
      }
    });
    await subscriber.psubscribe('__keyevent@*__:set', '__keyevent@*__:hset');
    try {
      const message = (id: string) => Buffer.from(makeCisisResult({ controlId: id, patient: PATIENTS[1]!, doctors: [DOCTORS[0]!], toPatient: true }));
      const outcomes = await acceptPaced(gateway, Array.from({ length: 300 }, (_, i) => message(`ROUTE-${t}-${i}`)));
      expect(outcomes.filter((o) => o.code !== 'AA')).toEqual([]);
      const sendQueue = new Queue(QUEUES.send(config.mailboxes[0]!.address), bullConnection(config));
      const jobs = await waitFor('the 600 delivery jobs', async () => {
        const waiting = await sendQueue.getJobs(['waiting', 'prioritized'], 0, -1);
        return waiting.length === 600 && waiting;
      }, 60_000);
      await sendQueue.close();
      // Jobs name their delivery only: no address, no mail, nothing of the patient in Redis.
      expect(jobs.filter((job) => Object.keys(DeliveryJob.parse(job.data)).some((k) => !['deliveryId', 'resultId', 'urgent'].includes(k)))).toEqual([]);
      expect(jobs.filter((job) => JSON.stringify(job.data).includes('@'))).toEqual([]);
      expect(recordMissing).toHaveLength(600);
      expect((await Promise.all(recordMissing)).filter(Boolean)).toEqual([]);
    } finally {
      await gateway.stop();
      subscriber.disconnect();
      await admin.config('SET', 'notify-keyspace-events', notifying);
      admin.disconnect();
    }
  }, 90_000);
});

describe('intake when Redis does not answer', () => {
  it('answers AE (retry later) rather than AA, since nothing was durably queued', async () => {
    const dead = net.createServer((s) => s.on('data', () => undefined)); // accepts, never answers
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadPort = (dead.address() as net.AddressInfo).port;
    const gateway = await startGateway(testConfig('noredis', (c) => (c.redis.url = `redis://127.0.0.1:${deadPort}`)), ['intake']);
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port, ackTimeoutMs: 20_000 });
    await c.connect();
    const ack = await c.send(makeCisisResult({ controlId: 'NOREDIS', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }));
    expect(ack.code).toBe('AE');
    expect(ack.raw).toContain('|207^Application internal error^HL70357|');
    await c.close();
    await Promise.race([gateway.stop(), new Promise((r) => setTimeout(r, 3_000))]);
    dead.close();
  }, 30_000);
});

describe('intake tolerance, per source', () => {
  const t = tag();
  const patient = PATIENTS[0]!;
  const doctor = { ...DOCTORS[0]!, address: `tol-${t}@cabinet-demo.mssante.test` };
  const cutBody = (controlId: string) => withCutMailBody(makeCisisResult({ controlId, patient, doctors: [doctor], bodyPs: 'Cher confrère, voici le compte rendu.' }));
  /** Professionals only, but not invisible to the patient: a combination the volet's table does not list. */
  const unlisted = (controlId: string) =>
    makeCisisResult({ controlId, patient, doctors: [doctor] })
      .replace('INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||Y', 'INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||N');

  it('answers AA with ERR W where the default tolerates, AE where a source is strict, and logs only reason codes', async () => {
    const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'mssgw-tol-')), 'gateway.log');
    process.env['MSSGW_LOG_FILE'] = logFile;
    const gateway = await startGateway(testConfig('tolerance', (c) => {
      c.logLevel = 'info';
      c.mllp.listeners.push({ ...c.mllp.listeners[0]!, source: 'ris-legacy' });
      c.intake.tolerance['ris-legacy'] = { mailBody: 'reject', flagMatrix: 'lenient' };
    }), ['intake']);
    try {
      const [lab, legacy] = gateway.intake!.listeners.map((l) => new MllpClient({ host: '127.0.0.1', port: l.port }));
      await Promise.all([lab!.connect(), legacy!.connect()]);
      const errs = (raw: string) => raw.split('\r').filter((l) => l.startsWith('ERR'));

      const warned = await lab!.send(cutBody(`TOL1-${t}`));
      expect(warned.code).toBe('AA');
      expect(errs(warned.raw)).toEqual([expect.stringMatching(/^ERR\|\|OBX\^\d+\^5\|102\^Data type error\^HL70357\|W\|CORPSMAIL_BASE64\^[^|]+\|\|\|OBX 12 \(CORPSMAIL_PS\): its Base64 is cut short or invalid; ignored, the default body is sent$/)]);
      expect(await gateway.ctx.status.resultsByControlId(`TOL1-${t}`)).toHaveLength(1);
      expect((await lab!.send(unlisted(`TOL2-${t}`))).code).toBe('AE');

      const strict = await legacy!.send(cutBody(`TOL3-${t}`));
      expect([strict.code, errs(strict.raw)]).toEqual(['AE', [expect.stringMatching(/\|102\^Data type error\^HL70357\|E\|CORPSMAIL_BASE64\^/)]]);
      const mapped = await legacy!.send(unlisted(`TOL4-${t}`));
      expect([mapped.code, errs(mapped.raw)]).toEqual(['AA', [expect.stringMatching(/\|103\^Table value not found\^HL70357\|W\|FLAG_COMBINATION\^.*; sent to professionals only \(lenient mapping\)$/)]]);
      await Promise.all([lab!.close(), legacy!.close()]);

      // A Kafka record goes through the same intake: its outcome carries the warnings, and the log names their codes.
      const kafka = await gateway.intake!.intake.accept(Buffer.from(cutBody(`TOL5-${t}`)), 'lab', 'kafka');
      expect([kafka.code, kafka.warnings?.map((w) => w.reason)]).toEqual(['AA', ['mailBodyBase64']]);
    } finally {
      await gateway.stop();
      delete process.env['MSSGW_LOG_FILE'];
    }
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('result taken with warnings')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['controlId'], l['transport'], l['warnings']])).toEqual([
      [`TOL1-${t}`, 'mllp', ['CORPSMAIL_BASE64']],
      [`TOL4-${t}`, 'mllp', ['FLAG_COMBINATION']],
      [`TOL5-${t}`, 'kafka', ['CORPSMAIL_BASE64']],
    ]);
    const log = readFileSync(logFile, 'utf8');
    for (const secret of [patient.family, patient.given, patient.ins, doctor.address]) expect(log, secret).not.toContain(secret);
  }, 60_000);
});
