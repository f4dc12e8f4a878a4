import { Redis, type RedisOptions } from 'ioredis';

/**
 * One way to open Redis for the whole gateway. BullMQ workers need maxRetriesPerRequest: null (blocking commands);
 * the same setting is harmless elsewhere and keeps a Redis restart from failing in-flight commands.
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...options });
}

export type { Redis };

