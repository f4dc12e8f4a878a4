import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import type { Producer } from 'kafkajs';
import type { GatewayConfig } from '@mssgw/config';
import { buildZam, MllpClient } from '@mssgw/hl7';
import { statusEventV1, zamFor } from '@mssgw/lifecycle';
import { kafkaClient, watchCertificateExpiry, type RunningService, type ServiceContext } from '@mssgw/runtime';
import type { StatusEvent } from '@mssgw/status';
import { metrics } from '@mssgw/telemetry';

export type { StatusEventV1 } from '@mssgw/lifecycle';

const GROUP = 'feedback';

type ZamTlsConfig = NonNullable<GatewayConfig['feedback']['zamEndpoints'][number]['tls']>;

/** TLS to a producer's ZAM endpoint: its CA (else Node's store), our certificate for mutual TLS; read at each connection, so that renewed files are taken up. */
export function zamTls(t: ZamTlsConfig): ConnectionOptions {
  return {
    minVersion: 'TLSv1.2',
    ...(t.caFile ? { ca: readFileSync(t.caFile) } : {}),
    ...(t.certFile && t.keyFile ? { cert: readFileSync(t.certFile), key: readFileSync(t.keyFile) } : {}),
    ...(t.servername ? { servername: t.servername } : {}),
  };
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
  for (const e of config.feedback.zamEndpoints) {
    if (e.tls?.caFile) watchCertificateExpiry(readFileSync(e.tls.caFile), `zam-ca-${e.source}`);
    if (e.tls?.certFile) watchCertificateExpiry(readFileSync(e.tls.certFile), `zam-client-${e.source}`);
  }
  const clients = new Map<string, MllpClient>();
  const zamClient = async (source: string): Promise<MllpClient | undefined> => {
    const endpoint = config.feedback.zamEndpoints.find((e) => e.source === source);
    if (!endpoint) return undefined;
    let c = clients.get(source);
    if (!c) {
      c = new MllpClient({ host: endpoint.host, port: endpoint.port, ackTimeoutMs: endpoint.ackTimeoutMs ?? 10_000, ...(endpoint.tls ? { tls: zamTls(endpoint.tls) } : {}) });
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
      const zam = zamFor(e.state, { reception: result.ackReception === '1', read: result.ackRead === '1' }, delivery);
      if (zam) {
        try {
          const client = await zamClient(result.source);
          if (client) {
            const ack = await client.send(buildZam({
              event: zam.event, success: zam.success,
              original: { controlId: result.controlId, sendingApplication: result.sendingApplication, sendingFacility: result.sendingFacility },
              // A refused recipient without an address is recorded as "<origin>:<id>": the ZAM names the id only.
              recipient: { address: delivery.recipient.includes('@') ? delivery.recipient : '', ...(delivery.recipientId ? { id: delivery.recipientId } : {}) },
              ...(zam.errorText !== undefined ? { errorText: zam.errorText } : {}),
            }));
            if (ack.code !== 'AA' && ack.code !== 'CA') throw new Error(`producer answered ${ack.code}`);
          }
        } catch (err) {
          clients.get(result.source)?.close().catch(() => undefined);
          clients.delete(result.source);
          metrics.feedbackFailed.inc({ channel: 'zam' });
          ctx.log.warn({ deliveryId: e.deliveryId, event: zam.event, err: (err as Error).message }, 'ZAM not delivered; will retry');
          continue;
        }
      }
      messages.push({ key: delivery.resultId, value: JSON.stringify(statusEventV1(e, delivery, result)) });
      done.push(e.id);
    }
    if (producer && messages.length) {
      await producer.send({ topic: config.kafka.statusTopic, messages }).catch((err: Error) => {
        // Not acknowledged: told again at the next turn (the claims expire), and counted for the alert.
        metrics.feedbackFailed.inc({ channel: 'status-topic' });
        throw err;
      });
    }
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
