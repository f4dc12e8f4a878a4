/**
 * The `reason` a recipient's record carries, in one place. Some are codes the lifecycle gives itself; the others are
 * carried over from what decided the outcome:
 *
 * | state | reason |
 * | --- | --- |
 * | `refused` | the router's refusal reason (`no-mailbox`, `not-whitelisted`…, docs/recipients.md), or `routing-failed` |
 * | `refused` (at dispatch or replay) | `not-whitelisted`, `patient-opposition`, `professionals-opposition` (DISPATCH_REFUSALS) |
 * | `failed` (SMTP) | the enhanced status code of the operator's 5xx reply (`5.1.1`), else its reply code (`550`) |
 * | `failed` (DSN) | the DSN's status (`5.1.1`) |
 * | `dead-lettered` | `retries-exhausted` |
 * | `unconfirmed` | `no-final-dsn` |
 * | `processing-error` | the CI-SIS error code of the MDN (`processed/Error: 902^…` → `902`), when it has one |
 * | `queued` again | `replayed` |
 */
export const REASONS = {
  /** Every sending attempt failed transiently (4xx, connection errors): the delivery went to the dead-letter queue. */
  retriesExhausted: 'retries-exhausted',
  /** Submitted, and no final DSN came within `receipts.confirmationTimeoutMs`. */
  noFinalDsn: 'no-final-dsn',
  /** An operator put a dead-lettered delivery back on its send queue. */
  replayed: 'replayed',
  /** Routing failed on every attempt (e.g. the directory stayed unavailable): the result's outcome is a refusal. */
  routingFailed: 'routing-failed',
  /** The recipient's domain is not (any more) in the MSSanté liste blanche: refused at routing, dispatch or replay. */
  notWhitelisted: 'not-whitelisted',
  /** The patient opposes mails to the patient (Mon espace santé). */
  patientOpposition: 'patient-opposition',
  /** The patient opposes mails about them to professionals (practitioners, organisations, applications). */
  professionalsOpposition: 'professionals-opposition',
} as const;

/** The reasons a queued (or dead-lettered) recipient is refused when checked again before sending or replaying. */
export const DISPATCH_REFUSALS = [REASONS.notWhitelisted, REASONS.patientOpposition, REASONS.professionalsOpposition] as const;
export type DispatchRefusalReason = (typeof DISPATCH_REFUSALS)[number];

export type LifecycleReason = (typeof REASONS)[keyof typeof REASONS];

/**
 * How a sending attempt ended, by the first digit of the SMTP reply, or `conn` when it failed below SMTP (connection,
 * TLS, timeout). The `reply_class` label of the mails_retried / mails_failed metrics.
 */
export type SmtpReplyClass = '2' | '3' | '4' | '5' | 'conn';

/**
 * Why a receipt was not believed: it goes into the history of the recipient it names (`applied: false`, detail
 * `forged: <reason>; …`) and counts in `mssgw_receipts_forged_total`, and changes nothing. See docs/message.md, Receipts.
 *
 * | reason | the receipt |
 * | --- | --- |
 * | `envelope-recipient` | a DSN whose ENVID is a delivery's, reporting on another address than that delivery's |
 * | `envelope-unknown` | a DSN whose ENVID is no delivery's (guessed: a delivery id, a made-up value), and the Message-ID fallback did not hold |
 * | `not-from-operator` | a DSN without a known ENVID, naming one of our Message-IDs and recipients, that was not written by the operator's reporting MTA |
 * | `mdn-sender` | an MDN whose sender (From, Return-Path) is not the recipient it reports on |
 */
export const FORGED_RECEIPT_REASONS = ['envelope-recipient', 'envelope-unknown', 'not-from-operator', 'mdn-sender'] as const;

export type ForgedReceiptReason = (typeof FORGED_RECEIPT_REASONS)[number];
