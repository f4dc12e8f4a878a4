import { hostname } from 'node:os';
import type { Producer } from 'kafkajs';
import { buildZam, MllpClient } from '@mssgw/hl7';
import { kafkaClient, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { isFinal, type Delivery, type DeliveryState, type ResultRecord, type StatusEvent } from '@mssgw/status';

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

const GROUP = 'feedback';
// A recipient the router refused, or whose mail was dead-lettered, never receives the result: a negative reception.
const RECEPTION: DeliveryState[] = ['delivered', 'relayed', 'expanded', 'failed', 'refused', 'dead-lettered'];
const NOT_RECEIVED: DeliveryState[] = ['failed', 'refused', 'dead-lettered'];
const READ: DeliveryState[] = ['displayed', 'processed', 'processing-error'];

/** Which ZAM, if any, a state change calls for (only when the producer asked for it). */
function zamFor(state: DeliveryState, result: ResultRecord): { event: 'Z02' | 'Z03'; success: boolean } | undefined {
  if (RECEPTION.includes(state) && result.ackReception === '1') return { event: 'Z02', success: !NOT_RECEIVED.includes(state) };
  if (READ.includes(state) && result.ackRead === '1') return { event: 'Z03', success: state !== 'processing-error' };
  return undefined;
}

export interface FeedbackService extends RunningService {
  /** Handles what is waiting in the outbox now (tests and the demo call it; the loop does the same). */
  drain(): Promise<number>;
}

/**
 * Tells producers what became of their results: every state change as a JSON event on the status topic, and the
 * ZAM^Z02 / ZAM^Z03 acknowledgements over MLLP when the result asked for them. Reads the status outbox through a
 * consumer group and acknowledges an entry only once both are done; failed entries come back after 30 s.
 */
export async function startFeedback(ctx: ServiceContext): Promise<FeedbackService> {
  const { config } = ctx;
  const consumer = `${hostname()}-${process.pid}`;
  let producer: Producer | undefined;
  if (config.kafka.enabled) {
    producer = kafkaClient(config, `${config.kafka.clientId}-feedback`, ctx.log).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
  }
  const clients = new Map<string, MllpClient>();
  const zamClient = async (source: string): Promise<MllpClient | undefined> => {
    const endpoint = config.feedback.zamEndpoints.find((e) => e.source === source);
    if (!endpoint) return undefined;
    let c = clients.get(source);
    if (!c) {
      c = new MllpClient({ host: endpoint.host, port: endpoint.port, ackTimeoutMs: endpoint.ackTimeoutMs ?? 10_000 });
      await c.connect();
      clients.set(source, c);
    }
    return c;
  };

  const handle = async (events: StatusEvent[]): Promise<string[]> => {
    const done: string[] = [];
    const messages: { key: string; value: string }[] = [];
    for (const e of events) {
      const delivery = await ctx.status.getDelivery(e.deliveryId);
      const result = delivery ? await ctx.status.getResult(delivery.resultId, { withDeliveries: false }) : undefined;
      if (!delivery || !result) {
        done.push(e.id); // expired from the store: nothing left to tell
        continue;
      }
      const zam = zamFor(e.state, result);
      if (zam) {
        try {
          const client = await zamClient(result.source);
          if (client) {
            const ack = await client.send(buildZam({
              event: zam.event, success: zam.success,
              original: { controlId: result.controlId, sendingApplication: result.sendingApplication, sendingFacility: result.sendingFacility },
              // A refused recipient without an address is recorded as "<origin>:<id>": the ZAM names the id only.
              recipient: { address: delivery.recipient.includes('@') ? delivery.recipient : '', ...(delivery.recipientId ? { id: delivery.recipientId } : {}) },
              ...(zam.success ? {} : { errorText: delivery.reason ?? delivery.detail ?? e.state }),
            }));
            if (ack.code !== 'AA' && ack.code !== 'CA') throw new Error(`producer answered ${ack.code}`);
          }
        } catch (err) {
          clients.get(result.source)?.close().catch(() => undefined);
          clients.delete(result.source);
          ctx.log.warn({ deliveryId: e.deliveryId, event: zam.event, err: (err as Error).message }, 'ZAM not delivered; will retry');
          continue;
        }
      }
      messages.push({ key: delivery.resultId, value: JSON.stringify(statusEvent(e, delivery, result)) });
      done.push(e.id);
    }
    if (producer && messages.length) await producer.send({ topic: config.kafka.statusTopic, messages });
    return done;
  };

  let running = true;
  const drain = async (blockMs = 1) => {
    let total = 0;
    for (;;) {
      const events = await ctx.status.readEvents(GROUP, consumer, 200, blockMs);
      if (events.length === 0) return total;
      await ctx.status.ackEvents(GROUP, await handle(events));
      total += events.length;
      if (!running) return total;
    }
  };
  const loop = (async () => {
    while (running) {
      await drain(1000).catch((err: Error) => ctx.log.warn({ err: err.message }, 'feedback loop error'));
    }
  })();
  return {
    name: 'feedback',
    drain: () => drain(1),
    async stop() {
      running = false;
      await loop;
      for (const c of clients.values()) await c.close();
      await producer?.disconnect();
    },
  };
}

function statusEvent(e: StatusEvent, d: Delivery, r: ResultRecord): StatusEventV1 {
  return {
    schema: 'mssgw.status.v1', resultId: d.resultId, controlId: r.controlId, sendingApplication: r.sendingApplication, source: r.source,
    deliveryId: d.deliveryId, recipient: d.recipient, recipientKind: d.kind, state: e.state, previousState: e.previous || null,
    final: isFinal(e.state), reason: d.reason ?? null, dsnStatus: d.dsnStatus ?? null, at: new Date(d.updatedAt).toISOString(),
  };
}
