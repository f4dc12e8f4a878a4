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
  constructor(condition: ErrorConditionName, message: string, location?: ErrorLocation, ackCode: 'AE' | 'AR' = 'AE') {
    super(message);
    this.name = 'Hl7Error';
    this.condition = condition;
    this.location = location;
    this.ackCode = ackCode;
  }
  get code(): string {
    return ErrorCondition[this.condition].code;
  }
}
