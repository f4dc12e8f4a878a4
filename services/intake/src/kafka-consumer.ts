import type { Admin, Batch, Consumer, KafkaMessage, Producer } from 'kafkajs';
import { z } from 'zod';
import type { GatewayConfig } from '@mssgw/config';
import { consumerLag, kafkaClient, type KafkaHealth } from '@mssgw/runtime';
import { loggableReason, Reason } from '@mssgw/hl7';
import { metrics, type Logger } from '@mssgw/telemetry';
import type { ResultIntake } from './pipeline.ts';

/**
 * Version 1 of the JSON envelope for producers that publish results natively; its JSON Schema is
 * services/intake/schemas/result-envelope.v1.json (a test keeps the two equal). A value that is not JSON is taken as
 * raw HL7 (ER7).
 */
export const ResultEnvelopeV1 = z.object({
  schema: z.literal('mssgw.result.v1'),
  source: z.string().regex(/^[a-z0-9][a-z0-9-]*$/).optional(),
  hl7: z.string().min(8),
}).strict();

export interface KafkaIntake {
  /** The group's lag per partition as last read, which partitions this member has, and whether it consumes. */
  health(): KafkaHealth;
  stop(): Promise<void>;
}

/** How often each intake reads its group's lag from the broker (two requests: ListOffsets, OffsetFetch). */
export const KAFKA_LAG_EVERY_MS = 10_000;

/** How long a partition stays paused after a transient failure, doubling up to the maximum while it lasts. */
const KAFKA_RETRY = { firstMs: 500, maxMs: 30_000 };

/**
 * Attempts at a record that fails while the message store and the queue answer (so not an outage: the record itself
 * is the trouble) before it is dead-lettered and its partition moves on.
 */
export const KAFKA_RECORD_ATTEMPTS = 5;

/** Records parsed before the event loop reads what came in meanwhile (the queue's replies among them). */
const SLICE = 64;

/** A record the consumer refuses before the intake sees it, with its reason code; its text quotes nothing of the record. */
class RecordRefusal extends Error {
  readonly reason: (typeof Reason)['envelopeInvalid' | 'sourceUnknown'];
  constructor(reason: RecordRefusal['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * The HL7 bytes of a record and the source they count for: the topic, or the envelope's source when the configuration
 * names it (a producer does not choose the routing rules, the sending mailbox or a metric label of its own).
 */
function unwrap(value: Buffer, topic: string, sources: ReadonlySet<string>): { bytes: Buffer; source: string } {
  const head = value.subarray(0, 64).toString('utf8').trimStart();
  if (!head.startsWith('{')) return { bytes: value, source: topic };
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    // V8's message quotes the text around the error: the patient's name, as like as not.
    throw new RecordRefusal(Reason.envelopeInvalid, 'invalid envelope: not valid JSON');
  }
  const parsed = ResultEnvelopeV1.safeParse(json);
  if (!parsed.success) {
    throw new RecordRefusal(Reason.envelopeInvalid, `invalid envelope: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'record'} ${i.code}`).join(', ')}`);
  }
  const source = parsed.data.source ?? topic;
  if (!sources.has(source)) throw new RecordRefusal(Reason.sourceUnknown, 'the envelope names a source the configuration does not');
  return { bytes: Buffer.from(parsed.data.hl7, 'utf8'), source };
}

/** One record's fate: queued (AA), refused for good (dead-letter), or not handled because the queue failed. */
interface RecordOutcome {
  message: KafkaMessage;
  code: string;
  controlId: string;
  reason: string;
  errorCode: string;
  /** The gateway's stable reason code (FLAG_COMBINATION, ENVELOPE_INVALID...), '' when the refusal has none. */
  reasonCode: string;
  transient: boolean;
}

/**
 * One partition's batches in flight. `tail` settles when the last batch handed over is committed (or given up);
 * `epoch` changes at each transient failure, so that the batches fetched after the failed one are not committed.
 */
interface PartitionLane {
  tail: Promise<void>;
  epoch: number;
  /** Paused after a transient failure: batches fetched before the pause are dropped and consumed again. */
  paused: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
  /** The record that failed last while the stores answered, and how many times. */
  failing?: { offset: string; attempts: number };
}

/**
 * Consumes the intake topics. An offset is committed only after its results are durably queued; a message the
 * gateway refuses goes to the dead-letter topic with the reason in its headers, so it never blocks its partition.
 *
 * kafkajs fetches again only once every batch of the last fetch is handled. So eachBatch hands a batch's records to
 * the intake, resolves its offsets (the fetch position, not the commit) and returns once the batch before it on the
 * same partition is committed: the next fetch and parse overlap with this batch's Redis writes, and at most two
 * batches per partition are in flight. Each partition's offsets are committed in order, each after its records are
 * queued or dead-lettered. After a transient failure (Redis down) nothing beyond the failed record is committed, the
 * partition is paused, and after a backoff it is consumed again from that record; results already queued past it
 * come back as duplicates, acknowledged but not sent twice.
 */
export async function startKafkaIntake(
  config: GatewayConfig,
  intake: Pick<ResultIntake, 'accept'>,
  log: Logger,
  /** Whether the message store and the queue answer now: a failure while they do is the record's own. */
  storesAnswer: () => Promise<boolean> = () => Promise.resolve(false),
): Promise<KafkaIntake> {
  const kafka = kafkaClient(config, config.kafka.clientId, log);
  const consumer: Consumer = kafka.consumer({
    groupId: config.kafka.groupId, sessionTimeout: 30_000, heartbeatInterval: 3_000, maxBytesPerPartition: config.kafka.maxBytesPerPartition,
    // With every partition paused (a queue outage), kafkajs sleeps this long between fetch attempts: 1 s instead of
    // 5 s brings a partition back soon after its pause ends. The broker still answers at once when records arrive.
    maxWaitTimeInMs: 1_000,
  });
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await consumer.connect();
    for (const topic of config.kafka.intakeTopics) await consumer.subscribe({ topic, fromBeginning: true });
  } catch (err) {
    // Refused (credentials, an unknown topic): the service stops with the broker's reason, and leaves no client behind.
    await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
    throw err;
  }

  const lanes = new Map<string, PartitionLane>();
  const laneOf = (topic: string, partition: number) => {
    const key = `${topic}|${partition}`;
    let lane = lanes.get(key);
    if (!lane) lanes.set(key, (lane = { tail: Promise.resolve(), epoch: 0, paused: false, failures: 0 }));
    return lane;
  };
  // A partition moved to another member is not committed from here any more (its new owner consumes from the last
  // commit; what this member had queued comes back there as duplicates).
  let assigned: Record<string, number[]> = {};
  consumer.on(consumer.events.GROUP_JOIN, (e) => void (assigned = e.payload.memberAssignment));
  let stopping = false;

  const sources = new Set([
    ...config.mailboxes.flatMap((m) => m.sources), ...Object.keys(config.routing.sources), ...Object.keys(config.intake.tolerance),
    ...config.mllp.listeners.map((l) => l.source), ...config.kafka.intakeTopics,
  ]);
  const accept = async (message: KafkaMessage, topic: string): Promise<RecordOutcome> => {
    try {
      const { bytes, source } = unwrap(message.value ?? Buffer.alloc(0), topic, sources);
      const o = await intake.accept(bytes, source, 'kafka');
      // Warnings of a result taken are logged (codes only) by the intake, for both transports.
      return {
        message, code: o.code, controlId: o.controlId, reason: o.error ? loggableReason(o.error) : '', errorCode: o.error?.code ?? '', reasonCode: o.error?.reasonCode ?? '',
        transient: o.error?.condition === 'applicationError',
      };
    } catch (err) {
      const refusal = err instanceof RecordRefusal ? err : new RecordRefusal(Reason.envelopeInvalid, 'invalid envelope');
      return { message, code: 'AR', controlId: '', reason: refusal.message, errorCode: '', reasonCode: refusal.reason.code, transient: false };
    }
  };

  // Parsing a whole batch in one go would hold the event loop for ~100 ms, with the replies of the queue's flushes
  // unread: slices let the flushes go on while the batch is parsed.
  const acceptInSlices = async (messages: KafkaMessage[], topic: string) => {
    const pending: Promise<RecordOutcome>[] = [];
    for (let i = 0; i < messages.length; i += SLICE) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      for (const m of messages.slice(i, i + SLICE)) pending.push(accept(m, topic));
    }
    return Promise.all(pending);
  };

  const deadLetter = async (topic: string, partition: number, dead: RecordOutcome[]) => {
    await producer.send({
      topic: config.kafka.deadLetterTopic,
      messages: dead.map(({ message, code, reason, errorCode, reasonCode }) => ({
        key: message.key, value: message.value,
        headers: {
          'mssgw-error': reason, 'mssgw-ack-code': code, 'mssgw-error-code': errorCode, 'mssgw-reason': reasonCode,
          'mssgw-source-topic': topic, 'mssgw-source-partition': String(partition), 'mssgw-source-offset': message.offset,
        },
      })),
    });
    for (const o of dead) log.warn({ topic, partition, offset: o.message.offset, controlId: o.controlId, reasonCode: o.reasonCode, reason: o.reason }, 'Kafka result dead-lettered');
  };

  const commit = async (topic: string, partition: number, offset: bigint) => {
    if (!assigned[topic]?.includes(partition)) return;
    try {
      await consumer.commitOffsets([{ topic, partition, offset: offset.toString() }]);
    } catch (err) {
      // The records are queued; a later commit covers them, or they come back as duplicates.
      log.warn({ topic, partition, offset: offset.toString(), reason: (err as Error).message }, 'Kafka offset commit failed');
    }
  };

  /** Stops committing past `offset`, pauses the partition, and consumes it again from there after a backoff. */
  const rewind = (lane: PartitionLane, topic: string, partition: number, offset: string, reason: string) => {
    lane.epoch++;
    if (!lane.paused) metrics.kafkaPartitionsPaused.inc();
    lane.paused = true;
    lane.failures++;
    metrics.kafkaRewinds.inc({ topic });
    const base = Math.min(KAFKA_RETRY.maxMs, KAFKA_RETRY.firstMs * 2 ** (lane.failures - 1));
    const delayMs = Math.round(base * (0.75 + Math.random() / 2));
    consumer.pause([{ topic, partitions: [partition] }]);
    log.warn({ topic, partition, offset, retryInMs: delayMs, reason }, 'Kafka intake paused: results not queued, consumed again after the delay');
    lane.timer = setTimeout(() => {
      if (stopping) return;
      try {
        consumer.seek({ topic, partition, offset });
      } catch (err) {
        // Between a crash and its restart, kafkajs has no group to seek in; the restart starts from the last commit.
        log.warn({ topic, partition, offset, reason: (err as Error).message }, 'Kafka seek refused; consuming from the last commit');
      }
      lane.paused = false;
      metrics.kafkaPartitionsPaused.dec();
      consumer.resume([{ topic, partitions: [partition] }]);
    }, delayMs);
  };

  /**
   * Whether a record that failed transiently has had its chances: an outage (the store or the queue does not answer)
   * never counts against it; failures of the same record while they answer do, up to KAFKA_RECORD_ATTEMPTS.
   */
  const givenUp = async (lane: PartitionLane, o: RecordOutcome): Promise<boolean> => {
    if (!(await storesAnswer().catch(() => false))) return false;
    const attempts = lane.failing?.offset === o.message.offset ? lane.failing.attempts + 1 : 1;
    lane.failing = { offset: o.message.offset, attempts };
    return attempts >= KAFKA_RECORD_ATTEMPTS;
  };

  /** After the batch before it: dead-letters the refused records, commits what is queued, rewinds on a failure. */
  const settle = async (lane: PartitionLane, epoch: number, batch: Batch, outcomes: RecordOutcome[]) => {
    if (lane.epoch !== epoch) return;
    const { topic, partition } = batch;
    const firstTransient = outcomes.findIndex((o) => o.transient);
    if (firstTransient >= 0 && (await givenUp(lane, outcomes[firstTransient]!))) {
      // Tried enough while everything answered: dead-lettered like a refusal, and the rest of the batch settles anew.
      const o = outcomes[firstTransient]!;
      const exhausted: RecordOutcome = {
        ...o, code: 'AE', transient: false, reasonCode: Reason.retriesExhausted.code,
        reason: `tried ${KAFKA_RECORD_ATTEMPTS} times while the message store and the queue answered; last error: ${o.reason}`,
      };
      return settle(lane, epoch, batch, outcomes.map((x, i) => (i === firstTransient ? exhausted : x)));
    }
    let done = firstTransient < 0 ? outcomes : outcomes.slice(0, firstTransient);
    let failed = firstTransient < 0 ? undefined : outcomes[firstTransient]!;
    const dead = done.filter((o) => o.code !== 'AA');
    if (dead.length) {
      try {
        await deadLetter(topic, partition, dead);
      } catch (err) {
        failed = { ...dead[0]!, reason: `dead-letter topic unavailable: ${(err as Error).message}` };
        done = done.slice(0, done.indexOf(dead[0]!));
      }
    }
    // A whole batch commits past its last offset (a transaction's control record may follow the last message).
    const next = failed ? BigInt(failed.message.offset) : BigInt(batch.lastOffset()) + 1n;
    if (done.length) await commit(topic, partition, next);
    if (failed) rewind(lane, topic, partition, failed.message.offset, failed.reason);
    else lane.failures = 0;
  };

  // The group's lag (mssgw_kafka_consumer_lag): what the broker holds past the group's commits, whoever consumes.
  // Read once before consuming, then every KAFKA_LAG_EVERY_MS; a failed read keeps the last values (lagAt says when).
  const admin: Admin = kafka.admin();
  let lags: { topic: string; partition: number; lag: number }[] = [];
  let lagAt: number | null = null;
  let lagFailing = false;
  let reading: Promise<void> | undefined;
  let adminConnected = false;
  const readLag = () => {
    reading ??= (async () => {
      try {
        // Not connected at start (the broker was down): connected at the next read instead.
        if (!adminConnected) {
          await admin.connect();
          adminConnected = true;
        }
        const topics = config.kafka.intakeTopics;
        const [ends, committed] = await Promise.all([
          Promise.all(topics.map(async (topic) => ({ topic, partitions: await admin.fetchTopicOffsets(topic) }))),
          admin.fetchOffsets({ groupId: config.kafka.groupId, topics }),
        ]);
        lags = consumerLag(ends, committed);
        lagAt = Date.now();
        for (const l of lags) metrics.kafkaConsumerLag.set({ topic: l.topic, partition: String(l.partition) }, l.lag);
        lagFailing = false;
      } catch (err) {
        if (!lagFailing) log.warn({ groupId: config.kafka.groupId, reason: (err as Error).message }, 'Kafka consumer lag not read; tried again in 10 s');
        lagFailing = true;
      }
    })().finally(() => (reading = undefined));
    return reading;
  };
  await readLag();
  const lagTimer = setInterval(() => void readLag(), KAFKA_LAG_EVERY_MS);
  lagTimer.unref();
  const stopLag = async () => {
    clearInterval(lagTimer);
    // A read in flight is not waited for (kafkajs retries for tens of seconds): disconnecting ends it.
    await admin.disconnect().catch(() => undefined);
    for (const l of lags) metrics.kafkaConsumerLag.remove({ topic: l.topic, partition: String(l.partition) });
  };

  // Not consuming after all: nothing of the lag reading is left behind (its timer, the admin client's socket).
  try {
    await consumer.run({
      autoCommit: false,
      // Each partition's batches stay in order; several partitions are queued at once.
      partitionsConsumedConcurrently: config.kafka.partitionsConcurrently,
      eachBatchAutoResolve: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        const { topic, partition } = batch;
        const lane = laneOf(topic, partition);
        const first = batch.messages[0];
        const last = batch.messages.at(-1);
        if (lane.paused || stopping || !first || !last) return;
        const outcomes = acceptInSlices(batch.messages, topic);
        const before = lane.tail;
        const epoch = lane.epoch;
        lane.tail = Promise.all([before, outcomes]).then(([, o]) => settle(lane, epoch, batch, o)).catch((err: unknown) => {
          if (lane.epoch === epoch) rewind(lane, topic, partition, first.offset, `batch not settled: ${(err as Error).message}`);
        });
        payload.resolveOffset(last.offset);
        await before;
        await payload.heartbeat();
      },
    });
  } catch (err) {
    await stopLag();
    throw err;
  }
  log.info({ topics: config.kafka.intakeTopics, groupId: config.kafka.groupId }, 'Kafka intake consuming');
  return {
    health() {
      const mine = (topic: string, partition: number) => assigned[topic]?.includes(partition) === true;
      const paused = (topic: string, partition: number) => lanes.get(`${topic}|${partition}`)?.paused === true;
      return {
        groupId: config.kafka.groupId,
        consuming: !stopping && Object.entries(assigned).some(([topic, ps]) => ps.some((p) => !paused(topic, p))),
        lagAt,
        partitions: lags.map((l) => ({ ...l, assigned: mine(l.topic, l.partition), paused: paused(l.topic, l.partition) })),
      };
    },
    async stop() {
      // Fetch no more, let the batches in flight commit, then leave the group.
      stopping = true;
      consumer.pause(config.kafka.intakeTopics.map((topic) => ({ topic })));
      await stopLag();
      for (const lane of lanes.values()) {
        clearTimeout(lane.timer);
        if (lane.paused) metrics.kafkaPartitionsPaused.dec();
        lane.paused = false;
      }
      await Promise.all([...lanes.values()].map((l) => l.tail));
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}
