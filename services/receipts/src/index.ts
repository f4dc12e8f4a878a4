import { ImapFlow } from 'imapflow';
import { readSecret, type ApplicativeMailboxConfig } from '@mssgw/config';
import { parseReceipt } from '@mssgw/receipts';
import { mailboxTls, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';
import { applyReceipt } from './apply.ts';

export { applyReceipt, type ApplyOutcome } from './apply.ts';

/** Folders of the applicative mailbox where read mail is moved: a restart never reads it twice. */
export const PROCESSED_FOLDER = 'Processed';
export const UNRECOGNISED_FOLDER = 'Unrecognised';

export interface ReceiptsService extends RunningService {
  /** Reads every waiting mail of every mailbox now (the periodic sweep does the same). */
  sweep(): Promise<void>;
}

class MailboxReader {
  private client: ImapFlow | undefined;
  private running = true;
  private sweeping: Promise<void> | undefined;
  private again = false;
  private backoffMs = 1_000;
  private readonly ctx: ServiceContext;
  private readonly mailbox: ApplicativeMailboxConfig;

  constructor(ctx: ServiceContext, mailbox: ApplicativeMailboxConfig) {
    this.ctx = ctx;
    this.mailbox = mailbox;
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
        for (const folder of [PROCESSED_FOLDER, UNRECOGNISED_FOLDER]) await client.mailboxCreate(folder).catch(() => undefined);
        await client.mailboxOpen('INBOX');
        client.on('exists', () => void this.sweepLogged());
        this.backoffMs = 1_000;
        await this.sweep();
        await new Promise<void>((resolve) => client.once('close', () => resolve()));
      } catch (err) {
        this.ctx.log.warn({ mailbox: this.mailbox.address, err: (err as Error).message }, 'IMAP session failed');
      }
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

  /** Reads all mail in INBOX; one sweep at a time, and one more if mail arrived meanwhile. */
  sweep(): Promise<void> {
    if (this.sweeping) {
      this.again = true;
      return this.sweeping;
    }
    this.sweeping = (async () => {
      do {
        this.again = false;
        await this.readInbox();
      } while (this.again && this.running);
    })().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  /**
   * Reads INBOX in batches: fetch up to 500 mails in one command, parse and record them concurrently, then move them
   * with one command per destination folder. A mail is moved only once what it says is recorded.
   */
  private async readInbox(): Promise<void> {
    const client = this.client;
    if (!client?.usable) return;
    const lock = await client.getMailboxLock('INBOX');
    try {
      for (;;) {
        const uids = ((await client.search({ all: true }, { uid: true })) || []).slice(0, 500);
        if (uids.length === 0 || !this.running) return;
        const mails: { uid: number; source: Buffer }[] = [];
        for await (const msg of client.fetch(uids.join(','), { source: true, internalDate: true }, { uid: true })) {
          if (!msg.source) continue;
          mails.push({ uid: msg.uid, source: msg.source });
          const arrived = msg.internalDate ? new Date(msg.internalDate).getTime() : NaN;
          if (Number.isFinite(arrived)) metrics.imapReaderLag.observe({ mailbox: this.mailbox.address }, Math.max(0, Date.now() - arrived) / 1000);
        }
        const outcomes = await Promise.all(
          mails.map(async (m) => {
            const receipt = await parseReceipt(m.source);
            return { uid: m.uid, kind: receipt.kind, outcome: await applyReceipt(this.ctx, receipt, this.mailbox.address) };
          }),
        );
        const unrecognised = outcomes.filter((o) => o.outcome === 'not-a-receipt' || o.outcome === 'uncorrelated').map((o) => o.uid);
        const processed = outcomes.filter((o) => !unrecognised.includes(o.uid)).map((o) => o.uid);
        if (processed.length) await client.messageMove(processed.join(','), PROCESSED_FOLDER, { uid: true });
        if (unrecognised.length) await client.messageMove(unrecognised.join(','), UNRECOGNISED_FOLDER, { uid: true });
        this.ctx.log.info({ mailbox: this.mailbox.address, read: outcomes.length, unrecognised: unrecognised.length }, 'receipts read');
      }
    } finally {
      lock.release();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.sweeping;
    await this.client?.logout().catch(() => this.client?.close());
  }
}

/** One IMAP reader per applicative mailbox, a periodic sweep, and the confirmation-timeout check. */
export function startReceipts(ctx: ServiceContext): Promise<ReceiptsService> {
  const readers = ctx.config.mailboxes.map((m) => new MailboxReader(ctx, m));
  const loops = readers.map((r) => r.run());
  let expiring: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    for (const r of readers) void r.sweepLogged();
    // One timeout sweep at a time: a slow one must not overlap the next tick.
    expiring ??= ctx.status
      .expireUnconfirmed(ctx.config.receipts.confirmationTimeoutMs)
      .catch((err: Error) => ctx.log.warn({ err: err.message }, 'timeout sweep failed'))
      .finally(() => (expiring = undefined));
  }, ctx.config.receipts.sweepIntervalMs);
  return Promise.resolve({
    name: 'receipts',
    sweep: async () => {
      await Promise.all(readers.map((r) => r.sweep()));
    },
    async stop() {
      clearInterval(timer);
      await Promise.all(readers.map((r) => r.stop()));
      await Promise.all(loops);
    },
  });
}
