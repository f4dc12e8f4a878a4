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

export function readCdaHeader(xml: Buffer): CdaHeader {
  const doc = (parser.parse(xml.toString('utf8')) as Node)['ClinicalDocument'] as Node | undefined;
  if (!doc) throw new Error('not a CDA document: no ClinicalDocument element');
  const setId = doc['setId'];
  const pdf = findPdf(doc['component']);
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
    ...(pdf ? { pdf } : {}),
  };
}
