import type { RunningService, ServiceContext } from '@mssgw/runtime';
import { startKafkaIntake, type KafkaIntake } from './kafka-consumer.ts';
import { startMllpListener, type MllpListener } from './mllp-listener.ts';
import { ResultIntake } from './pipeline.ts';

export { ResultIntake, toleranceOf, type IntakeOutcome, type Transport } from './pipeline.ts';
export { startMllpListener, type MllpListener } from './mllp-listener.ts';
export { startKafkaIntake, ResultEnvelopeV1, KAFKA_LAG_EVERY_MS, KAFKA_RECORD_ATTEMPTS } from './kafka-consumer.ts';

export interface IntakeService extends RunningService {
  listeners: MllpListener[];
  intake: ResultIntake;
}

/** The MLLP listeners and, when enabled, the Kafka consumer, all feeding the intake queue. */
export async function startIntake(ctx: ServiceContext): Promise<IntakeService> {
  const intake = new ResultIntake(ctx);
  const listeners: MllpListener[] = [];
  for (const l of ctx.config.mllp.listeners) listeners.push(await startMllpListener(l, intake, ctx.log));
  let kafka: KafkaIntake | undefined;
  // A record failing while PostgreSQL and Redis both answer is failing on its own account (see KAFKA_RECORD_ATTEMPTS).
  const storesAnswer = async () => {
    await Promise.all([ctx.pg.query('select 1'), ctx.ordered.redis.ping()]);
    return true;
  };
  if (ctx.config.kafka.enabled) kafka = await startKafkaIntake(ctx.config, intake, ctx.log, storesAnswer);
  return {
    name: 'intake',
    listeners,
    intake,
    health: () => ({
      mllp: listeners.map((l) => ({ source: l.source, port: l.port, ...l.stats() })),
      ...(kafka ? { kafka: kafka.health() } : {}),
    }),
    async stop() {
      await kafka?.stop();
      await Promise.all(listeners.map((l) => l.close()));
      await intake.close();
    },
  };
}
