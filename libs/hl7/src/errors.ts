/** HL7 table 0357 (message error condition codes) used in ERR-3. */
export const ErrorCondition = {
  segmentSequence: { code: '100', text: 'Segment sequence error' },
  requiredFieldMissing: { code: '101', text: 'Required field missing' },
  dataType: { code: '102', text: 'Data type error' },
  tableValueNotFound: { code: '103', text: 'Table value not found' },
  unsupportedMessageType: { code: '200', text: 'Unsupported message type' },
  unsupportedEventCode: { code: '201', text: 'Unsupported event code' },
  unsupportedProcessingId: { code: '202', text: 'Unsupported processing id' },
  unsupportedVersionId: { code: '203', text: 'Unsupported version id' },
  applicationRecordLocked: { code: '206', text: 'Application record locked' },
  applicationError: { code: '207', text: 'Application internal error' },
} as const;
export type ErrorConditionName = keyof typeof ErrorCondition;

/** The local table of the gateway's reason codes, named in ERR-5 (application error code). */
export const REASON_TABLE = '99MSSGW';

/**
 * Why the gateway refuses a message or takes it with a warning: a stable code (ERR-5, logs, dead-letter headers, the
 * CLI), the table 0357 condition it falls under (ERR-3), the answer when it refuses (AR: sending the same message
 * again can never succeed; AE: the content is wrong) and the rule broken, in words. A reason that is a warning under
 * one per-source setting keeps its code when another setting makes it a refusal.
 */
export const Reason = {
  notHl7: { code: 'NOT_HL7', condition: 'segmentSequence', ack: 'AR', rule: 'an HL7 v2 message begins with MSH and declares its delimiters in MSH-1 and MSH-2' },
  controlIdMissing: { code: 'MSH10_MISSING', condition: 'requiredFieldMissing', ack: 'AE', rule: 'MSH-10 (message control id) is required' },
  versionUnsupported: { code: 'VERSION_UNSUPPORTED', condition: 'unsupportedVersionId', ack: 'AR', rule: 'HL7 versions 2.3 to 2.8 are read' },
  notAResult: { code: 'NOT_A_RESULT', condition: 'unsupportedMessageType', ack: 'AR', rule: 'the gateway takes results: ORU or MDM messages' },
  eventUnsupported: { code: 'EVENT_UNSUPPORTED', condition: 'unsupportedEventCode', ack: 'AR', rule: 'ORU^R01, MDM^T02, MDM^T10 or MDM^T04' },
  pidMissing: { code: 'PID_MISSING', condition: 'segmentSequence', ack: 'AE', rule: 'a result has a PID segment' },
  noReport: { code: 'NO_REPORT', condition: 'requiredFieldMissing', ack: 'AE', rule: 'a result carries a report: an ED document, TX/FT text or structured values' },
  edBase64: { code: 'ED_BASE64', condition: 'dataType', ack: 'AE', rule: 'OBX-5 ED data declared Base64 is complete, padded Base64 (RFC 4648)' },
  edEncoding: { code: 'ED_ENCODING', condition: 'tableValueNotFound', ack: 'AE', rule: 'OBX-5.4 (ED encoding) is Base64, A or empty' },
  edEmpty: { code: 'ED_EMPTY', condition: 'requiredFieldMissing', ack: 'AE', rule: 'an ED OBX holds data; an empty one is skipped when other OBX carry the report' },
  mailBodyBase64: { code: 'CORPSMAIL_BASE64', condition: 'dataType', ack: 'AE', rule: 'CORPSMAIL_PS / CORPSMAIL_PATIENT hold complete, padded Base64 (RFC 4648)' },
  mailBodyEncoding: { code: 'CORPSMAIL_ENCODING', condition: 'tableValueNotFound', ack: 'AE', rule: 'CORPSMAIL_PS / CORPSMAIL_PATIENT are ED encoded Base64, A or empty' },
  mailBodyNotText: { code: 'CORPSMAIL_NOT_TEXT', condition: 'dataType', ack: 'AE', rule: 'CORPSMAIL_PS / CORPSMAIL_PATIENT decode to text (UTF-8, or the charset of MSH-18)' },
  orderControl: { code: 'ORC1_VALUE', condition: 'tableValueNotFound', ack: 'AE', rule: 'ORC-1 of a CI-SIS ORU is NW, RO or CA' },
  actionMismatch: { code: 'ACTION_MISMATCH', condition: 'tableValueNotFound', ack: 'AE', rule: 'ORC-1, OBX-11 and the MDM event give the same action (NW/F/T02, RO/C/T10, CA/D/T04)' },
  flagValue: { code: 'FLAG_VALUE', condition: 'tableValueNotFound', ack: 'AE', rule: 'a MetaDMPMSS flag is Y or N' },
  flagMissing: { code: 'FLAG_MISSING', condition: 'requiredFieldMissing', ack: 'AE', rule: 'a CI-SIS result carries the eight required MetaDMPMSS flags' },
  flagOrder: { code: 'FLAG_ORDER', condition: 'segmentSequence', ack: 'AE', rule: 'the required MetaDMPMSS flags come in the order of the volet' },
  flagCombination: { code: 'FLAG_COMBINATION', condition: 'tableValueNotFound', ack: 'AE', rule: "the MetaDMPMSS flags form a combination of the volet's MSSanté table" },
  tooLarge: { code: 'TOO_LARGE', condition: 'applicationError', ack: 'AR', rule: 'a message fits within the listener\'s maxMessageBytes' },
  envelopeInvalid: { code: 'ENVELOPE_INVALID', condition: 'unsupportedMessageType', ack: 'AR', rule: 'a Kafka record is ER7 text or a valid mssgw.result.v1 JSON envelope' },
  sourceUnknown: {
    code: 'SOURCE_UNKNOWN', condition: 'unsupportedMessageType', ack: 'AR',
    rule: "a Kafka envelope's source is one the configuration names (a mailbox's sources, routing.sources, intake.tolerance, a listener, an intake topic)",
  },
  queueUnavailable: { code: 'QUEUE_UNAVAILABLE', condition: 'applicationError', ack: 'AE', rule: 'a result is acknowledged once durably queued; send it again later' },
  retriesExhausted: {
    code: 'RETRIES_EXHAUSTED', condition: 'applicationError', ack: 'AE',
    rule: 'a Kafka record that fails while the message store and the queue answer is tried 5 times, then dead-lettered so that its partition moves on',
  },
} as const satisfies Record<string, { code: string; condition: ErrorConditionName; ack: 'AE' | 'AR'; rule: string }>;
export type ReasonName = keyof typeof Reason;

/** Where in the message the problem is (ERR-2: segment id, sequence, field, component). */
export interface ErrorLocation {
  segment: string;
  sequence?: number;
  field?: number;
  component?: number;
}

/**
 * A message the gateway will not take, with what goes back in the NACK. `reject` (AR) when resending the same
 * message can never succeed (unsupported type, not HL7); `error` (AE) when the content is wrong.
 */
export class Hl7Error extends Error {
  readonly condition: ErrorConditionName;
  readonly location: ErrorLocation | undefined;
  readonly ackCode: 'AE' | 'AR';
  /** The gateway's reason (ERR-5); absent on errors built from a bare condition. */
  readonly reason: ReasonName | undefined;
  constructor(condition: ErrorConditionName, message: string, location?: ErrorLocation, ackCode: 'AE' | 'AR' = 'AE', reason?: ReasonName) {
    super(message);
    this.name = 'Hl7Error';
    this.condition = condition;
    this.location = location;
    this.ackCode = ackCode;
    this.reason = reason;
  }

  /** The refusal for one of the gateway's reasons: its condition and answer come from the reason. */
  static of(reason: ReasonName, message: string, location?: ErrorLocation): Hl7Error {
    const r = Reason[reason];
    return new Hl7Error(r.condition, message, location, r.ack, reason);
  }

  get code(): string {
    return ErrorCondition[this.condition].code;
  }

  /** The stable reason code (e.g. FLAG_COMBINATION), or '' for an error built from a bare condition. */
  get reasonCode(): string {
    return this.reason ? Reason[this.reason].code : '';
  }
}

/**
 * Something the gateway tolerated in a message it took: the ACK stays AA and carries an ERR segment of severity W.
 * The message names segments, fields and codes, never the patient's data.
 */
export interface Hl7Warning {
  reason: ReasonName;
  message: string;
  location?: ErrorLocation;
}

export const warning = (reason: ReasonName, message: string, location?: ErrorLocation): Hl7Warning => (location ? { reason, message, location } : { reason, message });

/** Warnings as they are shown and logged: stable code, location and text. */
export const describeWarnings = (warnings: readonly Hl7Warning[]) =>
  warnings.map((w) => ({ code: Reason[w.reason].code, location: w.location ?? null, text: w.message }));

/**
 * What may be logged or put in a dead-letter header about a refusal: its reason code and where, never the refused
 * value, which a reason's text may quote for the producer's ACK (a name or an INS put in MSH-9, a flag, OBX-11).
 * The gateway's own troubles (the queue or the store unavailable) quote nothing of the message and keep their text.
 */
export function loggableReason(e: Hl7Error): string {
  if (e.reason === 'queueUnavailable') return e.message;
  const l = e.location;
  const where = l ? ` at ${l.segment}${l.sequence && l.sequence > 1 ? `[${l.sequence}]` : ''}${l.field ? `-${l.field}` : ''}${l.component ? `.${l.component}` : ''}` : '';
  return `${e.reasonCode || ErrorCondition[e.condition].code}${where}`;
}
