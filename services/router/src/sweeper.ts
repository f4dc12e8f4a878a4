import type { Queue } from 'bullmq';
import { existing } from '@mssgw/queue';
import type { ServiceContext } from '@mssgw/runtime';
import { withSweepLock, type SweepCursor, type UnroutedResult, type WaitingDelivery } from '@mssgw/store';
import { metrics } from '@mssgw/telemetry';

/** Rows a sweep looks at, at most, per kind: a backlog larger than this is gone through over several sweeps. */
const ROWS_PER_SWEEP = 20_000;
const PAGE = 1_000;

export interface SweepReport {
  results: number;
  deliveries: number;
}

/**
 * The outbox side of the queues: PostgreSQL says what should be on them, Redis holds the jobs. A result committed
 * but never routed, or a recipient still queued, whose job Redis no longer has (a restart without persistence, a
 * Sentinel failover that lost the last writes, a FLUSHALL, a job BullMQ gave up on) is queued again under the same
 * job id. Losing Redis then costs time, never a result. A job queued twice is harmless: the router skips a result
 * already routed, and the dispatcher a recipient no longer queued.
 */
export class Sweeper {
  private readonly ctx: ServiceContext;
  private readonly intake: Queue;
  private readonly sendQueue: (mailbox: string) => Queue;
  private cursors: { results?: SweepCursor; deliveries?: SweepCursor } = {};

  constructor(ctx: ServiceContext, intake: Queue, sendQueue: (mailbox: string) => Queue) {
    this.ctx = ctx;
    this.intake = intake;
    this.sendQueue = sendQueue;
  }

  /** One sweep; undefined when another router is sweeping. */
  async sweep(now = Date.now()): Promise<SweepReport | undefined> {
    const before = new Date(now - this.ctx.config.postgres.sweepGraceMs);
    return withSweepLock(this.ctx.pg, async (q) => {
      const report = { results: 0, deliveries: 0 };
      for (let seen = 0; seen < ROWS_PER_SWEEP;) {
        const page = await q.unrouted(before, this.cursors.results, PAGE);
        this.cursors.results = page.next;
        seen += page.rows.length;
        report.results += await this.requeueResults(page.rows);
        if (!page.next) break;
      }
      for (let seen = 0; seen < ROWS_PER_SWEEP;) {
        const page = await q.waiting(before, this.cursors.deliveries, PAGE);
        this.cursors.deliveries = page.next;
        seen += page.rows.length;
        report.deliveries += await this.requeueDeliveries(page.rows);
        if (!page.next) break;
      }
      return report;
    });
  }

  private async missing<T>(queue: Queue, rows: T[], id: (row: T) => string): Promise<T[]> {
    if (!rows.length) return [];
    const present = await existing(this.ctx.redis, rows.map((r) => queue.toKey(id(r))));
    return rows.filter((_, i) => present[i] === 0);
  }

  private async requeueResults(rows: UnroutedResult[]): Promise<number> {
    const lost = await this.missing(this.intake, rows, (r) => r.resultId);
    if (!lost.length) return 0;
    await this.intake.addBulk(lost.map((r) => ({
      name: 'result', data: { resultId: r.resultId, source: r.source, transport: r.transport, receivedAt: r.receivedAt, acknowledgedAt: r.acknowledgedAt },
      opts: { jobId: r.resultId },
    })));
    metrics.sweeperRequeued.inc({ kind: 'result' }, lost.length);
    this.ctx.log.warn({ results: lost.length }, 'results whose routing job Redis no longer had: queued again');
    return lost.length;
  }

  private async requeueDeliveries(rows: WaitingDelivery[]): Promise<number> {
    let total = 0;
    const byMailbox = new Map<string, WaitingDelivery[]>();
    for (const r of rows) byMailbox.set(r.mailbox, [...(byMailbox.get(r.mailbox) ?? []), r]);
    for (const [mailbox, list] of byMailbox) {
      const queue = this.sendQueue(mailbox);
      const lost = await this.missing(queue, list, (r) => r.deliveryId);
      if (!lost.length) continue;
      await queue.addBulk(lost.map((d) => ({
        name: 'deliver', data: { deliveryId: d.deliveryId, resultId: d.resultId, ...(d.urgent ? { urgent: true } : {}) },
        opts: { jobId: d.deliveryId, ...(d.urgent ? { lifo: true } : {}) },
      })));
      total += lost.length;
    }
    if (total) {
      metrics.sweeperRequeued.inc({ kind: 'delivery' }, total);
      this.ctx.log.warn({ deliveries: total }, 'recipients whose delivery job Redis no longer had: queued again');
    }
    return total;
  }
}
