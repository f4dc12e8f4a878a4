/** The dispatcher's configuration of sending retries (`dispatcher.attempts`, `dispatcher.backoffMs`). */
export interface SendingRetryConfig {
  attempts: number;
  backoffMs: number;
}

/** BullMQ job options: how often a delivery is tried and how long it waits between attempts. */
export interface RetryPolicy {
  attempts: number;
  backoff: { type: 'exponential'; delay: number; jitter: number };
}

/**
 * Each wait is drawn between half and all of its exponential value, so that deliveries refused together (an
 * operator outage) do not all come back at the same instant.
 */
export const SENDING_BACKOFF_JITTER = 0.5;

/**
 * The sending retry policy: `attempts` tries in all, the second `backoffMs` after the first, doubling for each one
 * after, with jitter. A transient failure on the last attempt dead-letters the delivery.
 */
export function sendingRetryPolicy(config: SendingRetryConfig): RetryPolicy {
  return { attempts: config.attempts, backoff: { type: 'exponential', delay: config.backoffMs, jitter: SENDING_BACKOFF_JITTER } };
}

/**
 * The range of the wait after `attemptsMade` failed attempts, as BullMQ draws it for an exponential backoff with
 * jitter (`minMs` ≤ wait ≤ `maxMs`).
 */
export function retryDelayRange(policy: RetryPolicy, attemptsMade: number): { minMs: number; maxMs: number } {
  const maxMs = Math.round(2 ** (attemptsMade - 1) * policy.backoff.delay);
  return { minMs: Math.floor(maxMs * (1 - policy.backoff.jitter)), maxMs };
}
