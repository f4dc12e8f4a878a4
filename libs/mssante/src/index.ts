export { readCdaHeader, type CdaHeader } from './cda.ts';
export { buildXdmArchive, buildMetadata, documentFileName, type XdmInput, type XdmDocument, type XdmPatient } from './xdm.ts';
export { buildMailSpecs, mssanteSubject, pdfFileName, type MailInput, type MailAttachment, type SenderMailbox } from './mail.ts';
export { DEFAULT_BODIES, fillTemplate, type Audience } from './templates.ts';
