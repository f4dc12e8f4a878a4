import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

describe('Kafka intake against the real broker', () => {
  let config: GatewayConfig;
  let gateway: Gateway | undefined;
  const t = tag();
  const kafka = new Kafka({ clientId: 'mssgw-test', brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer();
  const doctors = [{ ...DOCTORS[0]!, address: `kafka-${t}@cabinet-demo.mssante.test` }];

  beforeAll(async () => {
    config = testConfig('kafka', (c) => (c.kafka.enabled = true));
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: config.kafka.intakeTopics[0]!, numPartitions: 2 }, { topic: config.kafka.deadLetterTopic, numPartitions: 1 }],
    });
    await producer.connect();
  });
  afterAll(async () => {
    await gateway?.stop();
    await producer.disconnect();
    await admin.disconnect();
  });

  it('round-trips a message through the broker (produce, consume)', async () => {
    const topic = `test-roundtrip-${t}`;
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic }] });
    await producer.send({ topic, messages: [{ key: 'k', value: 'hello broker' }] });
    const consumer = kafka.consumer({ groupId: `rt-${t}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got = await new Promise<string>((resolve) => void consumer.run({ eachMessage: ({ message }) => Promise.resolve(resolve(message.value!.toString())) }));
    await consumer.disconnect();
    expect(got).toBe('hello broker');
  });

  it('queues raw HL7 and JSON-envelope results, dead-letters a bad one with its reason, and commits every offset', async () => {
    const topic = config.kafka.intakeTopics[0]!;
    await producer.send({
      topic,
      messages: [
        { key: 'a', value: makeCisisResult({ controlId: `K1-${t}`, patient: PATIENTS[0]!, doctors }) },
        { key: 'b', value: JSON.stringify({ schema: 'mssgw.result.v1', source: 'lab', hl7: makeCisisResult({ controlId: `K2-${t}`, patient: PATIENTS[1]!, doctors }) }) },
        { key: 'c', value: 'this is not HL7' },
      ],
    });
    gateway = await startGateway(config, ['intake', 'router']);
    for (const id of [`K1-${t}`, `K2-${t}`]) {
      await waitFor(`result ${id}`, async () => (await gateway!.ctx.status.resultsByControlId(id)).length === 1, 60_000);
    }

    const dlq = kafka.consumer({ groupId: `dlq-${t}` });
    await dlq.connect();
    await dlq.subscribe({ topic: config.kafka.deadLetterTopic, fromBeginning: true });
    const dead = await new Promise<{ value: string; headers: Record<string, string> }>((resolve) =>
      void dlq.run({
        eachMessage: ({ message }) =>
          Promise.resolve(resolve({ value: message.value!.toString(), headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])) })),
      }),
    );
    await dlq.disconnect();
    expect(dead.value).toBe('this is not HL7');
    expect(dead.headers).toMatchObject({ 'mssgw-ack-code': 'AR', 'mssgw-source-topic': topic });
    expect(dead.headers['mssgw-error']).toMatch(/no MSH segment/);

    const committed = await waitFor('offsets committed', async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: config.kafka.groupId, topics: [topic] });
      const sum = offsets!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
      return sum === 3 ? sum : undefined;
    });
    expect(committed).toBe(3);
  }, 90_000);
});
