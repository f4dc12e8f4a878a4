import { ImapFlow } from 'imapflow';
import { readSecret, type ApplicativeMailboxConfig } from '@mssgw/config';
import { messageIdHash, parseReceipt, UnreadableMail, type QuarantineReason, type ReceiptLimits } from '@mssgw/receipts';
import { mailboxTls, type ImapHealth, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';
import { applyReceipt } from './apply.ts';
import { initReplyMetrics, recordReply, ReplyForwarder } from './replies.ts';

export { applyReceipt, fromOperator, type ApplyOutcome } from './apply.ts';
export { recordReply, ReplyForwarder } from './replies.ts';

/** Folders of the applicative mailbox where read mail is moved: a restart never reads it twice. */
export const PROCESSED_FOLDER = 'Processed';
export const UNRECOGNISED_FOLDER = 'Unrecognised';
/** Replies (neither DSN nor MDN), once recorded in the message store (and forwarded when so configured). */
export const REPLIES_FOLDER = 'Replies';
/** Mail that could not be read (over a limit, broken, or never recordable), set aside so that it holds nothing back. */
export const QUARANTINE_FOLDER = 'Quarantine';
const FOLDERS = [PROCESSED_FOLDER, UNRECOGNISED_FOLDER, REPLIES_FOLDER, QUARANTINE_FOLDER] as const;
type Folder = (typeof FOLDERS)[number];

/** One fetch of sources: at most this many mails and bytes (one mail over it goes alone), within the heap's 256 MB. */
const BATCH_MAILS = 500;
const BATCH_BYTES = 32 * 1024 * 1024;
/** A mail whose recording failed this many times while the status store answered is quarantined (unrecordable). */
const RECORD_ATTEMPTS = 3;

interface Listed { uid: number; size: number }
/** What became of one mail: a folder to move it to, or left in INBOX (its recording failed). */
interface Outcome {
  uid: number;
  folder?: Folder;
  recorded?: boolean;
  /** A reply recorded now whose copy is still to send. */
  forward?: boolean;
  failed?: { err: Error; source: Buffer };
  /** Why it goes to Quarantine, and what the log line may say of it. */
  quarantined?: { reason: QuarantineReason; bytes: number; messageIdHash?: string; error?: string };
}

export interface ReceiptsService extends RunningService {
  /** Reads every waiting mail of every mailbox now (the periodic sweep does the same). */
  sweep(): Promise<void>;
  /** Sends the copies of replies still pending now (each sweep that records a reply, and the periodic one, do too). */
  forwardReplies(): Promise<void>;
}

/** A mail set aside; `mail` is its source, or only its size when it was too large to fetch. */
function quarantine(uid: number, reason: QuarantineReason, mail: Buffer | number, error?: string): Outcome {
  const bytes = typeof mail === 'number' ? mail : mail.length;
  const messageIdHashed = typeof mail === 'number' ? undefined : messageIdHash(mail);
  return { uid, folder: QUARANTINE_FOLDER, quarantined: { reason, bytes, ...(messageIdHashed ? { messageIdHash: messageIdHashed } : {}), ...(error ? { error } : {}) } };
}

class MailboxReader {
  private client: ImapFlow | undefined;
  private running = true;
  private sweeping: Promise<void> | undefined;
  private again = false;
  private backoffMs = 1_000;
  private readonly ctx: ServiceContext;
  private readonly mailbox: ApplicativeMailboxConfig;
  private readonly limits: ReceiptLimits;
  /** Failed recordings per UID, for the mails left in INBOX. */
  private readonly failures = new Map<number, number>();
  /** Sends the copies of replies to mailboxes[].forwardRepliesTo. */
  readonly forwarder: ReplyForwarder;
  /** The session is open (logged in, INBOX selected), and when the server last answered a poll: the console's health. */
  private connected = false;
  private lastPollAt: number | null = null;

  constructor(ctx: ServiceContext, mailbox: ApplicativeMailboxConfig) {
    this.ctx = ctx;
    this.mailbox = mailbox;
    this.forwarder = new ReplyForwarder(ctx, mailbox);
    const { maxMailBytes, maxTextBytes, maxMimeParts, maxNestingDepth } = ctx.config.receipts;
    this.limits = { maxMailBytes, maxTextBytes, maxMimeParts, maxNestingDepth };
    // Both series exist from the start: a mailbox never connected is one the alert must see (MssgwImapNotRead).
    metrics.imapConnected.set({ mailbox: mailbox.address }, 0);
    metrics.imapLastPoll.set({ mailbox: mailbox.address }, 0);
  }

  health(): ImapHealth {
    return { mailbox: this.mailbox.address, connected: this.connected, lastPollAt: this.lastPollAt };
  }

  private setConnected(connected: boolean): void {
    this.connected = connected;
    metrics.imapConnected.set({ mailbox: this.mailbox.address }, connected ? 1 : 0);
  }

  /** Keeps one IMAP session open, reconnecting with backoff; IDLE announces new mail. */
  async run(): Promise<void> {
    while (this.running) {
      const { config } = this.ctx;
      const client = new ImapFlow({
        host: config.operator.imapHost,
        port: config.operator.imapPort,
        secure: config.operator.imapImplicitTls,
        doSTARTTLS: !config.operator.imapImplicitTls,
        auth: { user: this.mailbox.address, pass: readSecret(this.mailbox.imapPassword) },
        tls: mailboxTls(config, this.mailbox),
        logger: false,
      });
      this.client = client;
      try {
        await client.connect();
        for (const folder of FOLDERS) await client.mailboxCreate(folder).catch(() => undefined);
        await client.mailboxOpen('INBOX');
        this.setConnected(true);
        client.on('exists', () => void this.sweepLogged());
        this.backoffMs = 1_000;
        await this.sweep();
        await new Promise<void>((resolve) => client.once('close', () => resolve()));
      } catch (err) {
        this.ctx.log.warn({ mailbox: this.mailbox.address, err: (err as Error).message }, 'IMAP session failed');
      }
      this.setConnected(false);
      this.client = undefined;
      if (!this.running) break;
      await new Promise((r) => setTimeout(r, this.backoffMs));
      this.backoffMs = Math.min(this.backoffMs * 2, 60_000);
    }
  }

  /** A sweep nobody waits for (new mail, the timer): a failure is logged, and the next sweep reads what was left. */
  sweepLogged(): Promise<void> {
    return this.sweep().catch((err: Error) => this.ctx.log.warn({ mailbox: this.mailbox.address, err: err.message }, 'sweep failed; the next one will read what is left'));
  }

  /**
   * Reads all mail in INBOX; one sweep at a time, and one more if mail arrived meanwhile. Each pass takes at most
   * `receipts.maxMailsPerSweep` mails and lets go of the mailbox and the event loop before the next.
   */
  sweep(): Promise<void> {
    if (this.sweeping) {
      this.again = true;
      return this.sweeping;
    }
    this.sweeping = (async () => {
      let skip = 0; // mails left in INBOX by this sweep: the oldest, so the next pass starts after them
      do {
        this.again = false;
        const pass = await this.readInbox(skip);
        skip += pass.left;
        if (pass.more) this.again = true;
        if (this.again) await new Promise((r) => setImmediate(r));
      } while (this.again && this.running);
    })().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  /**
   * One pass over INBOX from its (skip+1)-th mail: lists up to maxMailsPerSweep mails with their sizes, then fetches
   * them in batches (BATCH_MAILS, BATCH_BYTES), parses and records each on its own, and moves each batch with one
   * command per folder. A mail is moved only once what it says is recorded; one that cannot be read goes to
   * Quarantine; one whose recording failed stays for the next sweep. `more`: mails wait beyond this pass.
   */
  private async readInbox(skip: number): Promise<{ left: number; more: boolean }> {
    const client = this.client;
    if (!client?.usable || !this.running) return { left: 0, more: false };
    const lock = await client.getMailboxLock('INBOX');
    try {
      await client.noop(); // the server reports mail that arrived since its last answer (EXISTS): the count is current
      this.lastPollAt = Date.now();
      metrics.imapLastPoll.set({ mailbox: this.mailbox.address }, this.lastPollAt / 1000);
      const exists = client.mailbox ? client.mailbox.exists : 0;
      if (skip >= exists) return { left: 0, more: false };
      const last = Math.min(exists, skip + this.ctx.config.receipts.maxMailsPerSweep);
      const listed: Listed[] = [];
      for await (const msg of client.fetch(`${skip + 1}:${last}`, { uid: true, size: true, internalDate: true })) {
        listed.push({ uid: msg.uid, size: msg.size ?? 0 });
        const arrived = msg.internalDate ? new Date(msg.internalDate).getTime() : NaN;
        if (Number.isFinite(arrived)) metrics.imapReaderLag.observe({ mailbox: this.mailbox.address }, Math.max(0, Date.now() - arrived) / 1000);
      }
      let left = 0;
      for (let i = 0; i < listed.length && this.running; ) {
        let bytes = 0;
        let j = i;
        while (j < listed.length && j - i < BATCH_MAILS && (j === i || bytes + listed[j]!.size <= BATCH_BYTES)) bytes += listed[j++]!.size;
        const batch = await this.readBatch(client, listed.slice(i, j));
        left += batch.left;
        // Nothing recorded and recordings failed: the status store is down; the next sweep tries again.
        if (batch.storeDown) return { left, more: false };
        i = j;
      }
      return { left, more: last < exists };
    } finally {
      lock.release();
    }
  }

  private async readBatch(client: ImapFlow, listed: Listed[]): Promise<{ left: number; storeDown: boolean }> {
    const mailbox = this.mailbox.address;
    const outcomes: Outcome[] = [];
    const sources: { uid: number; source: Buffer }[] = [];
    const small = listed.filter((m) => m.size <= this.limits.maxMailBytes);
    for (const m of listed) if (m.size > this.limits.maxMailBytes) outcomes.push(quarantine(m.uid, 'too-large', m.size));
    if (small.length) {
      for await (const msg of client.fetch(small.map((m) => m.uid).join(','), { source: true }, { uid: true })) {
        if (msg.source) sources.push({ uid: msg.uid, source: msg.source });
      }
    }
    outcomes.push(...(await Promise.all(sources.map((m) => this.readOne(m.uid, m.source)))));
    // A failed recording counts against its mail only while the status store answers (down, it is nobody's fault).
    const anyFailed = outcomes.some((o) => o.failed);
    const storeUp = !anyFailed || outcomes.some((o) => o.recorded) || (await this.storeAnswers());
    for (const o of outcomes) {
      if (!o.failed || !storeUp) continue;
      const n = (this.failures.get(o.uid) ?? 0) + 1;
      if (n >= RECORD_ATTEMPTS) Object.assign(o, quarantine(o.uid, 'unrecordable', o.failed.source));
      else this.failures.set(o.uid, n);
    }
    for (const folder of FOLDERS) {
      const uids = outcomes.filter((o) => o.folder === folder).map((o) => o.uid);
      if (uids.length) await client.messageMove(uids.join(','), folder, { uid: true });
      for (const uid of uids) this.failures.delete(uid);
    }
    // Its UID, size, Message-ID hash, reason code and, for an unexpected error, its class: never its content.
    for (const { uid, quarantined: q } of outcomes) {
      if (!q) continue;
      metrics.receiptsQuarantined.inc({ mailbox, reason: q.reason });
      this.ctx.log.warn({ mailbox, uid, ...q }, 'mail quarantined');
    }
    if (this.failures.size > 10_000) this.failures.clear(); // UIDs of mails others removed; the counts only delay quarantine
    // Copies of the replies just recorded leave outside the mailbox's lock; one that fails is sent at a later sweep.
    if (outcomes.some((o) => o.forward)) void this.forwardLogged();
    const failed = outcomes.filter((o) => !o.folder);
    const count = (f: Folder) => outcomes.filter((o) => o.folder === f).length;
    this.ctx.log.info({ mailbox, read: outcomes.length, unrecognised: count(UNRECOGNISED_FOLDER), replies: count(REPLIES_FOLDER), quarantined: count(QUARANTINE_FOLDER), left: failed.length }, 'receipts read');
    if (failed.length) {
      this.ctx.log.warn({ mailbox, left: failed.length, err: failed[0]!.failed?.err.message }, 'receipts not recorded; left in INBOX for the next sweep');
    }
    return { left: failed.length, storeDown: !storeUp };
  }

  /** Forwards pending copies of replies; a failure is logged, and the next sweep tries again. */
  forwardLogged(): Promise<void> {
    if (!this.mailbox.forwardRepliesTo) return Promise.resolve();
    return this.forwarder.forwardPending().catch((err: Error) => this.ctx.log.warn({ mailbox: this.mailbox.address, err: err.name }, 'forwarding replies failed; the next sweep tries again'));
  }

  private storeAnswers(): Promise<boolean> {
    return this.ctx.status.getDelivery('d-probe').then(() => true, () => false);
  }

  /** Parses and records one mail; never throws. */
  private async readOne(uid: number, source: Buffer): Promise<Outcome> {
    let receipt;
    try {
      receipt = await parseReceipt(source, this.limits);
    } catch (err) {
      const reason = err instanceof UnreadableMail ? err.reason : 'unreadable';
      return quarantine(uid, reason, source, err instanceof UnreadableMail ? undefined : (err as Error).name);
    }
    try {
      if (receipt.kind === 'other') {
        metrics.receipts.inc({ mailbox: this.mailbox.address, kind: 'other', outcome: receipt.reason });
        const reply = await recordReply(this.ctx, receipt, source, this.mailbox);
        return { uid, folder: REPLIES_FOLDER, recorded: true, forward: reply.forwardPending };
      }
      const outcome = await applyReceipt(this.ctx, receipt, this.mailbox.address);
      return { uid, folder: outcome === 'not-a-receipt' || outcome === 'uncorrelated' ? UNRECOGNISED_FOLDER : PROCESSED_FOLDER, recorded: true };
    } catch (err) {
      return { uid, failed: { err: err as Error, source } };
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.sweeping;
    await this.forwarder.stop();
    await this.client?.logout().catch(() => this.client?.close());
    this.setConnected(false);
  }
}

/** One IMAP reader per applicative mailbox, a periodic sweep, and the confirmation-timeout check. */
export function startReceipts(ctx: ServiceContext): Promise<ReceiptsService> {
  for (const m of ctx.config.mailboxes) initReplyMetrics(m.address);
  const readers = ctx.config.mailboxes.map((m) => new MailboxReader(ctx, m));
  const loops = readers.map((r) => r.run());
  let expiring: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    for (const r of readers) void r.sweepLogged().then(() => r.forwardLogged());
    // One timeout sweep at a time: a slow one must not overlap the next tick.
    expiring ??= ctx.status
      .expireUnconfirmed(ctx.config.receipts.confirmationTimeoutMs)
      .catch((err: Error) => ctx.log.warn({ err: err.message }, 'timeout sweep failed'))
      .finally(() => (expiring = undefined));
  }, ctx.config.receipts.sweepIntervalMs);
  // Replies are kept as long as results (receipts.retentionDays): an hourly prune, one at a time.
  let pruning: Promise<unknown> | undefined;
  const prune = () => {
    pruning ??= ctx.status.replies
      .prune(Date.now() - ctx.config.receipts.retentionDays * 86_400_000)
      .then((r) => {
        if (r.replies) ctx.log.info(r, 'replies past retention removed');
      })
      .catch((err: Error) => ctx.log.warn({ err: err.message }, 'replies prune failed; tried again in an hour'))
      .finally(() => (pruning = undefined));
  };
  const pruneTimer = setInterval(prune, 3_600_000);
  pruneTimer.unref();
  return Promise.resolve({
    name: 'receipts',
    health: () => ({ imap: readers.map((r) => r.health()) }),
    sweep: async () => {
      await Promise.all(readers.map((r) => r.sweep()));
    },
    forwardReplies: async () => {
      await Promise.all(readers.map((r) => r.forwardLogged()));
    },
    async stop() {
      clearInterval(timer);
      clearInterval(pruneTimer);
      await pruning;
      await Promise.all(readers.map((r) => r.stop()));
      await Promise.all(loops);
    },
  });
}
