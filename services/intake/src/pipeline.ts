import { Queue } from 'bullmq';
import { buildAck, decodeHl7, Er7Message, Hl7Error, readHeader, readResult, validateResult, type AckCode, type AckTarget } from '@mssgw/hl7';
import { afterPipelinedWrites, QUEUES, resultIdOf, type IntakeJob } from '@mssgw/queue';
import type { ServiceContext } from '@mssgw/runtime';
import type { ResultRecord } from '@mssgw/status';
import { metrics } from '@mssgw/telemetry';

export type Transport = 'mllp' | 'kafka';

/** How long the queue may take to confirm a result before the producer is told to retry (AE). */
export const QUEUE_TIMEOUT_MS = 5_000;

/** A received result ready to be stored: its status record, its documents and its routing job. */
interface ResultToQueue {
  resultId: string;
  record: ResultRecord;
  contents: { content: Buffer; sha256: string }[];
  job: IntakeJob;
}

/** Most results one flush writes; a Kafka batch or a burst on many connections is split into flushes of this size. */
const MAX_BATCH = 256;

/**
 * Group commit of received results: their documents, status records and jobs in one round trip. One flush is in
 * flight at a time; what arrives meanwhile forms the next one. Many MLLP connections or a Kafka batch then cost one
 * round trip per flush instead of three per result, a quiet feed waits for no timer, and a result sent twice in quick
 * succession is seen as a repeat because the flush before has finished.
 */
class IntakeBatch {
  private pending: { item: ResultToQueue; resolve(duplicate: boolean): void; reject(err: Error): void }[] = [];
  private flushing = false;
  private scheduled = false;
  private readonly ctx: ServiceContext;
  private readonly queueOfResults: Queue;

  constructor(ctx: ServiceContext, queue: Queue) {
    this.ctx = ctx;
    this.queueOfResults = queue;
  }

  /** Resolves once the result is durably queued, with whether it had been queued before (a duplicate). */
  queue(item: ResultToQueue): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** After the reads already in hand are parsed (setImmediate runs after the I/O callbacks of this turn). */
  private schedule(): void {
    if (this.flushing || this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    const batch = this.pending.splice(0, MAX_BATCH);
    try {
      const duplicates = await withTimeout(this.write(batch.map((b) => b.item)), QUEUE_TIMEOUT_MS, 'the intake queue (Redis)');
      batch.forEach((b, i) => b.resolve(duplicates[i]!));
    } catch (err) {
      batch.forEach((b) => b.reject(err as Error));
    } finally {
      this.flushing = false;
      this.schedule();
    }
  }

  private async write(items: ResultToQueue[]): Promise<boolean[]> {
    const { documents, status, redis } = this.ctx;
    // One connection carries everything below (the queue shares the context's client), and Redis runs it in the
    // order it is sent: a router that sees a job finds its documents, and the existence check of each job runs before
    // the bulk add. A result whose job exists (kept a week after routing) was seen before: the producer sent it again,
    // maybe because our ACK was lost. It is counted as a repeat; in the bulk add BullMQ ignores a job id it already has.
    const acknowledgedAt = Date.now();
    const written = Promise.all([
      Promise.all(items.map((it) => redis.exists(this.queueOfResults.toKey(it.resultId)))),
      Promise.all(items.map((it) => status.recordResult(it.record))),
      Promise.all(items.flatMap((it) => it.contents.map((d) => documents.put(d.content, d.sha256)))),
    ]);
    await afterPipelinedWrites();
    const [[existed]] = await Promise.all([
      written,
      this.queueOfResults.addBulk(items.map((it) => ({ name: 'result', data: { ...it.job, acknowledgedAt }, opts: { jobId: it.resultId } }))),
    ]);
    const seen = new Set<string>();
    return items.map((it, i) => {
      const duplicate = existed[i] === 1 || seen.has(it.resultId);
      seen.add(it.resultId);
      return duplicate;
    });
  }
}

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
  private readonly batch: IntakeBatch;

  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
    this.queue = new Queue(QUEUES.intake, {
      // The context's own client: the documents and status records written before a job are on the same
      // connection, so Redis has them before the job (see IntakeBatch.write).
      connection: ctx.redis,
      prefix: ctx.config.redis.prefix,
      defaultJobOptions: {
        attempts: ctx.config.routing.attempts,
        backoff: { type: 'exponential', delay: ctx.config.routing.backoffMs },
        // Kept a week after routing: a result sent again within that time is recognised as a duplicate.
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: false,
      },
    });
    this.batch = new IntakeBatch(ctx, this.queue);
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
      const record: ResultRecord = {
        resultId, source, transport, controlId: result.controlId, sendingApplication: result.sendingApplication,
        sendingFacility: result.sendingFacility, ackReception: result.flags['ACK_RECEPTION'] ? '1' : '0',
        ackRead: result.flags['ACK_LECTURE_MSS'] ? '1' : '0', action: result.action, documentCode: result.documentCode, receivedAt,
      };
      const documents = result.documents.map(({ content: _, ...ref }) => ref);
      const duplicate = await this.batch.queue({
        resultId, record, contents: result.documents.map((d) => ({ content: d.content, sha256: d.sha256 })),
        job: { resultId, source, transport, receivedAt, acknowledgedAt: 0, result: { ...result, documents } },
      });
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
