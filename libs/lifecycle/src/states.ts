/**
 * The states of one recipient of one result, and which moves between them are allowed. Data first, so that the
 * status store's compare-and-set, the API's schema and the tests all read the same table.
 */
export const DELIVERY_STATES = [
  'refused',
  'queued',
  'submitted',
  'delayed',
  'delivered',
  'relayed',
  'expanded',
  'failed',
  'dead-lettered',
  'unconfirmed',
  'displayed',
  'processed',
  'deleted',
  'processing-error',
] as const;

export type DeliveryState = (typeof DELIVERY_STATES)[number];

/**
 * What decided a change: the router, the dispatcher (SMTP), a DSN, an MDN, the confirmation timeout, a person. `reply`
 * marks a history entry that changes nothing: the recipient answered (the reply itself is kept apart, by id).
 */
export const EVENT_SOURCES = ['router', 'dispatcher', 'dsn', 'mdn', 'timeout', 'operator', 'reply'] as const;

export type DeliveryEventSource = (typeof EVENT_SOURCES)[number];

/** A recipient's record is created in one of these: queued for sending, or refused by the router with a reason. */
export const INITIAL_STATES = ['queued', 'refused'] as const satisfies readonly DeliveryState[];

const DSN_FINAL = ['delivered', 'relayed', 'expanded', 'failed'] as const satisfies readonly DeliveryState[];
const READ_RECEIPT = ['displayed', 'processed', 'deleted', 'processing-error'] as const satisfies readonly DeliveryState[];

/**
 * The outcomes a recipient ends with. A later receipt may still refine one into another (a late DSN after
 * `unconfirmed`, an MDN after `delivered`); only the moves of REOPENINGS make it pending again.
 */
export const FINAL_STATES: readonly DeliveryState[] = ['refused', 'dead-lettered', 'unconfirmed', ...DSN_FINAL, ...READ_RECEIPT];

/** From which states each state may be entered. A receipt that would move a recipient backwards is recorded in the history only. */
export const ENTER_FROM: Readonly<Record<DeliveryState, readonly DeliveryState[]>> = {
  // Created refused by the router; or, checked again at dispatch and at replay, a domain that left the liste blanche
  // or an opposition recorded since routing (dispatchRefusal, issues #22 and #25).
  refused: ['queued', 'dead-lettered'],
  queued: ['dead-lettered'], // replayed by an operator
  submitted: ['queued'],
  // A DSN proves the operator took the mail even when our record of its 250 was lost in a crash (still 'queued').
  delayed: ['queued', 'submitted', 'delayed', 'unconfirmed'],
  delivered: ['queued', 'submitted', 'delayed', 'unconfirmed'],
  relayed: ['queued', 'submitted', 'delayed', 'unconfirmed'],
  expanded: ['queued', 'submitted', 'delayed', 'unconfirmed'],
  failed: ['queued', 'submitted', 'delayed', 'unconfirmed'],
  'dead-lettered': ['queued'],
  unconfirmed: ['submitted', 'delayed'],
  // An MDN proves delivery even when it overtakes the DSN.
  displayed: ['submitted', 'delayed', 'unconfirmed', 'delivered', 'relayed', 'expanded'],
  processed: ['submitted', 'delayed', 'unconfirmed', 'delivered', 'relayed', 'expanded', 'displayed'],
  deleted: ['submitted', 'delayed', 'unconfirmed', 'delivered', 'relayed', 'expanded', 'displayed'],
  'processing-error': ['submitted', 'delayed', 'unconfirmed', 'delivered', 'relayed', 'expanded', 'displayed'],
};

/**
 * The only moves from a final state back to a pending one. The operator's replay of a dead letter is the intended
 * one. A "delayed" DSN arriving after the confirmation timeout also takes an `unconfirmed` recipient back to
 * `delayed` (kept as it was; questioned in #21: the clock is not restarted, so nothing times it out again).
 */
export const REOPENINGS: readonly (readonly [from: DeliveryState, to: DeliveryState])[] = [
  ['dead-lettered', 'queued'],
  ['unconfirmed', 'delayed'],
];

export const isDeliveryState = (s: string): s is DeliveryState => (DELIVERY_STATES as readonly string[]).includes(s);

/** The outcome a recipient ends with (see FINAL_STATES). */
export const isFinal = (s: DeliveryState): boolean => FINAL_STATES.includes(s);

/** Whether a recipient in `from` may move to `to`. */
export const canEnter = (from: DeliveryState, to: DeliveryState): boolean => ENTER_FROM[to].includes(from);

/** Only a queued recipient is sent: any other state means the mail was accepted, settled or refused already. */
export const isSendable = (s: DeliveryState): boolean => s === 'queued';

/**
 * Whether an operator may resend to a recipient (a new mail, linked to the first): only once its delivery is over. One
 * refused stays refused, a dead letter is replayed instead, one in flight waits.
 */
export const isResendable = (s: DeliveryState): boolean => isFinal(s) && s !== 'refused' && s !== 'dead-lettered';

/**
 * What entering `state` does to the confirmation clock (recipients awaiting a final DSN): submission starts it, a
 * final outcome stops it, anything else (a "delayed" DSN) leaves it running from the submission.
 */
export const confirmationClock = (state: DeliveryState): 'start' | 'stop' | 'keep' =>
  state === 'submitted' ? 'start' : isFinal(state) ? 'stop' : 'keep';
