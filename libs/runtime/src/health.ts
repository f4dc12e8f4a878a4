import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { redisKeys, type Redis } from '@mssgw/queue';
import type { Logger } from '@mssgw/telemetry';
import { withTimeout } from './timeout.ts';

/**
 * Health beacons (issue #24): every service instance writes what the operator console's overview shows of it to
 * Redis every few seconds (<prefix>:health:<service>:<instance>, expiring after three periods), and notes itself in
 * <prefix>:health-instances. The api reads them all (readClusterHealth): in a deployment of one pod per service, it
 * sees the intake's listeners and Kafka lag, the receipts' IMAP sessions and the dispatchers' SMTP state, and an
 * instance whose beacon expired shows as gone. Counts, ports, mailbox addresses (applicative) and topic names only.
 */

export interface MllpHealth { source: string; port: number; connections: number; peers: number }
export interface KafkaPartitionHealth { topic: string; partition: number; lag: number; assigned: boolean; paused: boolean }
export interface KafkaHealth {
  groupId: string;
  /** The consumer runs and this instance has at least one partition assigned and not paused. */
  consuming: boolean;
  /** When the lag was last read from the broker (Unix ms), null before the first read. */
  lagAt: number | null;
  partitions: KafkaPartitionHealth[];
}
export interface ImapHealth { mailbox: string; connected: boolean; lastPollAt: number | null }
export interface SmtpHealth { mailbox: string; paused: string | null; lastAcceptedAt: number | null; dsn: boolean | null }

/**
 * The reference data a router decides with (directory, liste blanche, oppositions), and what date each in use bears:
 * the directory's import, the liste blanche's generation (else its download), the oppositions' last count.
 */
export interface ReferenceHealth { data: string; loadedAt: number | null }

/** What a service says of itself; each section only from the services that have it. Read every beat: cheap, synchronous. */
export interface ServiceHealth { mllp?: MllpHealth[]; kafka?: KafkaHealth; imap?: ImapHealth[]; smtp?: SmtpHealth[]; reference?: ReferenceHealth[] }

export interface HealthBeacon extends ServiceHealth {
  v: 1;
  service: string;
  instance: string;
  version: string;
  startedAt: number;
  at: number;
  ttlMs: number;
  /** Entries left out of the lists to keep the beacon small. */
  truncated?: number;
}

/** How often an instance writes its beacon; it expires after three periods without one. */
export const BEACON_PERIOD_MS = 5_000;
/** The lists' caps: a beacon stays a few kilobytes whatever the configuration. */
export const BEACON_CAPS = { listeners: 32, partitions: 64, mailboxes: 64, reference: 8, text: 120 } as const;
/** An instance whose beacon expired is shown as gone this long, then forgotten. */
export const GONE_KEPT_MS = 3_600_000;
/** At most this many instances are read. */
export const MAX_INSTANCES = 200;
/** A Kafka lag from this many records is a warning, whoever consumes. */
export const KAFKA_LAG_WARNING = 1_000;
/** The directory or the liste blanche loaded longer ago than this is a warning (as the MssgwReferenceDataStale alert). */
export const REFERENCE_STALE_MS = 48 * 3_600_000;
/** An IMAP mailbox not polled for this long is a warning (the periodic sweep is 30 s by default). */
export const IMAP_POLL_STALE_MS = 10 * 60_000;

const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '').slice(0, BEACON_CAPS.text);
const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);
const time = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.round(v) : null);

/** This process's instance name: the host (a pod's name) and the process id, in characters safe in a Redis key. */
export const instanceId = (): string => `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);

let version: string | undefined;
/** The gateway's version (the root package.json), 'unknown' when it cannot be read. */
export function gatewayVersion(): string {
  if (version === undefined) {
    try {
      version = text((JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../../package.json'), 'utf8')) as { version?: string }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

/** A beacon from what a service says: lists capped (the largest Kafka lags kept), text shortened, numbers made sane. */
export function shapeBeacon(input: { service: string; instance: string; version: string; startedAt: number; now: number; ttlMs: number; health?: ServiceHealth | undefined }): HealthBeacon {
  const h = input.health ?? {};
  let truncated = 0;
  const cap = <T>(list: T[] | undefined, n: number): T[] | undefined => {
    if (!list) return undefined;
    if (list.length > n) truncated += list.length - n;
    return list.slice(0, n);
  };
  const mllp = cap(h.mllp, BEACON_CAPS.listeners)?.map((l) => ({ source: text(l.source), port: count(l.port), connections: count(l.connections), peers: count(l.peers) }));
  const kafka = h.kafka && {
    groupId: text(h.kafka.groupId),
    consuming: h.kafka.consuming === true,
    lagAt: time(h.kafka.lagAt),
    partitions: cap([...h.kafka.partitions].sort((a, b) => b.lag - a.lag || a.topic.localeCompare(b.topic) || a.partition - b.partition), BEACON_CAPS.partitions)!
      .map((p) => ({ topic: text(p.topic), partition: count(p.partition), lag: count(p.lag), assigned: p.assigned === true, paused: p.paused === true })),
  };
  const imap = cap(h.imap, BEACON_CAPS.mailboxes)?.map((m) => ({ mailbox: text(m.mailbox), connected: m.connected === true, lastPollAt: time(m.lastPollAt) }));
  const smtp = cap(h.smtp, BEACON_CAPS.mailboxes)?.map((m) => ({
    mailbox: text(m.mailbox), paused: m.paused ? text(m.paused) : null, lastAcceptedAt: time(m.lastAcceptedAt), dsn: typeof m.dsn === 'boolean' ? m.dsn : null,
  }));
  const reference = cap(h.reference, BEACON_CAPS.reference)?.map((r) => ({ data: text(r.data), loadedAt: time(r.loadedAt) }));
  return {
    v: 1, service: text(input.service), instance: text(input.instance), version: text(input.version), startedAt: Math.round(input.startedAt), at: Math.round(input.now), ttlMs: Math.round(input.ttlMs),
    ...(mllp ? { mllp } : {}), ...(kafka ? { kafka } : {}), ...(imap ? { imap } : {}), ...(smtp ? { smtp } : {}), ...(reference ? { reference } : {}),
    ...(truncated ? { truncated } : {}),
  };
}

/** What the console shows: every instance seen lately, live or gone; per service, how many of each; the warnings. */
export interface ClusterHealth {
  instances: (HealthBeacon & { state: 'live' | 'gone'; lastSeenAt: number })[];
  services: { service: string; live: number; gone: number }[];
  warnings: { code: HealthWarning; service: string; instance?: string; subject?: string }[];
}
export type HealthWarning = 'service-gone' | 'instance-gone' | 'kafka-lag' | 'kafka-lag-unknown' | 'imap-disconnected' | 'imap-poll-stale' | 'smtp-paused' | 'dsn-unsupported' | 'reference-stale';

/**
 * The cluster's health from the instances noted (field "<service>:<instance>", last beacon in Unix ms) and their
 * beacons (the same order; null once expired). Also which notes to forget: gone for longer than GONE_KEPT_MS, or unreadable.
 */
export function summarizeBeacons(seen: { field: string; lastSeenAt: number }[], beacons: (string | null)[], now: number): ClusterHealth & { forget: string[] } {
  const instances: ClusterHealth['instances'] = [];
  const forget: string[] = [];
  seen.forEach(({ field, lastSeenAt }, i) => {
    const sep = field.indexOf(':');
    const raw = beacons[i];
    let beacon: HealthBeacon | undefined;
    if (raw) {
      try {
        const parsed = JSON.parse(raw) as HealthBeacon;
        if (parsed?.v === 1) beacon = shapeBeacon({ ...parsed, now: parsed.at, health: parsed });
      } catch {
        // An unreadable value is treated as expired.
      }
    }
    if (beacon) instances.push({ ...beacon, state: 'live', lastSeenAt: beacon.at });
    else if (sep > 0 && Number.isFinite(lastSeenAt) && now - lastSeenAt < GONE_KEPT_MS) {
      instances.push({ v: 1, service: field.slice(0, sep), instance: field.slice(sep + 1), version: '', startedAt: 0, at: lastSeenAt, ttlMs: 0, state: 'gone', lastSeenAt });
    } else forget.push(field);
  });
  instances.sort((a, b) => a.service.localeCompare(b.service) || (a.state === b.state ? 0 : a.state === 'live' ? -1 : 1) || a.instance.localeCompare(b.instance));

  const services = new Map<string, { service: string; live: number; gone: number }>();
  for (const i of instances) {
    const s = services.get(i.service) ?? { service: i.service, live: 0, gone: 0 };
    s[i.state]++;
    services.set(i.service, s);
  }
  const warnings: ClusterHealth['warnings'] = [];
  for (const s of services.values()) if (!s.live) warnings.push({ code: 'service-gone', service: s.service });
  const live = instances.filter((i) => i.state === 'live');
  for (const i of instances) if (i.state === 'gone' && services.get(i.service)!.live) warnings.push({ code: 'instance-gone', service: i.service, instance: i.instance });
  // Kafka: one warning per partition, whichever intake reads it (each reads the whole group's lag): a large lag, or
  // any lag on a partition no live intake has assigned.
  const partitions = new Map<string, { lag: number; assigned: boolean; service: string; instance: string }>();
  for (const i of live) {
    for (const p of i.kafka?.partitions ?? []) {
      const key = `${p.topic} ${p.partition}`;
      const was = partitions.get(key);
      partitions.set(key, { lag: Math.max(was?.lag ?? 0, p.lag), assigned: (was?.assigned ?? false) || p.assigned, service: i.service, instance: was?.instance ?? i.instance });
    }
    if (i.kafka && (i.kafka.lagAt === null || i.at - i.kafka.lagAt > 60_000)) warnings.push({ code: 'kafka-lag-unknown', service: i.service, instance: i.instance });
    for (const m of i.imap ?? []) {
      if (!m.connected) warnings.push({ code: 'imap-disconnected', service: i.service, instance: i.instance, subject: m.mailbox });
      else if (m.lastPollAt === null || i.at - m.lastPollAt > IMAP_POLL_STALE_MS) warnings.push({ code: 'imap-poll-stale', service: i.service, instance: i.instance, subject: m.mailbox });
    }
    for (const m of i.smtp ?? []) {
      if (m.paused) warnings.push({ code: 'smtp-paused', service: i.service, instance: i.instance, subject: `${m.mailbox} (${m.paused})` });
      if (m.dsn === false) warnings.push({ code: 'dsn-unsupported', service: i.service, instance: i.instance, subject: m.mailbox });
    }
    // The directory and the liste blanche are refreshed daily: as the MssgwReferenceDataStale alert, 48 h is stale.
    for (const r of i.reference ?? []) {
      if (r.data !== 'patient-opposition' && r.loadedAt !== null && i.at - r.loadedAt > REFERENCE_STALE_MS) {
        warnings.push({ code: 'reference-stale', service: i.service, instance: i.instance, subject: r.data });
      }
    }
  }
  for (const [key, p] of partitions) {
    if (p.lag >= KAFKA_LAG_WARNING || (p.lag > 0 && !p.assigned)) warnings.push({ code: 'kafka-lag', service: p.service, subject: `${key.replace(' ', '/')}: ${p.lag}` });
  }
  return { instances, services: [...services.values()], warnings, forget };
}

/** Writes a beacon and notes its instance. */
export async function publishBeacon(redis: Redis, prefix: string, beacon: HealthBeacon): Promise<void> {
  const keys = redisKeys(prefix);
  await Promise.all([
    redis.set(keys.health(beacon.service, beacon.instance), JSON.stringify(beacon), 'PX', beacon.ttlMs),
    redis.hset(keys.healthInstances, `${beacon.service}:${beacon.instance}`, String(beacon.at)),
  ]);
}

/** Every instance seen lately, with its beacon (one HGETALL, one MGET), the long-gone ones forgotten. */
export async function readClusterHealth(redis: Redis, prefix: string, now = Date.now()): Promise<ClusterHealth> {
  const keys = redisKeys(prefix);
  const noted = Object.entries(await redis.hgetall(keys.healthInstances));
  const seen = noted.sort(([, a], [, b]) => Number(b) - Number(a)).slice(0, MAX_INSTANCES).map(([field, at]) => ({ field, lastSeenAt: Number(at) }));
  const beacons = seen.length
    ? await redis.mget(...seen.map(({ field }) => {
        const sep = field.indexOf(':');
        return keys.health(field.slice(0, sep), field.slice(sep + 1));
      }))
    : [];
  const { forget, ...health } = summarizeBeacons(seen, beacons, now);
  forget.push(...noted.slice(MAX_INSTANCES).map(([field]) => field));
  if (forget.length) await redis.hdel(keys.healthInstances, ...forget);
  return health;
}

export interface HealthBeaconHandle {
  instance: string;
  /** Writes every beacon now. */
  beat(): Promise<void>;
  /** Stops, and removes this instance's beacons and notes: an instance stopped on purpose is not shown as gone. */
  stop(): Promise<void>;
}

/**
 * Starts writing the beacons of the services this process runs, one per service, every `periodMs`. A failed write
 * (Redis down) is logged once per outage; the console then shows the instance as gone, which is what it looks like.
 */
export function startHealthBeacon(
  redis: Redis, prefix: string, log: Logger,
  services: readonly { name: string; health?: (() => ServiceHealth) | undefined }[],
  options: { periodMs?: number; instance?: string } = {},
): HealthBeaconHandle {
  const periodMs = options.periodMs ?? BEACON_PERIOD_MS;
  const instance = options.instance ?? instanceId();
  const startedAt = Date.now();
  let failing = false;
  let inFlight: Promise<void> | undefined;
  const beat = () => {
    inFlight ??= (async () => {
      try {
        const now = Date.now();
        // Redis commands wait out an outage (maxRetriesPerRequest: null): bounded here, so that the outage is said
        // and a stop never waits on a beacon.
        await withTimeout(Promise.all(services.map((s) => publishBeacon(redis, prefix, shapeBeacon({
          service: s.name, instance, version: gatewayVersion(), startedAt, now, ttlMs: 3 * periodMs, health: s.health?.(),
        })))), periodMs, 'Redis');
        if (failing) log.info('health beacon written again');
        failing = false;
      } catch (err) {
        if (!failing) log.warn({ err: (err as Error).message }, 'health beacon not written; the console will show this instance as gone');
        failing = true;
      }
    })().finally(() => (inFlight = undefined));
    return inFlight;
  };
  const timer = setInterval(() => void beat(), periodMs);
  timer.unref();
  void beat();
  return {
    instance,
    beat,
    async stop() {
      clearInterval(timer);
      await inFlight;
      const keys = redisKeys(prefix);
      await withTimeout(Promise.all([
        redis.del(...services.map((s) => keys.health(s.name, instance))),
        redis.hdel(keys.healthInstances, ...services.map((s) => `${s.name}:${instance}`)),
      ]), periodMs, 'Redis').catch(() => undefined);
    },
  };
}
