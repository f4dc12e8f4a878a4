import { Redis, type RedisOptions } from 'ioredis';

/** Where Redis is: one instance (redis:// URL), or the master a set of Sentinels names (high availability). */
export interface RedisEndpoint {
  /** redis://[user:password@]host:port[/db]; with Sentinel, only its credentials and db are used. */
  url: string;
  sentinel?: { masterName: string; nodes: string[]; password?: string };
}

/** Connection settings for an endpoint, in the shape both ioredis and BullMQ take. */
export interface EndpointOptions {
  url?: string;
  sentinels?: { host: string; port: number }[];
  name?: string;
  sentinelPassword?: string;
  username?: string;
  password?: string;
  db?: number;
}

export function redisOptions(endpoint: RedisEndpoint): EndpointOptions {
  if (!endpoint.sentinel) return { url: endpoint.url };
  const u = new URL(endpoint.url);
  const db = Number(u.pathname.replace(/^\//, '') || 0);
  return {
    sentinels: endpoint.sentinel.nodes.map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })),
    name: endpoint.sentinel.masterName,
    ...(endpoint.sentinel.password ? { sentinelPassword: endpoint.sentinel.password } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db,
  };
}

/**
 * One way to open Redis for the whole gateway. BullMQ workers need maxRetriesPerRequest: null (blocking commands);
 * the same setting is harmless elsewhere and keeps a Redis restart (or a Sentinel failover) from failing in-flight
 * commands.
 */
export function connectRedis(endpoint: string | RedisEndpoint, options: RedisOptions = {}): Redis {
  // Auto-pipelining sends the commands of concurrent results in one write: many MLLP connections or a Kafka
  // batch then cost a few round trips instead of one each.
  const common: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, enableAutoPipelining: true, ...options };
  const e = typeof endpoint === 'string' ? { url: endpoint } : endpoint;
  if (!e.sentinel) return new Redis(e.url, common);
  return new Redis({ ...redisOptions(e), ...common });
}

export type { Redis };

/**
 * Resolves once the commands issued so far on an auto-pipelining client are on the wire. ioredis writes them in a
 * setImmediate, while a MULTI (BullMQ's bulk add) is written at once: awaiting this first puts the MULTI behind them
 * on the same connection, in the same round trip, and Redis runs them in that order.
 */
export function afterPipelinedWrites(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
