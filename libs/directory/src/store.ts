import { randomBytes } from 'node:crypto';
import { redisKeys, RedisScript, type Redis } from '@mssgw/queue';
import { isRejected, type DirectoryMailbox, type RejectedRow, type RejectionReason } from './extraction.ts';
import { practitionerKeys, rowKeys, structureKeys } from './keys.ts';

/** What the current directory was loaded from, and how the load went. */
export interface DirectoryInfo {
  generation: string;
  importedAt: number;
  source: string;
  sourceSha256?: string;
  rows: number;
  mailboxes: number;
  rejected: number;
  /** Every rejected row counted, by reason. */
  rejectedByReason: Partial<Record<RejectionReason, number>>;
  /** Line numbers of the first rejected rows of each reason (at most REJECTED_LINES_KEPT each). */
  rejectedLines?: Partial<Record<RejectionReason, number[]>>;
  durationMs: number;
}

export interface ImportReport extends DirectoryInfo {
  /** The first rejected rows of each reason, with their detail (line number and reason, never the row itself). */
  rejections: RejectedRow[];
}

/** How far an import has gone, for a progress display. */
export interface ImportProgress {
  rows: number;
  rejected: number;
}

export interface ImportOptions {
  /** Below this share of the current directory's mailboxes the new one is not swapped in (default 0.5). */
  minRatio?: number;
  force?: boolean;
  /** Called every PROGRESS_EVERY rows while the extraction is read. */
  onProgress?: (progress: ImportProgress) => void;
}

/** Bounds of what an import keeps about rejected rows: a broken file must not fill memory or the info key. */
export const REJECTED_LINES_KEPT = 20;
const REJECTIONS_KEPT = 100;
const PROGRESS_EVERY = 1_000;

export class DirectoryImportError extends Error {
  override name = 'DirectoryImportError';
}

// One round trip and one consistent generation per lookup: the current pointer and the hashes are read together,
// so a lookup never mixes two imports and never sees one half-written.
const LOOKUP = new RedisScript(`
local gen = redis.call('GET', KEYS[1])
if not gen then return {} end
local rec = KEYS[2] .. gen .. ':rec'
local idx = KEYS[2] .. gen .. ':idx'
local out = {gen}
local seen = {}
for _, k in ipairs(ARGV) do
  local addrs
  if string.sub(k, 1, 2) == 'a:' then addrs = string.sub(k, 3) else addrs = redis.call('HGET', idx, k) end
  if addrs then
    for a in string.gmatch(addrs, '%S+') do
      if not seen[a] then
        seen[a] = true
        local r = redis.call('HGET', rec, a)
        if r then table.insert(out, r) end
      end
    end
  end
end
return out`);

const WRITE_BATCH = 2_000;

/** FNV-1a twice (two seeds) folded into 53 bits: a cheap fingerprint for "seen before". */
function hash53(s: string): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return (h2 >>> 0) * 0x200000 + ((h1 >>> 0) & 0x1fffff);
}

/** A copy that does not share memory with the line it was cut from. */
const flat = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

const appendTo = (map: Map<string, string[]>, key: string, value: string) => {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
};

/** HSETs grouped by key in batches, with a few batches in flight at most so that memory stays flat. */
class BatchWriter {
  private readonly redis: Redis;
  private batches = new Map<string, string[]>();
  private count = 0;
  private readonly pending: Promise<unknown>[] = [];

  constructor(redis: Redis) {
    this.redis = redis;
  }

  async hset(key: string, field: string, value: string): Promise<void> {
    appendTo(this.batches, key, field);
    this.batches.get(key)!.push(value);
    if (++this.count >= WRITE_BATCH) await this.send();
  }

  private async send(): Promise<void> {
    for (const [key, args] of this.batches) this.pending.push(this.redis.hset(key, ...args));
    this.batches = new Map();
    this.count = 0;
    if (this.pending.length >= 8) await Promise.all(this.pending.splice(0));
  }

  async flush(): Promise<void> {
    await this.send();
    await Promise.all(this.pending.splice(0));
  }
}

/**
 * The MSSanté directory in Redis, one generation per import: `g:<gen>:rec` (address → its rows) and `g:<gen>:idx`
 * (practitioner or structure key → addresses). An import writes a new generation, then moves the `current` pointer
 * in one command and drops the old one, so readers see the old directory or the new one, never a mixture. Keys
 * share the `{dir}` hash tag to live in one Redis Cluster slot.
 */
export class DirectoryStore {
  private readonly base: string;
  private readonly redis: Redis;

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.base = redisKeys(prefix).directory;
  }

  async info(): Promise<DirectoryInfo | undefined> {
    const raw = await this.redis.get(`${this.base}info`);
    return raw ? (JSON.parse(raw) as DirectoryInfo) : undefined;
  }

  /**
   * Loads a parsed extraction as the new directory. Refuses to replace the current one by an import with fewer than
   * `minRatio` of its mailboxes (a truncated download must not empty the directory) unless `force` is set.
   */
  async import(
    rows: AsyncIterable<DirectoryMailbox | RejectedRow>,
    source: { name: string; sha256?: () => string | undefined },
    options: ImportOptions = {},
  ): Promise<ImportReport> {
    const started = Date.now();
    const lock = `${this.base}import-lock`;
    const token = randomBytes(8).toString('hex');
    if ((await this.redis.set(lock, token, 'PX', 10 * 60_000, 'NX')) !== 'OK') {
      throw new DirectoryImportError('another directory import is running');
    }
    const generation = `${started.toString(36)}${token.slice(0, 6)}`;
    try {
      // Rows go to Redis as they are read. Only what must be merged stays in memory: the addresses and index keys
      // already seen (to spot the rare address on several rows and the practitioners with several mailboxes) and
      // the later values of those keys, merged into Redis at the end.
      const rec = `${this.base}g:${generation}:rec`;
      const idx = `${this.base}g:${generation}:idx`;
      // 53-bit hashes, not strings: a substring would keep its whole source line alive. A collision only sends a
      // value through the merge path, which reads what Redis holds, so it costs time, never correctness.
      const seenAddresses = new Set<number>();
      const seenKeys = new Set<number>();
      const moreRows = new Map<string, string[]>();
      const moreAddresses = new Map<string, string[]>();
      const rejections: RejectedRow[] = [];
      const rejectedByReason: ImportReport['rejectedByReason'] = {};
      const rejectedLines: NonNullable<ImportReport['rejectedLines']> = {};
      const writer = new BatchWriter(this.redis);
      let total = 0;
      let rejected = 0;
      let mailboxes = 0;
      for await (const row of rows) {
        total++;
        if (options.onProgress && total % PROGRESS_EVERY === 0) options.onProgress({ rows: total, rejected });
        if (isRejected(row)) {
          rejected++;
          const count = (rejectedByReason[row.reason] = (rejectedByReason[row.reason] ?? 0) + 1);
          if (count <= REJECTIONS_KEPT) rejections.push(row);
          if (count <= REJECTED_LINES_KEPT) (rejectedLines[row.reason] ??= []).push(row.line);
          continue;
        }
        const json = JSON.stringify(row);
        const address = row.address;
        const addressHash = hash53(address);
        if (!seenAddresses.has(addressHash)) {
          seenAddresses.add(addressHash);
          mailboxes++;
          await writer.hset(rec, address, json);
        } else {
          appendTo(moreRows, flat(address), json);
        }
        for (const key of rowKeys(row)) {
          const keyHash = hash53(key);
          if (!seenKeys.has(keyHash)) {
            seenKeys.add(keyHash);
            await writer.hset(idx, key, address);
          } else {
            appendTo(moreAddresses, flat(key), flat(address));
          }
        }
      }
      await writer.flush();
      await this.merge(rec, moreRows, '\n');
      await this.merge(idx, moreAddresses, ' ');
      const previous = await this.info();
      const minRatio = options.minRatio ?? 0.5;
      if (!options.force && mailboxes === 0) {
        const why = Object.entries(rejectedLines).map(([reason, lines]) => `${rejectedByReason[reason as RejectionReason]} ${reason} from line ${lines[0]}`);
        throw new DirectoryImportError(`no mailbox in ${source.name} (${total} rows, ${rejected} rejected${why.length ? `: ${why.join(', ')}` : ''})`);
      }
      if (!options.force && previous && mailboxes < previous.mailboxes * minRatio) {
        throw new DirectoryImportError(
          `${source.name} has ${mailboxes} mailboxes, fewer than ${Math.round(minRatio * 100)}% of the current directory's ${previous.mailboxes}: not swapped (force to override)`,
        );
      }
      const sha = source.sha256?.();
      const info: DirectoryInfo = {
        generation, importedAt: Date.now(), source: source.name, ...(sha ? { sourceSha256: sha } : {}),
        rows: total, mailboxes, rejected, rejectedByReason, rejectedLines, durationMs: Date.now() - started,
      };
      const old = await this.redis.get(`${this.base}current`);
      await this.redis.multi().set(`${this.base}current`, generation).set(`${this.base}info`, JSON.stringify(info)).exec();
      if (old) await this.redis.unlink(`${this.base}g:${old}:rec`, `${this.base}g:${old}:idx`);
      return { ...info, rejections };
    } catch (err) {
      await this.redis.unlink(`${this.base}g:${generation}:rec`, `${this.base}g:${generation}:idx`);
      throw err;
    } finally {
      // Released only by its holder: a lock that expired and was taken by another import stays theirs.
      if ((await this.redis.get(lock)) === token) await this.redis.del(lock);
    }
  }

  /** Adds the later values of keys met more than once to what the first one wrote, without repeating a value. */
  private async merge(key: string, more: Map<string, string[]>, separator: string): Promise<void> {
    const fields = [...more.keys()];
    const writer = new BatchWriter(this.redis);
    for (let i = 0; i < fields.length; i += WRITE_BATCH) {
      const chunk = fields.slice(i, i + WRITE_BATCH);
      const firsts = await this.redis.hmget(key, ...chunk);
      for (const [j, field] of chunk.entries()) {
        const values = [...new Set([firsts[j] ?? '', ...more.get(field)!].filter(Boolean))];
        await writer.hset(key, field, values.join(separator));
      }
    }
    await writer.flush();
  }

  /** Every mailbox filed under any of the keys (`p:`, `s:` index keys or `a:<address>`), each once. */
  async lookup(keys: string[]): Promise<DirectoryMailbox[]> {
    if (!keys.length) return [];
    const out = (await LOOKUP.run(this.redis, [`${this.base}current`, `${this.base}g:`], keys)) as string[];
    return out.slice(1).flatMap((lines) => lines.split('\n').map((l) => JSON.parse(l) as DirectoryMailbox));
  }

  findPractitioner(id: string, idType?: string): Promise<DirectoryMailbox[]> {
    return this.lookup(practitionerKeys(id, idType));
  }

  findStructure(id: string, idType?: string): Promise<DirectoryMailbox[]> {
    return this.lookup(structureKeys(id, idType));
  }

  findAddress(address: string): Promise<DirectoryMailbox[]> {
    return this.lookup([`a:${address.trim().toLowerCase()}`]);
  }
}
