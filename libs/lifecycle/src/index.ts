/**
 * The delivery lifecycle of one recipient of one result, in one place and as pure functions: its states, which are
 * final, which moves are allowed, what each trigger (SMTP reply, DSN, MDN, confirmation timeout, routing refusal,
 * exhausted retries, operator replay) asks for, the sending retry policy, the reason codes, and what each state
 * tells producers. The status store applies these decisions atomically in Redis; the services only ask.
 *
 * refused (router) ─ final
 * queued ─ 250 → submitted ─ DSN → delayed ─ DSN → delivered | relayed | expanded | failed ─ MDN → displayed → processed | deleted | processing-error
 *   │ 5xx → failed;  4xx / connection → retry, then → dead-lettered ─ operator replay → queued
 *   └ submitted / delayed without a final DSN in time → unconfirmed (a late DSN or MDN still settles it)
 */
export {
  DELIVERY_STATES, EVENT_SOURCES, INITIAL_STATES, FINAL_STATES, ENTER_FROM, REOPENINGS,
  isDeliveryState, isFinal, canEnter, isSendable, confirmationClock,
  type DeliveryState, type DeliveryEventSource,
} from './states.ts';
export { REASONS, FORGED_RECEIPT_REASONS, type LifecycleReason, type SmtpReplyClass, type ForgedReceiptReason } from './reasons.ts';
export {
  smtpAccepted, smtpFailure, afterFailedAttempt, retriesExhausted, failureText, operatorReplay,
  dsnTransition, mdnTransition, confirmationTimeout, routingRefusal, forgedReceipt, replyReceived,
  type Transition, type HistoryNote, type TransitionFields, type SmtpFailure, type SmtpFailureOutcome, type DsnReport, type MdnDisposition,
} from './triggers.ts';
export { sendingRetryPolicy, retryDelayRange, SENDING_BACKOFF_JITTER, type SendingRetryConfig, type RetryPolicy } from './retry.ts';
export { zamFor, statusEventV1, type ZamAck, type StatusEventV1 } from './feedback.ts';
