import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { demoDefaults, type GatewayConfig } from '@mssgw/config';
import { practitionerKeys, type DirectoryMailbox, type PractitionerDirectory } from '@mssgw/directory';
import { parseResult } from '@mssgw/hl7';
import { buildCdaN1, buildEml, buildEmlWithNodemailer, readCdaHeader, renderMail, renderTextPdf } from '@mssgw/mssante';
import type { MailSpec } from '@mssgw/mssante';
import { composeResult } from '../../services/gateway/src/compose.ts';
import { DOCTORS, makeCisisResult, makeRawLabResult, PATIENTS } from '../support/samples.ts';
import { unzip, xdmProblems } from '../support/xdm-rules.ts';

const SCHEMAS = path.resolve(import.meta.dirname, '../schemas');
const GOLDEN = path.resolve(import.meta.dirname, '../golden');
const NOW = Date.parse('2026-11-26T09:30:00Z');

function xsd(schema: string, xml: Buffer): string {
  const r = spawnSync('xmllint', ['--noout', '--schema', path.join(SCHEMAS, schema), '-'], { input: xml, encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr.split('\n').filter((l) => l && !l.includes('Skipping import')).join('\n') || `xmllint exit ${r.status}`;
}

const config = (): GatewayConfig => {
  const c = demoDefaults('/nonexistent-sandbox');
  c.environment = 'test';
  c.routing.sources['lab'] = { resultType: 'lab', roles: { lab: ['recipient', 'ordering', 'copy', 'patient'] }, siteStructureIds: ['999999999'] };
  return c;
};
const directory: PractitionerDirectory = {
  findPractitioner(id, idType) {
    const keys = practitionerKeys(id, idType);
    const all: DirectoryMailbox[] = DOCTORS.map((d) => ({ address: d.address!, type: 'PER', practitionerNationalId: d.rpps }));
    return Promise.resolve(all.filter((m) => keys.includes(`p:${m.practitionerNationalId}`)));
  },
};
const allowsDomain = (d: string, forPatient: boolean) => (d === 'patient.mssante.fr' ? forPatient : ['cabinet-demo.mssante.test', 'chu-demo.mssante.test'].includes(d));

/** What a recipient's software sees in one mail: headers, body, attachments, the XDM entries and the CDA. */
async function summarise(eml: Buffer) {
  const m = await simpleParser(eml);
  const header = (n: string) => {
    const v = m.headers.get(n) as string | { text: string } | undefined;
    return v === undefined ? null : typeof v === 'string' ? v : v.text;
  };
  const attachments = [];
  let xdm: unknown = null;
  for (const a of m.attachments) {
    attachments.push({ filename: a.filename, contentType: a.contentType, bytes: a.size });
    if (a.filename === 'IHE_XDM.ZIP') {
      const files = await unzip(a.content);
      const { problems, entries } = xdmProblems(files);
      expect(problems).toEqual([]);
      expect(xsd('ebrim/ebRS/lcm.xsd', files.get('IHE_XDM/SUBSET01/METADATA.XML')!)).toBe('');
      const cdas = entries.map((e) => {
        const cda = files.get(`IHE_XDM/SUBSET01/${e.uri}`)!;
        expect(xsd('cda/CDA_extended.xsd', cda)).toBe('');
        const h = readCdaHeader(cda);
        return { code: h.code, templateIds: h.templateIds, version: h.version ?? null, pdfInside: Boolean(h.pdf), replaces: /<relatedDocument typeCode="RPLC">/.test(cda.toString()) };
      });
      xdm = { files: [...files.keys()].sort(), entries, cdas };
    }
  }
  return {
    from: m.from?.text, to: (Array.isArray(m.to) ? m.to : [m.to]).map((t) => t?.text), replyTo: m.replyTo?.text ?? null, subject: m.subject,
    messageId: m.messageId,
    headers: Object.fromEntries(['x-mss-nil', 'x-mss-codecda', 'x-mss-ins', 'x-mss-mes', 'disposition-notification-to'].map((h) => [h, header(h)])),
    text: m.text, attachments, xdm,
  };
}

const raw = (controlId: string, replace = false) => {
  const hl7 = makeRawLabResult({ controlId, patient: PATIENTS[0]!, ordering: DOCTORS[0]!, copies: [DOCTORS[1]!] });
  // A correction: ORC-1 RO (replacement order) and every OBX-11 C.
  return replace ? hl7.replace('ORC|NW|', 'ORC|RO|').replace(/\|F\r/g, '|C\r') : hl7;
};

const KINDS: [string, string][] = [
  ['cisis-oru-initial', makeCisisResult({ controlId: 'GOLD-1', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!], toPatient: true, noReplyToPatient: true, readReceipt: true, replyTo: 'secretariat@chu-demo.mssante.test', bodyPs: 'Résultats joints.\nCordialement.', timestamp: '20261126093000' })],
  ['cisis-mdm-replacement', makeCisisResult({ controlId: 'GOLD-2', patient: PATIENTS[2]!, doctors: [DOCTORS[2]!], toPatient: true, kind: 'imaging', message: 'MDM', action: 'replace', timestamp: '20261126093000' })],
  ['cisis-mdm-deletion', makeCisisResult({ controlId: 'GOLD-3', patient: PATIENTS[2]!, doctors: [DOCTORS[2]!], kind: 'imaging', message: 'MDM', action: 'delete', timestamp: '20261126093000' })],
  ['raw-lab-initial', raw('GOLD-4')],
  ['raw-lab-replacement', raw('GOLD-5', true)],
];

describe('the MSSanté message, per kind (golden files, read back with mailparser, XDM unzipped and checked)', () => {
  for (const [kind, hl7] of KINDS) {
    it(kind, async () => {
      const composed = await composeResult(Buffer.from(hl7, 'latin1'), { config: config(), source: 'lab', allowsDomain, directory, now: NOW });
      expect(composed.refusals).toEqual([]);
      const actual = { action: composed.result.action, mails: await Promise.all(composed.mails.map(async (m) => ({ audience: m.spec.audience, ...(await summarise(m.eml)) }))) };
      const file = path.join(GOLDEN, `${kind}.json`);
      if (process.env['MSSGW_UPDATE_GOLDEN']) writeFileSync(file, `${JSON.stringify(actual, null, 2)}\n`);
      expect(existsSync(file), `${file} missing: run with MSSGW_UPDATE_GOLDEN=1 and review it`).toBe(true);
      expect(actual).toEqual(JSON.parse(readFileSync(file, 'utf8')));
    });
  }

  it('uses the deployment\'s own default bodies when configured, the built-in ones otherwise', async () => {
    const c = config();
    c.mssante.bodies = { patient: { initial: 'Madame, Monsieur,\n\nVotre « {label} » du CHU est joint.\n' } };
    const hl7 = Buffer.from(makeCisisResult({ controlId: 'GOLD-B', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!], toPatient: true }), 'latin1');
    const composed = await composeResult(hl7, { config: c, source: 'lab', allowsDomain, directory, now: NOW });
    const texts = await Promise.all(composed.mails.map(async (m) => [m.spec.audience, (await simpleParser(m.eml)).text]));
    expect(texts).toEqual([
      ['professional', expect.stringMatching(/^Bonjour,\n\nVeuillez trouver ci-joint le document « CR d'examens biologiques »/)],
      ['patient', "Madame, Monsieur,\n\nVotre « CR d'examens biologiques » du CHU est joint.\n"],
    ]);
  });

  it('the XDM rule check fails on a wrong hash, a missing association or a foreign classCode', async () => {
    const composed = await composeResult(Buffer.from(KINDS[0]![1], 'latin1'), { config: config(), source: 'lab', allowsDomain, directory, now: NOW });
    const zip = (await simpleParser(composed.mails[0]!.eml)).attachments.find((a) => a.filename === 'IHE_XDM.ZIP')!.content;
    const files = await unzip(zip);
    const meta = files.get('IHE_XDM/SUBSET01/METADATA.XML')!.toString();
    const broken = (edit: (s: string) => string) => xdmProblems(new Map([...files, ['IHE_XDM/SUBSET01/METADATA.XML', Buffer.from(edit(meta))]])).problems;
    expect(broken((s) => s.replace(/(<rim:Slot name="hash"><rim:ValueList><rim:Value>)[0-9a-f]+/, '$1deadbeef'))).toEqual([expect.stringMatching(/hash is not the SHA-1/)]);
    expect(broken((s) => s.replace(/<rim:Association[^]*?<\/rim:Association>/, ''))).toEqual([expect.stringMatching(/not exactly one HasMember/), expect.stringMatching(/HasMember without/)]);
    expect(broken((s) => s.replace('nodeRepresentation="10"', 'nodeRepresentation="X1"'))).toEqual([expect.stringMatching(/classCode not from TRE_A03/)]);
  });
});

describe('CDA R2 level 1 wrapping and PDF rendering', () => {
  const base = {
    documentId: { root: '1.2.250.1.999.3.1', extension: 'SIL.ORD-1.2' }, setId: { root: '1.2.250.1.999.3.1.1', extension: 'SIL.ORD-1' }, version: 2,
    type: 'imaging' as const, effectiveTime: '20261126093000', confidentiality: 'N' as const,
    patient: { ins: { value: PATIENTS[0]!.ins, oid: '1.2.250.1.213.1.4.10' }, family: 'PAT-TROIS', given: 'DOMINIQUE', birthDate: '19790328', sex: 'F' },
    authoringSystem: { name: 'RIS' }, custodian: { idNatStruct: '1999999999', name: 'CHU Demo' },
    facilityType: { code: 'SA01', displayName: 'Etablissement public de santé' }, practiceSetting: { code: 'ETABLISSEMENT', displayName: 'Etablissement de santé' },
    pdf: renderTextPdf(['Compte rendu']),
  };

  it('validates against the ANS CDA schema: with an author, with only the producing system, as a replacement', () => {
    for (const cda of [
      buildCdaN1({ ...base, author: { idNatPs: '810000000003', family: 'RADIOLOGUE', given: 'Chloé' } }),
      buildCdaN1(base),
      buildCdaN1({ ...base, replaces: { root: '1.2.250.1.999.3.1', extension: 'SIL.ORD-1.1' } }),
    ]) expect(xsd('cda/CDA_extended.xsd', cda)).toBe('');
    const h = readCdaHeader(buildCdaN1({ ...base, author: { idNatPs: '810000000003', family: 'RADIOLOGUE' } }));
    expect(h).toMatchObject({ code: '18748-4', version: '2', patientIds: [{ root: '1.2.250.1.213.1.4.10', extension: PATIENTS[0]!.ins }], author: { id: { extension: '810000000003' } }, facilityType: { code: 'SA01' } });
    expect(h.pdf?.subarray(0, 5).toString()).toBe('%PDF-');
  });

  it('wraps the structured values of a CI-SIS result whose report OBX is empty: in the CDA N1 and in the PDF sent', async () => {
    const cisis = makeCisisResult({ controlId: 'EMPTY-ED', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] })
      .replace(/\^TEXT\^XML\^Base64\^[A-Za-z0-9+/=]+/, '^TEXT^XML^Base64^')
      .replace(/(OBX\|1\|ED\|[^\r]*\r)/, '$1OBX|2|NM|2823-3^Potassium^LN||5.9|mmol/L^mmol/L|3.5-5.1|H|||F\rOBX|3|ST|5778-6^Couleur^LN||Jaune paille||||||F\r');
    const composed = await composeResult(Buffer.from(cisis), { config: config(), source: 'lab', allowsDomain, directory, now: NOW });
    expect(composed.warnings.map((w) => w.reason)).toEqual(['edEmpty']);
    const attachments = (await simpleParser(composed.mails[0]!.eml)).attachments;
    const files = await unzip(attachments.find((a) => a.filename === 'IHE_XDM.ZIP')!.content);
    const cda = [...files].find(([name]) => /SUBSET01\/(?!METADATA)[^/]+\.XML$/.test(name))![1];
    expect(xsd('cda/CDA_extended.xsd', cda)).toBe('');
    const wrapped = readCdaHeader(cda);
    expect([wrapped.code, wrapped.templateIds]).toEqual(['11502-2', expect.arrayContaining(['1.3.6.1.4.1.19376.1.2.20'])]);
    const pdfs = [wrapped.pdf!, attachments.find((a) => a.contentType === 'application/pdf')!.content];
    for (const pdf of pdfs) {
      const text = spawnSync('pdftotext', ['-', '-'], { input: pdf, encoding: 'utf8' }).stdout;
      expect(text).toContain('Potassium: 5.9 mmol/L (ref. 3.5-5.1) [H]');
      expect(text).toContain('Couleur: Jaune paille');
    }
  });

  it('renders French text readably (pdftotext), over several pages', () => {
    const lines = ['Hémoglobine glyquée : 6,1 % — coût 12 € ; Œdème', ...Array.from({ length: 70 }, (_, i) => `ligne ${i + 1}`)];
    const r = spawnSync('pdftotext', ['-', '-'], { input: renderTextPdf(lines), encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Hémoglobine glyquée : 6,1 % — coût 12 € ; Œdème');
    expect(r.stdout).toContain('ligne 70');
    expect(r.stdout.split('\f').filter((p) => p.trim())).toHaveLength(2);
  });
});

describe('MIME writer', () => {
  // Header text as producers send it: accents, quotes, long runs, characters that need encoded words or RFC 2231.
  const text = fc.stringMatching(/^[A-Za-z0-9 éèàçÉŒœ€«»'".,;:!?()\-_/\\\n\t]{0,180}$/);
  const spec = fc.record({
    fromName: fc.option(text.filter((t) => t.trim().length > 0 && !t.includes('\n')), { nil: undefined }),
    subject: text.map((t) => t.replace(/\n/g, ' ')),
    body: text,
    replyTo: fc.option(fc.constant('secretariat@chu-demo.mssante.test'), { nil: undefined }),
    files: fc.array(fc.record({ name: text.map((t) => `${t.replace(/[\n\t/\\]/g, '').slice(0, 90) || 'x'}.pdf`), bytes: fc.uint8Array({ maxLength: 3000 }) }), { minLength: 1, maxLength: 3 }),
  });

  it('writes byte for byte what nodemailer\'s streaming writer writes, for any names, subject, body and attachments', async () => {
    await fc.assert(fc.asyncProperty(spec, async (s) => {
      const contents = new Map(s.files.map((f, i) => [`h${i}`, Buffer.from(f.bytes)]));
      const mail: MailSpec = {
        mailId: 'r-1-ps', resultId: 'r-1', messageId: '<r-1-ps@chu-demo.mssante.test>', from: 'labo-noreply@chu-demo.mssante.test',
        ...(s.fromName ? { fromName: s.fromName } : {}), ...(s.replyTo ? { replyTo: s.replyTo } : {}),
        to: ['alice.medecin-un@cabinet-demo.mssante.test', '279035121518989@patient.mssante.fr'], subject: s.subject, text: s.body,
        headers: { 'X-MSS-NIL': 'MSSGW-TEST', 'X-MSS-CODECDA': '11502-2', 'X-MSS-INS': 'O' },
        attachments: s.files.map((f, i) => ({ filename: f.name, contentType: i ? 'application/pdf' : 'application/zip', sha256: `h${i}` })),
        audience: 'professional', readReceipt: false,
      };
      const date = new Date(NOW);
      const ours = buildEml(mail, contents, date, 'b0undary');
      const theirs = await buildEmlWithNodemailer(mail, contents, date, 'b0undary');
      expect(ours.toString('latin1')).toBe(theirs.toString('latin1'));
    }), { numRuns: 400 });
  });

  it('renders the same mail to the same bytes (a retried routing job stores what the first attempt stored)', async () => {
    const composed = await composeResult(Buffer.from(KINDS[0]![1], 'latin1'), { config: config(), source: 'lab', allowsDomain, directory, now: NOW });
    const again = await composeResult(Buffer.from(KINDS[0]![1], 'latin1'), { config: config(), source: 'lab', allowsDomain, directory, now: NOW });
    expect(composed.mails.map((m) => m.eml.toString('base64'))).toEqual(again.mails.map((m) => m.eml.toString('base64')));
    // The mails of a result share their boundary, so their attachments part (stored once by the router) is the same.
    const boundaries = composed.mails.map((m) => /boundary="([^"]+)"/.exec(m.eml.toString())?.[1]);
    expect(new Set(boundaries).size).toBe(1);
    const fromFirstAttachment = (eml: Buffer) => eml.subarray(eml.indexOf(`\r\n--${boundaries[0]!}\r\nContent-Type: application/zip`));
    const [ps, patient] = composed.mails.map((m) => fromFirstAttachment(m.eml));
    expect(ps!.length).toBeGreaterThan(1000);
    expect(ps!.equals(patient!)).toBe(true);
  });

  it('renders a mail as its head and an attachments part that together are the whole message', async () => {
    const hl7 = Buffer.from(KINDS[0]![1], 'latin1');
    const parsed = parseResult(hl7);
    const composed = await composeResult(hl7, { config: config(), source: 'lab', allowsDomain, directory, now: NOW });
    const contents = new Map(parsed.documents.map((d) => [d.sha256, d.content]));
    const zip = (await simpleParser(composed.mails[0]!.eml)).attachments;
    for (const a of zip) contents.set(composed.mails[0]!.spec.attachments.find((x) => x.filename === a.filename)!.sha256, a.content);
    const [ps, patient] = composed.mails.map((m) => renderMail(m.spec, contents, new Date(NOW)));
    expect(Buffer.concat([ps!.head, ps!.attachments]).equals(composed.mails[0]!.eml)).toBe(true);
    expect(ps!.attachmentsId).toBe(patient!.attachmentsId);
    expect(ps!.attachments.equals(patient!.attachments)).toBe(true);
    expect(ps!.head.equals(patient!.head)).toBe(false);
    expect(ps!.attachments.toString('latin1')).toMatch(/^\r\n--[^\r]+\r\nContent-Type: application\/zip/);
  });
});
