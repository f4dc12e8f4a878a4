import { Kafka, logLevel } from 'kafkajs';
import { MllpClient } from '@mssgw/hl7';
import { DOCTORS, makeCisisResult, PATIENTS } from '../test/support/samples.ts';
import { cpuSecondsOf, kafkaBrokerPid, redisServerPid, startGatewayProcess } from './process.ts';
import { percentile, round } from './stats.ts';

const templates = PATIENTS.map((p, i) => makeCisisResult({ controlId: 'CTRLID', patient: p, doctors: [DOCTORS[i]!], toPatient: true }));
/** A CI-SIS ORU with its own control id (templates built once: the sender must not be the bottleneck). */
const message = (i: number, tag: string) => templates[i % templates.length]!.replace('|CTRLID|', `|B-${tag}-${i}|`);

const MLLP_PORT = 12575;
const HTTP_PORT = 18089;
const baseEnv = (tag: string, extra: Record<string, string> = {}) => ({
  MSSGW_ENVIRONMENT: 'test',
  MSSGW_REDIS_PREFIX: `bench-${tag}`,
  MSSGW_POSTGRES_SCHEMA: `bench_${tag}`,
  MSSGW_HTTP_PORT: String(HTTP_PORT),
  MSSGW_MLLP_LISTENERS: JSON.stringify([{ source: 'lab', host: '127.0.0.1', port: MLLP_PORT, maxMessageBytes: 33554432, idleTimeoutMs: 300000 }]),
  ...extra,
});

export interface IntakeFigures {
  mllpAckedPerSecond: number;
  mllpAckP50Ms: number;
  mllpAckP99Ms: number;
  intakePeakRssMb: number;
  pacedRatePerSecond: number;
  pacedAckP50Ms: number;
  pacedAckP99Ms: number;
  messageBytes: number;
  kafkaQueuedPerSecond: number;
  /** CPU of the intake process per record, over the same steady state. */
  kafkaCpuMsPerRecord: number;
  kafkaRedisCpuMsPerRecord: number;
  kafkaBrokerCpuMsPerRecord: number;
}

/** 8 senders as fast as ACKs come back, then a paced 1,000 results/s, on the real Redis; then Kafka. */
export async function benchIntake(opts: { seconds: number; kafkaMessages: number }): Promise<IntakeFigures> {
  const tag = Date.now().toString(36);
  const gateway = await startGatewayProcess(['intake'], baseEnv(tag), MLLP_PORT);
  const port = MLLP_PORT;
  const payloads = Array.from({ length: 20_000 }, (_, i) => Buffer.from(message(i, `p${tag}`)));
  const clients = await Promise.all(Array.from({ length: 8 }, async () => {
    const c = new MllpClient({ host: '127.0.0.1', port });
    await c.connect();
    return c;
  }));

  // Closed loop: each sender sends its next result when the previous one is acknowledged.
  let seq = 0;
  const latencies: number[] = [];
  const until = performance.now() + opts.seconds * 1000;
  const t0 = performance.now();
  await Promise.all(clients.map(async (c, k) => {
    while (performance.now() < until) {
      const i = seq++;
      const start = performance.now();
      const ack = await c.send(Buffer.from(message(i + 10_000 * (k + 1), tag)));
      latencies.push(performance.now() - start);
      if (ack.code !== 'AA') throw new Error(`unexpected ${ack.code}: ${ack.text}`);
    }
  }));
  const closedRate = latencies.length / ((performance.now() - t0) / 1000);

  // Open loop at 1,000 results/s: 8 senders at 125/s each, pipelined so that a slow ACK does not slow the sending.
  const paced: number[] = [];
  const rate = 1000;
  const pending: Promise<void>[] = [];
  const p0 = performance.now();
  for (let i = 0; i < rate * Math.min(opts.seconds, 10); i++) {
    const due = p0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const c = clients[i % clients.length]!;
    const sentAt = performance.now();
    pending.push(c.send(payloads[i % payloads.length]!).then(() => void paced.push(performance.now() - sentAt)));
  }
  await Promise.all(pending);
  await Promise.all(clients.map((c) => c.close()));
  const intakePeakRssMb = gateway.peakRssMb();
  await gateway.stop();

  const kafka = await benchKafka(opts.kafkaMessages, tag);
  return {
    mllpAckedPerSecond: round(closedRate, 0),
    mllpAckP50Ms: round(percentile(latencies, 50), 2),
    mllpAckP99Ms: round(percentile(latencies, 99), 2),
    pacedRatePerSecond: rate,
    pacedAckP50Ms: round(percentile(paced, 50), 2),
    pacedAckP99Ms: round(percentile(paced, 99), 2),
    messageBytes: payloads[0]!.length,
    intakePeakRssMb: round(intakePeakRssMb, 0),
    kafkaQueuedPerSecond: round(kafka.perSecond, 0),
    kafkaCpuMsPerRecord: round(kafka.cpuMsPerRecord, 3),
    kafkaRedisCpuMsPerRecord: round(kafka.redisCpuMsPerRecord, 3),
    kafkaBrokerCpuMsPerRecord: round(kafka.brokerCpuMsPerRecord, 3),
  };
}

/** Produces N raw HL7 results, then measures the gateway consuming and queueing them all (offsets committed). */
export interface KafkaFigures {
  perSecond: number;
  /** CPU per record over the steady state: the intake process, the sandbox's Redis, and the broker (its JVM). */
  cpuMsPerRecord: number;
  redisCpuMsPerRecord: number;
  brokerCpuMsPerRecord: number;
}

export async function benchKafka(n: number, tag: string): Promise<KafkaFigures> {
  const topic = `bench-${tag}.in`;
  const groupId = `bench-${tag}`;
  const kafka = new Kafka({ clientId: 'mssgw-bench', brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 4 }] });
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < n; i += 100) {
    await producer.send({
      topic,
      messages: Array.from({ length: Math.min(100, n - i) }, (_, j) => ({ key: String(i + j), value: message(i + j, `k${tag}`) })),
    });
  }
  await producer.disconnect();
  const gateway = await startGatewayProcess(['intake'], baseEnv(`k${tag}`, { MSSGW_KAFKA_ENABLED: 'true', MSSGW_KAFKA_INTAKE_TOPICS: topic, MSSGW_KAFKA_GROUP_ID: groupId }), MLLP_PORT);
  // Steady state: from the first committed offset (process start and the group join are not throughput).
  const [redisPid, brokerPid] = [redisServerPid(), kafkaBrokerPid()];
  const cpuNow = () => ({ intake: gateway.cpuSeconds(), redis: cpuSecondsOf(redisPid), broker: cpuSecondsOf(brokerPid) });
  let first: { at: number; done: number; cpu: ReturnType<typeof cpuNow> } | undefined;
  for (;;) {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const done = offsets!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
    if (!first && done > 0) first = { at: performance.now(), done, cpu: cpuNow() };
    if (done >= n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - first!.at) / 1000;
  const cpu = cpuNow();
  const perRecord = (k: keyof typeof cpu) => ((cpu[k] - first!.cpu[k]) * 1000) / (n - first!.done);
  await gateway.stop();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  return {
    perSecond: (n - first!.done) / seconds,
    cpuMsPerRecord: perRecord('intake'), redisCpuMsPerRecord: perRecord('redis'), brokerCpuMsPerRecord: perRecord('broker'),
  };
}
