// A mail from a noreply mailbox never opens a conversation nobody reads: the patient's copy closes it, unless the
// mailbox's policy names a staffed mailbox for the answers; the producer's explicit FIN always wins.
import { describe, expect, it } from 'vitest';
import { parseResult } from '@mssgw/hl7';
import { buildMailSpecs, senderMailbox } from '@mssgw/mssante';
import type { QueuedResult } from '@mssgw/hl7';
import type { Recipient } from '@mssgw/routing';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';

const patient = PATIENTS[0]!;
const result = (noReplyToPatient = false): QueuedResult => {
  const parsed = parseResult(Buffer.from(makeCisisResult({ controlId: 'PR-1', patient, doctors: [DOCTORS[0]!], toPatient: true, noReplyToPatient }), 'latin1'));
  return { ...parsed, documents: parsed.documents.map(({ content: _c, ...d }) => d) };
};
const recipients: Recipient[] = [
  { address: `${patient.ins}@patient.mssante.fr`, kind: 'patient', role: 'patient' } as unknown as Recipient,
  { address: DOCTORS[0]!.address, kind: 'professional', role: 'recipient' } as unknown as Recipient,
];
const specs = (mailbox: Parameters<typeof senderMailbox>[0], r = result(), replyTo?: string) =>
  buildMailSpecs({
    resultId: 'r-1', result: r, recipients, mailbox: senderMailbox(mailbox), productReference: 'TEST', attachments: [], cdaCodes: [], qualifiedIns: true,
    ...(replyTo ? { replyTo } : {}),
  });
const patientMail = (s: ReturnType<typeof specs>) => s.find((m) => m.audience === 'patient')!;
const professionalMail = (s: ReturnType<typeof specs>) => s.find((m) => m.audience === 'professional')!;

describe('patient-reply policy of a sending mailbox', () => {
  it('closes the conversation by default: X-MSS-MES: FIN and no Reply-To, even without a FIN from the producer', () => {
    const s = specs({ address: 'labo-noreply@chu.mssante.fr' });
    expect(patientMail(s).headers['X-MSS-MES']).toBe('FIN');
    expect(patientMail(s).replyTo).toBeUndefined();
    expect(professionalMail(s).headers['X-MSS-MES']).toBeUndefined();
    expect(specs({ address: 'labo-noreply@chu.mssante.fr', patientReplies: 'closed' }).map((m) => m.headers['X-MSS-MES'])).toEqual(
      s.map((m) => m.headers['X-MSS-MES']),
    );
  });

  it('sends the answers to the staffed mailbox a reply-to policy names, without FIN', () => {
    const s = specs({ address: 'labo-noreply@chu.mssante.fr', patientReplies: { replyTo: 'Secretariat-Labo@chu.mssante.fr' } });
    expect(patientMail(s).headers['X-MSS-MES']).toBeUndefined();
    expect(patientMail(s).replyTo).toBe('secretariat-labo@chu.mssante.fr');
  });

  it("lets the producer's FIN win over the mailbox's reply-to policy", () => {
    const s = specs({ address: 'labo-noreply@chu.mssante.fr', patientReplies: { replyTo: 'secretariat-labo@chu.mssante.fr' } }, result(true));
    expect(patientMail(s).headers['X-MSS-MES']).toBe('FIN');
    expect(patientMail(s).replyTo).toBeUndefined();
  });

  it("keeps a producer's own Reply-To open for the patient when the mailbox sets no policy", () => {
    const s = specs({ address: 'labo-noreply@chu.mssante.fr' }, result(), 'secretariat@chu.mssante.fr');
    expect(patientMail(s).headers['X-MSS-MES']).toBeUndefined();
    expect(patientMail(s).replyTo).toBe('secretariat@chu.mssante.fr');
    expect(professionalMail(s).replyTo).toBe('secretariat@chu.mssante.fr');
  });
});
