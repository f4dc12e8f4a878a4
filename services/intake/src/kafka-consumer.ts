import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';
import { z } from 'zod';
import type { GatewayConfig } from '@mssgw/config';
import type { Logger } from '@mssgw/telemetry';
import type { ResultIntake } from './pipeline.ts';

/**
 * Version 1 of the JSON envelope for producers that publish results natively (schema: docs/kafka-envelope.md).
 * A value that is not JSON is taken as raw HL7 (ER7).
 */
export const ResultEnvelopeV1 = z.object({
  schema: z.literal('mssgw.result.v1'),
  source: z.string().regex(/^[a-z0-9][a-z0-9-]*$/).optional(),
  hl7: z.string().min(8),
});

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
 * Consumes the intake topics. An offset is committed only after its result is durably queued; a message the
 * gateway refuses goes to the dead-letter topic with the reason in its headers, so it never blocks its partition.
 * A transient failure (Redis down) stops the partition and retries it from the uncommitted offset.
 */
export async function startKafkaIntake(config: GatewayConfig, intake: ResultIntake, log: Logger): Promise<KafkaIntake> {
  const kafka = new Kafka({ clientId: config.kafka.clientId, brokers: config.kafka.brokers, logLevel: logLevel.WARN });
  const consumer: Consumer = kafka.consumer({ groupId: config.kafka.groupId, sessionTimeout: 30_000, heartbeatInterval: 3_000 });
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await consumer.connect();
  for (const topic of config.kafka.intakeTopics) await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      const next = (BigInt(message.offset) + 1n).toString();
      let outcome;
      try {
        const unwrapped = unwrap(message.value ?? Buffer.alloc(0), topic);
        outcome = await intake.accept(unwrapped.bytes, unwrapped.source, 'kafka');
      } catch (err) {
        outcome = { code: 'AR' as const, ack: '', controlId: '', errorText: `invalid envelope: ${(err as Error).message}` };
      }
      if (outcome.code === 'AE' && outcome.error?.condition === 'applicationError') {
        // Not the message's fault: do not commit, let the consumer retry this offset.
        throw new Error(outcome.error.message);
      }
      if (outcome.code !== 'AA') {
        const reason = 'errorText' in outcome ? outcome.errorText : (outcome.error?.message ?? 'refused');
        await producer.send({
          topic: config.kafka.deadLetterTopic,
          messages: [{
            key: message.key, value: message.value,
            headers: {
              'mssgw-error': reason, 'mssgw-ack-code': outcome.code, 'mssgw-error-code': outcome.error?.code ?? '',
              'mssgw-source-topic': topic, 'mssgw-source-partition': String(partition), 'mssgw-source-offset': message.offset,
            },
          }],
        });
        log.warn({ topic, partition, offset: message.offset, controlId: outcome.controlId, reason }, 'Kafka result dead-lettered');
      }
      await consumer.commitOffsets([{ topic, partition, offset: next }]);
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
