import { createHash } from 'node:crypto';
import type { CdaHeader } from './cda.ts';
import { buildZip } from './zip.ts';

/** Patient identity as the XDS patientId: the INS with its assigning authority (CX, type NH), and its traits. */
export interface XdmPatient {
  ins: string;
  oid: string;
  family?: string;
  given?: string;
  birthDate?: string;
  sex?: string;
}

/** A code of a French value set as XDS classifications carry it. */
export interface XdsCode {
  code: string;
  displayName: string;
  codingScheme: string;
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
  /** Used when a CDA header does not carry them (componentOf … healthCareFacility/code, … standardIndustryClassCode). */
  defaults: { facilityType: XdsCode; practiceSetting: XdsCode };
}

/** XDS classCode of the CI-SIS (TRE_A03-ClasseDocument): every report the gateway carries is a "Compte rendu". */
export const CLASS_CODE: XdsCode = { code: '10', displayName: 'Compte rendu', codingScheme: '1.2.250.1.213.1.1.4.1' };
const IHE_FORMAT_SCHEME = '1.3.6.1.4.1.19376.1.2.3';

/**
 * formatCode from the CDA's templateIds, most specific first (ANS ConceptMap TRE_R220/R221 → TRE_A11-IheFormatCode):
 * CR-BIO → XD-LAB, structured imaging report, then XDS-SD for a level 1 document.
 */
const FORMAT_BY_TEMPLATE: [string, string, string][] = [
  ['1.2.250.1.213.1.1.1.55', 'urn:ihe:lab:xd-lab:2008', "CR d'examens biologiques"],
  ['1.3.6.1.4.1.19376.1.3.3', 'urn:ihe:lab:xd-lab:2008', "CR d'examens biologiques"],
  ['1.2.250.1.213.1.1.1.45', 'urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013', "CR d'imagerie médicale"],
  ['1.3.6.1.4.1.19376.1.2.20', 'urn:ihe:iti:xds-sd:pdf:2008', 'Document à corps non structuré en Pdf/A-1'],
];

export function formatCodeOf(header: CdaHeader): XdsCode {
  const hit = FORMAT_BY_TEMPLATE.find(([template]) => header.templateIds.includes(template));
  return hit
    ? { code: hit[1], displayName: hit[2], codingScheme: IHE_FORMAT_SCHEME }
    : { code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient', displayName: 'Format décrit par le type MIME', codingScheme: IHE_FORMAT_SCHEME };
}

const x = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const ts = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
const slot = (name: string, ...values: string[]) =>
  `<rim:Slot name="${x(name)}"><rim:ValueList>${values.map((v) => `<rim:Value>${x(v)}</rim:Value>`).join('')}</rim:ValueList></rim:Slot>`;
const name = (v: string) => `<rim:Name><rim:LocalizedString value="${x(v)}"/></rim:Name>`;
const classification = (id: string, scheme: string, object: string, code: string, codingScheme: string, display: string) =>
  `<rim:Classification id="${id}" classificationScheme="${scheme}" classifiedObject="${object}" nodeRepresentation="${x(code)}">` +
  `${slot('codingScheme', codingScheme)}${name(display)}</rim:Classification>`;
const authorClassification = (id: string, scheme: string, object: string, slots: [string, string][]) =>
  `<rim:Classification id="${id}" classificationScheme="${scheme}" classifiedObject="${object}" nodeRepresentation="">` +
  `${slots.filter(([, v]) => v).map(([n, v]) => slot(n, v)).join('')}</rim:Classification>`;
const code = (id: string, scheme: string, object: string, c: XdsCode) => classification(id, scheme, object, c.code, c.codingScheme, c.displayName);
const externalId = (id: string, scheme: string, object: string, value: string, label: string) =>
  `<rim:ExternalIdentifier id="${id}" identificationScheme="${scheme}" registryObject="${object}" value="${x(value)}">${name(label)}</rim:ExternalIdentifier>`;

/** XDS uuids (IHE ITI TF-3 4.2.5). */
const XDS = {
  docEntry: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  confidentiality: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  docAuthor: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
  facilityType: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
  practiceSetting: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
  ssAuthor: 'urn:uuid:a7058bb9-b4e4-4316-ba5b-81d3fe4a2e8f',
  docPatientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  docUniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  submissionSet: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
  ssUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  ssSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  ssPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  ssContentType: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
};

export const documentFileName = (i: number) => `DOC${String(i + 1).padStart(4, '0')}.XML`;

const APPROVED = 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved';
const HL7_ESC = (v: string) => v.replace(/[|^~\\&]/g, ' ');

/** XCN of a CDA author: id ^ family ^ given ^^^^^^ &assigning authority OID&ISO ^ D ^^^ IDNPS. */
function authorPerson(h: CdaHeader): string {
  const a = h.author;
  if (!a?.id?.extension || !a.family) return '';
  return `${HL7_ESC(a.id.extension)}^${HL7_ESC(a.family)}^${HL7_ESC(a.given ?? '')}^^^^^^&${a.id.root}&ISO^D^^^IDNPS`;
}

/** XON of an organisation: name ^^^^^ &1.2.250.1.71.4.2.2&ISO ^ IDNST ^^^ id. */
const xon = (name: string, id?: string) => (id ? `${HL7_ESC(name)}^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^${HL7_ESC(id)}` : HL7_ESC(name));

/**
 * METADATA.XML: an ebRS 3.0 SubmitObjectsRequest with one XDSDocumentEntry per CDA (the URI, hash and size of its
 * file in the archive, its codes from the CDA header and the French value sets), the XDSSubmissionSet and one
 * HasMember association per document. patientId is the INS, as receivers file on it (ECO.2.1.2).
 */
export function buildMetadata(input: XdmInput): string {
  const p = input.patient;
  const patientId = `${p.ins}^^^&${p.oid}&ISO^NH`;
  const patientInfo = [
    `PID-3|${patientId}`,
    p.family || p.given ? `PID-5|${HL7_ESC(p.family ?? '')}^${HL7_ESC(p.given ?? '')}^^^^^L` : '',
    p.birthDate ? `PID-7|${p.birthDate.slice(0, 8)}` : '',
    p.sex ? `PID-8|${p.sex}` : '',
  ].filter(Boolean);
  const entries = input.documents.map((d, i) => {
    const id = `Document${String(i + 1).padStart(2, '0')}`;
    const h = d.header;
    const uniqueId = h.id.extension ? `${h.id.root}^${h.id.extension}` : h.id.root;
    const time = h.effectiveTime.slice(0, 14);
    const facility = h.facilityType ? { code: h.facilityType.code, displayName: h.facilityType.displayName, codingScheme: h.facilityType.codeSystem || '1.2.250.1.71.4.2.4' } : input.defaults.facilityType;
    const practice = h.practiceSetting ? { code: h.practiceSetting.code, displayName: h.practiceSetting.displayName, codingScheme: h.practiceSetting.codeSystem || '1.2.250.1.213.1.1.4.9' } : input.defaults.practiceSetting;
    const org = h.author?.organisation?.name ? xon(h.author.organisation.name, h.author.organisation.id) : h.custodian?.name ? xon(h.custodian.name, h.custodian.id) : '';
    return (
      `<rim:ExtrinsicObject id="${id}" mimeType="text/xml" objectType="${XDS.docEntry}" status="${APPROVED}">` +
      slot('creationTime', time) +
      slot('hash', createHash('sha1').update(d.cda).digest('hex')) +
      slot('size', String(d.cda.length)) +
      slot('URI', documentFileName(i)) +
      slot('languageCode', h.languageCode || 'fr-FR') +
      slot('serviceStartTime', time) +
      slot('serviceStopTime', time) +
      slot('sourcePatientId', patientId) +
      slot('sourcePatientInfo', ...patientInfo) +
      (input.action ? slot('action', input.action) : '') +
      name(h.title || h.displayName) +
      authorClassification(`${id}-author`, XDS.docAuthor, id, [['authorPerson', authorPerson(h)], ['authorInstitution', org]]) +
      code(`${id}-class`, XDS.classCode, id, CLASS_CODE) +
      classification(`${id}-conf`, XDS.confidentiality, id, h.confidentiality || 'N', '2.16.840.1.113883.5.25', { N: 'Normal', R: 'Restreint', V: 'Très restreint' }[h.confidentiality || 'N'] ?? 'Normal') +
      code(`${id}-format`, XDS.formatCode, id, formatCodeOf(h)) +
      code(`${id}-facility`, XDS.facilityType, id, facility) +
      code(`${id}-practice`, XDS.practiceSetting, id, practice) +
      classification(`${id}-type`, XDS.typeCode, id, h.code, h.codeSystem || '2.16.840.1.113883.6.1', h.displayName) +
      externalId(`${id}-pid`, XDS.docPatientId, id, patientId, 'XDSDocumentEntry.patientId') +
      externalId(`${id}-uid`, XDS.docUniqueId, id, uniqueId, 'XDSDocumentEntry.uniqueId') +
      `</rim:ExtrinsicObject>`
    );
  });
  const firstDoc = input.documents[0]?.header;
  const associations = input.documents.map(
    (_, i) =>
      `<rim:Association id="Assoc${i + 1}" associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" ` +
      `sourceObject="SubmissionSet01" targetObject="Document${String(i + 1).padStart(2, '0')}">${slot('SubmissionSetStatus', 'Original')}</rim:Association>`,
  );
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">` +
    `<rim:RegistryObjectList>${entries.join('')}` +
    `<rim:RegistryPackage id="SubmissionSet01" status="${APPROVED}">${slot('submissionTime', ts(input.submissionTime))}${name(input.senderName)}` +
    authorClassification('SubmissionSet01-author', XDS.ssAuthor, 'SubmissionSet01', [
      ['authorInstitution', HL7_ESC(input.senderName)], ['authorTelecommunication', `^^Internet^${input.senderAddress}`],
    ]) +
    // contentTypeCode: the clinical activity of the submission, given here by the type of its first document.
    (firstDoc ? classification('SubmissionSet01-content', XDS.ssContentType, 'SubmissionSet01', firstDoc.code, firstDoc.codeSystem || '2.16.840.1.113883.6.1', firstDoc.displayName || firstDoc.title) : '') +
    `<rim:Classification id="SubmissionSet01-class" classifiedObject="SubmissionSet01" classificationNode="${XDS.submissionSet}"/>` +
    externalId('SubmissionSet01-uid', XDS.ssUniqueId, 'SubmissionSet01', input.submissionSetUid, 'XDSSubmissionSet.uniqueId') +
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
export function buildXdmArchive(input: XdmInput): Buffer {
  return buildZip([
    { name: 'README.TXT', content: Buffer.from(readme(input), 'utf8') },
    { name: 'INDEX.HTM', content: Buffer.from(index(input), 'utf8') },
    { name: 'IHE_XDM/SUBSET01/METADATA.XML', content: Buffer.from(buildMetadata(input), 'utf8') },
    ...input.documents.map((d, i) => ({ name: `IHE_XDM/SUBSET01/${documentFileName(i)}`, content: d.cda })),
  ], input.submissionTime);
}
