import { z } from 'zod';
import type { QueuedResult } from '@mssgw/hl7';
import { domainOf, type Recipient } from '@mssgw/routing';
import { DEFAULT_BODIES, fillTemplate, type Audience, type BodyOverrides } from './templates.ts';

const Attachment = z.object({ filename: z.string(), contentType: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

/** One e-mail as the recipients will see it; shared by the deliveries to each of its recipients. */
export const MailSpec = z.object({
  mailId: z.string(),
  resultId: z.string(),
  messageId: z.string(),
  from: z.string(),
  fromName: z.string().optional(),
  to: z.array(z.string()).min(1),
  replyTo: z.string().optional(),
  subject: z.string(),
  text: z.string(),
  headers: z.record(z.string(), z.string()),
  attachments: z.array(Attachment),
  audience: z.enum(['professional', 'patient']),
  /** Read receipt asked (Disposition-Notification-To). */
  readReceipt: z.boolean(),
});
export type MailSpec = z.infer<typeof MailSpec>;

export interface SenderMailbox {
  address: string;
  displayName?: string;
  /** The mailbox's patient-reply policy: where a patient's answers go; absent, the conversation is closed (FIN). */
  patientReplyTo?: string;
}

/** The sender of a result's mails, from its configured applicative mailbox (mailboxes[] in the configuration). */
export function senderMailbox(m: { address: string; displayName?: string | undefined; patientReplies?: 'closed' | { replyTo: string } | undefined }): SenderMailbox {
  const replies = m.patientReplies;
  return {
    address: m.address,
    ...(m.displayName ? { displayName: m.displayName } : {}),
    ...(replies && replies !== 'closed' ? { patientReplyTo: replies.replyTo.toLowerCase() } : {}),
  };
}

export interface MailAttachment {
  filename: string;
  contentType: string;
  sha256: string;
}

export interface MailInput {
  resultId: string;
  result: QueuedResult;
  recipients: Recipient[];
  replyTo?: string;
  mailbox: SenderMailbox;
  /** X-MSS-NIL: the product reference (ECO.2.4.3), on every mail. */
  productReference: string;
  /** IHE_XDM.ZIP when the result has CDA documents, then the PDF(s) or the report itself. */
  attachments: MailAttachment[];
  /** CDA codes of the documents in the XDM archive (X-MSS-CODECDA, absent without a CDA). */
  cdaCodes: string[];
  /** Whether the XDM archive holds a qualified INS (X-MSS-INS). */
  qualifiedIns: boolean;
  /** The deployment's own default bodies, per audience and action (see templates.ts). */
  bodies?: BodyOverrides;
}

/** DD/MM/YYYY from YYYYMMDD. */
const frenchDate = (d?: string) => (d && /^\d{8}/.test(d) ? `${d.slice(6, 8)}/${d.slice(4, 6)}/${d.slice(0, 4)}` : '');

/** ECO.2.1.3: XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>. */
export function mssanteSubject(result: QueuedResult): string {
  const p = result.patient;
  return ['XDM/1.0/DDM+' + (result.documentLabel || 'Document'), p.family.toUpperCase(), p.given, frenchDate(p.birthDate)]
    .filter(Boolean)
    .join(' ');
}

/** ECO.2.1.6: <date de l'acte>_<type document>_<NOM>_<prénom>.pdf */
export function pdfFileName(result: QueuedResult, actDate: string): string {
  const clean = (s: string) => s.replace(/[\\/:*?"<>|]+/g, ' ').trim();
  return `${actDate.slice(0, 8)}_${clean(result.documentLabel || 'Document')}_${clean(result.patient.family.toUpperCase())}_${clean(result.patient.given)}.pdf`;
}

/**
 * The mails for one result: one to the professionals (and organisations, applications), one to the patient,
 * since a patient's copy differs (X-MSS-MES, body, no Reply-To to an unattended box). Message ids are derived from
 * the result so a retried routing job builds the same mails.
 */
export function buildMailSpecs(input: MailInput): MailSpec[] {
  const { result } = input;
  const groups: [Audience, Recipient[]][] = [
    ['professional', input.recipients.filter((r) => r.kind !== 'patient')],
    ['patient', input.recipients.filter((r) => r.kind === 'patient')],
  ];
  const specs: MailSpec[] = [];
  for (const [audience, recipients] of groups) {
    if (recipients.length === 0) continue;
    const mailId = `${input.resultId}-${audience === 'patient' ? 'pat' : 'ps'}`;
    const producerBody = audience === 'patient' ? result.mailBody.patient : result.mailBody.professional;
    const template = input.bodies?.[audience]?.[result.action] ?? DEFAULT_BODIES[audience][result.action];
    const text = producerBody ?? fillTemplate(template, { label: result.documentLabel || 'document' });
    const headers: Record<string, string> = { 'X-MSS-NIL': input.productReference };
    if (input.cdaCodes.length) {
      headers['X-MSS-CODECDA'] = input.cdaCodes.join(',');
      headers['X-MSS-INS'] = input.qualifiedIns ? 'O' : 'N';
    }
    // A noreply mailbox must not open a conversation nobody reads: a patient's mail closes it (X-MSS-MES: FIN) unless
    // the mailbox or the producer names a staffed mailbox for the answers; a producer's explicit FIN always wins.
    const patientReplyTo = input.mailbox.patientReplyTo ?? input.replyTo;
    if (audience === 'patient' && (result.noReplyToPatient || !patientReplyTo)) headers['X-MSS-MES'] = 'FIN';
    const replyTo = audience === 'patient' ? patientReplyTo : input.replyTo;
    const readReceipt = result.flags['ACK_LECTURE_MSS'] === true;
    if (readReceipt) headers['Disposition-Notification-To'] = input.mailbox.address;
    specs.push({
      mailId,
      resultId: input.resultId,
      messageId: `<${mailId}@${domainOf(input.mailbox.address)}>`,
      from: input.mailbox.address,
      ...(input.mailbox.displayName ? { fromName: input.mailbox.displayName } : {}),
      to: recipients.map((r) => r.address),
      // A patient who may not reply (X-MSS-MES: FIN) gets no Reply-To either.
      ...(replyTo && !headers['X-MSS-MES'] ? { replyTo } : {}),
      subject: mssanteSubject(result),
      text,
      headers,
      attachments: input.attachments,
      audience,
      readReceipt,
    });
  }
  return specs;
}
