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

/**
 * Mails, each rendered once by the router as an RFC 5322 message that the dispatcher sends as it is to each of its
 * recipients, whatever the retries. Rendering once per mail rather than once per send keeps MIME encoding out of the
 * sending loop, and the message goes to the socket in one write, not one per encoded line.
 */
export class MailStore extends ExpiringStore {
  private key(mailId: string): string {
    return `${this.prefix}:mail:${mailId}`;
  }

  async put(mailId: string, message: Buffer): Promise<void> {
    await this.redis.set(this.key(mailId), message, 'EX', this.ttlSeconds);
  }

  /** The rendered message of a mail. */
  async message(mailId: string): Promise<Buffer> {
    const message = await this.redis.getBuffer(this.key(mailId));
    if (!message) throw new Error(`mail ${mailId} is not in the store (expired or never written)`);
    return message;
  }
}
