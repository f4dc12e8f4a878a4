import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

describe('two gateway instances sharing an intake topic (one consumer group)', () => {
  const gateways: Gateway[] = [];
  afterAll(async () => {
    for (const g of gateways) await g.stop();
  });

  it('split its partitions between them and queue every result once', async () => {
    const t = tag();
    const base = testConfig('kgroup', (c) => (c.kafka.enabled = true));
    const topic = base.kafka.intakeTopics[0]!;
    const kafka = new Kafka({ clientId: 'mssgw-test', brokers: base.kafka.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2 }, { topic: base.kafka.deadLetterTopic }] });
    for (let i = 0; i < 2; i++) gateways.push(await startGateway({ ...base, mllp: { listeners: [] } }, ['intake']));
    const members = await waitFor('both instances in the group, one partition each', async () => {
      const { groups } = await admin.describeGroups([base.kafka.groupId]);
      const g = groups[0];
      return g?.state === 'Stable' && g.members.length === 2 ? g.members : undefined;
    }, 60_000, 500);
    expect(members).toHaveLength(2);

    const producer = kafka.producer();
    await producer.connect();
    const n = 60;
    await producer.send({
      topic,
      messages: Array.from({ length: n }, (_, i) => ({ key: String(i), value: makeCisisResult({ controlId: `KG-${t}-${i}`, patient: PATIENTS[i % 3]!, doctors: [DOCTORS[i % 3]!] }) })),
    });
    await producer.disconnect();
    const [offsets] = await waitFor('all offsets committed', async () => {
      const o = await admin.fetchOffsets({ groupId: base.kafka.groupId, topics: [topic] });
      return o[0]!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0) === n ? o : undefined;
    }, 60_000);
    // Both partitions got records, and so both instances consumed.
    expect(offsets!.partitions.every((p) => Number(p.offset) > 0)).toBe(true);
    const ids = await Promise.all(Array.from({ length: n }, (_, i) => gateways[0]!.ctx.status.resultsByControlId(`KG-${t}-${i}`)));
    expect(ids.map((x) => x.length)).toEqual(Array(n).fill(1));
    await admin.disconnect();
  }, 120_000);
});
