import { createHash } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import yauzl from 'yauzl';
import { readCdaHeader } from '@mssgw/mssante';

/** The entries of a zip archive, by name. */
export function unzip(buf: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const out = new Map<string, Buffer>();
      zip.on('entry', (e: yauzl.Entry) =>
        zip.openReadStream(e, (err2, stream) => {
          if (err2 || !stream) return reject(err2 ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            out.set(e.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        }),
      );
      zip.on('end', () => resolve(out));
      zip.readEntry();
    });
  });
}

type Node = Record<string, unknown>;
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', removeNSPrefix: true, parseTagValue: false, isArray: (n) => ['ExtrinsicObject', 'Slot', 'Value', 'Classification', 'ExternalIdentifier', 'Association'].includes(n) });
const list = (v: unknown): Node[] => (Array.isArray(v) ? (v as Node[]) : v ? [v as Node] : []);
const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : v && typeof v === 'object' ? str((v as Node)['#text']) : '');
const slots = (n: Node): Map<string, string[]> => new Map(list(n['Slot']).map((s) => [str(s['@name']), list((s['ValueList'] as Node | undefined)?.['Value']).map(str)]));
const nameOf = (n: Node): string => str(((n['Name'] as Node | undefined)?.['LocalizedString'] as Node | undefined)?.['@value']);

export const SCHEME = {
  docEntry: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
  author: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  confidentiality: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  facilityType: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
  practiceSetting: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  docPatientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  docUniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  submissionSet: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
  ssAuthor: 'urn:uuid:a7058bb9-b4e4-4316-ba5b-81d3fe4a2e8f',
  ssContentType: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
  ssUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  ssSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  ssPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
};
const APPROVED = 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved';
const FORMAT_CODES = new Set(['urn:ihe:lab:xd-lab:2008', 'urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013', 'urn:ihe:iti:xds-sd:pdf:2008', 'urn:ihe:iti:xds-sd:text:2008', 'urn:ihe:iti:xds:2017:mimeTypeSufficient']);
const OID = /^[0-2](\.(0|[1-9]\d*))+$/;

/** What a receiver would read in an XDS document entry, for golden files. */
export interface EntrySummary {
  uri: string; typeCode: string; classCode: string; formatCode: string; confidentiality: string;
  facilityType: string; practiceSetting: string; action: string | null; uniqueId: string; patientId: string; author: string[];
}

/**
 * The IHE XDM rules an XSD cannot check (ITI TF-3 4.2 and the CI-SIS value sets): archive layout, URI / hash /
 * size of each document, the classifications with their schemes and codes, the external identifiers, the
 * submission set and its HasMember associations. Returns the problems found (none when the archive is right) and
 * a summary of each entry.
 */
export function xdmProblems(files: Map<string, Buffer>): { problems: string[]; entries: EntrySummary[] } {
  const problems: string[] = [];
  const need = (ok: boolean, what: string) => void (ok || problems.push(what));
  for (const f of ['README.TXT', 'INDEX.HTM', 'IHE_XDM/SUBSET01/METADATA.XML']) need(files.has(f), `missing ${f}`);
  const metadata = files.get('IHE_XDM/SUBSET01/METADATA.XML');
  if (!metadata) return { problems, entries: [] };
  const root = (parser.parse(metadata) as Node)['SubmitObjectsRequest'] as Node | undefined;
  const objects = (root?.['RegistryObjectList'] ?? {}) as Node;
  const docs = list(objects['ExtrinsicObject']);
  need(docs.length > 0, 'no XDSDocumentEntry');
  const pkg = objects['RegistryPackage'] as Node | undefined;
  const entries: EntrySummary[] = [];
  const patientIds = new Set<string>();

  for (const d of docs) {
    const id = str(d['@id']);
    const s = slots(d);
    const one = (n: string) => s.get(n)?.[0] ?? '';
    need(str(d['@objectType']) === SCHEME.docEntry, `${id}: objectType is not XDSDocumentEntry`);
    need(str(d['@mimeType']) === 'text/xml', `${id}: mimeType is not text/xml`);
    need(str(d['@status']) === APPROVED, `${id}: status is not Approved`);
    const uri = one('URI');
    const file = files.get(`IHE_XDM/SUBSET01/${uri}`);
    need(Boolean(file), `${id}: URI "${uri}" names no file of SUBSET01`);
    if (file) {
      need(one('hash') === createHash('sha1').update(file).digest('hex'), `${id}: hash is not the SHA-1 of ${uri}`);
      need(one('size') === String(file.length), `${id}: size is not the byte size of ${uri}`);
    }
    need(/^\d{14}$/.test(one('creationTime')), `${id}: creationTime is not YYYYMMDDHHMMSS`);
    need(Boolean(one('languageCode')), `${id}: no languageCode`);
    const action = s.get('action')?.[0] ?? null;
    need(action === null || action === 'C' || action === 'D', `${id}: action must be C or D`);
    const cls = new Map(list(d['Classification']).map((c) => [str(c['@classificationScheme']), c]));
    const code = (scheme: string, what: string) => {
      const c = cls.get(scheme);
      need(Boolean(c), `${id}: no ${what}`);
      if (!c) return { code: '', scheme: '' };
      need(str(c['@classifiedObject']) === id, `${id}: ${what} classifies another object`);
      need(Boolean(nameOf(c)), `${id}: ${what} has no display name`);
      return { code: str(c['@nodeRepresentation']), scheme: slots(c).get('codingScheme')?.[0] ?? '' };
    };
    const classCode = code(SCHEME.classCode, 'classCode');
    need(classCode.scheme === '1.2.250.1.213.1.1.4.1' && /^\d{2}$/.test(classCode.code), `${id}: classCode not from TRE_A03-ClasseDocument`);
    const typeCode = code(SCHEME.typeCode, 'typeCode');
    need(typeCode.scheme === '2.16.840.1.113883.6.1', `${id}: typeCode is not LOINC`);
    const formatCode = code(SCHEME.formatCode, 'formatCode');
    need(FORMAT_CODES.has(formatCode.code) && formatCode.scheme === '1.3.6.1.4.1.19376.1.2.3', `${id}: formatCode "${formatCode.code}" not an IHE format code`);
    const conf = code(SCHEME.confidentiality, 'confidentialityCode');
    need(['N', 'R', 'V'].includes(conf.code) && conf.scheme === '2.16.840.1.113883.5.25', `${id}: confidentialityCode not N, R or V`);
    const facility = code(SCHEME.facilityType, 'healthcareFacilityTypeCode');
    need(facility.scheme === '1.2.250.1.71.4.2.4' && /^SA\d{2}$/.test(facility.code), `${id}: healthcareFacilityTypeCode not from TRE_R02-SecteurActivite`);
    const practice = code(SCHEME.practiceSetting, 'practiceSettingCode');
    need(practice.scheme === '1.2.250.1.213.1.1.4.9' && Boolean(practice.code), `${id}: practiceSettingCode not from TRE_A01-CadreExercice`);
    const author = cls.get(SCHEME.author);
    need(Boolean(author), `${id}: no author`);
    const authorSlots = author ? slots(author) : new Map<string, string[]>();
    need(Boolean(authorSlots.get('authorPerson')?.[0] || authorSlots.get('authorInstitution')?.[0]), `${id}: author names neither a person nor an institution`);
    const ext = new Map(list(d['ExternalIdentifier']).map((e) => [str(e['@identificationScheme']), str(e['@value'])]));
    const patientId = ext.get(SCHEME.docPatientId) ?? '';
    const uniqueId = ext.get(SCHEME.docUniqueId) ?? '';
    need(/^[^^]+\^\^\^&[0-9.]+&ISO\^NH$/.test(patientId), `${id}: patientId is not an INS CX (…^^^&OID&ISO^NH)`);
    need(one('sourcePatientId') === patientId, `${id}: sourcePatientId differs from patientId`);
    patientIds.add(patientId);
    if (file) {
      const h = readCdaHeader(file);
      need(typeCode.code === h.code, `${id}: typeCode ${typeCode.code} is not the CDA code ${h.code}`);
      need(uniqueId === (h.id.extension ? `${h.id.root}^${h.id.extension}` : h.id.root), `${id}: uniqueId is not the CDA ClinicalDocument/id`);
      const ins = h.patientIds.find((p) => p.root.startsWith('1.2.250.1.213.1.4.'));
      need(Boolean(ins) && patientId === `${ins!.extension}^^^&${ins!.root}&ISO^NH`, `${id}: patientId is not the INS of the CDA recordTarget`);
    }
    entries.push({
      uri, typeCode: typeCode.code, classCode: classCode.code, formatCode: formatCode.code, confidentiality: conf.code,
      facilityType: facility.code, practiceSetting: practice.code, action, uniqueId, patientId, author: [...authorSlots.values()].flat(),
    });
  }
  need(patientIds.size === 1, 'the documents do not share one patientId');

  need(Boolean(pkg), 'no XDSSubmissionSet');
  if (pkg) {
    const pid = str(pkg['@id']);
    const cls = list(pkg['Classification']);
    need(cls.some((c) => str(c['@classificationNode']) === SCHEME.submissionSet && str(c['@classifiedObject']) === pid), 'the RegistryPackage is not classified as XDSSubmissionSet');
    need(cls.some((c) => str(c['@classificationScheme']) === SCHEME.ssAuthor), 'the submission set has no author');
    need(cls.some((c) => str(c['@classificationScheme']) === SCHEME.ssContentType && str(c['@nodeRepresentation'])), 'the submission set has no contentTypeCode');
    need(/^\d{14}$/.test(slots(pkg).get('submissionTime')?.[0] ?? ''), 'submissionTime is not YYYYMMDDHHMMSS');
    const ext = new Map(list(pkg['ExternalIdentifier']).map((e) => [str(e['@identificationScheme']), str(e['@value'])]));
    need(OID.test(ext.get(SCHEME.ssUniqueId) ?? ''), 'submission set uniqueId is not an OID');
    need(OID.test(ext.get(SCHEME.ssSourceId) ?? ''), 'submission set sourceId is not an OID');
    need(patientIds.has(ext.get(SCHEME.ssPatientId) ?? ''), 'submission set patientId differs from the documents');
    const members = list(objects['Association']).filter((a) => str(a['@associationType']) === 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember');
    for (const d of docs) {
      const m = members.filter((a) => str(a['@sourceObject']) === pid && str(a['@targetObject']) === str(d['@id']));
      need(m.length === 1, `${str(d['@id'])}: not exactly one HasMember association from the submission set`);
      need(m[0] ? slots(m[0]).get('SubmissionSetStatus')?.[0] === 'Original' : false, `${str(d['@id'])}: HasMember without SubmissionSetStatus Original`);
    }
  }
  return { problems, entries };
}
