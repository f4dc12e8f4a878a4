import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { startGateway } from '../../services/gateway/src/start.ts';
import { withCutMailBody } from '../support/damaged.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

describe('Kafka intake: warnings and reasons (real broker)', () => {
  it('commits a result taken with warnings and logs their codes; dead-letters refusals with their reason code', async () => {
    const t = tag();
    const patient = PATIENTS[1]!;
    const doctor = { ...DOCTORS[0]!, address: `ktol-${t}@cabinet-demo.mssante.test` };
    const cutBody = (controlId: string) => withCutMailBody(makeCisisResult({ controlId, patient, doctors: [doctor], bodyPs: 'Cher confrère, voici le compte rendu.' }));
    const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'mssgw-ktol-')), 'gateway.log');
    const config = testConfig('ktol', (c) => {
      c.kafka.enabled = true;
      c.logLevel = 'info';
      c.mllp.listeners = [];
      // Envelopes from this producer are read strictly; the topic's own (raw HL7) records with the defaults.
      c.intake.tolerance['ris-legacy'] = { mailBody: 'reject', flagMatrix: 'strict' };
    });
    const topic = config.kafka.intakeTopics[0]!;
    const kafka = new Kafka({ clientId: 'mssgw-test', brokers: config.kafka.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }, { topic: config.kafka.deadLetterTopic, numPartitions: 1 }] });
    await producer.send({
      topic,
      messages: [
        { key: 'a', value: cutBody(`KT1-${t}`) },
        { key: 'b', value: JSON.stringify({ schema: 'mssgw.result.v1', source: 'ris-legacy', hl7: cutBody(`KT2-${t}`) }) },
        { key: 'c', value: 'this is not HL7' },
        { key: 'd', value: JSON.stringify({ schema: 'mssgw.result.v2', hl7: 'MSH|^~\\&|' }) },
      ],
    });
    process.env['MSSGW_LOG_FILE'] = logFile;
    const gateway = await startGateway(config, ['intake']);
    const dlq = kafka.consumer({ groupId: `ktol-dlq-${t}` });
    try {
      await waitFor('the warned result queued', async () => (await gateway.ctx.status.resultsByControlId(`KT1-${t}`)).length === 1, 60_000);
      await waitFor('every offset committed', async () => {
        const [o] = await admin.fetchOffsets({ groupId: config.kafka.groupId, topics: [topic] });
        return Number(o!.partitions[0]!.offset) === 4;
      }, 60_000);
      expect(await gateway.ctx.status.resultsByControlId(`KT2-${t}`)).toEqual([]);
      await dlq.connect();
      await dlq.subscribe({ topic: config.kafka.deadLetterTopic, fromBeginning: true });
      const dead: Record<string, string>[] = [];
      void dlq.run({
        eachMessage: ({ message }) => Promise.resolve(void dead.push(Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])))),
      });
      await waitFor('three dead letters', () => Promise.resolve(dead.length >= 3), 30_000);
      expect(dead.map((h) => [h['mssgw-ack-code'], h['mssgw-error-code'], h['mssgw-reason']])).toEqual([
        ['AE', '102', 'CORPSMAIL_BASE64'],
        ['AR', '100', 'NOT_HL7'],
        ['AR', '', 'ENVELOPE_INVALID'],
      ]);
    } finally {
      await dlq.disconnect();
      await gateway.stop();
      delete process.env['MSSGW_LOG_FILE'];
      await Promise.all([producer.disconnect(), admin.disconnect()]);
    }
    const log = readFileSync(logFile, 'utf8');
    const warned = log.split('\n').filter((l) => l.includes('result taken with warnings')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warned.map((l) => [l['controlId'], l['transport'], l['source'], l['warnings']])).toEqual([[`KT1-${t}`, 'kafka', topic, ['CORPSMAIL_BASE64']]]);
    for (const secret of [patient.family, patient.given, patient.ins, doctor.address]) expect(log, secret).not.toContain(secret);
  }, 120_000);
});
