import { createHash } from 'node:crypto';
import type { DocumentRef, QueuedResult } from '@mssgw/hl7';
import type { MailSpec } from './mail.ts';
import { applySizeLimits, route, type RoutingDecision, type RoutingPolicy } from '@mssgw/routing';
import { readCdaHeader, type CdaHeader } from './cda.ts';
import { buildCdaN1, type InstanceId } from './cda-n1.ts';
import { buildMailSpecs, pdfFileName, type MailAttachment, type SenderMailbox } from './mail.ts';
import { renderTextPdf } from './pdf.ts';
import type { BodyOverrides } from './templates.ts';
import { buildXdmArchive, type XdsCode, type XdmDocument } from './xdm.ts';

/** A result's document as received, with its CDA header when it is a CDA. */
export interface ReceivedDocument {
  ref: Pick<DocumentRef, 'kind' | 'sha256'>;
  content: Buffer;
  header?: CdaHeader;
}

export interface DocumentSettings {
  idRoot: string;
  sourceOid: string;
  custodian: { idNatStruct: string; name: string };
  facilityType: XdsCode;
  practiceSetting: XdsCode;
}

/** The configured document settings with the coding schemes of their value sets (TRE_R02, TRE_A01). */
export function documentSettings(c: {
  idRoot: string; sourceOid: string; custodian: { idNatStruct: string; name: string };
  facilityType: { code: string; displayName: string }; practiceSetting: { code: string; displayName: string };
}): DocumentSettings {
  return {
    ...c,
    facilityType: { ...c.facilityType, codingScheme: '1.2.250.1.71.4.2.4' },
    practiceSetting: { ...c.practiceSetting, codingScheme: '1.2.250.1.213.1.1.4.9' },
  };
}

export interface ContentInput {
  resultId: string;
  result: QueuedResult;
  receivedAt: number;
  documents: ReceivedDocument[];
  /** Lab or imaging: the LOINC code of a wrapped document. */
  resultType: 'lab' | 'imaging' | 'other';
  sender: { name: string; address: string };
  settings: DocumentSettings;
  /**
   * Version of a wrapped document in its set (1 for an initial send): the router asks the message store, which ranks
   * the set's results in the order they were received; offline tools pass a fixed answer.
   */
  versionOf(setId: InstanceId): Promise<number>;
}

/** What the mails of a result carry, built once for all its recipients. */
export interface ResultContent {
  attachments: MailAttachment[];
  /** Every attachment's bytes by SHA-256 (stored once by the router, written into .eml files by mssgw compose). */
  contents: Map<string, Buffer>;
  cdaCodes: string[];
  qualifiedIns: boolean;
  /** Sum of the attachment sizes, for the size limits. */
  bytes: number;
  /** CDA ids (root^extension) of the documents, wrapped ones included. */
  documentIds: string[];
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const cdaId = (h: CdaHeader) => (h.id.extension ? `${h.id.root}^${h.id.extension}` : h.id.root);
/** CDA ids are OIDs and [A-Za-z0-9.-] extensions: anything else becomes '-'. */
const idPart = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 60);

/** The set a wrapped document belongs to: the sending application and the order (or document) it answers. */
const setKeyOf = (r: Pick<QueuedResult, 'sendingApplication' | 'documentId' | 'orderId' | 'controlId'>): string =>
  `${idPart(r.sendingApplication || 'source')}.${idPart(r.documentId || r.orderId || r.controlId)}`;

/**
 * The set key of a result that may be wrapped as a CDA R2 N1 document (one that carries no CDA of its own), known at
 * intake: the message store numbers the versions of a set in the order its results were received.
 */
export function wrappedSetKey(r: Pick<QueuedResult, 'sendingApplication' | 'documentId' | 'orderId' | 'controlId' | 'documents'>): string | undefined {
  return r.documents.some((d) => d.kind === 'cda') ? undefined : setKeyOf(r);
}

/**
 * IHE_XDM.ZIP with the CDA documents (a raw result's report wrapped as CDA R2 N1 first), then the PDFs (given, or
 * embedded in the CDA) and any other report, named as ECO.2.1.6 asks. Deterministic for a given result, so a routing
 * job retried after a crash builds byte-identical attachments.
 */
export async function buildResultContent(input: ContentInput): Promise<ResultContent> {
  const { result } = input;
  const contents = new Map<string, Buffer>();
  const attachments: MailAttachment[] = [];
  const add = (filename: string, contentType: string, content: Buffer, where: 'start' | 'end' = 'end') => {
    const hash = sha256(content);
    contents.set(hash, content);
    const a = { filename, contentType, sha256: hash };
    if (where === 'start') attachments.unshift(a);
    else attachments.push(a);
  };
  let documents = input.documents.map((d) => (d.ref.kind === 'cda' && !d.header ? { ...d, header: readCdaHeader(d.content) } : d));
  if (!documents.some((d) => d.header) && input.resultType !== 'other' && result.patient.ins) {
    documents = [await wrapAsCda(input, documents)];
  }
  const cdas: XdmDocument[] = [];
  const pdfs: Buffer[] = [];
  let actDate = new Date(input.receivedAt).toISOString().replace(/-/g, '').slice(0, 8);
  for (const { ref, content, header } of documents) {
    if (header) {
      cdas.push({ cda: content, header });
      if (header.pdf) pdfs.push(header.pdf);
      if (/^\d{8}/.test(header.effectiveTime)) actDate = header.effectiveTime.slice(0, 8);
    } else if (ref.kind === 'pdf') {
      pdfs.push(content);
    } else {
      add(`${actDate}_${(result.documentLabel || 'compte-rendu').replace(/[\\/:*?"<>|]+/g, ' ')}.txt`, 'text/plain; charset=utf-8', content);
    }
  }
  const ins = result.patient.ins;
  if (cdas.length && ins) {
    const p = result.patient;
    const zip = buildXdmArchive({
      patient: { ins: ins.value, oid: ins.oid, family: p.family, given: p.given, ...(p.birthDate ? { birthDate: p.birthDate } : {}), ...(p.sex ? { sex: p.sex } : {}) },
      documents: cdas,
      senderName: result.sendingFacility || result.sendingApplication || input.sender.name,
      senderAddress: input.sender.address,
      sourceOid: input.settings.sourceOid,
      submissionSetUid: `2.25.${BigInt(`0x${sha256(Buffer.from(input.resultId)).slice(0, 30)}`).toString()}`,
      ...(result.action === 'replace' ? { action: 'C' as const } : result.action === 'delete' ? { action: 'D' as const } : {}),
      submissionTime: new Date(input.receivedAt),
      defaults: { facilityType: input.settings.facilityType, practiceSetting: input.settings.practiceSetting },
    });
    add('IHE_XDM.ZIP', 'application/zip', zip, 'start');
  }
  for (const [i, pdf] of pdfs.entries()) {
    add(pdfFileName(result, actDate).replace(/\.pdf$/, pdfs.length > 1 ? `_${i + 1}.pdf` : '.pdf'), 'application/pdf', pdf);
  }
  return {
    attachments,
    contents,
    cdaCodes: cdas.map((c) => c.header.code).filter(Boolean),
    qualifiedIns: Boolean(ins?.qualified),
    bytes: [...contents.values()].reduce((n, b) => n + b.length, 0),
    documentIds: cdas.map((c) => cdaId(c.header)),
  };
}

/**
 * A raw result as one CDA R2 N1 document: its PDF, or its text rendered to PDF. The set id is the order the report
 * answers, so a correction of the same order replaces the previous version.
 */
async function wrapAsCda(input: ContentInput, documents: ReceivedDocument[]): Promise<ReceivedDocument> {
  const { result, settings } = input;
  const type = input.resultType === 'imaging' ? 'imaging' : 'lab';
  const given = documents.find((d) => d.ref.kind === 'pdf')?.content;
  const text = documents.filter((d) => d.ref.kind === 'text').map((d) => d.content.toString('utf8')).join('\n');
  const title = result.documentLabel || (type === 'lab' ? "Compte rendu d'examens biologiques" : "Compte rendu d'imagerie médicale");
  const pdf = given ?? renderTextPdf([title, '', `${result.patient.family} ${result.patient.given}${result.patient.birthDate ? `, né(e) le ${result.patient.birthDate.slice(6, 8)}/${result.patient.birthDate.slice(4, 6)}/${result.patient.birthDate.slice(0, 4)}` : ''}`, '', ...text.split('\n')]);
  const key = setKeyOf(result);
  const setId: InstanceId = { root: `${settings.idRoot}.1`, extension: key };
  const version = await input.versionOf(setId);
  const id = (v: number): InstanceId => ({ root: settings.idRoot, extension: `${key}.${v}` });
  // The reading physician signs an imaging report; the ordering provider is only the requester.
  const author = result.participants.find((p) => p.role === 'interpreter' && p.id) ?? result.participants.find((p) => p.role === 'sender' && p.id);
  const ins = result.patient.ins!;
  const cda = buildCdaN1({
    documentId: id(version),
    setId,
    version,
    ...(result.action === 'replace' && version > 1 ? { replaces: id(version - 1) } : {}),
    type,
    title,
    effectiveTime: reportTime(input.receivedAt),
    confidentiality: 'N',
    patient: {
      ins: { value: ins.value, oid: ins.oid },
      ...(result.patient.ipp ? { ipp: { value: result.patient.ipp, oid: `${settings.idRoot}.2` } } : {}),
      family: result.patient.family, given: result.patient.given,
      ...(result.patient.birthDate ? { birthDate: result.patient.birthDate } : {}),
      ...(result.patient.sex ? { sex: result.patient.sex } : {}),
    },
    ...(author?.id ? { author: { idNatPs: /^\d{11}$/.test(author.id) ? `8${author.id}` : author.id, ...(author.family ? { family: author.family } : {}), ...(author.given ? { given: author.given } : {}) } } : {}),
    authoringSystem: { name: result.sendingApplication || 'mssante-gateway' },
    custodian: settings.custodian,
    facilityType: settings.facilityType,
    practiceSetting: settings.practiceSetting,
    pdf,
  });
  return { ref: { kind: 'cda', sha256: sha256(cda) }, content: cda, header: readCdaHeader(cda) };
}

/** YYYYMMDDHHMMSS (UTC) of when the gateway received the result: the wrapped document's creation time. */
function reportTime(receivedAt: number): string {
  return new Date(receivedAt).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

export interface PlanInput extends Omit<ContentInput, 'resultType' | 'sender'> {
  policy: RoutingPolicy;
  mailbox: SenderMailbox;
  productReference: string;
  limits: { maxPatientMailBytes: number; maxMailBytes: number };
  bodies?: BodyOverrides;
}

export interface ResultPlan {
  decision: RoutingDecision;
  /** Absent when nobody is to receive the result. */
  content?: ResultContent;
  mails: MailSpec[];
}

/**
 * Everything decided for a result before anything is stored or sent: its recipients and refusals, the content of
 * its mails, the mails. The router and `mssgw compose` both run this, so what compose shows is what is sent.
 */
export async function planResult(input: PlanInput): Promise<ResultPlan> {
  const decision = await route(input.result, input.policy);
  if (!decision.recipients.length) return { decision, mails: [] };
  const content = await buildResultContent({
    ...input, resultType: decision.resultType, sender: { name: input.mailbox.displayName ?? input.mailbox.address, address: input.mailbox.address },
  });
  applySizeLimits(decision, content.bytes, input.limits);
  const mails = decision.recipients.length
    ? buildMailSpecs({
        resultId: input.resultId, result: input.result, recipients: decision.recipients, ...(decision.replyTo ? { replyTo: decision.replyTo } : {}),
        mailbox: input.mailbox, productReference: input.productReference, ...(input.bodies ? { bodies: input.bodies } : {}),
        attachments: content.attachments, cdaCodes: content.cdaCodes, qualifiedIns: content.qualifiedIns,
      })
    : [];
  return { decision, content, mails };
}
