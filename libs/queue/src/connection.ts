import { Redis, type RedisOptions } from 'ioredis';

/** TLS towards Redis (a rediss:// URL): PEM text, so that an endpoint can be handed to a child process as JSON. */
export interface RedisTls {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

/** Where Redis is: one instance (redis:// URL), or the master a set of Sentinels names (high availability). */
export interface RedisEndpoint {
  /** redis://[user@]host:port[/db], or rediss:// for TLS; with Sentinel, only its user, db and scheme are used. */
  url: string;
  /** The password, read from its secret (a password inside the URL wins, as ioredis reads it). */
  password?: string;
  /** For rediss://: the CA, the client certificate and key, the server name to check. */
  tls?: RedisTls;
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
  tls?: RedisTls;
  sentinelTLS?: RedisTls;
  enableTLSForSentinelMode?: boolean;
}

const isTls = (endpoint: RedisEndpoint) => /^rediss:\/\//i.test(endpoint.url);

export function redisOptions(endpoint: RedisEndpoint): EndpointOptions {
  // An empty object still means TLS (Node's CA store): ioredis reads tls: {} as "connect with TLS".
  const tls = isTls(endpoint) ? { ...endpoint.tls } : undefined;
  if (!endpoint.sentinel) {
    return { url: endpoint.url, ...(endpoint.password !== undefined ? { password: endpoint.password } : {}), ...(tls ? { tls } : {}) };
  }
  const u = new URL(endpoint.url);
  const db = Number(u.pathname.replace(/^\//, '') || 0);
  const password = u.password ? decodeURIComponent(u.password) : endpoint.password;
  return {
    sentinels: endpoint.sentinel.nodes.map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })),
    name: endpoint.sentinel.masterName,
    ...(endpoint.sentinel.password ? { sentinelPassword: endpoint.sentinel.password } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(password !== undefined ? { password } : {}),
    // rediss:// with Sentinel: the Sentinels and the master they name are both reached over TLS.
    ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
    db,
  };
}

/**
 * One way to open Redis for the whole gateway. BullMQ workers need maxRetriesPerRequest: null (blocking commands);
 * the same setting is harmless elsewhere and keeps a Redis restart (or a Sentinel failover) from failing in-flight
 * commands.
 */
export function connectRedis(endpoint: string | RedisEndpoint, options: RedisOptions = {}): Redis {
  // Auto-pipelining sends the commands of concurrent requests (status reads and updates, mail reads) in one write.
  const common: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, enableAutoPipelining: true, ...options };
  const e = typeof endpoint === 'string' ? { url: endpoint } : endpoint;
  const { url, ...rest } = redisOptions(e);
  // Options after the URL: what the URL itself says (its host, port, db, user) wins over them, as in ioredis.
  if (url !== undefined) return new Redis(url, { ...rest, ...common });
  return new Redis({ ...rest, ...common });
}

/**
 * A connection for writes whose order matters: a result's documents and records before its routing job, a mail
 * before its delivery jobs. Without auto-pipelining, ioredis puts each command on the wire when it is called, in call
 * order. With it, a batch is held back while the batch before it awaits its replies, and a pipeline of its own
 * (BullMQ's bulk add), which is never auto-pipelined, overtook the commands issued before it: under load, 5 % of new
 * results were taken for repeats of themselves, and delivery jobs reached Redis before their mails.
 */
export function connectOrderedRedis(endpoint: string | RedisEndpoint, options: RedisOptions = {}): Redis {
  return connectRedis(endpoint, { ...options, enableAutoPipelining: false });
}

/**
 * Resolves once the commands issued so far on an ordered connection are on the wire, BullMQ's bulk add included: it
 * writes its pipeline a few microtasks after the call, and a setImmediate runs after them.
 */
export function afterIssuedWrites(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export type { Redis };
