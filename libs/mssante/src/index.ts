export { readCdaHeader, type CdaHeader } from './cda.ts';
export { buildCdaN1, DOCUMENT_TYPES, XDS_SD_TEMPLATE, type CdaN1Input, type InstanceId } from './cda-n1.ts';
export { buildXdmArchive, buildMetadata, documentFileName, formatCodeOf, CLASS_CODE, type XdmInput, type XdmDocument, type XdmPatient, type XdsCode } from './xdm.ts';
export { buildMailSpecs, MailSpec, mssanteSubject, pdfFileName, senderMailbox, type MailInput, type MailAttachment, type SenderMailbox } from './mail.ts';
export { buildResultContent, documentSettings, planResult, wrappedSetKey, type PlanInput, type ResultPlan, type ContentInput, type ResultContent, type ReceivedDocument, type DocumentSettings } from './compose.ts';
export { buildEml, buildEmlWithNodemailer, renderMail, type RenderedMail } from './mime.ts';
export { renderTextPdf } from './pdf.ts';
export { DEFAULT_BODIES, fillTemplate, type Audience, type BodyOverrides } from './templates.ts';
export { buildZip, type ZipEntry } from './zip.ts';
