export { MllpDecoder, frame, VT, FS, CR, type MllpEvent } from './mllp.ts';
export { decodeHl7, type DecodedText } from './encoding.ts';
export { Er7Message, type Segment, type Delimiters } from './er7.ts';
export { Hl7Error, ErrorCondition, type ErrorConditionName, type ErrorLocation } from './errors.ts';
export {
  parseResult, readResult, validateResult, readHeader, checkFlagMatrix, INS_OIDS, REQUIRED_FLAGS,
  type ResultMessage, type ResultAction, type Patient, type Ins, type Participant, type ParticipantRole, type ParticipantKind,
  type ReportDocument, type DocumentKind, type Observation,
} from './result.ts';
export { buildAck, hl7Timestamp, type AckCode, type AckTarget } from './ack.ts';
export { MllpClient, parseAck, type MllpClientOptions, type Acknowledgement } from './client.ts';
export { buildZam, type ZamInput, type ZamOriginal } from './zam.ts';
