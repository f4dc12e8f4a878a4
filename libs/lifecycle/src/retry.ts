/** The dispatcher's retry configuration (`dispatcher.backoffMs`, `maxBackoffMs`, `retryBudgetMs`). */
export interface SendingRetryConfig {
  /** The wait after the first transient failure; it doubles after each one. */
  backoffMs: number;
  /** No wait is longer than this. */
  maxBackoffMs: number;
  /** How long a delivery is retried after its first transient failure before it is dead-lettered. */
  retryBudgetMs: number;
}

/**
 * Each wait is drawn between half and all of its exponential value, so that deliveries refused together (an
 * operator outage) do not all come back at the same instant.
 */
export const SENDING_BACKOFF_JITTER = 0.5;

/** Where a delivery stands in its retries, kept in its job (ids and numbers only). */
export interface RetryState {
  /** When its first transient failure happened (epoch ms). */
  firstFailureAt: number;
  /** Transient failures so far, the last one included. */
  failures: number;
}

/**
 * The range of the wait after `failures` transient failures: backoffMs × 2^(failures − 1), capped at maxBackoffMs,
 * drawn between half and all of it.
 */
export function retryDelayRange(config: Pick<SendingRetryConfig, 'backoffMs' | 'maxBackoffMs'>, failures: number): { minMs: number; maxMs: number } {
  const maxMs = Math.min(config.maxBackoffMs, Math.round(2 ** Math.min(failures - 1, 40) * config.backoffMs));
  return { minMs: Math.floor(maxMs * (1 - SENDING_BACKOFF_JITTER)), maxMs };
}

/**
 * After a transient failure (a 4xx, a timeout, a connection cut mid-send): when to try again, or `dead-letter` once
 * the retry budget, counted from the first failure, is spent. The last attempt is made when the budget ends, so a
 * delivery always gets its chance at the end of it, whatever its backoff.
 */
export function nextRetry(config: SendingRetryConfig, state: RetryState, now: number, random: () => number = Math.random): { retryAt: number } | 'dead-letter' {
  const deadline = state.firstFailureAt + config.retryBudgetMs;
  if (now >= deadline) return 'dead-letter';
  const { minMs, maxMs } = retryDelayRange(config, state.failures);
  return { retryAt: Math.min(deadline, now + minMs + Math.round(random() * (maxMs - minMs))) };
}

/**
 * How long a mailbox's queue waits before it tries again while the operator is unreachable or refuses the mailbox
 * itself (`pauses` in a row): backoffMs doubling, capped at maxBackoffMs. No attempt is counted meanwhile.
 */
export function pauseDelay(config: Pick<SendingRetryConfig, 'backoffMs' | 'maxBackoffMs'>, pauses: number): number {
  return Math.min(config.maxBackoffMs, Math.round(2 ** Math.min(Math.max(pauses, 1) - 1, 40) * config.backoffMs));
}

/**
 * BullMQ's own retries, for what is neither an SMTP reply nor an outage (a bug, a mail that cannot be read): a few,
 * then the delivery is dead-lettered with the error. SMTP failures and outages never count against them.
 */
export function sendingJobOptions(config: Pick<SendingRetryConfig, 'backoffMs'>): { attempts: number; backoff: { type: 'exponential'; delay: number } } {
  return { attempts: 3, backoff: { type: 'exponential', delay: config.backoffMs } };
}
