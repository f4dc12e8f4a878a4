export { readExtraction, readHeader, readRow, isRejected, EXTRACTION_COLUMNS, type DirectoryMailbox, type MailboxType, type RejectedRow } from './extraction.ts';
export { practitionerKeys, structureKeys, rowKeys } from './keys.ts';
export { DirectoryStore, DirectoryImportError, type DirectoryInfo, type ImportReport } from './store.ts';
export { openExtraction, ExtractionSourceError, type ExtractionSource } from './source.ts';
export { chooseMailbox, type MailboxChoice } from './choice.ts';
export { generateExtraction, generatedRpps, generatedFiness, EXTRACTION_HEADER, type GeneratorOptions } from './generate.ts';
export { FhirDirectory, DirectoryChain, DirectoryUnavailableError, mailboxesOf, type PractitionerDirectory, type FhirDirectoryOptions } from './fhir.ts';
export { importExtraction } from './import.ts';
