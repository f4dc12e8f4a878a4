export { mailboxTls, watchCertificateExpiry, MSSANTE_CIPHERS, type MailboxTls } from './tls.ts';
export { kafkaClient, kafkaClientConfig, kafkaLogCreator } from './kafka.ts';
import { readSecret, type GatewayConfig } from '@mssgw/config';
import { connectRedis, DocumentStore, MailStore, redisOptions, type Redis, type RedisEndpoint } from '@mssgw/queue';
import { StatusStore } from '@mssgw/status';
import { createLogger, type Logger } from '@mssgw/telemetry';

/** What every service gets when it starts: the validated configuration and the shared stores. */
export interface ServiceContext {
  config: GatewayConfig;
  log: Logger;
  /** Connection for plain commands; BullMQ queues and workers open their own from `config.redis.url`. */
  redis: Redis;
  documents: DocumentStore;
  mails: MailStore;
  status: StatusStore;
}

/** A started service: it stops taking work, finishes or releases what it has, and closes its connections. */
export interface RunningService {
  name: string;
  stop(): Promise<void>;
}

export function createContext(config: GatewayConfig, name = 'mssgw'): ServiceContext {
  const redis = connectRedis(redisEndpoint(config));
  const log = createLogger(name, config.logLevel);
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
    config,
    log,
    redis,
    documents: new DocumentStore(redis, config.redis.prefix),
    mails: new MailStore(redis, config.redis.prefix),
    status: new StatusStore(redis, config.redis.prefix, config.receipts.retentionDays * 24 * 3600),
  };
}

/** Where this gateway's Redis is, secrets read. */
export function redisEndpoint(config: GatewayConfig): RedisEndpoint {
  const s = config.redis.sentinel;
  return { url: config.redis.url, ...(s ? { sentinel: { masterName: s.masterName, nodes: s.nodes, ...(s.password ? { password: readSecret(s.password) } : {}) } } : {}) };
}

/** BullMQ connection options for a queue or a worker of this gateway. */
export const bullConnection = (config: GatewayConfig) => ({
  connection: { ...redisOptions(redisEndpoint(config)), maxRetriesPerRequest: null },
  prefix: config.redis.prefix,
});

export async function closeContext(ctx: ServiceContext): Promise<void> {
  await ctx.redis.quit().catch(() => ctx.redis.disconnect());
}
