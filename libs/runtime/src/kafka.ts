import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type logCreator } from 'kafkajs';
import { readSecret, type GatewayConfig } from '@mssgw/config';
import type { Logger } from '@mssgw/telemetry';
import { watchCertificateExpiry } from './tls.ts';

/** The fields of a kafkajs log entry worth keeping: they name brokers, groups and topics, never a message's content. */
const KEPT = ['broker', 'clientId', 'groupId', 'memberId', 'topic', 'partition', 'error', 'retryCount', 'retryTime', 'type'] as const;

/** By kafkajs's label of the entry's level. */
const LEVELS: Record<string, 'error' | 'warn' | 'info' | 'debug'> = { ERROR: 'error', WARN: 'warn', INFO: 'info', DEBUG: 'debug' };

/** kafkajs logs into the service's own logger (same format, same level), not its console logger. */
export function kafkaLogCreator(log: Logger): logCreator {
  return () => ({ namespace, level, label, log: entry }) => {
    const fields: Record<string, unknown> = { kafka: namespace };
    for (const k of KEPT) if (entry[k] !== undefined) fields[k] = entry[k];
    // A broker's answer kafkajs retries (a coordinator still loading at start-up): the caller sees it if retries fail.
    const name = namespace === 'Connection' && level === logLevel.ERROR ? 'warn' : LEVELS[label] ?? 'info';
    log[name](fields, entry.message);
  };
}

const KAFKA_LEVEL: Record<string, logLevel> = { trace: logLevel.DEBUG, debug: logLevel.DEBUG, info: logLevel.INFO, warn: logLevel.WARN, error: logLevel.ERROR, fatal: logLevel.ERROR, silent: logLevel.NOTHING };

/** The kafkajs options for the configured brokers: TLS (mutual when a client certificate is set) and SASL. */
export function kafkaClientConfig(config: GatewayConfig, clientId: string): KafkaConfig {
  const { tls, sasl } = config.kafka;
  return {
    clientId,
    brokers: config.kafka.brokers,
    ...(tls
      ? {
          ssl: {
            ca: [readFileSync(tls.caFile)],
            ...(tls.certFile && tls.keyFile ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } : {}),
            ...(tls.serverName ? { servername: tls.serverName } : {}),
            minVersion: 'TLSv1.2' as const,
            rejectUnauthorized: true,
          },
        }
      : {}),
    ...(sasl ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: readSecret(sasl.password) } as KafkaConfig['sasl'] } : {}),
  };
}

/** One way to reach Kafka for every service: the configured security, and kafkajs's logs in the service's logger. */
export function kafkaClient(config: GatewayConfig, clientId: string, log: Logger): Kafka {
  const options = kafkaClientConfig(config, clientId);
  // The certificates kafkajs was given, read once.
  if (options.ssl && typeof options.ssl === 'object') {
    for (const ca of [options.ssl.ca ?? []].flat()) watchCertificateExpiry(Buffer.from(ca), 'kafka-ca');
    if (options.ssl.cert) watchCertificateExpiry(Buffer.from(options.ssl.cert as Buffer), 'kafka-client');
  }
  return new Kafka({ ...options, logLevel: KAFKA_LEVEL[config.logLevel]!, logCreator: kafkaLogCreator(log) });
}

/**
 * A consumer group's lag per partition: each partition's high-water mark (admin.fetchTopicOffsets) minus the group's
 * committed offset (admin.fetchOffsets). A partition the group never committed counts from its low-water mark, where
 * the intake starts (fromBeginning); a committed offset outside [low, high] (records removed by retention) is clamped.
 */
export function consumerLag(
  ends: readonly { topic: string; partitions: readonly { partition: number; high: string; low: string }[] }[],
  committed: readonly { topic: string; partitions: readonly { partition: number; offset: string }[] }[],
): { topic: string; partition: number; lag: number }[] {
  const at = new Map(committed.flatMap((t) => t.partitions.map((p) => [`${t.topic}\u0000${p.partition}`, Number(p.offset)] as const)));
  return ends.flatMap(({ topic, partitions }) => partitions.map(({ partition, high, low }) => {
    const h = Number(high);
    const l = Number(low);
    const c = at.get(`${topic}\u0000${partition}`);
    const from = c === undefined || !Number.isFinite(c) || c < 0 ? l : Math.min(Math.max(c, l), h);
    return { topic, partition, lag: Number.isFinite(h) && Number.isFinite(from) ? Math.max(0, h - from) : 0 };
  })).sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}
