import { REASONS, type ForgedReceiptReason, type SmtpReplyClass } from './reasons.ts';
import type { DeliveryEventSource, DeliveryState } from './states.ts';

/** What a change records on the recipient (and, as `detail` or else `reason`, in its history event). */
export type TransitionFields = {
  reason?: string;
  detail?: string;
  dsnStatus?: string;
  smtpResponse?: string;
  queueId?: string;
  submittedAt?: number;
  /** When the final DSN was recorded (for the DSN → MDN latency). */
  dsnAt?: number;
};

/** What a trigger does to a recipient: the state it asks for, who decided it, and what is recorded with it. */
export interface Transition {
  state: DeliveryState;
  source: DeliveryEventSource;
  fields: TransitionFields;
}

/** The operator's 250 to our DATA: the mail is theirs now, and the confirmation clock starts. */
export function smtpAccepted(response: string, at: number): Transition {
  const queueId = /queued as\s+([A-Za-z0-9]+)/i.exec(response)?.[1];
  return {
    state: 'submitted', source: 'dispatcher',
    fields: { smtpResponse: response, ...(queueId ? { queueId } : {}), submittedAt: at, detail: response },
  };
}

/** A sending attempt that did not end in a 250, as nodemailer reports it. */
export interface SmtpFailure {
  message: string;
  /** The SMTP command that failed, `CONN` when the connection never opened. */
  command?: string;
  /** nodemailer's or the socket's code (ECONNREFUSED, EDNS, ETIMEDOUT, EENVELOPE…). */
  code?: string;
  responseCode?: number;
  response?: string;
}

export type SmtpFailureOutcome = {
  replyClass: SmtpReplyClass;
  /**
   * The operator answered, or the connection never opened: the mail was certainly not accepted, so the attempt is
   * not an interrupted one whose DSN might still come.
   */
  notAccepted: boolean;
} & (
  /** A permanent refusal of the recipient (5xx): the delivery fails now, without retrying. */
  | { action: 'fail'; transition: Transition }
  /** Anything else (4xx, connection, TLS, timeout): the job is retried per the sending retry policy. */
  | { action: 'retry' }
);

export function smtpFailure(err: SmtpFailure): SmtpFailureOutcome {
  // nodemailer sets responseCode only from a three-digit reply.
  const replyClass = (err.responseCode ? String(err.responseCode)[0] : 'conn') as SmtpReplyClass;
  const notAccepted = Boolean(err.responseCode) || err.command === 'CONN' || err.code === 'ECONNREFUSED' || err.code === 'EDNS';
  if (err.responseCode && err.responseCode >= 500) {
    const text = err.response ?? err.message;
    return {
      action: 'fail', replyClass, notAccepted,
      transition: {
        // Recorded as coming from the operator (its SMTP reply), unlike the DSN that reports the same kind of failure.
        state: 'failed', source: 'operator',
        fields: { reason: /\b5\.\d{1,3}\.\d{1,3}\b/.exec(err.response ?? '')?.[0] ?? String(err.responseCode), smtpResponse: text, detail: text },
      },
    };
  }
  return { action: 'retry', replyClass, notAccepted };
}

/**
 * What follows a failed attempt: a permanent refusal is already `failed` (settled); a transient one is retried while
 * attempts remain, then dead-lettered.
 */
export function afterFailedAttempt(a: { permanent: boolean; attemptsMade: number; attempts: number }): 'settled' | 'retry' | 'dead-letter' {
  if (a.permanent) return 'settled';
  return a.attemptsMade < a.attempts ? 'retry' : 'dead-letter';
}

/** The last attempt failed transiently: the delivery goes to the dead-letter queue; `lastFailure` is failureText's. */
export function retriesExhausted(lastFailure: string): Transition {
  return { state: 'dead-lettered', source: 'dispatcher', fields: { reason: REASONS.retriesExhausted, detail: lastFailure } };
}

/** The operator's reply when there was one, else the local error (kept in the dead-letter queue and the history). */
export const failureText = (err: SmtpFailure): string => err.response ?? `${err.code ?? 'error'}: ${err.message}`;

/** A person put a dead-lettered delivery back on its send queue: the only way out of a final state to a pending one. */
export function operatorReplay(): Transition {
  return { state: 'queued', source: 'operator', fields: { reason: REASONS.replayed, detail: 'replayed from the dead-letter queue' } };
}

// Own-property lookups: a report's action or disposition is text from the network, and must not find "__proto__".
const DSN_ACTIONS = new Map<string, DeliveryState>([
  ['delivered', 'delivered'], ['relayed', 'relayed'], ['expanded', 'expanded'], ['delayed', 'delayed'], ['failed', 'failed'],
]);
const MDN_DISPOSITIONS = new Map<string, DeliveryState>([
  ['displayed', 'displayed'], ['processed', 'processed'], ['deleted', 'deleted'],
  ['dispatched', 'processed'], ['denied', 'processing-error'], ['failed', 'processing-error'],
]);

/** One recipient block of a DSN (RFC 3464). */
export interface DsnReport {
  action: string;
  status: string;
  diagnosticCode?: string;
}

/** What a DSN's recipient block does: its action names the state; an action we do not know does nothing. */
export function dsnTransition(r: DsnReport, at: number): Transition | undefined {
  const state = DSN_ACTIONS.get(r.action);
  if (!state) return undefined;
  return {
    state, source: 'dsn',
    fields: {
      dsnStatus: r.status, ...(state === 'failed' ? { reason: r.status } : {}), ...(state !== 'delayed' ? { dsnAt: at } : {}),
      detail: [r.action, r.status, r.diagnosticCode].filter(Boolean).join(' '),
    },
  };
}

/** The disposition of an MDN (RFC 8098), with the CI-SIS "processed/Error: code^label" form read. */
export interface MdnDisposition {
  actionMode: string;
  sendingMode: string;
  type: string;
  modifier?: string;
  error?: { code: string };
}

/**
 * What an MDN does: a CI-SIS error is a processing error whatever the type; an unknown type still proves the mail
 * reached its reader, as processed.
 */
export function mdnTransition(d: MdnDisposition): Transition {
  const state = d.error ? 'processing-error' : (MDN_DISPOSITIONS.get(d.type) ?? 'processed');
  return {
    state, source: 'mdn',
    fields: {
      ...(d.error ? { reason: d.error.code } : {}),
      detail: `${d.actionMode}/${d.sendingMode}; ${d.type}${d.modifier ? `/${d.modifier}` : ''}`,
    },
  };
}

/** Submitted `timeoutMs` ago (the clock is not reset by a "delayed" DSN) and no final DSN since. */
export function confirmationTimeout(timeoutMs: number): Transition {
  return {
    state: 'unconfirmed', source: 'timeout',
    fields: { reason: REASONS.noFinalDsn, detail: `no final DSN within ${Math.round(timeoutMs / 1000)} s of submission` },
  };
}

/** A recipient the router will not serve is created refused, with the router's reason; it is never sent. */
export function routingRefusal<R extends string>(reason: R, detail: string): { state: 'refused'; reason: R; detail: string } {
  return { state: 'refused', reason, detail };
}

/** A history entry that changes nothing: the state it names is the one claimed (or the current one), never entered. */
export interface HistoryNote {
  state: DeliveryState;
  source: DeliveryEventSource;
  detail: string;
}

/**
 * A receipt that was not believed: recorded in the history of the recipient it names, with the state it claimed,
 * never applied.
 */
export function forgedReceipt(claimed: Transition, reason: ForgedReceiptReason): HistoryNote {
  return { state: claimed.state, source: claimed.source, detail: `forged: ${reason}; ${claimed.fields.detail ?? claimed.state}`.slice(0, 1000) };
}

/**
 * The recipient answered: a history entry in the state it is in, naming the reply by id only (its sender, subject
 * and text are personal data, kept with the reply).
 */
export function replyReceived(current: DeliveryState, replyId: string): HistoryNote {
  return { state: current, source: 'reply', detail: `reply ${replyId}` };
}
