/**
 * The delivery lifecycle of one recipient of one result, in one place and as pure functions: its states, which are
 * final, which moves are allowed, what each trigger (SMTP reply, DSN, MDN, confirmation timeout, routing refusal,
 * exhausted retries, operator replay) asks for, the sending retry policy, the reason codes, and what each state
 * tells producers. The status store applies these decisions atomically in PostgreSQL; the services only ask.
 *
 * refused (router) ─ final; also from queued / dead-lettered when checked again at dispatch or replay (dispatchRefusal)
 * queued ─ 250 → submitted ─ DSN → delayed ─ DSN → delivered | relayed | expanded | failed ─ MDN → displayed → processed | deleted | processing-error
 *   │ 5xx to the recipient → failed;  4xx / timeout → retried within dispatcher.retryBudgetMs, then → dead-lettered ─ operator replay → queued
 *   │ operator unreachable, or refusing the mailbox itself (auth, certificate, sender) → the mailbox's queue pauses: no attempt counted
 *   └ submitted / delayed without a final DSN in time → unconfirmed (a late DSN or MDN still settles it)
 */
export {
  DELIVERY_STATES, EVENT_SOURCES, INITIAL_STATES, FINAL_STATES, ENTER_FROM, REOPENINGS,
  isDeliveryState, isFinal, canEnter, isSendable, isResendable, confirmationClock,
  type DeliveryState, type DeliveryEventSource,
} from './states.ts';
export { REASONS, FORGED_RECEIPT_REASONS, DISPATCH_REFUSALS, type DispatchRefusalReason, type LifecycleReason, type SmtpReplyClass, type ForgedReceiptReason } from './reasons.ts';
export {
  smtpAccepted, smtpFailure, afterFailedAttempt, retriesExhausted, failureText, operatorReplay, MAILBOX_PAUSES,
  dsnTransition, mdnTransition, confirmationTimeout, routingRefusal, forgedReceipt, replyReceived, dispatchRefusal,
  type Transition, type HistoryNote, type TransitionFields, type SmtpFailure, type SmtpFailureOutcome, type MailboxPause, type DsnReport, type MdnDisposition, type DispatchCheck, type OppositionDirection,
} from './triggers.ts';
export { nextRetry, pauseDelay, retryDelayRange, sendingJobOptions, SENDING_BACKOFF_JITTER, type RetryState, type SendingRetryConfig } from './retry.ts';
export { zamFor, statusEventV1, type ZamAck, type StatusEventV1 } from './feedback.ts';
