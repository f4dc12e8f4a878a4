import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Transporter } from 'nodemailer';
import type { ApplicativeMailboxConfig } from '@mssgw/config';
import {
  afterFailedAttempt, failureText, isSendable, MAILBOX_PAUSES, nextRetry, pauseDelay, retriesExhausted, smtpAccepted, smtpFailure, type DeliveryState, type MailboxPause,
  type SmtpFailure,
} from '@mssgw/lifecycle';
import { DeliveryJob, QUEUES, redisKeys } from '@mssgw/queue';
import { bullConnection, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';
import { checkBeforeSending } from '@mssgw/routing';
import { isSlowDown, OperatorRate } from './operator-rate.ts';
import { useNativeSmtpTransparency } from './smtp-data.ts';
import { createMailboxTransport, probeOperator } from './transport.ts';

export { createMailboxTransport, probeOperator } from './transport.ts';
export { OperatorRate, isSlowDown, type OperatorRateOptions } from './operator-rate.ts';
export { smtpTransparency, nodemailerDataStream, useNativeSmtpTransparency } from './smtp-data.ts';
export { listDeadLetters, replayDeadLetters, type DeadLetter } from './dead-letter.ts';

/** How long an unfinished attempt is remembered (its DSN, if any, comes long before). */
const SENDING_MARKER_MS = 7 * 24 * 3600 * 1000;

type SmtpError = Error & SmtpFailure;

export interface DispatcherService extends RunningService {
  workers: Worker[];
}

/**
 * One worker and one pooled SMTP transport per applicative mailbox. A delivery is one envelope (one recipient)
 * with DSN requested: ENVID is the delivery's random envelope id, ORCPT the recipient, so each DSN names exactly
 * what it reports, and only the operator that saw the envelope can name it.
 */
export async function startDispatcher(ctx: ServiceContext): Promise<DispatcherService> {
  const { config } = ctx;
  const deadLetters = new Queue(QUEUES.deadLetter, { ...bullConnection(config), defaultJobOptions: { removeOnComplete: true, removeOnFail: false } });
  const workers: Worker[] = [];
  const transports: Transporter[] = [];
  const rate = new OperatorRate(ctx.redis, config.redis.prefix, config.operator.smtpHost, config.operator.rate);
  if (!(await useNativeSmtpTransparency())) ctx.log.warn('nodemailer\'s DataStream was not found: sending with its byte-by-byte escaping (slower)');

  const senders: Sender[] = [];
  for (const mailbox of config.mailboxes) {
    let dsn: boolean | undefined;
    try {
      const probe = await probeOperator(config, mailbox);
      dsn = probe.dsn;
      if (!probe.dsn) ctx.log.warn({ mailbox: mailbox.address }, 'operator does not advertise DSN: deliveries will stay "submitted" until the confirmation timeout');
    } catch (err) {
      ctx.log.warn({ mailbox: mailbox.address, err: (err as Error).message }, 'operator probe failed; sending will retry');
    }
    const transport = createMailboxTransport(config, mailbox);
    transports.push(transport);
    const sender: Sender = { transport, mailbox, rate, worker: undefined as unknown as Worker, deadLetters, pauses: 0, ...(dsn === undefined ? {} : { dsn }) };
    senders.push(sender);
    // Every series exists from the start (at 0), so that the alert on it has data before the first pause.
    for (const reason of MAILBOX_PAUSES) metrics.mailboxPaused.set({ mailbox: mailbox.address, reason }, 0);
    const worker: Worker = new Worker(QUEUES.send(mailbox.address), (job: Job, token?: string) => deliver(ctx, sender, job, token), {
      ...bullConnection(config),
      concurrency: config.dispatcher.concurrency,
      lockDuration: config.dispatcher.lockMs,
      stalledInterval: config.dispatcher.lockMs,
    });
    // A job whose key vanished under it (Redis flushed or failed over) cannot be completed; the message store has its
    // outcome, and the sweeper queues again what is still to send.
    worker.on('error', (err) => ctx.log.warn({ mailbox: mailbox.address, err: err.message }, 'send queue error'));
    sender.worker = worker;
    worker.on('failed', (job, err) => {
      if (!job) return;
      onFailed(ctx, sender, job, err).catch((e: Error) => ctx.log.error({ deliveryId: job.id, err: e.message }, 'could not record the failed delivery'));
    });
    workers.push(worker);
  }
  return {
    name: 'dispatcher',
    workers,
    health: () => ({
      smtp: senders.map((s) => ({ mailbox: s.mailbox.address, paused: s.paused ?? null, lastAcceptedAt: s.lastAcceptedAt ?? null, dsn: s.dsn ?? null })),
    }),
    async stop() {
      // Stop taking jobs and let the ones in flight finish, then close the SMTP pools.
      await Promise.all(workers.map((w) => w.close()));
      for (const t of transports) t.close();
      await deadLetters.close();
    },
  };
}

interface Sender {
  transport: Transporter;
  mailbox: ApplicativeMailboxConfig;
  rate: OperatorRate;
  worker: Worker;
  deadLetters: Queue;
  /** Pauses of this mailbox's queue in a row (an unreachable operator, or one refusing the mailbox); 0 once a mail goes. */
  pauses: number;
  paused?: MailboxPause;
  /** Whether the operator advertised DSN at start-up, and when it last took a mail (the console's health). */
  dsn?: boolean;
  lastAcceptedAt?: number;
}

async function deliver(ctx: ServiceContext, sender: Sender, job: Job, token?: string): Promise<void> {
  const { transport, mailbox, rate, worker } = sender;
  const d = DeliveryJob.parse(job.data);
  // An attempt that started sending and never recorded its outcome (the process died, or the connection broke
  // once the message was on its way) may have been accepted: wait for the DSN that would say so before sending again.
  // The marker is set just before SMTP and cleared once the outcome is recorded, so a job put back by the rate
  // limiter or by a refused connection is not mistaken for one.
  const sendingKey = redisKeys(ctx.config.redis.prefix).sending(d.deliveryId);
  // The delivery (its state, recipient, mail and DSN envelope id) and the marker in one round trip each, side by side.
  const [out, marker] = await Promise.all([ctx.bodies.outbound(d.deliveryId), ctx.redis.exists(sendingKey)]).catch(async (err: Error) => {
    // The message store does not answer: the whole queue waits, no attempt counted (an outage is nobody's retry).
    return pauseMailbox(ctx, sender, 'message-store', err.message);
  });
  if (!out) throw new UnrecoverableError(`delivery ${d.deliveryId} is not in the message store`);
  // The acceptance is recorded the moment the operator answers 250; a retried job finds it and sends nothing.
  if (!isSendable(out.state as DeliveryState)) return;
  // Checked again before sending (issues #22, #25): a domain that left the liste blanche, an opposition recorded since
  // routing. Such a recipient is refused with that reason and never sent (docs/recipients.md, Checks at dispatch).
  const refusal = await checkBeforeSending(ctx, out);
  if (refusal) {
    const { applied } = await ctx.status.apply(d.deliveryId, refusal);
    if (applied) for (const m of [metrics.dispatchRefused, metrics.recipientsRefused]) m.inc({ reason: refusal.fields.reason! });
    ctx.log.info({ deliveryId: d.deliveryId, reason: refusal.fields.reason }, 'recipient refused before sending');
    return;
  }
  const interrupted = marker === 1;
  const until = d.reconcileUntil ?? (interrupted ? Date.now() + ctx.config.dispatcher.reconcileMs : undefined);
  if (until !== undefined && Date.now() < until) {
    if (d.reconcileUntil === undefined) {
      await job.updateData({ ...d, reconcileUntil: until });
      ctx.log.warn({ deliveryId: d.deliveryId, waitMs: until - Date.now() }, 'interrupted attempt: waiting for a DSN before sending again');
    }
    await job.moveToDelayed(until, token);
    throw new DelayedError();
  }
  // The operator's budget is shared by every dispatcher: over it, the job goes back to the queue untouched
  // (no attempt counted) and this queue's worker waits.
  const operator = ctx.config.operator.smtpHost;
  const { waitMs, perSecond } = await rate.acquire();
  metrics.operatorRate.set({ operator }, perSecond);
  if (waitMs > 0) {
    await worker.rateLimit(waitMs);
    throw Worker.RateLimitError();
  }
  const [message] = await Promise.all([ctx.bodies.message(out), ctx.redis.set(sendingKey, String(Date.now()), 'PX', SENDING_MARKER_MS)]);
  if (!message) {
    await ctx.redis.del(sendingKey); // nothing was sent: this is not an interrupted attempt
    throw new Error(`the mail of delivery ${d.deliveryId} is not in the message store (pruned?)`);
  }
  let info: { response: string; accepted: string[]; rejected: string[] };
  try {
    info = (await transport.sendMail({
      raw: message,
      // Sent as written; given here only so that nodemailer does not draw random bytes for an id of its own per mail.
      messageId: out.messageId,
      envelope: { from: out.mailbox, to: [out.recipient] },
      dsn: { id: out.envelopeId, return: 'headers', notify: ['success', 'failure', 'delay'], recipient: out.recipient },
    })) as { response: string; accepted: string[]; rejected: string[] };
  } catch (e) {
    const err = e as SmtpError;
    const outcome = smtpFailure(err);
    if (outcome.notAccepted) await ctx.redis.del(sendingKey);
    if (outcome.action === 'fail') {
      resumed(ctx, sender);
      await ctx.status.apply(d.deliveryId, outcome.transition);
      metrics.mailsFailed.inc({ mailbox: mailbox.address, reply_class: outcome.replyClass });
      throw new UnrecoverableError(`operator refused the recipient: ${err.responseCode}`);
    }
    if (outcome.action === 'pause') return pauseMailbox(ctx, sender, outcome.pause, err.code ?? String(err.responseCode ?? ''));
    resumed(ctx, sender);
    if (isSlowDown(err.responseCode)) {
      const slower = await rate.slowDown();
      metrics.operatorSlowDowns.inc({ operator, code: String(err.responseCode) });
      metrics.operatorRate.set({ operator }, slower);
      ctx.log.warn({ deliveryId: d.deliveryId, code: err.responseCode, perSecond: slower }, 'operator asks to slow down; sending slower');
    }
    metrics.mailsRetried.inc({ mailbox: mailbox.address, reply_class: outcome.replyClass });
    // A transient failure of this delivery: tried again within the retry budget, then dead-lettered.
    const state = { firstFailureAt: d.firstFailureAt ?? Date.now(), failures: (d.failures ?? 0) + 1 };
    const next = nextRetry(ctx.config.dispatcher, state, Date.now());
    if (next === 'dead-letter') return deadLetter(ctx, sender, d, failureText(err), outcome.replyClass, state.failures);
    await job.updateData({ ...d, ...state });
    await job.moveToDelayed(next.retryAt, token);
    throw new DelayedError();
  }
  // The operator took the mail. Its acceptance is recorded and the marker cleared in one step. If the message store
  // does not answer, the marker stays: the next attempt waits for the DSN that will settle it rather than send again
  // (an error from the store must never read as the operator's: the mail would go twice).
  const now = Date.now();
  const accepted = smtpAccepted(info.response, now);
  try {
    await ctx.status.apply(d.deliveryId, accepted, now, sendingKey);
  } catch (err) {
    ctx.log.error({ deliveryId: d.deliveryId, err: (err as Error).message }, 'mail accepted but not recorded: its DSN will settle it');
    return pauseMailbox(ctx, sender, 'message-store', (err as Error).message);
  }
  resumed(ctx, sender);
  metrics.mailsSent.inc({ mailbox: mailbox.address });
  sender.lastAcceptedAt = now;
  metrics.operatorLastAccepted.set({ mailbox: mailbox.address }, now / 1000);
  if (out.acknowledgedAt) metrics.intakeToSmtp.observe({ mailbox: mailbox.address }, (Date.now() - out.acknowledgedAt) / 1000);
  ctx.log.info({ deliveryId: d.deliveryId, messageId: out.messageId, queueId: accepted.fields.queueId }, 'mail accepted by the operator');
}

/**
 * The operator cannot be reached, or refuses the mailbox itself, or the message store does not answer: no recipient
 * is at fault, so none is failed and no attempt is counted. The mailbox's queue waits (BullMQ's rate limit, shared by
 * every dispatcher of the queue), longer each time, then tries its next mail; the first one that goes resumes it.
 */
async function pauseMailbox(ctx: ServiceContext, sender: Sender, pause: MailboxPause, detail: string): Promise<never> {
  sender.pauses += 1;
  const waitMs = pauseDelay(ctx.config.dispatcher, sender.pauses);
  if (sender.paused !== pause) {
    if (sender.paused) metrics.mailboxPaused.set({ mailbox: sender.mailbox.address, reason: sender.paused }, 0);
    ctx.log.error({ mailbox: sender.mailbox.address, pause, detail, waitMs }, 'mailbox paused: sending waits, no recipient is failed');
  }
  sender.paused = pause;
  metrics.mailboxPaused.set({ mailbox: sender.mailbox.address, reason: pause }, 1);
  await sender.worker.rateLimit(waitMs);
  throw Worker.RateLimitError();
}

/** A mail went (or a recipient answered for itself): the mailbox is no longer paused. */
function resumed(ctx: ServiceContext, sender: Sender): void {
  sender.pauses = 0;
  if (!sender.paused) return;
  metrics.mailboxPaused.set({ mailbox: sender.mailbox.address, reason: sender.paused }, 0);
  ctx.log.info({ mailbox: sender.mailbox.address, pause: sender.paused }, 'mailbox resumed');
  delete sender.paused;
}

/** The retry budget is spent, or BullMQ gave up: the delivery goes to the dead-letter queue with its reason, recorded. */
async function deadLetter(ctx: ServiceContext, sender: Sender, d: DeliveryJob, reason: string, replyClass: string, failures: number): Promise<void> {
  const { mailbox } = sender;
  await sender.deadLetters.add('dead-letter', { deliveryId: d.deliveryId, resultId: d.resultId, mailbox: mailbox.address, queue: QUEUES.send(mailbox.address), reason, failedAt: Date.now() }, { jobId: d.deliveryId });
  await ctx.status.apply(d.deliveryId, retriesExhausted(reason));
  metrics.mailsFailed.inc({ mailbox: mailbox.address, reply_class: replyClass });
  ctx.log.error({ deliveryId: d.deliveryId, failures }, 'delivery dead-lettered');
}

/** BullMQ gave up on a job for another reason than an SMTP reply (a bug, a mail that cannot be read): dead-lettered. */
async function onFailed(ctx: ServiceContext, sender: Sender, job: Job, err: SmtpError): Promise<void> {
  const next = afterFailedAttempt({ permanent: err.name === 'UnrecoverableError', attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 });
  if (next !== 'dead-letter') return;
  await deadLetter(ctx, sender, DeliveryJob.parse(job.data), failureText(err), smtpFailure(err).replyClass, job.attemptsMade);
}
