import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

type Arg = string | number | Buffer;

/**
 * A Lua script run by its SHA-1 (EVALSHA), its text sent only when Redis does not know it yet (after a restart or a
 * SCRIPT FLUSH). Hot paths run one per result or per mail: sending and hashing the text every time is wasted work.
 */
export class RedisScript {
  readonly sha: string;
  private readonly lua: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: Arg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }

  /**
   * EVAL with the text, for a write whose place among the commands sent with it matters (see connectOrderedRedis):
   * it is never answered NOSCRIPT, so no fallback is sent after the commands that were to follow it.
   */
  runInOrder(redis: Redis, keys: string[], args: Arg[]): Promise<unknown> {
    return redis.eval(this.lua, keys.length, ...keys, ...args);
  }
}

const EXISTING = new RedisScript(`local out = {} for i = 1, #KEYS do out[i] = redis.call('EXISTS', KEYS[i]) end return out`);

/** Whether each key exists (1 or 0, in order), in one command sent in order with the commands around it. */
export async function existing(redis: Redis, keys: string[]): Promise<number[]> {
  return keys.length ? ((await EXISTING.runInOrder(redis, keys, [])) as number[]) : [];
}
