import { createHash } from 'node:crypto';
import yazl from 'yazl';
import type { CdaHeader } from './cda.ts';

/** Patient identity as the XDS patientId: the INS with its assigning authority (CX, type NH). */
export interface XdmPatient {
  ins: string;
  oid: string;
}

export interface XdmDocument {
  cda: Buffer;
  header: CdaHeader;
}

export interface XdmInput {
  patient: XdmPatient;
  documents: XdmDocument[];
  /** Sender shown in README.TXT and the submission set author. */
  senderName: string;
  senderAddress: string;
  /** Source id of the submission set (the gateway's OID). */
  sourceOid: string;
  /** Unique id of the submission set; derived from the result so the same result gives the same archive. */
  submissionSetUid: string;
  /** "C" (change) for a replacement, "D" for a deletion (the ANS extra-metadata "action"). */
  action?: 'C' | 'D';
  submissionTime: Date;
}

const x = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const ts = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
const slot = (name: string, ...values: string[]) =>
  `<rim:Slot name="${x(name)}"><rim:ValueList>${values.map((v) => `<rim:Value>${x(v)}</rim:Value>`).join('')}</rim:ValueList></rim:Slot>`;
const name = (v: string) => `<rim:Name><rim:LocalizedString value="${x(v)}"/></rim:Name>`;
const classification = (id: string, scheme: string, object: string, code: string, codingScheme: string, display: string) =>
  `<rim:Classification id="${id}" classificationScheme="${scheme}" classifiedObject="${object}" nodeRepresentation="${x(code)}">` +
  `${slot('codingScheme', codingScheme)}${name(display)}</rim:Classification>`;
const externalId = (id: string, scheme: string, object: string, value: string, label: string) =>
  `<rim:ExternalIdentifier id="${id}" identificationScheme="${scheme}" registryObject="${object}" value="${x(value)}">${name(label)}</rim:ExternalIdentifier>`;

/** XDS uuids (IHE ITI TF-3 4.2.5). */
const XDS = {
  docEntry: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  confidentiality: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  docPatientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  docUniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  submissionSet: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
  ssUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  ssSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  ssPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  ssContentType: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
};

export const documentFileName = (i: number) => `DOC${String(i + 1).padStart(4, '0')}.XML`;

export function buildMetadata(input: XdmInput): string {
  const patientId = `${input.patient.ins}^^^&${input.patient.oid}&ISO^NH`;
  const entries = input.documents.map((d, i) => {
    const id = `Document${String(i + 1).padStart(2, '0')}`;
    const h = d.header;
    const uniqueId = h.id.extension ? `${h.id.root}^${h.id.extension}` : h.id.root;
    return (
      `<rim:ExtrinsicObject id="${id}" mimeType="text/xml" objectType="${XDS.docEntry}">` +
      slot('creationTime', h.effectiveTime.slice(0, 14)) +
      slot('hash', createHash('sha1').update(d.cda).digest('hex')) +
      slot('size', String(d.cda.length)) +
      slot('URI', documentFileName(i)) +
      slot('languageCode', h.languageCode || 'fr-FR') +
      slot('sourcePatientId', patientId) +
      (input.action ? slot('action', input.action) : '') +
      name(h.title || h.displayName) +
      classification(`${id}-type`, XDS.typeCode, id, h.code, h.codeSystem || '2.16.840.1.113883.6.1', h.displayName) +
      classification(`${id}-conf`, XDS.confidentiality, id, h.confidentiality || 'N', '2.16.840.1.113883.5.25', 'Normal') +
      externalId(`${id}-pid`, XDS.docPatientId, id, patientId, 'XDSDocumentEntry.patientId') +
      externalId(`${id}-uid`, XDS.docUniqueId, id, uniqueId, 'XDSDocumentEntry.uniqueId') +
      `</rim:ExtrinsicObject>`
    );
  });
  const ssUid = input.submissionSetUid;
  const associations = input.documents.map(
    (_, i) =>
      `<rim:Association id="Assoc${i + 1}" associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" ` +
      `sourceObject="SubmissionSet01" targetObject="Document${String(i + 1).padStart(2, '0')}">${slot('SubmissionSetStatus', 'Original')}</rim:Association>`,
  );
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">` +
    `<rim:RegistryObjectList>${entries.join('')}` +
    `<rim:RegistryPackage id="SubmissionSet01">${slot('submissionTime', ts(input.submissionTime))}${name(input.senderName)}` +
    `<rim:Classification id="SubmissionSet01-class" classifiedObject="SubmissionSet01" classificationNode="${XDS.submissionSet}"/>` +
    externalId('SubmissionSet01-uid', XDS.ssUniqueId, 'SubmissionSet01', ssUid, 'XDSSubmissionSet.uniqueId') +
    externalId('SubmissionSet01-src', XDS.ssSourceId, 'SubmissionSet01', input.sourceOid, 'XDSSubmissionSet.sourceId') +
    externalId('SubmissionSet01-pid', XDS.ssPatientId, 'SubmissionSet01', patientId, 'XDSSubmissionSet.patientId') +
    `</rim:RegistryPackage>${associations.join('')}</rim:RegistryObjectList></lcm:SubmitObjectsRequest>\n`
  );
}

function readme(input: XdmInput): string {
  return [
    `Emetteur : ${input.senderName} <${input.senderAddress}>`,
    'Application de l\'emetteur : mssante-gateway',
    'Instructions : ce support contient des documents de sante au format IHE XDM.',
    'Arborescence :',
    '  README.TXT',
    '  INDEX.HTM',
    '  IHE_XDM/SUBSET01/METADATA.XML',
    ...input.documents.map((_, i) => `  IHE_XDM/SUBSET01/${documentFileName(i)}`),
    '',
  ].join('\r\n');
}

function index(input: XdmInput): string {
  const items = input.documents
    .map((d, i) => `<li><a href="IHE_XDM/SUBSET01/${documentFileName(i)}">${x(d.header.title || d.header.displayName)}</a></li>`)
    .join('');
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>IHE XDM</title></head><body><h1>Documents</h1><ul>${items}</ul><p><a href="README.TXT">README.TXT</a></p></body></html>\n`;
}

/** IHE_XDM.ZIP: README.TXT, INDEX.HTM, IHE_XDM/SUBSET01/METADATA.XML and the CDA documents. */
export async function buildXdmArchive(input: XdmInput): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const mtime = input.submissionTime;
  zip.addBuffer(Buffer.from(readme(input), 'utf8'), 'README.TXT', { mtime });
  zip.addBuffer(Buffer.from(index(input), 'utf8'), 'INDEX.HTM', { mtime });
  zip.addBuffer(Buffer.from(buildMetadata(input), 'utf8'), 'IHE_XDM/SUBSET01/METADATA.XML', { mtime });
  input.documents.forEach((d, i) => zip.addBuffer(d.cda, `IHE_XDM/SUBSET01/${documentFileName(i)}`, { mtime }));
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
