import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { MailSpec } from './jobs.ts';

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

/** Mail specs, written once by the router and read by the dispatcher for each of their recipients. */
export class MailStore extends ExpiringStore {
  async put(spec: MailSpec): Promise<void> {
    await this.redis.set(`${this.prefix}:mail:${spec.mailId}`, JSON.stringify(spec), 'EX', this.ttlSeconds);
  }

  async get(mailId: string): Promise<MailSpec> {
    const raw = await this.redis.get(`${this.prefix}:mail:${mailId}`);
    if (!raw) throw new Error(`mail ${mailId} is not in the store`);
    return MailSpec.parse(JSON.parse(raw));
  }
}
