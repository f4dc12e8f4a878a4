import type { Redis } from 'ioredis';
import { confirmationClock, confirmationTimeout, ENTER_FROM, type DeliveryEventSource, type DeliveryState, type Transition } from '@mssgw/lifecycle';
import { ExpiringStore, RedisScript } from '@mssgw/queue';

export type { DeliveryState } from '@mssgw/lifecycle';

export type RecipientKind = 'professional' | 'organisation' | 'application' | 'patient';

export interface Delivery {
  deliveryId: string;
  resultId: string;
  recipient: string;
  /** The recipient's identifier as the producer named it (RPPS, INS...), for the ZAM acknowledgements. */
  recipientId?: string;
  kind: RecipientKind;
  state: DeliveryState;
  mailId?: string;
  messageId?: string;
  mailbox?: string;
  /** Why a recipient was refused or failed (no-mailbox, not-whitelisted, 5.1.1 ...). */
  reason?: string;
  detail?: string;
  smtpResponse?: string;
  queueId?: string;
  dsnStatus?: string;
  /** When the final DSN was recorded (for the DSN → MDN latency). */
  dsnAt?: number;
  updatedAt: number;
  submittedAt?: number;
}

export interface DeliveryEvent {
  at: number;
  state: DeliveryState;
  /** false when the event came too late or out of order and did not change the state. */
  applied: boolean;
  source: DeliveryEventSource;
  detail?: string;
}

export interface ResultRecord {
  resultId: string;
  source: string;
  transport: string;
  controlId: string;
  sendingApplication: string;
  sendingFacility: string;
  /** The producer asked for MSSanté reception / read acknowledgements (ACK_RECEPTION, ACK_LECTURE_MSS). */
  ackReception: '1' | '0';
  ackRead: '1' | '0';
  action: string;
  documentCode: string;
  receivedAt: number;
  acknowledgedAt?: number;
  routedAt?: number;
  /** Set when the same document and version already came in another result: nothing was sent for this one. */
  duplicateOf?: string;
}

// Compare-and-set in one round trip: the state changes only from an allowed state; the event is always kept in the
// history, and an applied change is appended to the outbox stream in the same step (nothing told twice or never).
// ARGV[6] says what an applied change does to the set awaiting a final DSN (KEYS[4]): add (at ARGV[7]) or remove.
// KEYS[5], when given, is deleted in the same step (the dispatcher's "attempt in progress" marker).
const TRANSITION = new RedisScript(`
if KEYS[5] ~= '' then redis.call('DEL', KEYS[5]) end
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {-1, ''} end
local ok = string.find(',' .. ARGV[1] .. ',', ',' .. cur .. ',', 1, true)
local event = ARGV[2]
if ok then
  for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  event = string.gsub(event, '"applied":false', '"applied":true')
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '1000000', '*', 'deliveryId', ARGV[3], 'state', ARGV[4], 'previous', cur, 'source', ARGV[5])
  if ARGV[6] == 'add' then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[3]) elseif ARGV[6] == 'remove' then redis.call('ZREM', KEYS[4], ARGV[3]) end
end
redis.call('RPUSH', KEYS[2], event)
return {ok and 1 or 0, cur}
`);

// A recipient's first state, its fields, history, indexes and outbox entry, all or nothing.
const CREATE = new RedisScript(`
if redis.call('HSETNX', KEYS[1], 'state', ARGV[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[2])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('RPUSH', KEYS[2], ARGV[3]) redis.call('EXPIRE', KEYS[2], ttl)
redis.call('SADD', KEYS[3], ARGV[4]) redis.call('EXPIRE', KEYS[3], ttl)
if KEYS[5] ~= '' then redis.call('SET', KEYS[5], ARGV[4], 'EX', ttl) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', '1000000', '*', 'deliveryId', ARGV[4], 'state', ARGV[1], 'previous', '', 'source', ARGV[5])
return 1
`);

// Each result's first record, field by field (a field already there keeps its first value), in one command: the
// intake writes a flush of a few hundred at once. ARGV: the retention, then per result its field count, id, fields.
const RECORD_RESULTS = new RedisScript(`
local ttl = tonumber(ARGV[1])
local a = 2
for k = 1, #KEYS, 2 do
  local n = tonumber(ARGV[a]) local id = ARGV[a + 1] a = a + 2
  for i = 1, n do redis.call('HSETNX', KEYS[k], ARGV[a], ARGV[a + 1]) a = a + 2 end
  redis.call('EXPIRE', KEYS[k], ttl)
  redis.call('SADD', KEYS[k + 1], id) redis.call('EXPIRE', KEYS[k + 1], ttl)
end
return 0`);

// A document's version in its set, taken once per result (see documentVersion).
const DOCUMENT_VERSION = new RedisScript(`
local v = redis.call('HGET', KEYS[2], ARGV[1])
if v then return tonumber(v) end
if ARGV[2] == '1' then v = redis.call('INCR', KEYS[1]) else v = tonumber(redis.call('GET', KEYS[1]) or '1') end
redis.call('HSET', KEYS[2], ARGV[1], v)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return v`);

// A member added to a set and the set's lifetime renewed in one step (a MULTI would build an ioredis Pipeline).
const INDEX = new RedisScript(`redis.call('SADD', KEYS[1], ARGV[1]) redis.call('EXPIRE', KEYS[1], ARGV[2]) return 0`);

/** One entry of the outbox: a recipient's state changed. */
export interface StatusEvent {
  id: string;
  deliveryId: string;
  state: DeliveryState;
  previous: DeliveryState | '';
  source: DeliveryEvent['source'];
}

type Fields = Record<string, string | number | undefined>;
const flat = (f: Fields): string[] =>
  Object.entries(f).flatMap(([k, v]) => (v === undefined ? [] : [k, String(v)]));

export class StatusStore extends ExpiringStore {
  private readonly p: string;

  /** Results and recipients are kept `retentionSeconds` (90 days by default) after their last change. */
  constructor(redis: Redis, prefix: string, retentionSeconds = 90 * 24 * 3600) {
    super(redis, prefix, retentionSeconds);
    this.p = `${prefix}:status`;
  }

  private get retentionSeconds(): number {
    return this.ttlSeconds;
  }

  private k = {
    result: (id: string) => `${this.p}:result:${id}`,
    resultDeliveries: (id: string) => `${this.p}:result:${id}:deliveries`,
    controlId: (ctl: string) => `${this.p}:control:${ctl}`,
    documentId: (doc: string) => `${this.p}:document:${doc}`,
    delivery: (id: string) => `${this.p}:delivery:${id}`,
    history: (id: string) => `${this.p}:delivery:${id}:history`,
    /** The outbox: every applied change, for the feedback to producers (Kafka events, ZAM). */
    events: () => `${this.p}:events`,
    /** Deliveries awaiting their final DSN, scored by submission time (for the confirmation timeout). */
    awaiting: () => `${this.p}:awaiting`,
    byMessage: (messageId: string, recipient: string) => `${this.p}:message:${messageId.toLowerCase()}:${recipient.toLowerCase()}`,
  };

  /** First sight of results. Idempotent: a result received again keeps its first record. Sent in order (runInOrder). */
  async recordResults(records: ResultRecord[]): Promise<void> {
    if (!records.length) return;
    const keys = records.flatMap((r) => [this.k.result(r.resultId), this.k.controlId(r.controlId)]);
    const fields = records.flatMap((r) => {
      const f = flat({ ...r });
      return [String(f.length / 2), r.resultId, ...f];
    });
    await RECORD_RESULTS.runInOrder(this.redis, keys, [String(this.retentionSeconds), ...fields]);
  }

  async markRouted(resultId: string, acknowledgedAt: number | undefined, at = Date.now()): Promise<void> {
    await this.redis.hset(this.k.result(resultId), 'routedAt', at, ...(acknowledgedAt ? ['acknowledgedAt', acknowledgedAt] : []));
  }

  /**
   * Creates a recipient's record in its first state (queued or refused). A second call changes nothing. Sent in order
   * (runInOrder): the router queues the delivery right behind it.
   */
  async createDelivery(d: Omit<Delivery, 'updatedAt'> & { updatedAt?: number }, detail?: string): Promise<boolean> {
    const at = d.updatedAt ?? Date.now();
    const event: DeliveryEvent = { at, state: d.state, applied: true, source: 'router', ...(detail ?? d.reason ? { detail: detail ?? d.reason } : {}) };
    const created = await CREATE.runInOrder(
      this.redis,
      [this.k.delivery(d.deliveryId), this.k.history(d.deliveryId), this.k.resultDeliveries(d.resultId), this.k.events(), d.messageId ? this.k.byMessage(d.messageId, d.recipient) : ''],
      [d.state, String(this.retentionSeconds), JSON.stringify(event), d.deliveryId, 'router',
      ...flat({ ...d, updatedAt: at })],
    );
    return created === 1;
  }

  /**
   * Moves a recipient to `state` if the state machine allows it from where it is; the event joins its history
   * either way. Returns whether the state changed and the state it was in. `clears` names a key deleted in the same
   * step, so that what it marks ends exactly when the outcome is recorded.
   */
  async transition(
    deliveryId: string,
    state: DeliveryState,
    source: DeliveryEvent['source'],
    fields: Fields = {},
    at = Date.now(),
    clears = '',
  ): Promise<{ applied: boolean; previous: DeliveryState | undefined }> {
    const detail = fields['detail'] ?? fields['reason'];
    const event: DeliveryEvent = { at, state, applied: false, source, ...(detail !== undefined ? { detail: String(detail) } : {}) };
    const clock = confirmationClock(state);
    const awaiting = clock === 'start' ? 'add' : clock === 'stop' ? 'remove' : '';
    const res = (await TRANSITION.run(
      this.redis, [this.k.delivery(deliveryId), this.k.history(deliveryId), this.k.events(), this.k.awaiting(), clears],
      [ENTER_FROM[state].join(','), JSON.stringify(event), deliveryId, state, source, awaiting, String(at), ...flat({ ...fields, state, updatedAt: at })],
    )) as [number, string];
    const applied = res[0] === 1;
    return { applied, previous: res[1] ? (res[1] as DeliveryState) : undefined };
  }

  /** Records what a trigger of the lifecycle (`@mssgw/lifecycle`) decided; see `transition`. */
  apply(deliveryId: string, change: Transition, at = Date.now(), clears = ''): Promise<{ applied: boolean; previous: DeliveryState | undefined }> {
    return this.transition(deliveryId, change.state, change.source, change.fields, at, clears);
  }

  /**
   * Recipients submitted more than `timeoutMs` ago with no final DSN become "unconfirmed". The clock runs from
   * submission: a "delayed" DSN does not reset it. Returns the delivery ids moved.
   */
  async expireUnconfirmed(timeoutMs: number, now = Date.now()): Promise<string[]> {
    const due = await this.redis.zrangebyscore(this.k.awaiting(), 0, now - timeoutMs, 'LIMIT', 0, 1000);
    const moved: string[] = [];
    for (const id of due) {
      const { applied } = await this.apply(id, confirmationTimeout(timeoutMs), now);
      if (applied) moved.push(id);
      else await this.redis.zrem(this.k.awaiting(), id);
    }
    return moved;
  }

  async getDelivery(deliveryId: string): Promise<Delivery | undefined> {
    const h = await this.redis.hgetall(this.k.delivery(deliveryId));
    if (!h['state']) return undefined;
    return {
      ...(h as unknown as Delivery),
      updatedAt: Number(h['updatedAt']),
      ...(h['submittedAt'] ? { submittedAt: Number(h['submittedAt']) } : {}),
      ...(h['dsnAt'] ? { dsnAt: Number(h['dsnAt']) } : {}),
    };
  }

  async history(deliveryId: string): Promise<DeliveryEvent[]> {
    return (await this.redis.lrange(this.k.history(deliveryId), 0, -1)).map((e) => JSON.parse(e) as DeliveryEvent);
  }

  async getResult(resultId: string, options: { withDeliveries?: boolean } = {}): Promise<(ResultRecord & { deliveries: Delivery[] }) | undefined> {
    const h = await this.redis.hgetall(this.k.result(resultId));
    if (!h['resultId']) return undefined;
    const ids = options.withDeliveries === false ? [] : await this.redis.smembers(this.k.resultDeliveries(resultId));
    const deliveries = (await Promise.all(ids.map((id) => this.getDelivery(id)))).filter((d): d is Delivery => d !== undefined);
    deliveries.sort((a, b) => a.recipient.localeCompare(b.recipient));
    return {
      ...(h as unknown as ResultRecord),
      receivedAt: Number(h['receivedAt']),
      ...(h['acknowledgedAt'] ? { acknowledgedAt: Number(h['acknowledgedAt']) } : {}),
      ...(h['routedAt'] ? { routedAt: Number(h['routedAt']) } : {}),
      deliveries,
    };
  }

  async resultsByControlId(controlId: string): Promise<string[]> {
    return this.redis.smembers(this.k.controlId(controlId));
  }

  /**
   * Claims a document version for a result: the first result to carry it gets it. Returns the result that holds
   * it (this one, or the one that came first), so a second result with the same document and version is not sent.
   */
  async claimDocumentVersion(documentVersion: string, resultId: string): Promise<string> {
    // SET NX GET (Redis 7): the holder before this call, or nothing when this result just took it. A MULTI would cost
    // an ioredis Pipeline, which copies every script BullMQ defined on the connection (about 30 µs each time).
    const holder = await this.redis.set(`${this.p}:document-version:${documentVersion}`, resultId, 'EX', this.retentionSeconds, 'NX', 'GET');
    return holder ?? resultId;
  }

  /**
   * The version number of a wrapped document in its set for this result: the next one the first time, the same one
   * when the routing job is retried. A deletion names the current version without taking a new one.
   */
  async documentVersion(setId: string, resultId: string, takeNew: boolean): Promise<number> {
    const v = await DOCUMENT_VERSION.run(
      this.redis, [`${this.p}:set-version:${setId}`, `${this.p}:set-version-by-result:${setId}`],
      [resultId, takeNew ? '1' : '0', String(Math.max(this.retentionSeconds, 5 * 365 * 24 * 3600))],
    );
    return Number(v);
  }

  async markDuplicate(resultId: string, duplicateOf: string): Promise<void> {
    await this.redis.hset(this.k.result(resultId), 'duplicateOf', duplicateOf, 'routedAt', Date.now());
  }

  /** Indexes a result by the id of a document it carries (CDA ClinicalDocument/id, or TXA-12), as root^extension. */
  async indexDocument(documentId: string, resultId: string): Promise<void> {
    await INDEX.run(this.redis, [this.k.documentId(documentId)], [resultId, String(this.retentionSeconds)]);
  }

  async resultsByDocumentId(documentId: string): Promise<string[]> {
    return this.redis.smembers(this.k.documentId(documentId));
  }

  /** Reads outbox entries for a consumer group: first those it was given and did not acknowledge, then new ones. */
  async readEvents(group: string, consumer: string, count = 100, blockMs = 1000, claimIdleMs = 30_000): Promise<StatusEvent[]> {
    await this.redis.xgroup('CREATE', this.k.events(), group, '0', 'MKSTREAM').catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
    // Entries another consumer took and never acknowledged (it crashed, or its producer was unreachable) come back.
    const claimed = (await this.redis.xautoclaim(this.k.events(), group, consumer, claimIdleMs, '0', 'COUNT', count)) as [string, [string, string[]][]];
    let entries = claimed[1];
    if (entries.length === 0) {
      const res = (await this.redis.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.k.events(), '>')) as
        | [string, [string, string[]][]][]
        | null;
      entries = res?.[0]?.[1] ?? [];
    }
    return entries.map(([id, kv]) => {
      const f = Object.fromEntries(kv.reduce<[string, string][]>((acc, v, i) => (i % 2 ? acc : [...acc, [v, kv[i + 1]!]]), []));
      return { id, deliveryId: f['deliveryId']!, state: f['state'] as DeliveryState, previous: (f['previous'] ?? '') as DeliveryState | '', source: f['source'] as DeliveryEvent['source'] };
    });
  }

  async ackEvents(group: string, ids: string[]): Promise<void> {
    if (ids.length) await this.redis.xack(this.k.events(), group, ...ids);
  }

  /** For MDNs, which name the original Message-ID and the recipient rather than our envelope id. */
  async deliveryForMessage(messageId: string, recipient: string): Promise<string | undefined> {
    return (await this.redis.get(this.k.byMessage(messageId, recipient))) ?? undefined;
  }
}
