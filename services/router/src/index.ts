import type { Queue} from 'bullmq';
import { Worker, type Job } from 'bullmq';
import { FINAL_STATES, REASONS, routingRefusal } from '@mssgw/lifecycle';
import { documentSettings, planResult, readCdaHeader, renderMail, senderMailbox, type MailSpec, type ReceivedDocument } from '@mssgw/mssante';
import { QueuedResult } from '@mssgw/hl7';
import { IntakeJob, QUEUES, stableId, type DeliveryJob } from '@mssgw/queue';
import type { Recipient, Refusal } from '@mssgw/routing';
import { bullConnection, intakeQueue, sendQueue, type RunningService, type ServiceContext } from '@mssgw/runtime';
import type { StatusStore } from '@mssgw/status';
import { pruneRecords, sha256Of, type StoredMail } from '@mssgw/store';
import { metrics, referenceData } from '@mssgw/telemetry';
import { startReferenceData, type ReferenceData } from './reference-data.ts';
import { Sweeper } from './sweeper.ts';

export { startReferenceData, type ReferenceData, Sweeper };

/** The reference data a router decides with, as its health beacon names them. */
const REFERENCE_DATA = ['directory', 'whitelist', 'patient-opposition'] as const;

export interface RouterService extends RunningService {
  worker: Worker;
  reference: ReferenceData;
  sweeper: Sweeper;
}

/**
 * Takes accepted results off the intake queue, decides their recipients, builds their mails once and puts one
 * delivery per recipient on the sender mailbox's send queue. Every id is derived from the result, so a job that
 * is retried after a crash finds what it already did and adds nothing twice.
 */
export async function startRouter(ctx: ServiceContext): Promise<RouterService> {
  const { config } = ctx;
  const reference = await startReferenceData(ctx);
  const sendQueues = new Map<string, Queue>();
  const sendQueueOf = (mailbox: string) => {
    let q = sendQueues.get(mailbox);
    if (!q) sendQueues.set(mailbox, (q = sendQueue(ctx, mailbox)));
    return q;
  };
  const intake = intakeQueue(ctx);
  const sweeper = new Sweeper(ctx, intake, sendQueueOf);

  // A patient's answers go to the mailbox's replyTo only while that address is in the MSSanté space (the liste
  // blanche); otherwise the conversation is closed (X-MSS-MES: FIN), as with patientReplies: closed, and said once.
  const warnedReplyTo = new Set<string>();
  const senderMailboxChecked = (m: (typeof config.mailboxes)[number]) => {
    const sender = senderMailbox(m);
    const domain = sender.patientReplyTo?.split('@')[1];
    if (!domain || reference.whitelist.allows(domain, false)) return sender;
    if (!warnedReplyTo.has(m.address)) {
      warnedReplyTo.add(m.address);
      ctx.log.error({ mailbox: m.address }, 'patientReplies.replyTo is not in the MSSanté liste blanche: patient mails close the conversation instead');
    }
    const { patientReplyTo: _, ...closed } = sender;
    return closed;
  };

  const processor = async (job: Job) => {
    const data = IntakeJob.parse(job.data);
    const { resultId } = data;
    const stored = await ctx.bodies.forRouting(resultId);
    if (!stored) throw new Error(`result ${resultId} is not in the message store`);
    // Routed already (a job queued again by a retransmission or by the sweeper): nothing to do twice.
    if (stored.settled) return;
    if (stored.normalized === undefined) throw new Error(`result ${resultId} has no stored form to route (pruned)`);
    const result = QueuedResult.parse(stored.normalized);
    const mailbox = config.mailboxes.find((m) => m.sources.includes(data.source)) ?? config.mailboxes[0]!;
    const documents = readDocuments(result, stored.documents);
    // The same document and version already sent under another control id: acknowledged, not sent again.
    const documentVersion = documentVersionOf(result, documents);
    if (documentVersion) {
      const holder = await ctx.status.claimDocumentVersion(documentVersion, resultId);
      if (holder !== resultId) {
        await ctx.status.markDuplicate(resultId, holder);
        metrics.resultsDuplicate.inc({ source: data.source });
        ctx.log.info({ resultId, controlId: result.controlId, duplicateOf: holder }, 'same document and version already sent; not sent again');
        return;
      }
    }
    // The patient's oppositions were read with the result: one round trip less for every result.
    const policy = { ...reference.policyFor(data.source), oppositions: () => Promise.resolve(stored.oppositions) };
    const { decision, content, mails: specs } = await planResult({
      resultId, result, receivedAt: data.receivedAt, documents,
      policy,
      mailbox: senderMailboxChecked(mailbox),
      productReference: config.mssante.productReference,
      settings: documentSettings(config.mssante.documents),
      limits: config.routing,
      ...(config.mssante.bodies ? { bodies: config.mssante.bodies } : {}),
      versionOf: () => ctx.status.versionInSet(resultId),
    });
    const documentIds = content ? [...(result.documentId ? [result.documentId] : []), ...content.documentIds] : [];
    const renderedAt = new Date();
    // Rendered once per mail, whatever its number of recipients and retries; the attachments part is one body for
    // all the mails of the result that carry it.
    const mails: StoredMail[] = specs.map((spec) => {
      const m = renderMail(spec, content?.contents ?? new Map<string, Buffer>(), renderedAt);
      return { mailId: spec.mailId, head: m.head, ...(m.attachments.length ? { attachments: { sha256: sha256Of(m.attachments), mediaType: 'message/rfc822-part', content: m.attachments } } : {}) };
    });
    const deliveries = specs.flatMap((spec) => deliveriesOf(spec, data, result, decision.recipients));
    const refusals = refusalRecords(resultId, decision.refusals);
    // One statement from the mails to the routed mark: the mails, the recipients' records (queued and refused) and the
    // mark are committed together (one WAL flush), before a dispatcher can take a delivery, whose job names them only.
    // A crash before the bulk add leaves recipients queued without a job: the sweeper queues them.
    const created = new Set(await ctx.status.recordRouting({
      resultId, mails, documentIds, deliveries: [...deliveries.map((d) => d.record), ...refusals], acknowledgedAt: data.acknowledgedAt,
    }));
    for (const r of refusals) if (created.has(r.deliveryId)) metrics.recipientsRefused.inc({ reason: r.reason });
    if (deliveries.length) await sendQueueOf(mailbox.address).addBulk(deliveries.map((d) => d.job));
    metrics.mailsQueued.inc({ mailbox: mailbox.address }, deliveries.length);
    for (const r of decision.recipients) metrics.recipientsResolved.inc({ kind: r.kind });
    ctx.log.info(
      { resultId, controlId: result.controlId, mails: specs.length, recipients: decision.recipients.length, refused: decision.refusals.length },
      'result routed',
    );
  };

  // Retention, once an hour in some router (a lock keeps it to one at a time): the message store forgets what is over
  // and older than receipts.retentionDays, and empties the bodies of what is over since postgres.bodyRetentionDays.
  const prune = async () => {
    try {
      const r = await pruneRecords(ctx.pg, {
        olderThan: new Date(Date.now() - config.receipts.retentionDays * 86_400_000),
        bodiesOlderThan: new Date(Date.now() - config.postgres.bodyRetentionDays * 86_400_000),
        finalStates: FINAL_STATES,
      });
      if (r.results || r.emptied) ctx.log.info({ ...r }, 'message store pruned');
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'message store prune failed; tried again in an hour');
    }
  };
  const pruneTimer = setInterval(() => void prune(), 3_600_000);
  pruneTimer.unref();
  // The sweeper: whatever the message store says should be queued and Redis lost is queued again.
  const sweep = async () => {
    try {
      await sweeper.sweep();
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'sweep failed; tried again at the next one');
    }
  };
  const sweepTimer = setInterval(() => void sweep(), config.postgres.sweepIntervalMs);
  sweepTimer.unref();

  const worker = new Worker(QUEUES.intake, processor, { ...bullConnection(config), concurrency: 8 });
  worker.on('error', (err) => ctx.log.warn({ err: err.message }, 'intake queue error'));
  worker.on('failed', (job, err) => {
    ctx.log.error({ resultId: job?.id, attempts: job?.attemptsMade, err: err.message }, 'routing failed');
    // The last attempt: the result still gets an outcome, which reaches the status API and the producer.
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
      const data = IntakeJob.safeParse(job.data);
      const resultId = data.success ? data.data.resultId : String(job.id);
      void recordRefusals(ctx.status, resultId, [{ reason: REASONS.routingFailed, kind: 'professional', origin: 'router', detail: err.message }])
        .catch((e: Error) => ctx.log.error({ resultId, err: e.message }, 'could not record the routing failure'));
    }
  });
  return {
    name: 'router',
    // When each reference data in use was loaded (the console warns past 48 h, as MssgwReferenceDataStale does); one
    // not configured (no directory import, no liste blanche location) is not listed.
    health: () => ({ reference: REFERENCE_DATA.flatMap((data) => (referenceData[data] ? [{ data, loadedAt: referenceData[data] }] : [])) }),
    worker,
    reference,
    sweeper,
    async stop() {
      clearInterval(pruneTimer);
      clearInterval(sweepTimer);
      await worker.close();
      await Promise.all([...sendQueues.values(), intake].map((q) => q.close()));
      await reference.stop();
    },
  };
}

/**
 * "id|version|action" of the result's first CDA (ClinicalDocument/id and versionNumber), else TXA-12 and the event
 * of an MDM. The action is part of it: a deletion names the same document and version as the initial send.
 */
function documentVersionOf(result: QueuedResult, documents: ReceivedDocument[]): string | undefined {
  const h = documents.find((d) => d.header)?.header;
  if (h?.id.root) return `${h.id.root}^${h.id.extension ?? ''}|${h.version ?? '1'}|${result.action}`;
  return result.documentId ? `${result.documentId}|${result.event}|${result.action}` : undefined;
}

/** The records of the refused recipients: refused from the start, with the reason and its detail. */
function refusalRecords(resultId: string, refusals: Refusal[]) {
  return refusals.map((r, i) => ({
    deliveryId: stableId('d', resultId, 'refused', String(i), r.address ?? r.id ?? r.origin),
    resultId,
    recipient: r.address ?? `${r.origin}:${r.id ?? 'unnamed'}`,
    ...(r.id ? { recipientId: r.id } : {}),
    kind: r.kind,
    ...routingRefusal(r.reason, r.detail),
  }));
}

/** Records refused recipients on their own (a result whose routing failed for good), counted once each. */
async function recordRefusals(status: StatusStore, resultId: string, refusals: Refusal[]): Promise<void> {
  await Promise.all(refusalRecords(resultId, refusals).map(async (r) => {
    if (await status.createDelivery(r)) metrics.recipientsRefused.inc({ reason: r.reason });
  }));
}

/** The result's documents, read from the message store with it; each CDA header parsed once per routing job (a CDA can weigh 30 MB). */
function readDocuments(result: QueuedResult, contents: Map<string, Buffer>): ReceivedDocument[] {
  return result.documents.map((ref) => {
    const content = contents.get(ref.sha256);
    if (!content) throw new Error(`document ${ref.sha256} is not in the message store (pruned or never written)`);
    return ref.kind === 'cda' ? { ref, content, header: readCdaHeader(content) } : { ref, content };
  });
}

/** A delivery per recipient of a mail: the recipient's record (first state: queued) and the send job, which names it. */
function deliveriesOf(spec: MailSpec, intake: IntakeJob, result: QueuedResult, recipients: Recipient[]) {
  const urgent = Boolean(result.urgent);
  return spec.to.map((recipient) => {
    const deliveryId = stableId('d', spec.mailId, recipient);
    const r = recipients.find((x) => x.address === recipient);
    const record = {
      deliveryId, resultId: spec.resultId, recipient, kind: r?.kind ?? (spec.audience === 'patient' ? 'patient' as const : 'professional' as const), state: 'queued' as const,
      ...(r?.id ? { recipientId: r.id } : {}),
      // How the address was chosen (directory, default mailbox) stays with the recipient for the status API.
      ...(r?.choice ? { detail: r.choice } : {}),
      mailId: spec.mailId, messageId: spec.messageId, mailbox: spec.from,
    };
    const data: DeliveryJob = { deliveryId, resultId: intake.resultId, ...(urgent ? { urgent } : {}) };
    // An urgent result goes to the head of its send queue (O(1), whatever the backlog): it jumps every routine mail.
    return { record, job: { name: 'deliver', data, opts: { jobId: deliveryId, ...(urgent ? { lifo: true } : {}) } } };
  });
}
