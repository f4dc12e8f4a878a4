import { z } from 'zod';

/**
 * The result as the intake read it, its documents replaced by references: what the message store keeps
 * (results.normalized) and the router routes. Validated with this schema when it is read back, so a row written by
 * another version of the gateway fails loudly instead of half-working.
 */

/** A document of the result (ReportDocument without its bytes, which are a body of the message store). */
export const DocumentRef = z.object({
  kind: z.enum(['cda', 'pdf', 'text', 'other']),
  mediaType: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  code: z.string(),
  label: z.string(),
  segmentIndex: z.number().int(),
});
export type DocumentRef = z.infer<typeof DocumentRef>;

/** The normalised result (ResultMessage) with DocumentRefs instead of documents, and without the intake's warnings. */
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
