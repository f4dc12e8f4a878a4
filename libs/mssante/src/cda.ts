import { XMLParser } from 'fast-xml-parser';

/** What the XDM metadata and the mail need from a CDA R2 header. */
export interface CdaHeader {
  /** ClinicalDocument/id: root and extension. */
  id: { root: string; extension?: string };
  setId?: { root: string; extension?: string };
  version?: string;
  code: string;
  codeSystem: string;
  displayName: string;
  title: string;
  effectiveTime: string;
  confidentiality: string;
  languageCode: string;
  templateIds: string[];
  /** recordTarget/patientRole/id: the INS and the local ids. */
  patientIds: { root: string; extension: string }[];
  /** The first author: a person (id, name) or a system, with its organisation. */
  author?: { id?: { root: string; extension: string }; family?: string; given?: string; organisation?: { id?: string; name?: string } };
  custodian?: { id?: string; name?: string };
  /** componentOf/encompassingEncounter/location/healthCareFacility/code (XDS healthcareFacilityTypeCode). */
  facilityType?: { code: string; displayName: string; codeSystem: string };
  /** documentationOf/serviceEvent/performer/…/standardIndustryClassCode (XDS practiceSettingCode). */
  practiceSetting?: { code: string; displayName: string; codeSystem: string };
  /** Embedded PDF of an N1 document (nonXMLBody) or of an N3 section, when present. */
  pdf?: Buffer;
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', removeNSPrefix: true, parseTagValue: false });

type Node = Record<string, unknown>;
const scalar = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
const attr = (n: unknown, name: string): string => (n && typeof n === 'object' ? scalar((n as Node)[`@${name}`]) : '');
const text = (n: unknown): string => (typeof n === 'string' ? n : n && typeof n === 'object' ? scalar((n as Node)['#text']) : '');

/** Finds the first base64 PDF anywhere in the document (nonXMLBody/text or an observationMedia). */
function findPdf(node: unknown, depth = 0): Buffer | undefined {
  if (!node || typeof node !== 'object' || depth > 40) return undefined;
  const n = node as Node;
  if (attr(n, 'mediaType') === 'application/pdf' && attr(n, 'representation') === 'B64') {
    const b64 = text(n).replace(/\s+/g, '');
    if (b64) return Buffer.from(b64, 'base64');
  }
  for (const v of Object.values(n)) {
    for (const child of Array.isArray(v) ? v : [v]) {
      const found = findPdf(child, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

const first = (v: unknown): Node | undefined => (Array.isArray(v) ? (v[0] as Node | undefined) : (v as Node | undefined));
const all = (v: unknown): Node[] => (Array.isArray(v) ? (v as Node[]) : v ? [v as Node] : []);
const path = (n: unknown, ...keys: string[]): Node | undefined => keys.reduce<Node | undefined>((cur, k) => first(cur?.[k]), n as Node | undefined);
const coded = (n: Node | undefined) => (n && attr(n, 'code') ? { code: attr(n, 'code'), displayName: attr(n, 'displayName'), codeSystem: attr(n, 'codeSystem') } : undefined);
const nameOf = (n: Node | undefined) => ({ family: text(first(n?.['family'])), given: text(first(n?.['given'])) });

// The body (a base64 PDF, or a structured report) is most of a CDA's bytes and none of its header: the XML parser
// only sees the header, and the PDF is cut out of the raw text.
const BODY = /<(?:[\w-]+:)?component\b[^>]*>\s*<(?:[\w-]+:)?(?:nonXMLBody|structuredBody)\b/;
const ROOT = /<((?:[\w-]+:)?ClinicalDocument)\b/;
const PDF_ELEMENT = /<(?:[\w-]+:)?(?:text|value)\b([^>]*)>([^<]*)</g;

/** The first base64 PDF of the body: nonXMLBody/text or an observationMedia value. */
function pdfOf(body: string): Buffer | undefined {
  for (const m of body.matchAll(PDF_ELEMENT)) {
    const attrs = m[1]!;
    if (/mediaType\s*=\s*["']application\/pdf["']/.test(attrs) && /representation\s*=\s*["']B64["']/.test(attrs)) {
      // Node's base64 decoder skips the line breaks and indentation itself.
      if (/\S/.test(m[2]!)) return Buffer.from(m[2]!, 'base64');
    }
  }
  return undefined;
}

export function readCdaHeader(xml: Buffer): CdaHeader {
  const source = xml.toString('utf8');
  const bodyAt = source.search(BODY);
  const root = ROOT.exec(source)?.[1];
  const headerXml = bodyAt > 0 && root ? `${source.slice(0, bodyAt)}</${root}>` : source;
  const doc = (parser.parse(headerXml) as Node)['ClinicalDocument'] as Node | undefined;
  if (!doc) throw new Error('not a CDA document: no ClinicalDocument element');
  const setId = doc['setId'];
  const pdf = bodyAt > 0 ? pdfOf(source.slice(bodyAt)) : findPdf(doc['component']);
  const custodian = path(doc, 'custodian', 'assignedCustodian', 'representedCustodianOrganization');
  const facilityType = coded(path(doc, 'componentOf', 'encompassingEncounter', 'location', 'healthCareFacility', 'code'));
  const practiceSetting = coded(path(doc, 'documentationOf', 'serviceEvent', 'performer', 'assignedEntity', 'representedOrganization', 'standardIndustryClassCode'));
  return {
    id: { root: attr(doc['id'], 'root'), ...(attr(doc['id'], 'extension') ? { extension: attr(doc['id'], 'extension') } : {}) },
    ...(setId ? { setId: { root: attr(setId, 'root'), ...(attr(setId, 'extension') ? { extension: attr(setId, 'extension') } : {}) } } : {}),
    ...(doc['versionNumber'] ? { version: attr(doc['versionNumber'], 'value') } : {}),
    code: attr(doc['code'], 'code'),
    codeSystem: attr(doc['code'], 'codeSystem'),
    displayName: attr(doc['code'], 'displayName'),
    title: text(doc['title']),
    effectiveTime: attr(doc['effectiveTime'], 'value'),
    confidentiality: attr(doc['confidentialityCode'], 'code'),
    languageCode: attr(doc['languageCode'], 'code'),
    templateIds: all(doc['templateId']).map((t) => attr(t, 'root')),
    patientIds: all(path(doc, 'recordTarget', 'patientRole')?.['id']).map((i) => ({ root: attr(i, 'root'), extension: attr(i, 'extension') })),
    ...readAuthor(doc),
    ...(custodian ? { custodian: { id: attr(first(custodian['id']), 'extension'), name: text(first(custodian['name'])) } } : {}),
    ...(facilityType ? { facilityType } : {}),
    ...(practiceSetting ? { practiceSetting } : {}),
    ...(pdf ? { pdf } : {}),
  };
}

function readAuthor(doc: Node): Pick<CdaHeader, 'author'> {
  const a = path(doc, 'author', 'assignedAuthor');
  if (!a) return {};
  const id = first(a['id']);
  const person = path(a, 'assignedPerson', 'name');
  const org = path(a, 'representedOrganization');
  return {
    author: {
      ...(id && attr(id, 'root') ? { id: { root: attr(id, 'root'), extension: attr(id, 'extension') } } : {}),
      ...(person ? nameOf(person) : {}),
      ...(org ? { organisation: { id: attr(first(org['id']), 'extension'), name: text(first(org['name'])) } } : {}),
    },
  };
}
