import { Queue } from 'bullmq';
import { operatorReplay } from '@mssgw/lifecycle';
import { DeliveryJob, QUEUES } from '@mssgw/queue';
import { checkBeforeSending } from '@mssgw/routing';
import { bullConnection, type ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';

export interface DeadLetter {
  deliveryId: string;
  resultId?: string;
  mailbox: string;
  queue: string;
  reason: string;
  failedAt: number;
}

/** Deliveries that exhausted their retries, oldest first. */
export async function listDeadLetters(ctx: ServiceContext): Promise<DeadLetter[]> {
  const dlq = new Queue(QUEUES.deadLetter, bullConnection(ctx.config));
  try {
    const jobs = await dlq.getJobs(['waiting', 'delayed', 'prioritized'], 0, -1, true);
    return jobs.map((j) => j.data as DeadLetter).sort((a, b) => a.failedAt - b.failedAt);
  } finally {
    await dlq.close();
  }
}

/** A dead letter the replay refused: its recipient's domain left the liste blanche, or its patient opposes it now. */
export interface RefusedReplay {
  deliveryId: string;
  reason: string;
  detail: string;
}

/**
 * Puts dead-lettered deliveries back on their send queue (the same job, retried), their recipients back to
 * "queued". Each is checked again first (issue #22): one whose domain has left the liste blanche, or whose patient
 * now opposes mails in its direction, is not replayed but refused with that reason (and leaves the dead-letter
 * queue); it is added to `report.refused` when given. Returns the delivery ids replayed.
 */
export async function replayDeadLetters(
  ctx: ServiceContext, which: { all: true } | { deliveryId: string }, report?: { refused: RefusedReplay[] },
): Promise<string[]> {
  const dlq = new Queue(QUEUES.deadLetter, bullConnection(ctx.config));
  const queues = new Map<string, Queue>();
  const replayed: string[] = [];
  try {
    const jobs = await dlq.getJobs(['waiting', 'delayed', 'prioritized'], 0, -1, true);
    for (const entry of jobs.filter((j) => 'all' in which || j.id === which.deliveryId)) {
      const dead = entry.data as DeadLetter;
      const out = await ctx.bodies.outbound(dead.deliveryId);
      const refusal = out ? await checkBeforeSending(ctx, out) : undefined;
      if (refusal) {
        const { applied } = await ctx.status.apply(dead.deliveryId, refusal);
        if (applied) for (const m of [metrics.dispatchRefused, metrics.recipientsRefused]) m.inc({ reason: refusal.fields.reason! });
        await entry.remove();
        report?.refused.push({ deliveryId: dead.deliveryId, reason: refusal.fields.reason!, detail: refusal.fields.detail! });
        ctx.log.info({ deliveryId: dead.deliveryId, reason: refusal.fields.reason }, 'dead letter not replayed: refused');
        continue;
      }
      let queue = queues.get(dead.queue);
      if (!queue) queues.set(dead.queue, (queue = new Queue(dead.queue, bullConnection(ctx.config))));
      const job = await queue.getJob(dead.deliveryId);
      await ctx.status.apply(dead.deliveryId, operatorReplay());
      if (job && (await job.getState()) === 'failed') await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      else if (!job) await queue.add('deliver', DeliveryJob.parse({ deliveryId: dead.deliveryId, resultId: dead.resultId }), { jobId: dead.deliveryId });
      await entry.remove();
      replayed.push(dead.deliveryId);
    }
    return replayed;
  } finally {
    await Promise.all([...queues.values()].map((q) => q.close()));
    await dlq.close();
  }
}
