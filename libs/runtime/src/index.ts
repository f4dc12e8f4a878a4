import { readFileSync } from 'node:fs';
export { mailboxTls, watchCertificateExpiry, MSSANTE_CIPHERS, type MailboxTls } from './tls.ts';
export { consumerLag, kafkaClient, kafkaClientConfig, kafkaLogCreator } from './kafka.ts';
export {
  BEACON_CAPS, BEACON_PERIOD_MS, gatewayVersion, instanceId, KAFKA_LAG_WARNING, publishBeacon, readClusterHealth, shapeBeacon, startHealthBeacon, summarizeBeacons,
  type ClusterHealth, type HealthBeacon, type HealthBeaconHandle, type HealthWarning, type ImapHealth, type KafkaHealth, type KafkaPartitionHealth, type MllpHealth,
  type ServiceHealth, type SmtpHealth,
} from './health.ts';
export { intakeQueue, sendQueue } from './queues.ts';
export { withTimeout } from './timeout.ts';
import { readSecret, type GatewayConfig } from '@mssgw/config';
import { connectOrderedRedis, connectRedis, redisOptions, type Redis, type RedisEndpoint, type RedisTls } from '@mssgw/queue';
import { StatusStore } from '@mssgw/status';
import { connectPostgres, MessageBodies, ResultStore, type Pool } from '@mssgw/store';
import { createLogger, type Logger } from '@mssgw/telemetry';
import type { ServiceHealth } from './health.ts';
import { watchCertificateExpiry } from './tls.ts';

/** The stores, on one Redis connection. */
export interface Stores {
  redis: Redis;
  status: StatusStore;
}

/** What every service gets when it starts: the validated configuration and the shared stores. */
export interface ServiceContext extends Stores {
  config: GatewayConfig;
  log: Logger;
  /**
   * The same stores on a second connection that keeps call order (connectOrderedRedis), connected on first use: the
   * intake's and the router's queues use it, so that successive bulk adds reach Redis in the order they were made.
   */
  ordered: Stores;
  /** The message store (PostgreSQL): a pool that connects on first use. */
  pg: Pool;
  /** The record of every result received, written before the producer's ACK. */
  results: ResultStore;
  /** Documents and rendered mails (PostgreSQL): what the jobs name by id. */
  bodies: MessageBodies;
}

/** A started service: it stops taking work, finishes or releases what it has, and closes its connections. */
export interface RunningService {
  name: string;
  stop(): Promise<void>;
  /** What the service's health beacon says of it (health.ts), beyond its name, version and start time. */
  health?(): ServiceHealth;
}

export function createContext(config: GatewayConfig, name = 'mssgw'): ServiceContext {
  const log = createLogger(name, config.logLevel);
  const pg = connectPostgres(config.postgres, name);
  const stores = (redis: Redis): Stores => {
    // ioredis reconnects by itself; say so once per outage rather than as unhandled error events.
    let down = false;
    redis.on('error', (err: Error) => {
      if (!down) log.warn({ err: err.message }, 'Redis connection lost; reconnecting');
      down = true;
    });
    redis.on('ready', () => {
      if (down) log.info('Redis connection back');
      down = false;
    });
    return {
      redis,
      status: new StatusStore(pg, redis),
    };
  };
  const endpoint = redisEndpoint(config);
  // The CA and client certificate of rediss:// expire too: mssgw_tls_certificate_expiry, like the mailboxes'.
  if (endpoint.tls?.ca) watchCertificateExpiry(Buffer.from(endpoint.tls.ca), 'redis-ca');
  if (endpoint.tls?.cert) watchCertificateExpiry(Buffer.from(endpoint.tls.cert), 'redis-client');
  return {
    config,
    log,
    ...stores(connectRedis(endpoint)),
    ordered: stores(connectOrderedRedis(endpoint, { lazyConnect: true })),
    pg,
    results: new ResultStore(pg),
    bodies: new MessageBodies(pg),
  };
}

/**
 * Where this gateway's Redis is, secrets and certificates read: every connection to it (the stores, BullMQ's queues
 * and workers, the directory import's child process) opens from this, so all of them carry the password and the TLS
 * settings.
 */
export function redisEndpoint(config: GatewayConfig): RedisEndpoint {
  const { url, password, caFile, certFile, keyFile, tlsServerName, sentinel: s } = config.redis;
  const tls: RedisTls = {
    ...(caFile ? { ca: readFileSync(caFile, 'utf8') } : {}),
    ...(certFile && keyFile ? { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } : {}),
    ...(tlsServerName ? { servername: tlsServerName } : {}),
  };
  return {
    url,
    ...(password ? { password: readSecret(password) } : {}),
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(s ? { sentinel: { masterName: s.masterName, nodes: s.nodes, ...(s.password ? { password: readSecret(s.password) } : {}) } } : {}),
  };
}

/** BullMQ connection options for a queue or a worker of this gateway. */
export const bullConnection = (config: GatewayConfig) => ({
  connection: { ...redisOptions(redisEndpoint(config)), maxRetriesPerRequest: null },
  prefix: config.redis.prefix,
  streams: QUEUE_EVENTS,
});

/**
 * Each queue's event stream, which nothing of the gateway reads (its outcomes are in PostgreSQL), is kept short:
 * BullMQ's default of 10,000 events made it a Redis value of about 1 MB per queue. Every Queue writes this into the
 * queue's meta, so every one of them must say the same.
 */
export const QUEUE_EVENTS = { events: { maxLen: 50 } };

export async function closeContext(ctx: ServiceContext): Promise<void> {
  await ctx.pg.end().catch(() => undefined);
  // A connection never used was never opened: there is nothing to say goodbye to.
  await Promise.all([ctx.redis, ctx.ordered.redis].map(async (r) => {
    if (r.status === 'wait') r.disconnect();
    else await r.quit().catch(() => r.disconnect());
  }));
}
