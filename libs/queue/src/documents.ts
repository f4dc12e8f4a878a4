import type { Redis } from 'ioredis';
import { RedisScript } from './script.ts';

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

const PUT_ALL = new RedisScript(`local ttl = ARGV[1] for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl) end return 0`);

/**
 * Content-addressed store for documents (CDA, PDF, XDM archives): each distinct document is written once, whatever
 * the number of results, mails and retries that reference it; jobs carry only the SHA-256.
 */
export class DocumentStore extends ExpiringStore {
  private key(sha256: string): string {
    return `${this.prefix}:doc:${sha256}`;
  }

  /**
   * Stores each document and extends its life, in one command (the intake writes a flush's documents at once), sent
   * in order with the commands around it (see connectOrderedRedis).
   */
  async putAll(documents: { content: Buffer; sha256: string }[]): Promise<void> {
    if (!documents.length) return;
    await PUT_ALL.runInOrder(this.redis, documents.map((d) => this.key(d.sha256)), [String(this.ttlSeconds), ...documents.map((d) => d.content)]);
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
