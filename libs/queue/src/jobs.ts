import { z } from 'zod';

/**
 * The contracts between services: what goes on each queue. Jobs are validated when a worker takes them, so a job
 * written by another version of the gateway fails loudly instead of half-working.
 */

const DocumentRef = z.object({
  kind: z.enum(['cda', 'pdf', 'text', 'other']),
  mediaType: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  code: z.string(),
  label: z.string(),
  segmentIndex: z.number().int(),
});
export type DocumentRef = z.infer<typeof DocumentRef>;

/** A result accepted at intake, by id: the router reads it from the message store. */
export const IntakeJob = z.object({
  resultId: z.string(),
  source: z.string(),
  transport: z.enum(['mllp', 'kafka']),
  receivedAt: z.number(),
  acknowledgedAt: z.number().optional(),
});
export type IntakeJob = z.infer<typeof IntakeJob>;

/** The normalised message as the intake read it, its documents replaced by references (results.normalized). */
export const QueuedResult = z.object({
    messageType: z.string(),
    event: z.string(),
    version: z.string(),
    controlId: z.string(),
    sendingApplication: z.string(),
    sendingFacility: z.string(),
    receivingApplication: z.string(),
    receivingFacility: z.string(),
    profile: z.enum(['cisis', 'raw']),
    charset: z.string(),
    action: z.enum(['initial', 'replace', 'delete']),
    patient: z.object({
      ins: z.object({ value: z.string(), oid: z.string(), qualified: z.boolean() }).optional(),
      ipp: z.string().optional(),
      family: z.string(),
      given: z.string(),
      birthDate: z.string().optional(),
      sex: z.string().optional(),
      identityReliability: z.string().optional(),
    }),
    participants: z.array(
      z.object({
        role: z.enum(['sender', 'recipient', 'reply', 'ordering', 'copy', 'interpreter']),
        kind: z.enum(['person', 'organisation', 'application', 'patient']),
        id: z.string().optional(),
        idType: z.string().optional(),
        idAuthority: z.string().optional(),
        address: z.string().optional(),
        family: z.string().optional(),
        given: z.string().optional(),
        origin: z.string(),
      }),
    ),
    documents: z.array(DocumentRef),
    flags: z.record(z.string(), z.boolean()),
    mailBody: z.object({ professional: z.string().optional(), patient: z.string().optional() }),
    noReplyToPatient: z.boolean(),
    documentCode: z.string(),
    documentLabel: z.string(),
    documentId: z.string().optional(),
    orderId: z.string().optional(),
    orderControl: z.string(),
    urgent: z.boolean().optional(),
    reportStatuses: z.array(z.object({ status: z.string(), segmentIndex: z.number() })),
    observations: z.array(
      z.object({
        setId: z.string(), valueType: z.string(), code: z.string(), status: z.string(), segmentIndex: z.number(),
        ed: z.object({ bytes: z.number(), sha256: z.string() }).optional(),
      }),
    ),
});
export type QueuedResult = z.infer<typeof QueuedResult>;

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

/**
 * One SMTP envelope: one mail to one recipient, by id. The dispatcher reads the rest (recipient, mail, DSN envelope
 * id) from the message store, so a job lost with Redis is rebuilt from it (the sweeper) and Redis holds no address.
 */
export const DeliveryJob = z.object({
  deliveryId: z.string(),
  resultId: z.string().optional(),
  urgent: z.boolean().optional(),
  /** Set after an interrupted attempt: no new attempt before this time unless a DSN settles it. */
  reconcileUntil: z.number().optional(),
});
export type DeliveryJob = z.infer<typeof DeliveryJob>;
