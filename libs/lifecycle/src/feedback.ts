import { isFinal, type DeliveryState } from './states.ts';

/** ZAM^Z02 (reception) and ZAM^Z03 (read), as the result asked for them (ACK_RECEPTION, ACK_LECTURE_MSS). */
export interface ZamAck {
  event: 'Z02' | 'Z03';
  /** false: an `N` acknowledgement, with `errorText` in its ERR. */
  success: boolean;
  errorText?: string;
}

// A recipient the router refused, or whose mail was dead-lettered, never receives the result: a negative reception.
const RECEPTION: readonly DeliveryState[] = ['delivered', 'relayed', 'expanded', 'failed', 'refused', 'dead-lettered'];
const NOT_RECEIVED: readonly DeliveryState[] = ['failed', 'refused', 'dead-lettered'];
const READ: readonly DeliveryState[] = ['displayed', 'processed', 'processing-error'];

/** Which ZAM, if any, entering `state` calls for; only those the producer asked for. */
export function zamFor(
  state: DeliveryState,
  asked: { reception: boolean; read: boolean },
  recipient: { reason?: string; detail?: string },
): ZamAck | undefined {
  let ack: Omit<ZamAck, 'errorText'> | undefined;
  if (RECEPTION.includes(state) && asked.reception) ack = { event: 'Z02', success: !NOT_RECEIVED.includes(state) };
  else if (READ.includes(state) && asked.read) ack = { event: 'Z03', success: state !== 'processing-error' };
  if (!ack) return undefined;
  return ack.success ? ack : { ...ack, errorText: recipient.reason ?? recipient.detail ?? state };
}

/** Version 1 of the status events published on the status topic (documented in the README). */
export interface StatusEventV1 {
  schema: 'mssgw.status.v1';
  resultId: string;
  controlId: string;
  sendingApplication: string;
  source: string;
  deliveryId: string;
  recipient: string;
  recipientKind: string;
  state: DeliveryState;
  previousState: DeliveryState | null;
  final: boolean;
  reason: string | null;
  dsnStatus: string | null;
  at: string;
}

/** The status event of one applied change, from the recipient's and the result's records as they are now. */
export function statusEventV1(
  change: { state: DeliveryState; previous: DeliveryState | '' },
  d: { deliveryId: string; resultId: string; recipient: string; kind: string; reason?: string; dsnStatus?: string; updatedAt: number },
  r: { controlId: string; sendingApplication: string; source: string },
): StatusEventV1 {
  return {
    schema: 'mssgw.status.v1', resultId: d.resultId, controlId: r.controlId, sendingApplication: r.sendingApplication, source: r.source,
    deliveryId: d.deliveryId, recipient: d.recipient, recipientKind: d.kind, state: change.state, previousState: change.previous || null,
    final: isFinal(change.state), reason: d.reason ?? null, dsnStatus: d.dsnStatus ?? null, at: new Date(d.updatedAt).toISOString(),
  };
}
