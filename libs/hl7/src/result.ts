import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { decodeHl7 } from './encoding.ts';
import { Er7Message, type Segment } from './er7.ts';
import { Hl7Error, warning, type ErrorLocation, type Hl7Warning, type ReasonName } from './errors.ts';

/** Initial send, replacement or deletion of a document (ORC-1 NW/RO/CA ⇔ OBX-11 F/C/D ⇔ MDM T02/T10/T04). */
export type ResultAction = 'initial' | 'replace' | 'delete';

/** OIDs of the INS (Identité Nationale de Santé): NIR, NIA, and the test and demonstration ranges. */
export const INS_OIDS = {
  nir: '1.2.250.1.213.1.4.8',
  nia: '1.2.250.1.213.1.4.9',
  test: '1.2.250.1.213.1.4.10',
  demo: '1.2.250.1.213.1.4.11',
} as const;
const INS_OID_SET = new Set<string>(Object.values(INS_OIDS));
const INS_TYPE_CODES = new Set(['INS', 'INS-NIR', 'INS-NIA', 'INS-NIR-TEST', 'INS-NIR-DEMO', 'NH']);

export interface Ins {
  value: string;
  oid: string;
  /** PID-32 says the identity is qualified (VALI): only then may the INS address a patient. */
  qualified: boolean;
}

export interface Patient {
  ins?: Ins;
  /** The producer's own patient id (IPP, PID-3 type PI). */
  ipp?: string;
  family: string;
  given: string;
  /** YYYYMMDD as written in PID-7. */
  birthDate?: string;
  sex?: string;
  identityReliability?: string;
}

export type ParticipantRole = 'sender' | 'recipient' | 'reply' | 'ordering' | 'copy' | 'interpreter';
export type ParticipantKind = 'person' | 'organisation' | 'application' | 'patient';

export interface Participant {
  role: ParticipantRole;
  kind: ParticipantKind;
  id?: string;
  /** RPPS, IDNPS, ADELI, INS, FINEG, ... (XCN-13 / XON-7). */
  idType?: string;
  /** OID of the assigning authority when given. */
  idAuthority?: string;
  /** MSSanté address from PRT-15 (X.400). */
  address?: string;
  family?: string;
  given?: string;
  /** Where it came from (e.g. "PRT", "ORC-12", "OBR-28"). */
  origin: string;
}

export type DocumentKind = 'cda' | 'pdf' | 'text' | 'other';

export interface ReportDocument {
  kind: DocumentKind;
  mediaType: string;
  content: Buffer;
  bytes: number;
  sha256: string;
  /** OBX-3: document type code and label (LOINC, e.g. 11502-2 CR d'examens biologiques). */
  code: string;
  label: string;
  /** Position of the OBX segment in the message, from 1. */
  segmentIndex: number;
}

/** The normalised result: what the gateway needs from an ORU or MDM, whatever its shape on the wire. */
export interface ResultMessage {
  messageType: string;
  event: string;
  version: string;
  controlId: string;
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** "cisis": the ANS volet (PRT recipients, MetaDMPMSS flags); "raw": a plain lab/imaging ORU. */
  profile: 'cisis' | 'raw';
  charset: string;
  action: ResultAction;
  patient: Patient;
  participants: Participant[];
  documents: ReportDocument[];
  /** MetaDMPMSS flags by name (MASQUE_PS, DESTMSSANTEPAT, ACK_LECTURE_MSS, ...). */
  flags: Record<string, boolean>;
  /** CORPSMAIL_PS / CORPSMAIL_PATIENT. */
  mailBody: { professional?: string; patient?: string };
  /** NTE "FIN" under DESTMSSANTEPAT: the patient may not reply (X-MSS-MES: FIN). */
  noReplyToPatient: boolean;
  /** Document type of the result (OBR-4 / TXA-2), e.g. 11502-2. */
  documentCode: string;
  documentLabel: string;
  /** TXA-12 for MDM when present. */
  documentId?: string;
  /** The order the report answers: OBR-3 (filler), else OBR-2 / ORC-3 / ORC-2 (placer). */
  orderId?: string;
  /** ORC-1 as written (NW, RO, CA...), checked against the event and OBX-11 by validateResult. */
  orderControl: string;
  /** Stat / ASAP order (ORC-7, OBR-27, OBR-5, TQ1-9) or a critical value (OBX-8 HH, LL, AA): sent before the others. */
  urgent: boolean;
  /** OBX-11 of every report OBX, with its segment position. */
  reportStatuses: { status: string; segmentIndex: number }[];
  /** Every OBX as received: set id, value type, OBX-3 code, OBX-11 status, and for ED its decoded size and hash. */
  observations: Observation[];
  /** What was tolerated (ACK AA with ERR of severity W): an unreadable mail body, an empty ED, a mapped flag combination. */
  warnings: Hl7Warning[];
}

/**
 * How strictly a source's results are read, per source in the configuration (intake.tolerance). The defaults take
 * what the volet allows and refuse what would change who receives a result.
 */
export interface IntakeTolerance {
  /** A CORPSMAIL_PS / CORPSMAIL_PATIENT that cannot be read: 'warn' sends the default body (AA + ERR W), 'reject' refuses the result (AE). */
  mailBody: 'warn' | 'reject';
  /** MetaDMPMSS flags outside the volet's table: 'strict' refuses (AE), 'lenient' maps them as lenientFlags says (AA + ERR W). */
  flagMatrix: 'strict' | 'lenient';
}
export const DEFAULT_TOLERANCE: IntakeTolerance = { mailBody: 'warn', flagMatrix: 'strict' };

/** Warnings kept per result: a hostile message with thousands of bad OBX still gets a bounded answer. */
const MAX_WARNINGS = 20;
/** Values quoted from the message into an error text are cut to this length. */
const clip = (s: string, n = 24) => (s.length > n ? `${s.slice(0, n)}…` : s);

export interface Observation {
  setId: string;
  valueType: string;
  code: string;
  status: string;
  segmentIndex: number;
  ed?: { bytes: number; sha256: string };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const ORC_ACTIONS: Record<string, ResultAction> = { NW: 'initial', RO: 'replace', CA: 'delete' };
const OBX_ACTIONS: Record<string, ResultAction> = { F: 'initial', C: 'replace', D: 'delete' };
const MDM_ACTIONS: Record<string, ResultAction> = { T02: 'initial', T10: 'replace', T04: 'delete' };
const SUPPORTED_VERSIONS = /^2\.([3-8])(\.\d)?$/;

/** The MetaDMPMSS flags the volet requires, in their order. */
export const REQUIRED_FLAGS = [
  'MASQUE_PS', 'INVISIBLE_PATIENT', 'INVISIBLE_REP_LEGAUX', 'CONNEXION_SECRETE', 'MODIF_CONF_CODE', 'DESTDMP', 'DESTMSSANTEPS', 'DESTMSSANTEPAT',
] as const;

/** Bytes as received → normalised result (with its warnings), or an Hl7Error carrying what the NACK must say. */
export function parseResult(bytes: Buffer, tolerance: IntakeTolerance = DEFAULT_TOLERANCE): ResultMessage {
  const decoded = decodeHl7(bytes);
  return validateResult(readResult(new Er7Message(decoded.text), decoded.charset, tolerance), tolerance);
}

/** Reads the MSH header alone (for ACKs of messages that fail later checks). */
export function readHeader(msg: Er7Message) {
  const msh = msg.first('MSH')!;
  return {
    messageType: msg.get(msh, 9, 1),
    event: msg.get(msh, 9, 2),
    controlId: msg.get(msh, 10),
    version: msg.get(msh, 12),
    sendingApplication: msg.get(msh, 3),
    sendingFacility: msg.get(msh, 4),
    receivingApplication: msg.get(msh, 5),
    receivingFacility: msg.get(msh, 6),
    profile: Er7Message.raw(msh, 21),
  };
}

export function readResult(msg: Er7Message, charset = 'utf-8', tolerance: IntakeTolerance = DEFAULT_TOLERANCE): ResultMessage {
  const h = readHeader(msg);
  if (!h.controlId) throw Hl7Error.of('controlIdMissing', 'MSH-10 (message control id) is empty', { segment: 'MSH', sequence: 1, field: 10 });
  if (!SUPPORTED_VERSIONS.test(h.version)) {
    throw Hl7Error.of('versionUnsupported', `HL7 version "${clip(h.version)}" is not supported (2.3 to 2.8)`, { segment: 'MSH', sequence: 1, field: 12 });
  }
  if (h.messageType !== 'ORU' && h.messageType !== 'MDM') {
    throw Hl7Error.of('notAResult', `message type "${clip(h.messageType)}" is not a result (ORU or MDM expected)`, { segment: 'MSH', sequence: 1, field: 9 });
  }
  if (h.messageType === 'ORU' && h.event !== 'R01') {
    throw Hl7Error.of('eventUnsupported', `event "${clip(h.event)}" is not supported for ORU (R01 expected)`, { segment: 'MSH', sequence: 1, field: 9, component: 2 });
  }
  if (h.messageType === 'MDM' && !(h.event in MDM_ACTIONS)) {
    throw Hl7Error.of('eventUnsupported', `event "${clip(h.event)}" is not supported for MDM (T02, T10 or T04 expected)`, { segment: 'MSH', sequence: 1, field: 9, component: 2 });
  }
  const profile = /CISIS_CDA_HL7_V2/i.test(h.profile) ? 'cisis' : 'raw';
  const pid = msg.first('PID');
  if (!pid) throw Hl7Error.of('pidMissing', 'PID segment missing', { segment: 'PID' });

  const observations = msg.all('OBX');
  const documents: ReportDocument[] = [];
  const flags: Record<string, boolean> = {};
  const mailBody: ResultMessage['mailBody'] = {};
  let noReplyToPatient = false;
  const statuses: { status: string; segment: Segment }[] = [];
  let inDestPatient = false;

  const observationList: Observation[] = [];
  const warnings: Hl7Warning[] = [];
  const warn = (w: Hl7Warning) => void (warnings.length < MAX_WARNINGS && warnings.push(w));
  /** ED OBX with no data: skipped when the other OBX carry the report. */
  const emptyEds: Segment[] = [];
  for (const seg of msg.segments) {
    if (seg.id === 'NTE' && inDestPatient && msg.get(seg, 4).trim().toUpperCase() === 'FIN') noReplyToPatient = true;
    if (seg.id !== 'OBX') continue;
    const code = msg.get(seg, 3, 1);
    const system = msg.get(seg, 3, 3);
    inDestPatient = code === 'DESTMSSANTEPAT';
    const observation: Observation = { setId: msg.get(seg, 1), valueType: Er7Message.raw(seg, 2), code, status: Er7Message.raw(seg, 11), segmentIndex: seg.index };
    observationList.push(observation);
    const audience = system === 'MetaDMPMSS' ? MAIL_BODIES[code] : undefined;
    if (audience) {
      const body = readMailBody(msg, seg, charset, tolerance.mailBody, warn);
      if (body.ed) observation.ed = body.ed;
      if (body.text !== undefined) mailBody[audience] = body.text;
      continue;
    }
    // Decoded once: Base64 and SHA-256 are most of the cost of reading a result.
    const ed = observation.valueType === 'ED' ? decodeEd(msg, seg) : undefined;
    if (ed) observation.ed = { bytes: ed.bytes, sha256: ed.sha256 };
    if (system === 'MetaDMPMSS') {
      const v = msg.get(seg, 5, 1).toUpperCase();
      if (v !== 'Y' && v !== 'N') {
        throw Hl7Error.of('flagValue', `flag ${clip(code)} must be Y or N, got "${clip(v)}"`, { segment: 'OBX', sequence: seg.index, field: 5 });
      }
      flags[code === 'ACK_LECTURE' ? 'ACK_LECTURE_MSS' : code] = v === 'Y';
      continue;
    }
    const valueType = Er7Message.raw(seg, 2);
    if (ed) {
      if (ed.bytes > 0) documents.push(ed);
      else emptyEds.push(seg);
      statuses.push({ status: Er7Message.raw(seg, 11), segment: seg });
    } else if (valueType === 'TX' || valueType === 'FT') {
      statuses.push({ status: Er7Message.raw(seg, 11), segment: seg });
    }
  }

  // Plain-text reports (TX/FT) become one text document.
  const textLines = observations
    .filter((s) => ['TX', 'FT'].includes(Er7Message.raw(s, 2)))
    .flatMap((s) => msg.repetitions(Er7Message.raw(s, 5)).map((r) => msg.unescape(r)));
  if (documents.length === 0 && textLines.some((l) => l.trim() !== '')) {
    const first = observations.find((s) => ['TX', 'FT'].includes(Er7Message.raw(s, 2)))!;
    const content = Buffer.from(textLines.join('\n'), 'utf8');
    documents.push({
      kind: 'text', mediaType: 'text/plain', content, bytes: content.length, sha256: sha256(content),
      code: msg.get(first, 3, 1), label: msg.get(first, 3, 2), segmentIndex: first.index,
    });
  }
  // Structured lab results (NM, CE, CWE, SN, ST...) become a readable text report, one line per observation.
  const structured = observations.filter((s) => msg.get(s, 3, 3) !== 'MetaDMPMSS' && !['ED', 'TX', 'FT', ''].includes(Er7Message.raw(s, 2)));
  if (documents.length === 0 && structured.length > 0) {
    const content = Buffer.from(structured.map((s) => renderObservation(msg, s)).join('\n') + '\n', 'utf8');
    for (const s of structured) statuses.push({ status: Er7Message.raw(s, 11), segment: s });
    documents.push({
      kind: 'text', mediaType: 'text/plain', content, bytes: content.length, sha256: sha256(content),
      code: msg.get(msg.first('OBR'), 4, 1), label: msg.get(msg.first('OBR'), 4, 2), segmentIndex: structured[0]!.index,
    });
  }
  const empty = emptyEds[0];
  if (documents.length === 0) {
    throw empty
      ? Hl7Error.of('noReport', `the report is empty: OBX ${clip(msg.get(empty, 1))} holds no data and no other OBX carries a result`, { segment: 'OBX', sequence: empty.index, field: 5 })
      : Hl7Error.of('noReport', 'no report in the message (no OBX result)', { segment: 'OBX' });
  }
  for (const seg of emptyEds) {
    warn(warning('edEmpty', `OBX ${clip(msg.get(seg, 1))}: empty ED skipped; the report is sent from the other OBX`, { segment: 'OBX', sequence: seg.index, field: 5 }));
  }

  const orderControl = msg.get(msg.first('ORC'), 1);
  const action = readAction(h.messageType, h.event, orderControl, statuses.map((x) => x.status));
  const obr = msg.first('OBR');
  const txa = msg.first('TXA');
  const documentCode = msg.get(obr, 4, 1) || msg.get(txa, 2, 1) || documents[0]!.code;
  const documentLabel = msg.get(obr, 4, 2) || documents[0]!.label;

  return {
    messageType: h.messageType,
    event: h.event,
    version: h.version,
    controlId: h.controlId,
    sendingApplication: h.sendingApplication,
    sendingFacility: h.sendingFacility,
    receivingApplication: h.receivingApplication,
    receivingFacility: h.receivingFacility,
    profile,
    charset,
    action,
    patient: readPatient(msg, pid),
    participants: readParticipants(msg),
    documents,
    flags,
    mailBody,
    noReplyToPatient,
    documentCode,
    documentLabel,
    ...(txa && msg.get(txa, 12) ? { documentId: msg.get(txa, 12) } : {}),
    ...(orderIdOf(msg) ? { orderId: orderIdOf(msg) } : {}),
    orderControl,
    reportStatuses: statuses.map((x) => ({ status: x.status, segmentIndex: x.segment.index })),
    observations: observationList,
    urgent: isUrgent(msg),
    warnings,
  };
}

const MAIL_BODIES: Partial<Record<string, keyof ResultMessage['mailBody']>> = { CORPSMAIL_PS: 'professional', CORPSMAIL_PATIENT: 'patient' };

/**
 * A producer's mail body (CORPSMAIL_PS / CORPSMAIL_PATIENT). It only replaces the default text of the mail, so one that
 * cannot be read (Base64 cut short, bytes that are not text) is dropped with a warning and the default body goes
 * instead; the source setting mailBody 'reject' refuses the result. An empty one is no body at all.
 */
function readMailBody(msg: Er7Message, seg: Segment, charset: string, mode: IntakeTolerance['mailBody'], warn: (w: Hl7Warning) => void): { text?: string; ed?: Observation['ed'] } {
  const where: ErrorLocation = { segment: 'OBX', sequence: seg.index, field: 5 };
  let problem: { reason: ReasonName; why: string } | undefined;
  let ed: ReportDocument | undefined;
  try {
    ed = decodeEd(msg, seg);
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
    problem = err.reason === 'edEncoding'
      ? { reason: 'mailBodyEncoding', why: 'its ED encoding is not Base64, A or empty' }
      : { reason: 'mailBodyBase64', why: 'its Base64 is cut short or invalid' };
  }
  const text = ed && bodyText(ed.content, charset);
  if (ed && text === undefined) problem = { reason: 'mailBodyNotText', why: 'it does not decode to text' };
  if (problem) {
    const what = `OBX ${clip(msg.get(seg, 1))} (${msg.get(seg, 3, 1)}): ${problem.why}`;
    if (mode === 'reject') throw Hl7Error.of(problem.reason, what, where);
    warn(warning(problem.reason, `${what}; ignored, the default body is sent`, where));
  }
  return { ...(ed ? { ed: { bytes: ed.bytes, sha256: ed.sha256 } } : {}), ...(text?.trim() ? { text } : {}) };
}

/** C0 control characters other than tab, line feed, form feed and carriage return (and DEL): not a mail body. */
const CONTROL = /(?![\t\n\f\r\u0080-\u009f])\p{Cc}/u;

/** UTF-8 (the volet's charset), else the message's own 8-bit charset; undefined when the bytes are not text. */
function bodyText(bytes: Buffer, charset: string): string | undefined {
  const text = isUtf8(bytes) ? bytes.toString('utf8').replace(/^\uFEFF/, '') : charset === 'utf-8' ? undefined : new TextDecoder(charset).decode(bytes);
  return text === undefined || CONTROL.test(text) ? undefined : text;
}

function renderObservation(msg: Er7Message, s: Segment): string {
  const name = msg.get(s, 3, 2) || msg.get(s, 3, 1);
  const value = msg.repetitions(Er7Message.raw(s, 5)).map((r) => msg.components(r).map((c) => msg.unescape(c)).filter(Boolean).join(' ')).join(', ');
  const units = msg.get(s, 6, 2) || msg.get(s, 6, 1);
  const range = msg.get(s, 7);
  const flag = msg.get(s, 8);
  return `${name}: ${value}${units ? ` ${units}` : ''}${range ? ` (ref. ${range})` : ''}${flag ? ` [${flag}]` : ''}`;
}

/**
 * The rules of the CI-SIS volet and of the gateway on a read result: the action must be the same in ORC-1, OBX-11
 * and the MDM event; a CI-SIS result carries its MetaDMPMSS flags in an allowed combination (or, for a source set to
 * flagMatrix 'lenient', one mapped by lenientFlags, with a warning).
 */
export function validateResult(r: ResultMessage, tolerance: IntakeTolerance = DEFAULT_TOLERANCE): ResultMessage {
  const fromOrc = ORC_ACTIONS[r.orderControl];
  if (r.profile === 'cisis' && r.messageType === 'ORU' && !fromOrc) {
    throw Hl7Error.of('orderControl', `ORC-1 "${clip(r.orderControl)}" is not NW, RO or CA`, { segment: 'ORC', sequence: 1, field: 1 });
  }
  const fromEvent = r.messageType === 'MDM' ? MDM_ACTIONS[r.event] : undefined;
  if (fromOrc && fromEvent && fromOrc !== fromEvent) {
    throw Hl7Error.of('actionMismatch', `ORC-1 "${r.orderControl}" contradicts the event ${r.event}`, { segment: 'ORC', sequence: 1, field: 1 });
  }
  for (const { status, segmentIndex } of r.reportStatuses) {
    const fromObx = OBX_ACTIONS[status];
    if (fromObx && fromObx !== r.action) {
      const against = fromEvent ? `the event ${r.event}` : `ORC-1 "${clip(r.orderControl)}"`;
      throw Hl7Error.of('actionMismatch', `OBX-11 "${status}" contradicts ${against}`, { segment: 'OBX', sequence: segmentIndex, field: 11 });
    }
  }
  if (r.documents.every((d) => d.bytes === 0)) {
    throw Hl7Error.of('noReport', 'the report is empty (OBX-5 holds no data)', { segment: 'OBX', sequence: r.documents[0]?.segmentIndex ?? 1, field: 5 });
  }
  if (r.profile === 'cisis') {
    for (const name of REQUIRED_FLAGS) {
      if (!(name in r.flags)) throw Hl7Error.of('flagMissing', `MetaDMPMSS flag ${name} is missing`, { segment: 'OBX' });
    }
    // The volet fixes their order; object keys keep the order the flags came in.
    const order = Object.keys(r.flags).filter((k) => (REQUIRED_FLAGS as readonly string[]).includes(k));
    const misplaced = order.findIndex((k, i) => k !== REQUIRED_FLAGS[i]);
    if (misplaced >= 0) {
      throw Hl7Error.of('flagOrder', `MetaDMPMSS flags out of order: ${order[misplaced]} where ${REQUIRED_FLAGS[misplaced]} is expected`, { segment: 'OBX' });
    }
    const problem = flagCombinationProblem(r.flags);
    if (problem) {
      const at = r.observations.find((o) => o.code === problem.flags[0]);
      const where: ErrorLocation = at ? { segment: 'OBX', sequence: at.segmentIndex, field: 5 } : { segment: 'OBX' };
      if (tolerance.flagMatrix !== 'lenient') throw Hl7Error.of('flagCombination', problem.text, where);
      const mapped = lenientFlags(r.flags);
      if (!mapped) throw Hl7Error.of('flagCombination', `${problem.text}; the lenient mapping leaves no MSSanté recipient`, where);
      return { ...r, flags: mapped.flags, warnings: [...r.warnings, warning('flagCombination', `${problem.text}; sent to ${mapped.audience} (lenient mapping)`, where)] };
    }
  }
  return r;
}

const yn = (b: boolean | undefined) => (b ? 'Y' : 'N');

/**
 * The volet's MSSanté table (§3.3), one row per audience: what the other flags must say for it. "Les cas non
 * représentés génèrent un message d'erreur"; DESTMSSANTEPS=N with DESTMSSANTEPAT=N is DMP only, nothing for MSSanté.
 */
const MSSANTE_ROWS: readonly { ps: boolean; pat: boolean; audience: string; needs: Readonly<Record<string, boolean>> }[] = [
  { ps: true, pat: true, audience: 'professionals and patient', needs: { MASQUE_PS: false, INVISIBLE_PATIENT: false, INVISIBLE_REP_LEGAUX: false } },
  // ANS examples of this row set INVISIBLE_REP_LEGAUX=Y along with INVISIBLE_PATIENT=Y: both values are taken.
  { ps: true, pat: false, audience: 'professionals only', needs: { MASQUE_PS: false, INVISIBLE_PATIENT: true } },
  { ps: false, pat: true, audience: 'patient only', needs: { INVISIBLE_PATIENT: false, CONNEXION_SECRETE: false, DESTDMP: false } },
];

/** What is wrong with a combination the table does not list: the combination, the row it claims and the flags that row needs. */
function flagCombinationProblem(f: Record<string, boolean>): { text: string; flags: string[] } | undefined {
  const ps = Boolean(f['DESTMSSANTEPS']);
  const pat = Boolean(f['DESTMSSANTEPAT']);
  const row = MSSANTE_ROWS.find((x) => x.ps === ps && x.pat === pat);
  const wrong = row ? Object.entries(row.needs).filter(([k, v]) => Boolean(f[k]) !== v) : [];
  if (!row || !wrong.length) return undefined;
  const combination = REQUIRED_FLAGS.map((k) => `${k}=${yn(f[k])}`).join(' ');
  return {
    flags: wrong.map(([k]) => k),
    text: `MetaDMPMSS combination not in the volet's MSSanté table: ${combination}; the row "${row.audience}" needs ${wrong.map(([k, v]) => `${k}=${yn(v)}`).join(' ')}`,
  };
}

/** The allowed MSSanté combinations of the ANS volet (§3.3); any other combination is refused. */
export function checkFlagMatrix(f: Record<string, boolean>): void {
  const problem = flagCombinationProblem(f);
  if (problem) throw Hl7Error.of('flagCombination', problem.text, { segment: 'OBX' });
}

/**
 * flagMatrix 'lenient', for producers that cannot be fixed quickly. A combination the table does not list keeps
 * only the audiences its own flags let see the document, and never gains one: professionals when DESTMSSANTEPS=Y
 * and MASQUE_PS=N; the patient when DESTMSSANTEPAT=Y and INVISIBLE_PATIENT, INVISIBLE_REP_LEGAUX and
 * CONNEXION_SECRETE are all N. DESTMSSANTEPS and DESTMSSANTEPAT are set to what is kept, the other flags stay as
 * sent. Undefined when nobody is left (the result is then refused).
 */
export function lenientFlags(f: Record<string, boolean>): { flags: Record<string, boolean>; audience: string } | undefined {
  const ps = Boolean(f['DESTMSSANTEPS']) && !f['MASQUE_PS'];
  const pat = Boolean(f['DESTMSSANTEPAT']) && !f['INVISIBLE_PATIENT'] && !f['INVISIBLE_REP_LEGAUX'] && !f['CONNEXION_SECRETE'];
  const row = MSSANTE_ROWS.find((x) => x.ps === ps && x.pat === pat);
  return row ? { flags: { ...f, DESTMSSANTEPS: ps, DESTMSSANTEPAT: pat }, audience: row.audience } : undefined;
}

function decodeEd(msg: Er7Message, seg: Segment): ReportDocument {
  // OBX-5 (ED): source application ^ type of data ^ data subtype ^ encoding ^ data
  const value = Er7Message.raw(seg, 5);
  const parts = msg.components(value);
  const type = (parts[1] ?? '').toUpperCase();
  const subtype = (parts[2] ?? '').toUpperCase();
  const encoding = (parts[3] ?? '').toUpperCase();
  const data = parts.slice(4).join(msg.delimiters.component);
  const where = { segment: 'OBX', sequence: seg.index, field: 5, component: 5 };
  let content: Buffer;
  if (encoding === 'BASE64') {
    const text = msg.unescape(data);
    content = Buffer.from(text, 'base64');
    // Node's decoder skips what is not Base64 (the bytes then come out short) and reads - and _ as Base64url. Only
    // text that fails this cheap test (line breaks, say) is cleaned and checked character by character.
    const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
    if (text.length % 4 !== 0 || content.length !== (text.length / 4) * 3 - padding || text.includes('-') || text.includes('_')) {
      const clean = text.replace(/\s+/g, '');
      if (clean.length % 4 !== 0 || !BASE64.test(clean)) {
        throw Hl7Error.of('edBase64', `OBX ${clip(msg.get(seg, 1))}: the Base64 data of ${clip(msg.get(seg, 3, 1), 40) || 'the document'} is not valid Base64`, where);
      }
      content = Buffer.from(clean, 'base64');
    }
  } else if (encoding === 'A' || encoding === '' || encoding === 'ASCII') {
    content = Buffer.from(msg.unescape(data), 'utf8');
  } else {
    throw Hl7Error.of('edEncoding', `OBX ${clip(msg.get(seg, 1))}: unsupported ED encoding "${clip(encoding)}"`, { ...where, component: 4 });
  }
  const head = content.subarray(0, 512).toString('latin1');
  const kind: DocumentKind = head.startsWith('%PDF')
    ? 'pdf'
    : /<ClinicalDocument[\s>]/.test(content.subarray(0, 4096).toString('latin1')) || (subtype === 'XML' && head.trimStart().startsWith('<'))
      ? 'cda'
      : type === 'TEXT' && subtype !== 'XML' && subtype !== 'PDF'
        ? 'text'
        : subtype === 'PDF'
          ? 'pdf'
          : 'other';
  const mediaType = { pdf: 'application/pdf', cda: 'text/xml', text: 'text/plain', other: 'application/octet-stream' }[kind];
  return {
    kind, mediaType, content, bytes: content.length, sha256: sha256(content),
    code: msg.get(seg, 3, 1), label: msg.get(seg, 3, 2), segmentIndex: seg.index,
  };
}

function readAction(type: string, event: string, orderControl: string, statuses: string[]): ResultAction {
  if (type === 'MDM' && MDM_ACTIONS[event]) return MDM_ACTIONS[event];
  const fromOrc = ORC_ACTIONS[orderControl];
  if (fromOrc) return fromOrc;
  for (const st of statuses) if (OBX_ACTIONS[st]) return OBX_ACTIONS[st];
  return 'initial';
}

function readPatient(msg: Er7Message, pid: Segment): Patient {
  const reliability = msg.get(pid, 32);
  let ins: Ins | undefined;
  let ipp: string | undefined;
  for (const rep of msg.repetitions(Er7Message.raw(pid, 3))) {
    const c = msg.components(rep);
    const value = msg.unescape(c[0] ?? '');
    const authority = msg.subcomponents(c[3] ?? '');
    const oid = authority[1] ?? '';
    const typeCode = (c[4] ?? '').toUpperCase();
    if (!ins && value && (INS_OID_SET.has(oid) || INS_TYPE_CODES.has(typeCode))) {
      ins = { value, oid, qualified: reliability.toUpperCase() === 'VALI' };
    } else if (!ipp && value && (typeCode === 'PI' || typeCode === '')) {
      ipp = value;
    }
  }
  const birth = msg.get(pid, 7).slice(0, 8);
  return {
    ...(ins ? { ins } : {}),
    ...(ipp ? { ipp } : {}),
    family: msg.get(pid, 5, 1),
    given: msg.get(pid, 5, 2),
    ...(birth ? { birthDate: birth } : {}),
    ...(msg.get(pid, 8) ? { sex: msg.get(pid, 8) } : {}),
    ...(reliability ? { identityReliability: reliability } : {}),
  };
}

/** XCN (person): id ^ family ^ given ^ ... ^ assigning authority (9) ^ ... ^ identifier type (13). */
function person(msg: Er7Message, xcn: string, role: ParticipantRole, origin: string): Participant | undefined {
  const c = msg.components(xcn);
  const id = msg.unescape(c[0] ?? '').trim();
  const family = msg.unescape(c[1] ?? '').trim();
  if (!id && !family) return undefined;
  const authority = msg.subcomponents(c[8] ?? '');
  const oid = authority.length > 1 ? authority[1]! : /^\d+(\.\d+)+$/.test(authority[0] ?? '') ? authority[0]! : '';
  const idType = (c[12] ?? '').trim();
  const isPatient = INS_OID_SET.has(oid) || (['INS', 'INS-NIR', 'INS-NIA', 'NH'].includes(idType.toUpperCase()));
  return {
    role, kind: isPatient ? 'patient' : 'person', origin,
    ...(id ? { id } : {}), ...(idType ? { idType } : {}), ...(oid ? { idAuthority: oid } : {}),
    ...(family ? { family } : {}), ...(c[2] ? { given: msg.unescape(c[2]) } : {}),
  };
}

const PRT_ROLES: Record<string, ParticipantRole> = { SB: 'sender', RCT: 'recipient', REPLY: 'reply' };

function readParticipants(msg: Er7Message): Participant[] {
  const out: Participant[] = [];
  for (const prt of msg.all('PRT')) {
    const role = PRT_ROLES[msg.get(prt, 4, 1).toUpperCase()];
    if (!role) continue;
    const address = msg.get(prt, 15, 4).trim() || undefined;
    const p = person(msg, msg.repetitions(Er7Message.raw(prt, 5))[0] ?? '', role, 'PRT');
    const org = msg.get(prt, 8, 1);
    const device = msg.get(prt, 10, 1);
    const base: Participant = p ?? (org
      ? { role, kind: 'organisation', origin: 'PRT', id: msg.get(prt, 8, 10) || org, idType: msg.get(prt, 8, 7), family: org }
      : device
        ? { role, kind: 'application', origin: 'PRT', id: device }
        : { role, kind: address?.toLowerCase().endsWith('@patient.mssante.fr') ? 'patient' : 'person', origin: 'PRT' });
    out.push(address ? { ...base, address } : base);
  }
  const orc = msg.first('ORC');
  const obr = msg.first('OBR');
  const add = (p: Participant | undefined) => {
    if (p && !out.some((o) => o.role === p.role && o.id && o.id === p.id)) out.push(p);
  };
  for (const x of msg.repetitions(Er7Message.raw(orc, 12))) add(person(msg, x, 'ordering', 'ORC-12'));
  for (const x of msg.repetitions(Er7Message.raw(obr, 16))) add(person(msg, x, 'ordering', 'OBR-16'));
  for (const x of msg.repetitions(Er7Message.raw(obr, 28))) add(person(msg, x, 'copy', 'OBR-28'));
  // OBR-32 (NDL): the interpreter is the first component, its parts in subcomponents.
  const interp = msg.components(Er7Message.raw(obr, 32))[0] ?? '';
  if (interp) add(person(msg, msg.subcomponents(interp).join(msg.delimiters.component), 'interpreter', 'OBR-32'));
  return out;
}

function orderIdOf(msg: Er7Message): string | undefined {
  const obr = msg.first('OBR');
  const orc = msg.first('ORC');
  return (obr && (msg.get(obr, 3, 1) || msg.get(obr, 2, 1))) || (orc && (msg.get(orc, 3, 1) || msg.get(orc, 2, 1))) || undefined;
}

const URGENT_PRIORITIES = new Set(['S', 'A']);
const CRITICAL_FLAGS = new Set(['HH', 'LL', 'AA']);

function isUrgent(msg: Er7Message): boolean {
  const orc = msg.first('ORC');
  const obr = msg.first('OBR');
  const tq1 = msg.first('TQ1');
  const priorities = [orc && msg.get(orc, 7, 6), obr && msg.get(obr, 27, 6), obr && msg.get(obr, 5, 1), tq1 && msg.get(tq1, 9, 1)];
  if (priorities.some((p) => p && URGENT_PRIORITIES.has(p.toUpperCase()))) return true;
  return msg.all('OBX').some((o) => msg.repetitions(Er7Message.raw(o, 8)).some((f) => CRITICAL_FLAGS.has(f.toUpperCase())));
}
