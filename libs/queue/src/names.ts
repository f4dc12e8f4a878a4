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
