import { createHash } from 'node:crypto';
import { replyReceived } from '@mssgw/lifecycle';
import { textParams, type Queryable } from '@mssgw/store';

/** How a reply was tied to what it answers (the `matched` label of mssgw_replies_total). */
export const REPLY_MATCHES = ['in-reply-to', 'references', 'sender', 'none'] as const;
export type ReplyMatch = (typeof REPLY_MATCHES)[number];

/** A mail of a sending mailbox that is neither a DSN nor an MDN, as recorded. Sender and subject are personal data. */
export interface Reply {
  id: string;
  mailbox: string;
  /** The recipient who answered, when the sender is one of the result's recipients. */
  deliveryId?: string;
  /** The result answered; absent when nothing matched. */
  resultId?: string;
  receivedAt: number;
  /** Its Date header. */
  sentAt?: number;
  from?: string;
  subject?: string;
  /** The whole mail, a body (message/rfc822) of the message store: `replyBody(id)`. */
  bodySha256: string;
  matchedBy: ReplyMatch;
  /** An auto-reply (Auto-Submitted): listed, never forwarded. */
  auto: boolean;
  /** Where a copy goes (mailboxes[].forwardRepliesTo when it was read), and when the operator took it. */
  forwardTo?: string;
  forwardedAt?: number;
}

/** What the receipts reader knows of a reply before it is matched. */
export interface IncomingReply {
  mailbox: string;
  /** The mail as read from the mailbox. */
  source: Buffer;
  from?: string;
  subject?: string;
  sentAt?: number;
  inReplyTo?: string;
  references: string[];
  auto: boolean;
  forwardTo?: string;
  receivedAt?: number;
}

/** What recording a reply did: `created` false when the same mail was recorded before (read again after a crash). */
export interface RecordedReply {
  id: string;
  created: boolean;
  matchedBy: ReplyMatch;
  deliveryId?: string;
  resultId?: string;
  /** Still to forward (a copy is wanted and the operator has not taken it yet). */
  forwardPending: boolean;
}

export interface ReplyFilter {
  mailbox?: string;
  /** Only those that matched nothing (true), or only those that matched (false). */
  unmatched?: boolean;
  resultId?: string;
  deliveryId?: string;
  /** Newest first; at most 500 (default 50). */
  limit?: number;
  /** Keyset paging: replies older than this id (the last id of the previous page). */
  before?: string;
}

interface ReplyRow {
  id: string; mailbox: string; delivery_id: string | null; result_id: string | null; received_at: Date; sent_at: Date | null;
  from_address: string | null; subject: string | null; body_sha256: string; matched_by: string; auto: boolean;
  forward_to: string | null; forwarded_at: Date | null;
}

const COLUMNS = `id::text, mailbox, delivery_id, result_id, received_at, sent_at, from_address, subject, encode(body_sha256, 'hex') as body_sha256,
  matched_by, auto, forward_to, forwarded_at`;

function replyOf(r: ReplyRow): Reply {
  return {
    id: r.id, mailbox: r.mailbox, receivedAt: r.received_at.getTime(), bodySha256: r.body_sha256, matchedBy: r.matched_by as ReplyMatch, auto: r.auto,
    ...(r.delivery_id ? { deliveryId: r.delivery_id } : {}),
    ...(r.result_id ? { resultId: r.result_id } : {}),
    ...(r.sent_at ? { sentAt: r.sent_at.getTime() } : {}),
    ...(r.from_address !== null ? { from: r.from_address } : {}),
    ...(r.subject !== null ? { subject: r.subject } : {}),
    ...(r.forward_to ? { forwardTo: r.forward_to } : {}),
    ...(r.forwarded_at ? { forwardedAt: r.forwarded_at.getTime() } : {}),
  };
}

// The thread: deliveries whose mail has one of these Message-IDs (deliveries_message index), the sender's first.
const BY_THREAD = `
select delivery_id, result_id, lower(message_id) as message_id, lower(recipient) = $2 as sender
from deliveries where lower(message_id) = any($1::text[])
order by sender desc limit 1000`;

// The sender's latest delivery from this mailbox (deliveries_recipient index, newest first).
const BY_SENDER = `
select delivery_id, result_id from deliveries where lower(recipient) = $1 and mailbox = $2
order by received_at desc, result_row desc limit 1`;

// One statement: the mail as a body (kept once; a pruned one filled again), the reply (once per mailbox and mail),
// and its entry in the recipient's history, which names it by id only.
const RECORD = `
with b as (
  insert into bodies (sha256, media_type, size, content) values ($1, 'message/rfc822', length($2::bytea), $2::bytea)
  on conflict (sha256) do update set content = coalesce(bodies.content, excluded.content), pruned_at = null where bodies.content is null),
r as (
  insert into replies (mailbox, delivery_id, result_id, received_at, sent_at, from_address, subject, body_sha256, matched_by, auto, forward_to)
  values ($3, $4, $5, $6, $7, $8, $9, $1, $10, $11, $12)
  on conflict (mailbox, body_sha256) do nothing
  returning id, delivery_id, received_at, forward_to, forwarded_at),
ev as (
  insert into delivery_events (delivery_id, at, state, applied, source, detail)
  select r.delivery_id, r.received_at, d.state, false, 'reply', $13 || r.id from r join deliveries d on d.delivery_id = r.delivery_id)
select id::text, true as created, (forward_to is not null and forwarded_at is null) as pending from r
union all
select id::text, false, (forward_to is not null and forwarded_at is null) from replies
where mailbox = $3 and body_sha256 = $1 and not exists (select 1 from r)`;

/** The history entry's detail before the reply's id, as the lifecycle writes it ("reply <id>"). */
const REPLY_DETAIL = replyReceived('queued', '').detail;

const normalId = (id: string) => id.trim().toLowerCase();

/**
 * The replies that reach sending mailboxes (issue #25): matched to the result and recipient they answer, kept with
 * the mail as a body, noted in the recipient's history, listed for whoever answers them.
 */
export class ReplyStore {
  private readonly pool: Queryable;

  constructor(pool: Queryable) {
    this.pool = pool;
  }

  private q<R extends object>(sql: string, params: unknown[]) {
    return this.pool.query<R>(sql, textParams(params));
  }

  /**
   * What a reply answers: the newest of its In-Reply-To and References that is one of our Message-IDs names the
   * result, and the sender among that mail's recipients the delivery; else the sender's latest delivery from this
   * mailbox; else nothing.
   */
  async match(r: Pick<IncomingReply, 'mailbox' | 'from' | 'inReplyTo' | 'references'>): Promise<{ matchedBy: ReplyMatch; deliveryId?: string; resultId?: string }> {
    const from = r.from?.toLowerCase() ?? '';
    const ids = [...new Set([r.inReplyTo, ...[...r.references].reverse()].filter((x): x is string => Boolean(x)).map(normalId))].slice(0, 51);
    if (ids.length) {
      const rows = (await this.q<{ delivery_id: string; result_id: string; message_id: string; sender: boolean }>(BY_THREAD, [ids, from])).rows;
      for (const id of ids) {
        const mine = rows.filter((x) => x.message_id === id);
        if (!mine.length) continue;
        const sender = mine.find((x) => x.sender);
        const matchedBy: ReplyMatch = r.inReplyTo && normalId(r.inReplyTo) === id ? 'in-reply-to' : 'references';
        return { matchedBy, resultId: mine[0]!.result_id, ...(sender ? { deliveryId: sender.delivery_id } : {}) };
      }
    }
    if (from) {
      const row = (await this.q<{ delivery_id: string; result_id: string }>(BY_SENDER, [from, r.mailbox])).rows[0];
      if (row) return { matchedBy: 'sender', deliveryId: row.delivery_id, resultId: row.result_id };
    }
    return { matchedBy: 'none' };
  }

  /** Matches and records a reply, once per mailbox and mail. */
  async record(reply: IncomingReply): Promise<RecordedReply> {
    const m = await this.match(reply);
    const sha = createHash('sha256').update(reply.source).digest();
    const params = [
      sha, reply.source, reply.mailbox, m.deliveryId ?? null, m.resultId ?? null, new Date(reply.receivedAt ?? Date.now()),
      reply.sentAt === undefined ? null : new Date(reply.sentAt), reply.from ?? null, reply.subject ?? null, m.matchedBy, reply.auto,
      reply.forwardTo ?? null, REPLY_DETAIL,
    ];
    // The same mail twice in one batch: the second statement waits for the first, whose row its snapshot does not
    // see; the next one does.
    const row = (await this.q<{ id: string; created: boolean; pending: boolean }>(RECORD, params)).rows[0]
      ?? (await this.q<{ id: string; created: boolean; pending: boolean }>(RECORD, params)).rows[0]!;
    return { id: row.id, created: row.created, matchedBy: m.matchedBy, forwardPending: row.pending, ...(m.deliveryId ? { deliveryId: m.deliveryId } : {}), ...(m.resultId ? { resultId: m.resultId } : {}) };
  }

  async get(id: string): Promise<Reply | undefined> {
    if (!/^\d{1,18}$/.test(id)) return undefined;
    const row = (await this.q<ReplyRow>(`select ${COLUMNS} from replies where id = $1`, [id])).rows[0];
    return row ? replyOf(row) : undefined;
  }

  /** The mail itself, as received (undefined once retention emptied its body). */
  async body(id: string): Promise<Buffer | undefined> {
    if (!/^\d{1,18}$/.test(id)) return undefined;
    const res = await this.q<{ content: Buffer | null }>('select b.content from replies r join bodies b on b.sha256 = r.body_sha256 where r.id = $1', [id]);
    return res.rows[0]?.content ?? undefined;
  }

  /** Replies newest first, filtered; `unmatched: true` lists those that answer nothing we know. */
  async list(filter: ReplyFilter = {}): Promise<Reply[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.mailbox !== undefined) add('mailbox = ?', filter.mailbox);
    if (filter.resultId !== undefined) add('result_id = ?', filter.resultId);
    if (filter.deliveryId !== undefined) add('delivery_id = ?', filter.deliveryId);
    if (filter.unmatched === true) where.push('result_id is null');
    if (filter.unmatched === false) where.push('result_id is not null');
    if (filter.before !== undefined) {
      if (!/^\d{1,18}$/.test(filter.before)) throw new RangeError('before: expected a reply id');
      add('id < ?::bigint', filter.before);
    }
    const limit = Math.min(Math.max(Math.trunc(filter.limit ?? 50), 1), 500);
    const sql = `select ${COLUMNS} from replies ${where.length ? `where ${where.join(' and ')}` : ''} order by id desc limit ${limit}`;
    return (await this.q<ReplyRow>(sql, params)).rows.map(replyOf);
  }

  /** Replies of a mailbox whose copy the operator has not taken yet, oldest first, but those in `skip`. */
  async pendingForwards(mailbox: string, limit = 20, skip: readonly string[] = []): Promise<Reply[]> {
    return (await this.q<ReplyRow>(
      `select ${COLUMNS} from replies where mailbox = $1 and forward_to is not null and forwarded_at is null and id <> all($3::bigint[])
       order by id limit $2`, [mailbox, limit, skip],
    )).rows.map(replyOf);
  }

  /**
   * Retention: removes the replies received before `before` and empties their bodies (the row stays, as for other
   * bodies) unless a newer reply or a result holds the same bytes. Their history entries stay, naming an id that is gone.
   */
  async prune(before: number): Promise<{ replies: number; bodies: number }> {
    const res = await this.q<{ replies: number; bodies: number }>(
      `with gone as (delete from replies where received_at < $1 returning body_sha256),
       b as (
         update bodies set content = null, pruned_at = now()
         where sha256 in (select body_sha256 from gone) and content is not null
           and not exists (select 1 from replies r where r.body_sha256 = bodies.sha256 and r.received_at >= $1)
           and not exists (select 1 from result_bodies rb where rb.sha256 = bodies.sha256)
         returning 1)
       select (select count(*) from gone)::int as replies, (select count(*) from b)::int as bodies`,
      [new Date(before)],
    );
    return res.rows[0]!;
  }

  async markForwarded(id: string, at = Date.now()): Promise<void> {
    await this.q('update replies set forwarded_at = $2 where id = $1 and forwarded_at is null', [id, new Date(at)]);
  }
}
