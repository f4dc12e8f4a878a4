import { Kafka, logLevel, type Consumer, type KafkaMessage, type Producer } from 'kafkajs';
import { z } from 'zod';
import type { GatewayConfig } from '@mssgw/config';
import type { Logger } from '@mssgw/telemetry';
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
  stop(): Promise<void>;
}

function unwrap(value: Buffer, topic: string): { bytes: Buffer; source: string } {
  const head = value.subarray(0, 64).toString('utf8').trimStart();
  if (!head.startsWith('{')) return { bytes: value, source: topic };
  const envelope = ResultEnvelopeV1.parse(JSON.parse(value.toString('utf8')));
  return { bytes: Buffer.from(envelope.hl7, 'utf8'), source: envelope.source ?? topic };
}

/**
 * Consumes the intake topics. An offset is committed only after its results are durably queued; a message the
 * gateway refuses goes to the dead-letter topic with the reason in its headers, so it never blocks its partition.
 * A transient failure (Redis down) stops the batch there, and consumption resumes from the uncommitted offset.
 */
export async function startKafkaIntake(config: GatewayConfig, intake: ResultIntake, log: Logger): Promise<KafkaIntake> {
  const kafka = new Kafka({ clientId: config.kafka.clientId, brokers: config.kafka.brokers, logLevel: logLevel.WARN });
  const consumer: Consumer = kafka.consumer({
    groupId: config.kafka.groupId, sessionTimeout: 30_000, heartbeatInterval: 3_000, maxBytesPerPartition: config.kafka.maxBytesPerPartition,
  });
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await consumer.connect();
  for (const topic of config.kafka.intakeTopics) await consumer.subscribe({ topic, fromBeginning: true });
  /** One record's fate: queued (AA), refused for good (dead-letter), or not handled because Redis failed. */
  const accept = async (message: KafkaMessage, topic: string) => {
    try {
      const { bytes, source } = unwrap(message.value ?? Buffer.alloc(0), topic);
      const o = await intake.accept(bytes, source, 'kafka');
      return { message, code: o.code, controlId: o.controlId, reason: o.error?.message ?? '', errorCode: o.error?.code ?? '', transient: o.error?.condition === 'applicationError' };
    } catch (err) {
      return { message, code: 'AR', controlId: '', reason: `invalid envelope: ${(err as Error).message}`, errorCode: '', transient: false };
    }
  };
  await consumer.run({
    autoCommit: false,
    // Each partition's batches stay in order; several partitions are queued at once.
    partitionsConsumedConcurrently: config.kafka.partitionsConcurrently,
    eachBatchAutoResolve: false,
    // A batch is queued concurrently (Redis pipelines the writes), then its offset is committed once.
    eachBatch: async (payload) => {
      const { batch } = payload;
      const { topic, partition } = batch;
      const outcomes = await Promise.all(batch.messages.map((m) => accept(m, topic)));
      const firstTransient = outcomes.findIndex((o) => o.transient);
      const done = firstTransient < 0 ? outcomes : outcomes.slice(0, firstTransient);
      const dead = done.filter((o) => o.code !== 'AA');
      if (dead.length) {
        await producer.send({
          topic: config.kafka.deadLetterTopic,
          messages: dead.map(({ message, code, reason, errorCode }) => ({
            key: message.key, value: message.value,
            headers: {
              'mssgw-error': reason, 'mssgw-ack-code': code, 'mssgw-error-code': errorCode,
              'mssgw-source-topic': topic, 'mssgw-source-partition': String(partition), 'mssgw-source-offset': message.offset,
            },
          })),
        });
        for (const o of dead) log.warn({ topic, partition, offset: o.message.offset, controlId: o.controlId, reason: o.reason }, 'Kafka result dead-lettered');
      }
      const last = done.at(-1);
      if (last) {
        payload.resolveOffset(last.message.offset);
        await consumer.commitOffsets([{ topic, partition, offset: (BigInt(last.message.offset) + 1n).toString() }]);
      }
      await payload.heartbeat();
      // The rest of the batch stays uncommitted and is consumed again once kafkajs restarts the consumer.
      if (firstTransient >= 0) throw new Error(`intake queue unavailable: ${outcomes[firstTransient]!.reason}`);
    },
  });
  log.info({ topics: config.kafka.intakeTopics, groupId: config.kafka.groupId }, 'Kafka intake consuming');
  return {
    async stop() {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}
