export {
  readExtraction, readHeader, readRow, isRejected, LineSplitter, ExtractionFormatError, EXTRACTION_COLUMNS, MAX_LINE_BYTES,
  type DirectoryMailbox, type ExtractionHeader, type MailboxType, type RejectedRow, type RejectionReason,
} from './extraction.ts';
export { practitionerKeys, structureKeys, rowKeys } from './keys.ts';
export { DirectoryStore, DirectoryImportError, REJECTED_LINES_KEPT, type DirectoryInfo, type ImportOptions, type ImportProgress, type ImportReport } from './store.ts';
export { formatProgress, progressLine, type ProgressLine, type ProgressStream } from './progress.ts';
export { describeRejections } from './summary.ts';
export { openExtraction, ExtractionSourceError, type ExtractionSource } from './source.ts';
export { chooseMailbox, type MailboxChoice } from './choice.ts';
export { generateExtraction, generatedRpps, generatedFiness, EXTRACTION_HEADER, type GeneratorOptions } from './generate.ts';
export { FhirDirectory, DirectoryChain, DirectoryUnavailableError, mailboxesOf, type PractitionerDirectory, type FhirDirectoryOptions } from './fhir.ts';
export { importExtraction } from './import.ts';
export { httpGet, bodyOf, type GetOptions } from './https.ts';
