import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { Hl7Error } from '@mssgw/hl7';
import { KAFKA_RECORD_ATTEMPTS, startKafkaIntake, type IntakeOutcome, type ResultIntake } from '@mssgw/intake';
import { metrics } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { SANDBOX, tag, testConfig, waitFor } from '../support/env.ts';

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
    // The reason and where, never the bytes refused (loggableReason).
    expect(dead.headers['mssgw-error']).toBe('NOT_HL7 at MSH');

    const committed = await waitFor('offsets committed', async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: config.kafka.groupId, topics: [topic] });
      const sum = offsets!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
      return sum === 3 ? sum : undefined;
    });
    expect(committed).toBe(3);
  }, 90_000);

  /** A topic of its own with one partition (offset i is result i) and its group's committed offset. */
  async function onePartitionTopic(name: string, kafka: Partial<GatewayConfig['kafka']> = {}) {
    const c: GatewayConfig = { ...config, kafka: { ...config.kafka, intakeTopics: [`test-${name}-${t}`], groupId: `${name}-${t}`, ...kafka } };
    const topic = c.kafka.intakeTopics[0]!;
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    const committed = async () => {
      const [o] = await admin.fetchOffsets({ groupId: c.kafka.groupId, topics: [topic] });
      return Math.max(0, Number(o!.partitions[0]!.offset));
    };
    return { config: c, topic, committed };
  }
  /** A gateway whose real intake a test wraps and hands to its own consumer. */
  const intakeHost = (c: GatewayConfig) => startGateway({ ...c, kafka: { ...c.kafka, enabled: false }, mllp: { listeners: [] } }, ['intake']);
  const queuedPerResult = (host: Gateway, ids: string[]) => Promise.all(ids.map(async (id) => (await host.ctx.status.resultsByControlId(id)).length));
  /** A dead-letter topic of the test's own, and the headers of the first `count` records it holds. */
  async function deadLetterTopic(name: string) {
    const topic = `test-${name}-dlq-${t}`;
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    const headers = async (count: number) => {
      const dlq = kafka.consumer({ groupId: `${name}-dlq-${t}` });
      try {
        await dlq.connect();
        await dlq.subscribe({ topic, fromBeginning: true });
        const dead: Record<string, string>[] = [];
        void dlq.run({ eachMessage: ({ message }) => Promise.resolve(void dead.push(Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])))) });
        await waitFor(`${count} dead letters`, () => Promise.resolve(dead.length >= count), 30_000);
        return dead;
      } finally {
        await dlq.disconnect();
      }
    };
    return { topic, headers };
  }

  it('stops committing at a result the queue could not take, pauses the partition, and consumes it again from there', async () => {
    const { config: flakyConfig, topic, committed } = await onePartitionTopic('flaky');
    const n = 30;
    const id = (i: number) => `KF-${t}-${i}`;
    await producer.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: String(i), value: makeCisisResult({ controlId: id(i), patient: PATIENTS[i % 3]!, doctors }) })) });

    // The real intake, except that the 11th result meets the answer a Redis outage gives, twice.
    const host = await intakeHost(flakyConfig);
    const real = host.intake!.intake;
    const attempts = new Map<string, number>();
    const seenCommitted: number[] = [];
    let outages = 2;
    const flaky: Pick<ResultIntake, 'accept'> = {
      async accept(bytes, source, transport): Promise<IntakeOutcome> {
        const controlId = /\|(KF-[^|]+)\|/.exec(bytes.toString('latin1'))![1]!;
        attempts.set(controlId, (attempts.get(controlId) ?? 0) + 1);
        if (controlId === id(10) && outages > 0) {
          outages--;
          seenCommitted.push(await committed());
          const error = new Hl7Error('applicationError', 'the gateway could not queue the result: the intake queue (Redis) did not answer');
          return { code: 'AE', ack: '', controlId, error };
        }
        return real.accept(bytes, source, transport);
      },
    };
    const gauge = async () => (await metrics.kafkaPartitionsPaused.get()).values[0]?.value ?? 0;
    const rewinds = async () => (await metrics.kafkaRewinds.get()).values.find((v) => v.labels.topic === topic)?.value ?? 0;
    let pausedSeen = 0;
    const sampler = setInterval(() => void gauge().then((v) => (pausedSeen = Math.max(pausedSeen, v))), 50);
    const consumer = await startKafkaIntake(flakyConfig, flaky, host.ctx.log);
    let queued: number[];
    try {
      await waitFor('every offset committed', async () => (await committed()) === n, 60_000);
      queued = await queuedPerResult(host, Array.from({ length: n }, (_, i) => id(i)));
    } finally {
      clearInterval(sampler);
      await consumer.stop();
      await host.stop();
    }
    expect(attempts.get(id(10))).toBe(3);
    // Nothing past the failed record was committed while it failed; the ten before it were.
    expect(seenCommitted).toEqual([expect.any(Number), 10]);
    expect(seenCommitted[0]).toBeLessThanOrEqual(10);
    // The records after it in the same batch were consumed again, and each result is queued once.
    expect(attempts.get(id(11))).toBeGreaterThanOrEqual(2);
    expect(attempts.get(id(9))).toBe(1);
    expect(queued).toEqual(Array(n).fill(1));
    // The paused partition was on the gauge, and is off it again; each outage rewound it once.
    expect(pausedSeen).toBe(1);
    expect(await gauge()).toBe(0);
    expect(await rewinds()).toBe(2);
  }, 90_000);

  it('dead-letters a record that keeps failing while the store and the queue answer, and moves its partition on', async () => {
    const dlq = await deadLetterTopic('poison');
    const { config: poisonConfig, topic, committed } = await onePartitionTopic('poison', { deadLetterTopic: dlq.topic });
    const n = 8;
    const id = (i: number) => `KP-${t}-${i}`;
    await producer.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: String(i), value: makeCisisResult({ controlId: id(i), patient: PATIENTS[i % 3]!, doctors }) })) });
    const host = await intakeHost(poisonConfig);
    const real = host.intake!.intake;
    let poisonAttempts = 0;
    // The 4th record fails as an outage would, every time, while PostgreSQL and Redis answer.
    const poisoned: Pick<ResultIntake, 'accept'> = {
      async accept(bytes, source, transport): Promise<IntakeOutcome> {
        const controlId = /\|(KP-[^|]+)\|/.exec(bytes.toString('latin1'))![1]!;
        if (controlId !== id(3)) return real.accept(bytes, source, transport);
        poisonAttempts++;
        return { code: 'AE', ack: '', controlId, error: new Hl7Error('applicationError', 'the gateway could not queue the result: it failed') };
      },
    };
    const consumer = await startKafkaIntake(poisonConfig, poisoned, host.ctx.log, () => Promise.resolve(true));
    try {
      await waitFor('every offset committed', async () => (await committed()) === n, 60_000);
      expect(poisonAttempts).toBe(KAFKA_RECORD_ATTEMPTS);
      expect(await queuedPerResult(host, Array.from({ length: n }, (_, i) => id(i)))).toEqual([1, 1, 1, 0, 1, 1, 1, 1]);
      const [headers] = await dlq.headers(1);
      expect(headers).toMatchObject({ 'mssgw-reason': 'RETRIES_EXHAUSTED', 'mssgw-ack-code': 'AE', 'mssgw-source-offset': '3' });
    } finally {
      await consumer.stop();
      await host.stop();
    }
  }, 90_000);

  it('dead-letters an envelope naming an unconfigured source, and broken JSON without quoting it', async () => {
    const dlq = await deadLetterTopic('envelope');
    const { config: envConfig, topic, committed } = await onePartitionTopic('envelope', { deadLetterTopic: dlq.topic });
    await producer.send({
      topic,
      messages: [
        { key: 'a', value: JSON.stringify({ schema: 'mssgw.result.v1', source: 'made-up-source', hl7: makeCisisResult({ controlId: `KE1-${t}`, patient: PATIENTS[0]!, doctors }) }) },
        { key: 'b', value: '{ "schema": "mssgw.result.v1", "hl7": DUPONT^JEANNE^^^^^L|19800101' },
        { key: 'c', value: JSON.stringify({ schema: 'mssgw.result.v1', source: 'lab', hl7: makeCisisResult({ controlId: `KE3-${t}`, patient: PATIENTS[1]!, doctors }) }) },
      ],
    });
    const host = await intakeHost(envConfig);
    const consumer = await startKafkaIntake(envConfig, host.intake!.intake, host.ctx.log);
    try {
      await waitFor('every offset committed', async () => (await committed()) === 3, 60_000);
      expect(await queuedPerResult(host, [`KE1-${t}`, `KE3-${t}`])).toEqual([0, 1]);
      const dead = await dlq.headers(2);
      expect(dead.map((h) => [h['mssgw-ack-code'], h['mssgw-reason'], h['mssgw-error']])).toEqual([
        ['AR', 'SOURCE_UNKNOWN', 'the envelope names a source the configuration does not'],
        ['AR', 'ENVELOPE_INVALID', 'invalid envelope: not valid JSON'],
      ]);
    } finally {
      await consumer.stop();
      await host.stop();
    }
  }, 90_000);

  it('with many small batches in flight, commits an offset only once every result before it is queued', async () => {
    // 64 KB fetches: about 8 results per batch, so batches overlap in the partition's lane. Some results take longer
    // to queue than the ones after them: a lane that committed as each batch finished would commit past them.
    const { config: laneConfig, topic, committed: committedOffset } = await onePartitionTopic('lanes', { maxBytesPerPartition: 64 * 1024 });
    const n = 400;
    const id = (i: number) => `KL-${t}-${i}`;
    // Sent 5 at a time: the broker returns whole record batches, so the fetches are this small only if they are.
    for (let i = 0; i < n; i += 5) {
      await producer.send({ topic, messages: Array.from({ length: 5 }, (_, j) => ({ key: String(i + j), value: makeCisisResult({ controlId: id(i + j), patient: PATIENTS[(i + j) % 3]!, doctors }) })) });
    }
    const host = await intakeHost(laneConfig);
    const real = host.intake!.intake;
    const queued = new Set<number>();
    const slow: Pick<ResultIntake, 'accept'> = {
      async accept(bytes, source, transport): Promise<IntakeOutcome> {
        const i = Number(/\|KL-[^-|]+-(\d+)\|/.exec(bytes.toString('latin1'))![1]);
        if (i % 40 < 3) await new Promise((r) => setTimeout(r, 250));
        const outcome = await real.accept(bytes, source, transport);
        queued.add(i);
        return outcome;
      },
    };
    const firstNotQueued = () => {
      let k = 0;
      while (queued.has(k)) k++;
      return k;
    };
    const consumer = await startKafkaIntake(laneConfig, slow, host.ctx.log);
    const seen: { committed: number; firstNotQueued: number }[] = [];
    try {
      await waitFor('every offset committed', async () => {
        const committed = await committedOffset();
        seen.push({ committed, firstNotQueued: firstNotQueued() });
        return committed === n;
      }, 60_000, 10);
      expect(await queuedPerResult(host, Array.from({ length: n }, (_, i) => id(i)))).toEqual(Array(n).fill(1));
    } finally {
      await consumer.stop();
      await host.stop();
    }
    // Many commits on the way, never past a result not yet queued, never backwards.
    expect(new Set(seen.map((x) => x.committed)).size).toBeGreaterThan(3);
    expect(seen.filter((x) => x.committed > x.firstNotQueued)).toEqual([]);
    const offsets = seen.map((x) => x.committed);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  }, 90_000);

  /** A result on a topic of its own: refused through one secured listener setting (nothing committed), then queued. */
  async function consumesOnlyWith(name: string, secured: Partial<GatewayConfig['kafka']>, refused: Partial<GatewayConfig['kafka']>, refusal: RegExp) {
    const { config: plainConfig, topic, committed } = await onePartitionTopic(name);
    const withKafka = (k: Partial<GatewayConfig['kafka']>): GatewayConfig => ({ ...plainConfig, kafka: { ...plainConfig.kafka, ...k } });
    const id = `KS-${name}-${t}`;
    await producer.send({ topic, messages: [{ key: '0', value: makeCisisResult({ controlId: id, patient: PATIENTS[0]!, doctors }) }] });
    const host = await intakeHost(plainConfig);
    try {
      await expect(startKafkaIntake(withKafka(refused), host.intake!.intake, host.ctx.log)).rejects.toThrow(refusal);
      expect(await committed()).toBe(0);
      const consumer = await startKafkaIntake(withKafka(secured), host.intake!.intake, host.ctx.log);
      try {
        await waitFor(`offset committed through ${name}`, async () => (await committed()) === 1, 30_000);
      } finally {
        await consumer.stop();
      }
      expect(await queuedPerResult(host, [id])).toEqual([1]);
    } finally {
      await host.stop();
    }
  }
  /** The sandbox broker's secured listeners (deploy/local/kafka.sh) and their own CA. */
  const brokerTls = (file: string) => path.join(SANDBOX, 'kafka/tls', file);

  it('consumes over TLS with SASL/PLAIN; a wrong password stops the consumer with the broker\'s reason', async () => {
    const wrong = path.join(tmpdir(), `mssgw-kafka-wrong-${t}`);
    writeFileSync(wrong, 'not-the-password');
    const sasl = (passwordFile: string) => ({
      brokers: ['127.0.0.1:19094'], tls: { caFile: brokerTls('ca.pem') },
      sasl: { mechanism: 'plain' as const, username: 'gateway', password: { file: passwordFile } },
    });
    await consumesOnlyWith('sasl', sasl(path.join(SANDBOX, 'secrets/kafka-gateway-password')), sasl(wrong), /SASL PLAIN authentication failed/);
  }, 90_000);

  it('consumes over mutual TLS with the client certificate; without it the broker refuses the connection', async () => {
    const mtls = { brokers: ['127.0.0.1:19095'], tls: { caFile: brokerTls('ca.pem'), certFile: brokerTls('client.pem'), keyFile: brokerTls('client.key') } };
    await consumesOnlyWith('mtls', mtls, { ...mtls, tls: { caFile: brokerTls('ca.pem') } }, /bad certificate/);
  }, 90_000);
});
