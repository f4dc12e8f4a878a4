import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Transporter } from 'nodemailer';
import type { ApplicativeMailboxConfig } from '@mssgw/config';
import { afterFailedAttempt, failureText, isSendable, retriesExhausted, smtpAccepted, smtpFailure, type DeliveryState, type SmtpFailure } from '@mssgw/lifecycle';
import { DeliveryJob, QUEUES, redisKeys } from '@mssgw/queue';
import { bullConnection, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';
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

  for (const mailbox of config.mailboxes) {
    try {
      const probe = await probeOperator(config, mailbox);
      if (!probe.dsn) ctx.log.warn({ mailbox: mailbox.address }, 'operator does not advertise DSN: deliveries will stay "submitted" until the confirmation timeout');
    } catch (err) {
      ctx.log.warn({ mailbox: mailbox.address, err: (err as Error).message }, 'operator probe failed; sending will retry');
    }
    const transport = createMailboxTransport(config, mailbox);
    transports.push(transport);
    const worker: Worker = new Worker(QUEUES.send(mailbox.address), (job: Job, token?: string) => deliver(ctx, { transport, mailbox, rate, worker }, job, token), {
      ...bullConnection(config),
      concurrency: config.dispatcher.concurrency,
      lockDuration: config.dispatcher.lockMs,
      stalledInterval: config.dispatcher.lockMs,
    });
    // A job whose key vanished under it (Redis flushed or failed over) cannot be completed; the message store has its
    // outcome, and the sweeper queues again what is still to send.
    worker.on('error', (err) => ctx.log.warn({ mailbox: mailbox.address, err: err.message }, 'send queue error'));
    worker.on('failed', (job, err) => {
      if (!job) return;
      onFailed(ctx, deadLetters, mailbox, job, err).catch((e: Error) => ctx.log.error({ deliveryId: job.id, err: e.message }, 'could not record the failed delivery; it stays on its queue'));
    });
    workers.push(worker);
  }
  return {
    name: 'dispatcher',
    workers,
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
  const [out, marker] = await Promise.all([ctx.bodies.outbound(d.deliveryId), ctx.redis.exists(sendingKey)]);
  if (!out) throw new UnrecoverableError(`delivery ${d.deliveryId} is not in the message store`);
  // The acceptance is recorded the moment the operator answers 250; a retried job finds it and sends nothing.
  if (!isSendable(out.state as DeliveryState)) return;
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
  try {
    const info = (await transport.sendMail({
      raw: message,
      // Sent as written; given here only so that nodemailer does not draw random bytes for an id of its own per mail.
      messageId: out.messageId,
      envelope: { from: out.mailbox, to: [out.recipient] },
      dsn: { id: out.envelopeId, return: 'headers', notify: ['success', 'failure', 'delay'], recipient: out.recipient },
    })) as { response: string; accepted: string[]; rejected: string[] };
    // The marker goes in the same step as the acceptance is recorded: never one without the other.
    const now = Date.now();
    const accepted = smtpAccepted(info.response, now);
    await ctx.status.apply(d.deliveryId, accepted, now, sendingKey);
    metrics.mailsSent.inc({ mailbox: mailbox.address });
    if (out.acknowledgedAt) metrics.intakeToSmtp.observe({ mailbox: mailbox.address }, (Date.now() - out.acknowledgedAt) / 1000);
    ctx.log.info({ deliveryId: d.deliveryId, messageId: out.messageId, queueId: accepted.fields.queueId }, 'mail accepted by the operator');
  } catch (e) {
    const err = e as SmtpError;
    const outcome = smtpFailure(err);
    if (outcome.notAccepted) await ctx.redis.del(sendingKey);
    if (outcome.action === 'fail') {
      await ctx.status.apply(d.deliveryId, outcome.transition);
      metrics.mailsFailed.inc({ mailbox: mailbox.address, reply_class: outcome.replyClass });
      throw new UnrecoverableError(`operator refused the recipient: ${err.responseCode}`);
    }
    if (isSlowDown(err.responseCode)) {
      const slower = await rate.slowDown();
      metrics.operatorSlowDowns.inc({ operator, code: String(err.responseCode) });
      metrics.operatorRate.set({ operator }, slower);
      ctx.log.warn({ deliveryId: d.deliveryId, code: err.responseCode, perSecond: slower }, 'operator asks to slow down; sending slower');
    }
    metrics.mailsRetried.inc({ mailbox: mailbox.address, reply_class: outcome.replyClass });
    throw err;
  }
}

/** After the last attempt, a delivery goes to the dead-letter queue with its reason; permanent refusals are already "failed". */
async function onFailed(ctx: ServiceContext, deadLetters: Queue, mailbox: ApplicativeMailboxConfig, job: Job, err: SmtpError): Promise<void> {
  const next = afterFailedAttempt({ permanent: err.name === 'UnrecoverableError', attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 });
  if (next !== 'dead-letter') return;
  const d = DeliveryJob.parse(job.data);
  const reason = failureText(err);
  await deadLetters.add('dead-letter', { ...d, mailbox: mailbox.address, queue: QUEUES.send(mailbox.address), reason, failedAt: Date.now() }, { jobId: d.deliveryId });
  await ctx.status.apply(d.deliveryId, retriesExhausted(reason));
  metrics.mailsFailed.inc({ mailbox: mailbox.address, reply_class: smtpFailure(err).replyClass });
  ctx.log.error({ deliveryId: d.deliveryId, attempts: job.attemptsMade, reason: err.code ?? err.responseCode }, 'delivery dead-lettered');
}
