import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A family of Redis keys under one prefix, each living `ttlSeconds` after its last write. */
export abstract class ExpiringStore {
  protected readonly redis: Redis;
  protected readonly prefix: string;
  protected readonly ttlSeconds: number;

  constructor(redis: Redis, prefix: string, ttlSeconds = 30 * 24 * 3600) {
    this.redis = redis;
    this.prefix = prefix;
    this.ttlSeconds = ttlSeconds;
  }
}

/**
 * Content-addressed store for documents (CDA, PDF, XDM archives): each distinct document is written once, whatever
 * the number of results, mails and retries that reference it; jobs carry only the SHA-256.
 */
export class DocumentStore extends ExpiringStore {
  static hash(content: Buffer): string {
    return createHash('sha256').update(content).digest('hex');
  }

  private key(sha256: string): string {
    return `${this.prefix}:doc:${sha256}`;
  }

  /** Stores the content if absent and extends its life; returns its reference. */
  async put(content: Buffer, sha256 = DocumentStore.hash(content)): Promise<string> {
    await this.redis.set(this.key(sha256), content, 'EX', this.ttlSeconds);
    return sha256;
  }

  async get(sha256: string): Promise<Buffer> {
    const content = await this.redis.getBuffer(this.key(sha256));
    if (!content) throw new Error(`document ${sha256} is not in the store (expired or never written)`);
    return content;
  }
}

/** Attachments parts a process keeps after reading them (about 110 KB each for a 40 KB PDF). */
const RECENT_ATTACHMENTS = 32;

/**
 * Mails, each rendered once by the router as an RFC 5322 message that the dispatcher sends as it is to each of its
 * recipients, whatever the retries. Rendering once per mail rather than once per send keeps MIME encoding out of the
 * sending loop, and the message goes to the socket in one write, not one per encoded line. A message is kept in two
 * parts: its head (headers and text) per mail, and its attachments part once for all the mails that share it (the
 * practitioners' and the patient's mails of a result carry the same attachments).
 */
export class MailStore extends ExpiringStore {
  private readonly recentAttachments = new Map<string, Promise<Buffer | null>>();

  private key(mailId: string): string {
    return `${this.prefix}:mail:${mailId}`;
  }

  private attachmentsKey(id: string): string {
    return `${this.prefix}:mail-attachments:${id}`;
  }

  /** A mail's head; without an attachments part, the whole message. */
  async put(mailId: string, head: Buffer): Promise<void> {
    await this.redis.set(this.key(mailId), head, 'EX', this.ttlSeconds);
  }

  async putAttachments(id: string, attachments: Buffer): Promise<void> {
    await this.redis.set(this.attachmentsKey(id), attachments, 'EX', this.ttlSeconds);
  }

  /** The rendered message of a mail: its head, then its attachments part when it has one. */
  async message(mailId: string, attachmentsId?: string): Promise<Buffer> {
    if (attachmentsId === undefined) {
      const message = await this.redis.getBuffer(this.key(mailId));
      if (!message) throw new Error(`mail ${mailId} is not in the store (expired or never written)`);
      return message;
    }
    const [head, attachments] = await Promise.all([this.redis.getBuffer(this.key(mailId)), this.attachmentsPart(attachmentsId)]);
    if (!head || !attachments) throw new Error(`mail ${mailId} is not in the store (expired or never written)`);
    return Buffer.concat([head, attachments]);
  }

  /**
   * The mails of a result are queued together and sent moments apart: the attachments part they share is read once.
   * A part never changes under its id, so the few most recent (a few MB at most) are kept, in flight included.
   */
  private attachmentsPart(id: string): Promise<Buffer | null> {
    const cached = this.recentAttachments.get(id);
    if (cached) {
      this.recentAttachments.delete(id);
      this.recentAttachments.set(id, cached);
      return cached;
    }
    const read = this.redis.getBuffer(this.attachmentsKey(id));
    this.recentAttachments.set(id, read);
    if (this.recentAttachments.size > RECENT_ATTACHMENTS) this.recentAttachments.delete(this.recentAttachments.keys().next().value!);
    // A part not (or no longer) there is not remembered: it is read again next time.
    const forget = () => this.recentAttachments.delete(id);
    read.then((b) => (b ? undefined : forget()), forget);
    return read;
  }
}
