import { z } from 'zod';

/**
 * The contracts between services: what goes on each queue. Jobs name rows of the message store (PostgreSQL) and
 * carry nothing else: no body, no address, nothing of the patient. They are validated when a worker takes them, so a
 * job written by another version of the gateway fails loudly instead of half-working.
 */

/** A result accepted at intake, by id: the router reads it from the message store. */
export const IntakeJob = z.object({
  resultId: z.string(),
  source: z.string(),
  transport: z.enum(['mllp', 'kafka']),
  receivedAt: z.number(),
  acknowledgedAt: z.number().optional(),
});
export type IntakeJob = z.infer<typeof IntakeJob>;



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
  /** Its retries so far (RetryState, @mssgw/lifecycle): when the first transient failure was, and how many. */
  firstFailureAt: z.number().optional(),
  failures: z.number().int().optional(),
});
export type DeliveryJob = z.infer<typeof DeliveryJob>;
