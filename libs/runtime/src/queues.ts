import { Queue } from 'bullmq';
import { sendingJobOptions } from '@mssgw/lifecycle';
import { QUEUES } from '@mssgw/queue';
import { QUEUE_EVENTS, type ServiceContext } from './index.ts';

/**
 * The queues the gateway writes to, each with its job options in one place: the intake (and the sweeper) queue
 * results, the router (and the sweeper) deliveries. They use the connection that keeps call order, so that
 * successive bulk adds reach Redis in the order they were made.
 *
 * Every outcome is in the message store: a job done, or given up on (its outcome recorded), leaves nothing in Redis.
 */
export function intakeQueue(ctx: ServiceContext): Queue {
  return new Queue(QUEUES.intake, {
    connection: ctx.ordered.redis,
    prefix: ctx.config.redis.prefix,
    streams: QUEUE_EVENTS,
    defaultJobOptions: {
      attempts: ctx.config.routing.attempts,
      backoff: { type: 'exponential', delay: ctx.config.routing.backoffMs },
      removeOnComplete: true,
      removeOnFail: true,
    },
  });
}

export function sendQueue(ctx: ServiceContext, mailbox: string): Queue {
  return new Queue(QUEUES.send(mailbox), {
    connection: ctx.ordered.redis,
    prefix: ctx.config.redis.prefix,
    streams: QUEUE_EVENTS,
    defaultJobOptions: { ...sendingJobOptions(ctx.config.dispatcher), removeOnComplete: true, removeOnFail: true },
  });
}
