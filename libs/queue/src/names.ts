import { createHash } from 'node:crypto';

/** Queue names. BullMQ keys become <prefix>:<queue>:...; a Redis Cluster deployment sets a {hash-tagged} prefix. */
export const QUEUES = {
  intake: 'intake',
  /** One send queue per applicative mailbox, so each mailbox has its own pool, rate and backlog. */
  send: (mailbox: string) => `send.${mailbox.toLowerCase().replace(/[^a-z0-9.@-]/g, '_').replace('@', '_at_')}`,
  deadLetter: 'dead-letter',
  /** Scheduled reference-data work (the directory refresh), one job at a time across routers. */
  reference: 'reference-data',
} as const;

/** Short, stable, colon-free ids (BullMQ job ids may not contain ':'). */
export const stableId = (prefix: string, ...parts: string[]): string =>
  `${prefix}-${createHash('sha256').update(parts.join('\u001f')).digest('hex').slice(0, 24)}`;

/**
 * A result's id, from the message store's unique key: the same source, sending facility, control id (MSH-4, MSH-10)
 * and content (contentHashOf, @mssgw/hl7) always give the same one; a control id reused for other content gives another.
 */
export const resultIdOf = (r: { source: string; sendingFacility: string; controlId: string; contentSha256: string }): string =>
  stableId('r', r.source, r.sendingFacility, r.controlId, r.contentSha256);

/**
 * Every Redis key the gateway writes outside BullMQ's own, one builder each, under the configured prefix. BullMQ's
 * keys are <prefix>:<queue>:... (QUEUES). Values are small and derived: nothing here is the record of anything.
 */
export const redisKeys = (prefix: string) => ({
  /** Set while a delivery's SMTP attempt is under way (the dispatcher), to tell an interrupted attempt after a crash. */
  sending: (deliveryId: string) => `${prefix}:sending:${deliveryId}`,
  /** The operator's shared sending budget (GCRA), one hash-tagged family per operator host. */
  operatorRate: (operator: string) => `${prefix}:operator-rate:{${operator}}`,
  /** The liste blanche as last downloaded. */
  whitelist: `${prefix}:whitelist`,
  /** The directory (Annuaire Santé extraction), its keys under one hash tag. */
  directory: `${prefix}:{dir}:`,
  /** The API's per-caller request counters. */
  apiRate: `${prefix}:api-rate:`,
  /** A service instance's health beacon (what the console's overview shows of it), expiring unless renewed. */
  health: (service: string, instance: string) => `${prefix}:health:${service}:${instance}`,
  /** The service instances seen lately (field <service>:<instance>, value: last beacon, Unix ms), pruned by the API. */
  healthInstances: `${prefix}:health-instances`,
});
