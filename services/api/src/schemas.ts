import { DELIVERY_STATES, EVENT_SOURCES } from '@mssgw/lifecycle';

/**
 * JSON schemas of the HTTP API's answers: the documented contract (README, "HTTP API"), and what fastify uses to
 * serialise them. States and event sources are the lifecycle's own lists.
 */
const nullableString = { type: 'string' } as const;

export const historyEventSchema = {
  type: 'object',
  required: ['at', 'state', 'applied', 'source'],
  properties: {
    at: { type: 'integer', description: 'Unix time in ms' },
    state: { type: 'string' },
    applied: { type: 'boolean', description: 'false when the event came late and did not change the state' },
    source: { type: 'string', enum: EVENT_SOURCES },
    detail: nullableString,
  },
} as const;

export const deliverySchema = {
  type: 'object',
  required: ['deliveryId', 'resultId', 'recipient', 'kind', 'state', 'updatedAt'],
  properties: {
    deliveryId: { type: 'string' },
    resultId: { type: 'string' },
    recipient: { type: 'string', description: 'MSSanté address, or "<field>:<id>" for a recipient without one' },
    recipientId: nullableString,
    kind: { type: 'string', enum: ['professional', 'organisation', 'application', 'patient'] },
    state: { type: 'string', enum: DELIVERY_STATES },
    mailId: nullableString,
    messageId: nullableString,
    mailbox: nullableString,
    reason: { type: 'string', description: 'refusal reason (not-whitelisted, no-mailbox...), DSN status of a failure, no-final-dsn...' },
    detail: nullableString,
    smtpResponse: nullableString,
    queueId: nullableString,
    dsnStatus: nullableString,
    updatedAt: { type: 'integer' },
    submittedAt: { type: 'integer' },
    history: { type: 'array', items: historyEventSchema },
  },
} as const;

export const resultSchema = {
  type: 'object',
  required: ['resultId', 'source', 'controlId', 'receivedAt', 'deliveries'],
  properties: {
    resultId: { type: 'string' },
    source: { type: 'string' },
    transport: { type: 'string', enum: ['mllp', 'kafka'] },
    controlId: { type: 'string', description: 'MSH-10 of the producer' },
    sendingApplication: { type: 'string' },
    sendingFacility: { type: 'string' },
    action: { type: 'string', enum: ['initial', 'replace', 'delete'] },
    documentCode: { type: 'string' },
    receivedAt: { type: 'integer' },
    acknowledgedAt: { type: 'integer' },
    routedAt: { type: 'integer' },
    deliveries: { type: 'array', items: deliverySchema },
  },
} as const;

/** One result as a search lists it: its summary, and how many of its recipients are in each state. */
export const resultSummarySchema = {
  type: 'object',
  required: ['resultId', 'source', 'controlId', 'receivedAt', 'acknowledgedAt', 'documentCode', 'action', 'patient', 'recipients'],
  properties: {
    resultId: { type: 'string' },
    source: { type: 'string' },
    controlId: { type: 'string', description: 'MSH-10 of the producer' },
    receivedAt: { type: 'integer' },
    acknowledgedAt: { type: 'integer' },
    documentCode: { type: 'string', description: 'LOINC code of the document' },
    action: { type: 'string', enum: ['initial', 'replace', 'delete'] },
    patient: {
      type: 'object',
      properties: { ins: { type: 'string' }, family: { type: 'string' }, given: { type: 'string' } },
      description: 'INS and name (PID-3, PID-5) as received; results recorded before search existed have no name',
    },
    recipients: {
      type: 'object',
      propertyNames: { enum: DELIVERY_STATES },
      additionalProperties: { type: 'integer' },
      description: 'how many recipients are in each state (a state with none is left out)',
    },
  },
} as const;

/**
 * GET /api/v1/results: full results for a lookup by control id or document id; summaries, newest first, for a
 * search, with `next` when more remain.
 */
export const resultsPageSchema = {
  type: 'object',
  required: ['results'],
  properties: {
    results: { type: 'array', items: { anyOf: [resultSummarySchema, resultSchema] } },
    next: { type: 'string', description: 'pass as cursor (with the same filters) for the next page' },
  },
} as const;

export const mailSchema = {
  type: 'object',
  required: ['mailId', 'resultId', 'deliveries'],
  properties: {
    mailId: { type: 'string', description: '<resultId>-ps (professionals) or <resultId>-pat (patient)' },
    resultId: { type: 'string' },
    messageId: { type: 'string', description: 'RFC 5322 Message-ID of the mail' },
    deliveries: { type: 'array', items: deliverySchema },
  },
} as const;

export const errorSchema = {
  type: 'object',
  required: ['error', 'reason'],
  properties: { error: { type: 'string' }, reason: { type: 'string' } },
} as const;
