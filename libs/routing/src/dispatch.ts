import type { GatewayConfig } from '@mssgw/config';
import { dispatchRefusal, type Transition } from '@mssgw/lifecycle';
import { redisKeys, type Redis } from '@mssgw/queue';
import { domainAllowed, type LoadedWhitelist } from '@mssgw/whitelist';
import { domainOf } from './route.ts';

/** How long a process keeps the liste blanche it read from Redis before reading it again. */
export const WHITELIST_READ_MS = 10_000;

/**
 * The liste blanche as the router keeps it, read from Redis (the router's reference-data refresh saves each good copy
 * there), for the processes that check a recipient again before sending or replaying it. Read at most every
 * WHITELIST_READ_MS. Without mssante.whitelist.location, only the test domains are allowed, as in the router.
 */
export class WhitelistReader {
  private list: LoadedWhitelist | undefined;
  private readAt = 0;
  private reading: Promise<LoadedWhitelist | undefined> | undefined;
  private readonly testDomains: Set<string>;
  private readonly configured: boolean;
  private readonly redis: Redis;
  private readonly key: string;

  constructor(redis: Redis, config: Pick<GatewayConfig, 'redis' | 'mssante'>) {
    this.redis = redis;
    this.key = redisKeys(config.redis.prefix).whitelist;
    this.testDomains = new Set(config.mssante.testDomains.map((d) => d.toLowerCase()));
    this.configured = Boolean(config.mssante.whitelist.location);
  }

  /**
   * Whether mail may go to this address now. Throws when a liste blanche is configured and Redis holds no copy (the
   * router has not saved one yet, or Redis lost it): the send is retried rather than refused or sent blind.
   */
  async allows(address: string, forPatient: boolean, now = Date.now()): Promise<boolean> {
    if (!this.configured) return domainAllowed(undefined, this.testDomains, domainOf(address), forPatient);
    if (!this.list || now - this.readAt >= WHITELIST_READ_MS) {
      this.reading ??= this.redis.get(this.key).then(
        (saved) => {
          this.reading = undefined;
          this.readAt = Date.now();
          if (saved) this.list = JSON.parse(saved) as LoadedWhitelist;
          return this.list;
        },
        (err: unknown) => {
          this.reading = undefined;
          throw err;
        },
      );
      await this.reading;
    }
    if (!this.list) throw new Error('no liste blanche in Redis yet (the router saves it): the recipient cannot be checked now');
    return domainAllowed(this.list, this.testDomains, domainOf(address), forPatient);
  }
}

const readers = new WeakMap<Redis, WhitelistReader>();

/** One reader per Redis connection (a process's context), made on first use. */
export function whitelistReader(ctx: { redis: Redis; config: Pick<GatewayConfig, 'redis' | 'mssante'> }): WhitelistReader {
  let reader = readers.get(ctx.redis);
  if (!reader) readers.set(ctx.redis, (reader = new WhitelistReader(ctx.redis, ctx.config)));
  return reader;
}

/**
 * Checked again just before a recipient is sent (issues #22, #25): its domain against the liste blanche in use now,
 * its patient's oppositions as recorded now. The refusal to record, or undefined to send.
 */
export async function checkBeforeSending(
  ctx: { redis: Redis; config: Pick<GatewayConfig, 'redis' | 'mssante'> },
  recipient: { recipient: string; kind: string; oppositions: readonly string[] },
): Promise<Transition | undefined> {
  const domainAllowed = await whitelistReader(ctx).allows(recipient.recipient, recipient.kind === 'patient');
  return dispatchRefusal({ kind: recipient.kind, domainAllowed, oppositions: recipient.oppositions });
}
