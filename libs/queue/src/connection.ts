import { Redis, type RedisOptions } from 'ioredis';

/**
 * One way to open Redis for the whole gateway. BullMQ workers need maxRetriesPerRequest: null (blocking commands);
 * the same setting is harmless elsewhere and keeps a Redis restart from failing in-flight commands.
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  // Auto-pipelining sends the commands of concurrent results in one write: many MLLP connections or a Kafka
  // batch then cost a few round trips instead of one each.
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, enableAutoPipelining: true, ...options });
}

export type { Redis };

