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

/**
 * Why a mailbox's queue is paused rather than its recipients failed: the operator cannot be reached (nothing was
 * tried), or it refuses the mailbox itself (its login, its certificate, its address as sender), which no recipient
 * can fix and an operator must. The metric label and the alert name these.
 */
export const MAILBOX_PAUSES = ['unreachable', 'authentication', 'certificate', 'sender-refused', 'message-store'] as const;
export type MailboxPause = (typeof MAILBOX_PAUSES)[number];

export type SmtpFailureOutcome = {
  replyClass: SmtpReplyClass;
  /**
   * The operator answered, or the connection never opened: the mail was certainly not accepted, so the attempt is
   * not an interrupted one whose DSN might still come.
   */
  notAccepted: boolean;
} & (
  /** A permanent refusal of the recipient (5xx to RCPT TO or DATA): the delivery fails now, without retrying. */
  | { action: 'fail'; transition: Transition }
  /** The mailbox's queue waits and tries again (pauseDelay), no attempt counted: see MAILBOX_PAUSES. */
  | { action: 'pause'; pause: MailboxPause }
  /** A transient failure of this delivery (4xx, a timeout, a connection cut mid-send): retried (nextRetry). */
  | { action: 'retry' }
);

// Replies that refuse the client rather than a recipient: authentication required, failed or too weak (RFC 4954).
const AUTH_REPLIES = new Set([530, 534, 535, 538]);
// Before a connection carries anything: nothing can have been sent.
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EDNS', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECTION']);
const CERTIFICATE = /certificate|CERT_|self[- ]signed|unable to (?:verify|get)|handshake|tlsv1 alert|ssl/i;

export function smtpFailure(err: SmtpFailure): SmtpFailureOutcome {
  // nodemailer sets responseCode only from a three-digit reply.
  const code = err.responseCode;
  const replyClass = (code ? String(code)[0] : 'conn') as SmtpReplyClass;
  const opening = err.command === 'CONN';
  const notAccepted = Boolean(code) || opening || err.code === 'ECONNREFUSED' || err.code === 'EDNS';
  const pause = (p: MailboxPause): SmtpFailureOutcome => ({ action: 'pause', pause: p, replyClass, notAccepted: true });
  if (err.code === 'EAUTH' || (code && AUTH_REPLIES.has(code))) return pause('authentication');
  if (code && code >= 500 && err.command === 'MAIL FROM') return pause('sender-refused');
  if (!code && (err.code === 'ETLS' || ((opening || err.code === 'ESOCKET') && CERTIFICATE.test(err.message)))) return pause('certificate');
  if (!code && (opening || UNREACHABLE_CODES.has(err.code ?? '')) && err.command !== 'DATA') return pause('unreachable');
  if (code && code >= 500) {
    const text = err.response ?? err.message;
    return {
      action: 'fail', replyClass, notAccepted,
      transition: {
        // Recorded as coming from the operator (its SMTP reply), unlike the DSN that reports the same kind of failure.
        state: 'failed', source: 'operator',
        fields: { reason: /\b5\.\d{1,3}\.\d{1,3}\b/.exec(err.response ?? '')?.[0] ?? String(code), smtpResponse: text, detail: text },
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

/** Which way a patient's opposition goes: mails to the patient, or mails about them to professionals. */
export type OppositionDirection = 'patient' | 'professionals';

/** What the dispatcher (or a replay) knows of a recipient just before sending it. */
export interface DispatchCheck {
  /** The recipient record's kind: `patient` is written to at <INS>@patient.mssante.fr, every other kind is a professional's. */
  kind: string;
  /** Whether the liste blanche in use allows the recipient's domain now. */
  domainAllowed: boolean;
  /** The directions of the oppositions the result's patient has now (unknown at replay: empty). */
  oppositions: readonly string[];
}

/**
 * Checked again at dispatch and at replay (issues #22, #25): a recipient whose domain left the liste blanche, or whose
 * patient now opposes mails in its direction, is refused (never sent), with the reason that applied. Undefined: send.
 */
export function dispatchRefusal(c: DispatchCheck): Transition | undefined {
  const direction: OppositionDirection = c.kind === 'patient' ? 'patient' : 'professionals';
  if (c.oppositions.includes(direction)) {
    const reason = direction === 'patient' ? REASONS.patientOpposition : REASONS.professionalsOpposition;
    return {
      state: 'refused', source: 'dispatcher',
      fields: { reason, detail: `checked before sending: the patient opposes mails ${direction === 'patient' ? 'to the patient' : 'to professionals'}` },
    };
  }
  if (!c.domainAllowed) {
    return {
      state: 'refused', source: 'dispatcher',
      fields: { reason: REASONS.notWhitelisted, detail: 'checked before sending: the recipient\'s domain is no longer in the MSSanté liste blanche' },
    };
  }
  return undefined;
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
