import { Queue } from 'bullmq';
import { buildAck, decodeHl7, Er7Message, Hl7Error, readHeader, readResult, validateResult, type AckCode, type AckTarget } from '@mssgw/hl7';
import { QUEUES, resultIdOf, type IntakeJob } from '@mssgw/queue';
import { bullConnection, type ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';

export type Transport = 'mllp' | 'kafka';

/** How long the queue may take to confirm a result before the producer is told to retry (AE). */
export const QUEUE_TIMEOUT_MS = 5_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface IntakeOutcome {
  code: AckCode;
  /** The ACK to send back (MLLP) or to attach to a dead-letter record (Kafka). */
  ack: string;
  controlId: string;
  resultId?: string;
  duplicate?: boolean;
  error?: Hl7Error;
}

/**
 * Turns received bytes into a durably queued result, or into a precise refusal. The answer is AA only once
 * Redis has taken the job; anything that goes wrong before that is an AE (retry later) or AR (never retry).
 */
export class ResultIntake {
  private readonly ctx: ServiceContext;
  readonly queue: Queue;

  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
    this.queue = new Queue(QUEUES.intake, {
      ...bullConnection(ctx.config),
      defaultJobOptions: {
        attempts: ctx.config.routing.attempts,
        backoff: { type: 'exponential', delay: ctx.config.routing.backoffMs },
        // Kept a week after routing: a result sent again within that time is recognised as a duplicate.
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: false,
      },
    });
  }

  async accept(bytes: Buffer, source: string, transport: Transport, receivedAt = Date.now()): Promise<IntakeOutcome> {
    metrics.resultsReceived.inc({ source, transport });
    let target: Partial<AckTarget> | undefined;
    try {
      const decoded = decodeHl7(bytes);
      const msg = new Er7Message(decoded.text);
      target = readHeader(msg);
      const result = validateResult(readResult(msg, decoded.charset));
      // The same sender and control id is the same result, whichever listener or topic brought it.
      const resultId = resultIdOf(result);
      // Two round trips: the documents and the status record (idempotent) together, then the job. If Redis does
      // not confirm in time the producer hears AE and sends again; the job id makes that harmless.
      const job = await withTimeout(
        (async () => {
          const [documents] = await Promise.all([
            Promise.all(result.documents.map(async ({ content, ...ref }) => ({ ...ref, sha256: await this.ctx.documents.put(content, ref.sha256) }))),
            this.ctx.status.recordResult({
              resultId, source, transport, controlId: result.controlId, sendingApplication: result.sendingApplication,
              sendingFacility: result.sendingFacility, ackReception: result.flags['ACK_RECEPTION'] ? '1' : '0',
              ackRead: result.flags['ACK_LECTURE_MSS'] ? '1' : '0', action: result.action, documentCode: result.documentCode, receivedAt,
            }),
          ]);
          const data: IntakeJob = { resultId, source, transport, receivedAt, acknowledgedAt: Date.now(), result: { ...result, documents } };
          return this.queue.add('result', data, { jobId: resultId });
        })(),
        QUEUE_TIMEOUT_MS,
        'the intake queue (Redis)',
      );
      const duplicate = (job.data as IntakeJob).receivedAt !== receivedAt;
      if (duplicate) {
        metrics.resultsDuplicate.inc({ source });
        this.ctx.log.info({ controlId: result.controlId, resultId }, 'duplicate result acknowledged, not sent again');
      }
      metrics.resultsAcknowledged.inc({ source, transport });
      return { code: 'AA', ack: buildAck(target, 'AA'), controlId: result.controlId, resultId, duplicate };
    } catch (err) {
      const error = err instanceof Hl7Error ? err : new Hl7Error('applicationError', `the gateway could not queue the result: ${(err as Error).message}`);
      metrics.resultsRejected.inc({ source, transport, code: error.code });
      this.ctx.log.warn({ controlId: target?.controlId, source, transport, code: error.code, ack: error.ackCode, reason: error.message }, 'result refused');
      return { code: error.ackCode, ack: buildAck(target, error.ackCode, error), controlId: target?.controlId ?? '', error };
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
