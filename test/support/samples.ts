/**
 * Builders for fictitious results: a small valid PDF, a CDA R2 level 1 document wrapping it, and CI-SIS ORU /
 * MDM messages or raw lab ORUs around them. Patients use the INS test range (OID 1.2.250.1.213.1.4.10).
 * The demo's shipped samples (deploy/demo/samples) are generated from here; tests and benchmarks build their own.
 */

import { buildCdaN1, renderTextPdf } from '@mssgw/mssante';

export const TEST_INS_OID = '1.2.250.1.213.1.4.10';
const RPPS_OID = '1.2.250.1.71.4.2.1';

/** A PDF with the given lines of text (the gateway's own renderer), padded to about `padTo` bytes if asked. */
export const makePdf = (lines: string[], padTo = 0): Buffer => renderTextPdf(lines, padTo);

export interface SamplePatient {
  ins: string;
  family: string;
  given: string;
  birthDate: string;
  sex: 'F' | 'M';
  /** PID-32; VALI for a qualified identity. */
  reliability?: string;
  insOid?: string;
}

export interface SamplePractitioner {
  rpps: string;
  family: string;
  given: string;
  address?: string;
}

export const PATIENTS: SamplePatient[] = [
  { ins: '279035121518989', family: 'PAT-TROIS', given: 'DOMINIQUE', birthDate: '19790328', sex: 'F' },
  { ins: '180126511000157', family: 'DEMO-MARTIN', given: 'LUC', birthDate: '19801205', sex: 'M' },
  { ins: '294082A10000142', family: 'ESSAI-NOËL', given: 'ÉLODIE', birthDate: '19940821', sex: 'F' },
];

export const DOCTORS: SamplePractitioner[] = [
  { rpps: '810000000001', family: 'MEDECIN-UN', given: 'Alice', address: 'alice.medecin-un@cabinet-demo.mssante.test' },
  { rpps: '810000000002', family: 'MEDECIN-DEUX', given: 'Bruno', address: 'bruno.medecin-deux@cabinet-demo.mssante.test' },
  { rpps: '810000000003', family: 'RADIOLOGUE', given: 'Chloé', address: 'chloe.radiologue@chu-demo.mssante.test' },
];


export interface CdaOptions {
  patient: SamplePatient;
  author: SamplePractitioner;
  code: '11502-2' | '18748-4';
  title: string;
  documentId: string;
  setId?: string;
  version?: number;
  effectiveTime: string;
  pdf: Buffer;
}

/** A producer's CDA R2 level 1 (nonXMLBody) document in the shape of the ANS examples (the gateway's own builder). */
export function makeCda(o: CdaOptions): Buffer {
  return buildCdaN1({
    documentId: { root: '1.2.250.1.999.2.1', extension: o.documentId },
    setId: { root: '1.2.250.1.999.2.2', extension: o.setId ?? o.documentId },
    version: o.version ?? 1,
    type: o.code === '11502-2' ? 'lab' : 'imaging',
    title: o.title,
    effectiveTime: o.effectiveTime,
    confidentiality: 'N',
    patient: { ins: { value: o.patient.ins, oid: o.patient.insOid ?? TEST_INS_OID }, family: o.patient.family, given: o.patient.given, birthDate: o.patient.birthDate, sex: o.patient.sex },
    author: { idNatPs: `8${o.author.rpps.slice(1)}`, family: o.author.family, given: o.author.given },
    authoringSystem: { name: 'SIL-DEMO' },
    custodian: { idNatStruct: '1999999999', name: 'CHU Demo' },
    facilityType: { code: 'SA01', displayName: 'Etablissement public de santé' },
    practiceSetting: { code: 'ETABLISSEMENT', displayName: 'Etablissement de santé' },
    pdf: o.pdf,
  });
}

/** PID with the INS (and an IPP), name, birth date, sex and PID-32 identity reliability. */
function pid(p: SamplePatient, ipp?: string): string {
  const f: string[] = ['PID'];
  f[3] = `${p.ins}^^^ASIP-SANTE-INS-NIR&${p.insOid ?? TEST_INS_OID}&ISO^INS` + (ipp ? `~${ipp}^^^CHU-DEMO&1.2.250.1.999.1&ISO^PI` : '');
  f[5] = `${p.family}^${p.given}^^^^^L`;
  f[7] = p.birthDate;
  f[8] = p.sex;
  f[32] = p.reliability ?? 'VALI';
  return Array.from({ length: f.length }, (_, i) => f[i] ?? '').join('|');
}

const flag = (i: number, name: string, label: string, v: boolean, type = 'CE') =>
  `OBX|${i}|${type}|${name}^${label}^MetaDMPMSS||${v ? 'Y' : 'N'}^^expandedYes-NoIndicator||||||F|`;

export interface CisisOptions {
  controlId: string;
  patient: SamplePatient;
  /** Recipient addresses; the patient's own address is added when `toPatient`. */
  doctors: SamplePractitioner[];
  /** Extra RCT addresses with no practitioner id (organisations, or deliberately wrong ones in tests). */
  extraAddresses?: string[];
  toPatient?: boolean;
  kind?: 'lab' | 'imaging';
  /** ORU (v2.5) or MDM (v2.6). */
  message?: 'ORU' | 'MDM';
  action?: 'initial' | 'replace' | 'delete';
  readReceipt?: boolean;
  noReplyToPatient?: boolean;
  replyTo?: string;
  pdfBytes?: number;
  bodyPs?: string;
  sendingApplication?: string;
  timestamp?: string;
}

/** A CI-SIS "Transmission d'un document CDA-R2 en HL7v2" message (ORU^R01 v2.5 or MDM^T02/T10/T04 v2.6). */
export function makeCisisResult(o: CisisOptions): string {
  const kind = o.kind ?? 'lab';
  const code = kind === 'lab' ? '11502-2' : '18748-4';
  const label = kind === 'lab' ? "CR d'examens biologiques" : "CR d'imagerie médicale";
  const ts = o.timestamp ?? '20261126093000';
  const action = o.action ?? 'initial';
  const p = o.patient;
  const author = o.doctors[0] ?? DOCTORS[0]!;
  const pdf = makePdf([`${label}`, `Patient: ${p.family} ${p.given}`, `Demande: ${o.controlId}`, 'Resultats: voir compte rendu.'], o.pdfBytes ?? 0);
  const cda = makeCda({ patient: p, author, code, title: label, documentId: `DOC-${o.controlId}`, setId: `SET-${o.controlId}`, effectiveTime: ts, pdf });
  const mdm = o.message === 'MDM';
  const event = mdm ? { initial: 'T02', replace: 'T10', delete: 'T04' }[action] : 'R01';
  const orc = { initial: 'NW', replace: 'RO', delete: 'CA' }[action];
  const obx11 = { initial: 'F', replace: 'C', delete: 'D' }[action];
  const ce = mdm ? 'CWE' : 'CE';
  const xcn = (d: SamplePractitioner) => `${d.rpps}^${d.family}^${d.given}^^^^^^ASIP-SANTE-PS&${RPPS_OID}&ISO^D^^^RPPS`;
  const insXcn = `${p.ins}^${p.family}^${p.given}^^^^^^${p.insOid ?? TEST_INS_OID}^L^^^INS`;
  const segs = [
    `MSH|^~\\&|${o.sendingApplication ?? (kind === 'lab' ? 'SIL-DEMO' : 'RIS-DEMO')}|CHU-DEMO|MSSGW|CHU-DEMO|${ts}||${mdm ? `MDM^${event}^MDM_T02` : 'ORU^R01^ORU_R01'}|${o.controlId}|P|${mdm ? '2.6' : '2.5'}|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2`,
    mdm ? `EVN||${ts}` : '',
    pid(p, `IPP${o.controlId}`),
    'PV1|1|O|',
    `ORC|${orc}|${o.controlId}^DEMO|${o.controlId}-F^LAB|||||||||${xcn(author)}`,
    mdm ? '' : `OBR|1|${o.controlId}^DEMO|${o.controlId}-F^LAB|${code}^${label}^LN|||${ts}|||||||||${xcn(author)}||||||${ts}|||F`,
    mdm ? `TXA|1|${code}^${label}^LN|TEXT|${ts}||||||||1.2.250.1.999.2.1^DOC-${o.controlId}||||||AU` : '',
    `OBX|1|ED|${code}^${label}^LN||^TEXT^XML^Base64^${cda.toString('base64')}||||||${obx11}|`,
    `PRT||UC||SB^Send by^participation|${xcn(author)}|||CHU Demo^^^^^ASIP-SANTE-ST&1.2.250.1.71.4.2.2&ISO^FINEG^^^1999999999`,
    ...o.doctors.map((d) => `PRT||UC||RCT^Result Copies To^participation|${xcn(d)}${d.address ? `||||||||||^^X.400^${d.address}` : ''}`),
    ...(o.extraAddresses ?? []).map((a) => `PRT||UC||RCT^Result Copies To^participation|||||||||||^^X.400^${a}`),
    ...(o.toPatient ? [`PRT||UC||RCT^Result Copies To^participation|${insXcn}||||||||||^^X.400^${p.ins}@patient.mssante.fr`] : []),
    ...(o.replyTo ? [`PRT||UC||REPLY^Reply To^participation|||||||||||^^X.400^${o.replyTo}`] : []),
    flag(2, 'MASQUE_PS', 'Masqué aux professionnels de Santé', false, ce),
    flag(3, 'INVISIBLE_PATIENT', 'Document Non Visible par le patient', !o.toPatient, ce),
    flag(4, 'INVISIBLE_REP_LEGAUX', 'Non visible par les représentants Légaux du patient', !o.toPatient, ce),
    flag(5, 'CONNEXION_SECRETE', 'Connexion Secrete', false, ce),
    flag(6, 'MODIF_CONF_CODE', 'Modification Confidentiality Code', false, ce),
    flag(7, 'DESTDMP', 'Destinataire DMP', false, ce),
    flag(8, 'DESTMSSANTEPS', 'Destinataire PS', o.doctors.length + (o.extraAddresses?.length ?? 0) > 0, ce),
    flag(9, 'DESTMSSANTEPAT', 'Destinataire Patient', o.toPatient ?? false, ce),
    ...(o.noReplyToPatient ? ['NTE|1|||FIN|'] : []),
    flag(10, 'ACK_RECEPTION', 'Accusé de réception', true, ce),
    flag(11, 'ACK_LECTURE_MSS', 'Accusé de lecture', o.readReceipt ?? false, ce),
    ...(o.bodyPs ? [`OBX|12|ED|CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^TEXT^^Base64^${Buffer.from(o.bodyPs, 'utf8').toString('base64')}||||||F|`] : []),
  ];
  return segs.filter(Boolean).join('\r') + '\r';
}

export interface RawLabOptions {
  controlId: string;
  patient: SamplePatient;
  ordering: SamplePractitioner;
  copies?: SamplePractitioner[];
  /** The reading physician (OBR-32). */
  interpreter?: SamplePractitioner;
  version?: '2.3.1' | '2.4' | '2.5' | '2.5.1';
}

/** A raw (non CI-SIS) lab ORU^R01 with numeric results and practitioners named by RPPS, no addresses. */
export function makeRawLabResult(o: RawLabOptions): string {
  const p = o.patient;
  const xcn = (d: SamplePractitioner) => `${d.rpps}^${d.family}^${d.given}^^^DR^^^RPPS&${RPPS_OID}&ISO^L^^^RPPS`;
  return [
    `MSH|^~\\&|SIL-BRUT|LABO-DEMO|MSSGW|CHU-DEMO|20261126101500||ORU^R01|${o.controlId}|P|${o.version ?? '2.5.1'}|||||FRA|8859/15`,
    pid(p),
    `ORC|NW|${o.controlId}||||||||||${xcn(o.ordering)}`,
    `OBR|1|${o.controlId}||24326-1^Ionogramme^LN|||20261126080000|||||||||${xcn(o.ordering)}||||||20261126101000|||F|||${(o.copies ?? []).map(xcn).join('~')}${o.interpreter ? `||||${o.interpreter.rpps}&${o.interpreter.family}&${o.interpreter.given}` : ''}`,
    'OBX|1|NM|2951-2^Sodium^LN||140|mmol/L^mmol/L|136-145|N|||F',
    'OBX|2|NM|2823-3^Potassium^LN||5.9|mmol/L^mmol/L|3.5-5.1|H|||F',
    'OBX|3|NM|2075-0^Chlorure^LN||101|mmol/L^mmol/L|98-107|N|||F',
  ].join('\r') + '\r';
}
