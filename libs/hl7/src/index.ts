export { MllpDecoder, frame, VT, FS, CR, type MllpEvent } from './mllp.ts';
export { decodeHl7, type DecodedText } from './encoding.ts';
export { Er7Message, type Segment, type Delimiters } from './er7.ts';
export {
  Hl7Error, ErrorCondition, Reason, REASON_TABLE, warning, describeWarnings, loggableReason, type ErrorConditionName, type ErrorLocation, type Hl7Warning, type ReasonName,
} from './errors.ts';
export {
  parseResult, readResult, validateResult, readHeader, checkFlagMatrix, lenientFlags, INS_OIDS, REQUIRED_FLAGS, DEFAULT_TOLERANCE, type IntakeTolerance,
  type ResultMessage, type ResultAction, type Patient, type Ins, type Participant, type ParticipantRole, type ParticipantKind,
  type ReportDocument, type DocumentKind, type Observation,
} from './result.ts';
export { buildAck, hl7Timestamp, MAX_ERR_SEGMENTS, type AckCode, type AckTarget } from './ack.ts';
export { MllpClient, parseAck, type MllpClientOptions, type Acknowledgement } from './client.ts';
export { buildZam, type ZamInput, type ZamOriginal } from './zam.ts';
export { contentHashOf } from './content-hash.ts';
export { DocumentRef, QueuedResult } from './queued.ts';
