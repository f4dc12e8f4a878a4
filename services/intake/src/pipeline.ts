import type { Queue } from 'bullmq';
import type { GatewayConfig } from '@mssgw/config';
import {
  buildAck, contentHashOf, decodeHl7, DEFAULT_TOLERANCE, Er7Message, Hl7Error, Reason, readHeader, readResult, validateResult, type AckCode, type AckTarget,
  loggableReason, type Hl7Warning, type IntakeTolerance, type QueuedResult,
} from '@mssgw/hl7';
import { afterIssuedWrites, resultIdOf, type IntakeJob } from '@mssgw/queue';
import { wrappedSetKey } from '@mssgw/mssante';
import { intakeQueue, withTimeout, type ServiceContext } from '@mssgw/runtime';
import type { ReceivedResult } from '@mssgw/store';
import { metrics } from '@mssgw/telemetry';

export type Transport = 'mllp' | 'kafka';

/** How long the message store and the queue may take to confirm a result before the producer is told to retry (AE). */
export const QUEUE_TIMEOUT_MS = 5_000;

/** A received result ready to be stored: its record in the message store (bodies included) and its routing job. */
interface ResultToQueue {
  resultId: string;
  received: ReceivedResult;
  job: IntakeJob;
}

/** Most results one flush writes; a Kafka batch or a burst on many connections is split into flushes of this size. */
const MAX_BATCH = 256;
/**
 * Flushes under way at once. PostgreSQL flushes the WAL of transactions that commit together in one write, so flushes
 * committing side by side cost little more than one: with one at a time, the intake ran at the speed of one fsync per
 * flush (576 results/s from 8 closed-loop MLLP senders on the benchmark machine).
 */
const MAX_IN_FLIGHT = 8;

/**
 * Group commit of received results. A flush records its results, with their documents, in PostgreSQL in one
 * transaction, then queues their jobs (ids only) in one Redis round trip; up to MAX_IN_FLIGHT flushes are under way at once,
 * and what arrives meanwhile forms the next one. Many MLLP connections or a Kafka batch then cost one commit and a
 * few commands per flush, and a quiet feed waits for no timer. The Redis writes of successive flushes leave in turn.
 * A result sent twice is a repeat whichever flush carried it: PostgreSQL's unique key says so.
 */
class IntakeBatch {
  private pending: { item: ResultToQueue; resolve(duplicate: boolean): void; reject(err: Error): void }[] = [];
  /** Settles once the last flush's Redis commands are all on the connection: the next flush's follow them. */
  private redisTurn: Promise<unknown> = Promise.resolve();
  /** The result ids of each flush under way. */
  private readonly inFlight: Set<string>[] = [];
  private scheduled = false;
  private readonly ctx: ServiceContext;
  private readonly queueOfResults: Queue;

  constructor(ctx: ServiceContext, queue: Queue) {
    this.ctx = ctx;
    this.queueOfResults = queue;
  }

  /** Resolves once the result is committed and queued, with whether it had been received before (a repeat). */
  queue(item: ResultToQueue): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** After the reads already in hand are parsed (setImmediate runs after the I/O callbacks of this turn). */
  private schedule(): void {
    if (this.inFlight.length >= MAX_IN_FLIGHT || this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending.splice(0, MAX_BATCH);
    const ids = new Set(batch.map((b) => b.item.resultId));
    this.inFlight.push(ids);
    this.schedule();
    const deadline = Date.now() + QUEUE_TIMEOUT_MS;
    try {
      // The message store first, in one transaction: nothing is acknowledged, nor queued, that is not committed. It
      // says which results it already had (a retransmission, maybe after a lost ACK).
      const repeats = await withTimeout(this.ctx.results.record(batch.map((b) => b.item.received)), QUEUE_TIMEOUT_MS, 'the message store (PostgreSQL)');
      const issued = this.redisTurn.then(() => this.write(batch.map((b) => b.item)));
      // Settled either way: a bulk add that throws must not hold the next flush back, nor leave an unhandled rejection.
      this.redisTurn = issued.then((w) => w.sent).catch(() => undefined);
      await withTimeout(issued.then((w) => w.done), Math.max(1, deadline - Date.now()), 'the intake queue (Redis)');
      batch.forEach((b, i) => b.resolve(repeats[i]!));
    } catch (err) {
      batch.forEach((b) => b.reject(err as Error));
    } finally {
      this.inFlight.splice(this.inFlight.indexOf(ids), 1);
      this.schedule();
    }
  }

  /** `sent` settles once every command is on the connection, `done` once Redis has answered them all. */
  private write(items: ResultToQueue[]): { sent: Promise<unknown>; done: Promise<unknown> } {
    // A repeat is queued again all the same: BullMQ ignores a job id it has, and one whose job Redis lost (our process
    // died between the commit and the bulk add, or Redis was flushed) gets it back; a router that takes a result
    // already routed does nothing.
    const acknowledgedAt = Date.now();
    const jobs = this.queueOfResults.addBulk(items.map((it) => ({ name: 'result', data: { ...it.job, acknowledgedAt }, opts: { jobId: it.resultId } })));
    return { sent: afterIssuedWrites(), done: jobs };
  }
}

/** How strictly a source's results are read: its intake.tolerance entry, else the defaults (mailBody warn, flagMatrix strict). */
export function toleranceOf(config: GatewayConfig, source: string): IntakeTolerance {
  return config.intake.tolerance[source] ?? DEFAULT_TOLERANCE;
}

export interface IntakeOutcome {
  code: AckCode;
  /** The ACK to send back (MLLP) or to attach to a dead-letter record (Kafka). */
  ack: string;
  controlId: string;
  resultId?: string;
  duplicate?: boolean;
  error?: Hl7Error;
  /** What was tolerated in a result taken (AA): also in the ACK as ERR segments of severity W. */
  warnings?: Hl7Warning[];
}

/**
 * Turns received bytes into a durably recorded and queued result, or into a precise refusal. The answer is AA only
 * once PostgreSQL has committed the result and Redis has taken its job; anything that goes wrong before that is an AE
 * (retry later) or AR (never retry).
 */
export class ResultIntake {
  private readonly ctx: ServiceContext;
  readonly queue: Queue;
  private readonly batch: IntakeBatch;

  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
    this.queue = intakeQueue(ctx);
    this.batch = new IntakeBatch(ctx, this.queue);
  }

  async accept(bytes: Buffer, source: string, transport: Transport, receivedAt = Date.now()): Promise<IntakeOutcome> {
    metrics.resultsReceived.inc({ source, transport });
    let target: Partial<AckTarget> | undefined;
    try {
      const decoded = decodeHl7(bytes);
      const msg = new Er7Message(decoded.text);
      target = readHeader(msg);
      const tolerance = toleranceOf(this.ctx.config, source);
      const { warnings, ...result } = validateResult(readResult(msg, decoded.charset, tolerance), tolerance);
      // The message store's key: the same source, facility, control id and content is the same result, sent again.
      const contentSha256 = contentHashOf(bytes);
      const resultId = resultIdOf({ source, sendingFacility: result.sendingFacility, controlId: result.controlId, contentSha256 });
      // What the router reads back (QueuedResult): the result without its documents' bytes nor the intake's warnings.
      const normalized: QueuedResult = { ...result, documents: result.documents.map(({ content: _, ...ref }) => ref) };
      const setKey = wrappedSetKey(normalized);
      const received: ReceivedResult = {
        resultId, source, transport, sendingApplication: result.sendingApplication, sendingFacility: result.sendingFacility,
        controlId: result.controlId, contentSha256, hl7: bytes, messageType: `${result.messageType}^${result.event}`, action: result.action,
        documentCode: result.documentCode, ...(result.patient.ins ? { patientIns: result.patient.ins.value } : {}), receivedAt,
        patientFamily: result.patient.family, patientGiven: result.patient.given,
        ackReception: Boolean(result.flags['ACK_RECEPTION']), ackRead: Boolean(result.flags['ACK_LECTURE_MSS']),
        documents: result.documents.map((d) => ({ sha256: d.sha256, mediaType: d.mediaType, content: d.content })),
        normalized, ...(setKey ? { setKey } : {}),
      };
      const duplicate = await this.batch.queue({ resultId, received, job: { resultId, source, transport, receivedAt, acknowledgedAt: 0 } });
      if (duplicate) {
        metrics.resultsDuplicate.inc({ source });
        this.ctx.log.info({ controlId: result.controlId, resultId }, 'duplicate result acknowledged, not sent again');
      }
      metrics.resultsAcknowledged.inc({ source, transport });
      if (warnings.length) {
        // Codes and locations only: the texts name segments and flags, and no patient data reaches a log line.
        this.ctx.log.warn({ controlId: result.controlId, resultId, source, transport, warnings: warnings.map((w) => Reason[w.reason].code) }, 'result taken with warnings');
      }
      return { code: 'AA', ack: buildAck(target, 'AA', undefined, warnings), controlId: result.controlId, resultId, duplicate, warnings };
    } catch (err) {
      const error = err instanceof Hl7Error ? err : Hl7Error.of('queueUnavailable', `the gateway could not queue the result: ${(err as Error).message}`);
      metrics.resultsRejected.inc({ source, transport, code: error.code });
      // The reason without the refused value (loggableReason): the ACK's text may quote it to the producer, the log never.
      this.ctx.log.warn({ controlId: target?.controlId, source, transport, code: error.code, reasonCode: error.reasonCode, ack: error.ackCode, reason: loggableReason(error) }, 'result refused');
      return { code: error.ackCode, ack: buildAck(target, error.ackCode, error), controlId: target?.controlId ?? '', error };
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
