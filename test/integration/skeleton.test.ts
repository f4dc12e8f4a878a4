import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS, type SamplePractitioner } from '../support/samples.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';
import { unzip } from '../support/xdm-rules.ts';

describe('walking skeleton: HL7 over MLLP to a DSN-confirmed delivery, on the real sandbox', () => {
  let gateway: Gateway;
  let client: MllpClient;
  const t = tag();
  const doctor: SamplePractitioner = { ...DOCTORS[0]!, address: `dr-${t}@cabinet-demo.mssante.test` };
  const unknown: SamplePractitioner = { ...DOCTORS[1]!, address: `unknown-${t}@cabinet-demo.mssante.test` };
  const patient = PATIENTS[0]!;
  let patientMessageId = '';

  beforeAll(async () => {
    gateway = await startGateway(testConfig('skeleton'));
    client = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await gateway?.stop();
  });

  it('acknowledges, mails the practitioner and the patient, and records the DSN outcome of each recipient', async () => {
    const controlId = `SK-${t}`;
    const ack = await client.send(makeCisisResult({ controlId, patient, doctors: [doctor, unknown], toPatient: true, noReplyToPatient: true }));
    expect(ack.code).toBe('AA');
    expect(ack.controlId).toBe(controlId);

    const [resultId] = await gateway.ctx.status.resultsByControlId(controlId);
    expect(resultId).toBeDefined();
    const byRecipient = await waitFor('the DSNs of all three recipients', async () => {
      await gateway.receipts!.sweep();
      const r = await gateway.ctx.status.getResult(resultId!);
      const states = new Map(r?.deliveries.map((d) => [d.recipient, d]));
      const done = r && r.deliveries.length === 3 && r.deliveries.every((d) => ['delivered', 'failed'].includes(d.state));
      return done ? states : undefined;
    });

    expect(byRecipient.get(doctor.address!)).toMatchObject({ state: 'delivered', dsnStatus: '2.0.0' });
    expect(byRecipient.get(`${patient.ins}@patient.mssante.fr`)).toMatchObject({ state: 'delivered', kind: 'patient' });
    patientMessageId = byRecipient.get(`${patient.ins}@patient.mssante.fr`)!.messageId!;
    expect(byRecipient.get(unknown.address!)).toMatchObject({ state: 'failed', dsnStatus: '5.1.1', reason: '5.1.1' });
    // Every state change is in the recipient's history: queued, submitted (SMTP 250), then the DSN.
    const history = await gateway.ctx.status.history(byRecipient.get(doctor.address!)!.deliveryId);
    expect(history.map((h) => [h.state, h.source])).toEqual([['queued', 'router'], ['submitted', 'dispatcher'], ['delivered', 'dsn']]);
  });

  it('delivers an MSSanté mail the recipient software can file: subject, X-MSS headers, IHE_XDM.ZIP and the PDF', async () => {
    const [raw] = await waitFor('the mail in the practitioner mailbox', () => Promise.resolve(mailboxFiles(doctor.address!).length ? mailboxFiles(doctor.address!) : undefined));
    const mail = await simpleParser(raw!);
    expect(mail.subject).toBe("XDM/1.0/DDM+CR d'examens biologiques PAT-TROIS DOMINIQUE 28/03/1979");
    expect(mail.from?.value[0]?.address).toBe(gateway.ctx.config.mailboxes[0]!.address);
    expect(mail.headers.get('x-mss-nil')).toBe('MSSGW-DEMO-0001');
    expect(mail.headers.get('x-mss-codecda')).toBe('11502-2');
    expect(mail.headers.get('x-mss-ins')).toBe('O');
    expect(mail.headers.get('x-mss-mes')).toBeUndefined(); // only on the patient's copy
    expect(mail.messageId).toMatch(/^<r-[0-9a-f]{24}-ps@chu-demo\.mssante\.test>$/);
    const names = mail.attachments.map((a) => a.filename);
    expect(names).toEqual(["IHE_XDM.ZIP", "20261126_CR d'examens biologiques_PAT-TROIS_DOMINIQUE.pdf"]);
    expect(mail.attachments[1]!.content.subarray(0, 5).toString()).toBe('%PDF-');

    const zip = await unzip(mail.attachments[0]!.content);
    expect([...zip.keys()].sort()).toEqual(['IHE_XDM/SUBSET01/DOC0001.XML', 'IHE_XDM/SUBSET01/METADATA.XML', 'INDEX.HTM', 'README.TXT']);
    const metadata = zip.get('IHE_XDM/SUBSET01/METADATA.XML')!.toString('utf8');
    expect(metadata).toContain(`value="${patient.ins}^^^&amp;1.2.250.1.213.1.4.10&amp;ISO^NH"`);
    expect(zip.get('IHE_XDM/SUBSET01/DOC0001.XML')!.toString('utf8')).toContain('<ClinicalDocument');
  });

  it('gives the patient a copy of its own, with X-MSS-MES: FIN when the producer forbids replies', async () => {
    // The patient mailbox is shared by every run: find this run's mail by the Message-ID the status store recorded.
    expect(patientMessageId).toMatch(/-pat@/);
    const mail = await waitFor('the patient copy', async () => {
      const all = await Promise.all(mailboxFiles(`${patient.ins}@patient.mssante.fr`).map((b) => simpleParser(b)));
      return all.find((m) => m.messageId === patientMessageId);
    });
    expect(mail.headers.get('x-mss-mes')).toBe('FIN');
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value.map((v) => v.address) : []).toEqual([`${patient.ins}@patient.mssante.fr`]);
  });
});
