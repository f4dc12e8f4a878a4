import { createHash } from 'node:crypto';
import { OPPOSITION_MATCH } from './opposition.ts';
import type { Pool, Queryable } from './postgres.ts';

/** A body held in the message store, by the SHA-256 of its bytes. */
export interface Body {
  sha256: string;
  mediaType: string;
  content: Buffer;
}

/** A mail as rendered once by the router: its head (headers and text), and its attachments part when it has one. */
export interface StoredMail {
  mailId: string;
  head: Buffer;
  attachments?: Body;
}

/** What the router reads of a result it routes. */
export interface ResultToRoute {
  /** The result as the intake read it (JSON, validated by the router), or undefined once its bodies are pruned. */
  normalized: unknown;
  /** Routed already, or found to be a duplicate: nothing is left to do. */
  settled: boolean;
  documents: Map<string, Buffer>;
  /** The oppositions the result's patient has now (by INS, or by IPP with the sending facility), read with it. */
  oppositions: { direction: 'patient' | 'professionals'; opposedAt: number }[];
}

/** What the dispatcher needs to send one delivery, read in one statement. */
export interface Outbound {
  state: string;
  resultId: string;
  recipient: string;
  mailbox: string;
  messageId: string | undefined;
  /** The DSN ENVID: random, stored with the delivery (see migration 0004). */
  envelopeId: string;
  acknowledgedAt: number | undefined;
  head: Buffer | undefined;
  attachmentsSha256: string | undefined;
  /** The recipient's kind (patient, professional, organisation, application): the direction an opposition must have. */
  kind: string;
  /** The directions of the oppositions the result's patient has now (migration 0008), checked again before sending. */
  oppositions: string[];
}

export const sha256Of = (content: Buffer): string => createHash('sha256').update(content).digest('hex');
const hex = (s: string) => Buffer.from(s, 'hex');

/**
 * Two CTEs that write `count` bodies whose parameters start at $first, three each (sha256, media type, content): the
 * new ones inserted, the pruned ones (content emptied by retention) filled again. A body already held is left alone
 * and not locked: a lock on it (as an upsert takes) met the foreign-key checks of batches committing side by side and
 * deadlocked them. Each content is a parameter of its own, sent as binary: in an array it would be spelt out in hex,
 * twice its size.
 */
export const writeBodies = (count: number, first: number): string => {
  const rows = Array.from({ length: count }, (_, i) => i);
  const sha = (i: number) => `$${first + 3 * i}::bytea`;
  const content = (i: number) => `$${first + 2 + 3 * i}::bytea`;
  return `b as (
  insert into bodies (sha256, media_type, size, content)
  values ${rows.map((i) => `(${sha(i)}, $${first + 1 + 3 * i}, length(${content(i)}), ${content(i)})`).join(', ')}
  on conflict (sha256) do nothing),
refill as (
  update bodies set content = v.c, pruned_at = null from (values ${rows.map((i) => `(${sha(i)}, ${content(i)})`).join(', ')}) as v (s, c)
  where bodies.sha256 = v.s and bodies.content is null)`;
};

/**
 * The parameters of writeBodies, in the order of their SHA-256: two statements inserting the same new bodies (the same
 * PDF in two batches) meet them in the same order, so one waits for the other instead of deadlocking.
 */
export const bodyParams = (bodies: Iterable<Body>): unknown[] =>
  [...bodies].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0)).flatMap((b) => [hex(b.sha256), b.mediaType, b.content]);

/**
 * The CTEs that record a result's rendered mails, and their parameters numbered from $first: the attachments parts as
 * bodies (once, whoever shares them), held by the result, and each mail's head. A mail already recorded is kept as it
 * was (its recipients may have it already).
 */
export function mailsWrite(resultId: string, mails: StoredMail[], first: number): { ctes: string[]; params: unknown[] } {
  const parts = new Map<string, Body>();
  for (const m of mails) if (m.attachments) parts.set(m.attachments.sha256, m.attachments);
  const [result, ids, heads, shas] = [first, first + 1, first + 2, first + 3].map((n) => `$${n}`);
  const ctes = [
    ...(parts.size ? [
      writeBodies(parts.size, first + 4),
      `rb as (insert into result_bodies (result_id, sha256) select ${result}::text, s from unnest(${shas}::bytea[]) as s where s is not null on conflict do nothing)`,
    ] : []),
    `mails_in as (insert into mails (mail_id, result_id, head, attachments_sha256)
  select mail_id, ${result}::text, head, attachments_sha256 from unnest(${ids}::text[], ${heads}::bytea[], ${shas}::bytea[]) as x (mail_id, head, attachments_sha256)
  on conflict (mail_id) do nothing)`,
  ];
  return {
    ctes,
    params: [
      resultId, mails.map((m) => m.mailId), mails.map((m) => m.head), mails.map((m) => (m.attachments ? hex(m.attachments.sha256) : null)),
      ...bodyParams(parts.values()),
    ],
  };
}

/** The oppositions `o` of the patient of the result `r` (its INS, or its IPP with the sending facility). */
const RESULT_PATIENT_OPPOSITIONS = OPPOSITION_MATCH('r.patient_ins', "(r.normalized -> 'patient' ->> 'ipp')", 'r.sending_facility');

/** Attachments parts a process keeps after reading them (about 110 KB each for a 40 KB PDF). */
const RECENT_ATTACHMENTS = 32;

/**
 * The bodies the router and the dispatcher read and write: documents, rendered mails and their shared attachments
 * parts, all in PostgreSQL. Redis only carries the jobs that name them.
 */
export class MessageBodies {
  private readonly pool: Pool;
  private readonly recentAttachments = new Map<string, Promise<Buffer | undefined>>();

  constructor(pool: Pool) {
    this.pool = pool;
  }

  /** A result to route: its normalized form, its documents and its patient's oppositions. Undefined when the result is not recorded. */
  async forRouting(resultId: string): Promise<ResultToRoute | undefined> {
    // One statement: the result, then one row per document it holds (its HL7 text left out), the result's columns
    // repeated on each. Bodies come in text form (node-postgres 8.23 decodes binary-format fields as UTF-8 text,
    // which corrupts a bytea).
    const res = await this.pool.query<{ normalized: string | null; settled: boolean; oppositions: string; sha256: string | null; content: Buffer | null }>({
      name: 'bodies_for_routing',
      text: `select r.normalized::text as normalized, (r.routed_at is not null or r.duplicate_of is not null) as settled,
          (select coalesce(json_agg(json_build_object('direction', o.direction, 'opposedAt', (extract(epoch from o.opposed_at) * 1000)::bigint) order by o.id), '[]')
            from oppositions o where ${RESULT_PATIENT_OPPOSITIONS})::text as oppositions,
          encode(b.sha256, 'hex') as sha256, b.content
        from results r
        left join result_bodies rb on rb.result_id = r.result_id and rb.sha256 <> r.hl7_sha256
        left join bodies b on b.sha256 = rb.sha256
        where r.result_id = $1`,
      values: [resultId],
    });
    const first = res.rows[0];
    if (!first) return undefined;
    const documents = new Map<string, Buffer>();
    for (const row of res.rows) if (row.sha256 && row.content) documents.set(row.sha256, row.content);
    return {
      normalized: first.normalized === null ? undefined : (JSON.parse(first.normalized) as unknown), settled: first.settled, documents,
      oppositions: JSON.parse(first.oppositions) as ResultToRoute['oppositions'],
    };
  }

  /**
   * Records a result's rendered mails, in one statement (see mailsWrite). The router records them with the rest of
   * what routing decides (StatusStore.recordRouting); a closing mail to a patient comes here.
   */
  async putMails(resultId: string, mails: StoredMail[], db: Queryable = this.pool): Promise<void> {
    if (!mails.length) return;
    const w = mailsWrite(resultId, mails, 1);
    await db.query(`with ${w.ctes.join(',\n')} select 1`, w.params);
  }

  /** Everything the dispatcher needs to send a delivery, or undefined when there is no such delivery. */
  async outbound(deliveryId: string): Promise<Outbound | undefined> {
    const res = await this.pool.query<{
      state: string; result_id: string; recipient: string; mailbox: string | null; message_id: string | null; envelope_id: string;
      acknowledged_at: Date | null; head: Buffer | null; attachments_sha256: string | null; kind: string; oppositions: string[] | null;
    }>({
      name: 'bodies_outbound',
      text: `select d.state, d.result_id, d.recipient, d.mailbox, d.message_id, d.envelope_id, r.acknowledged_at, m.head,
          encode(m.attachments_sha256, 'hex') as attachments_sha256, d.kind,
          array(select distinct o.direction from oppositions o
            where ${RESULT_PATIENT_OPPOSITIONS}) as oppositions
        from deliveries d left join mails m on m.mail_id = d.mail_id left join results r on r.result_id = d.result_id
        where d.delivery_id = $1`,
      values: [deliveryId],
    });
    const r = res.rows[0];
    if (!r) return undefined;
    return {
      state: r.state, resultId: r.result_id, recipient: r.recipient, mailbox: r.mailbox ?? '', messageId: r.message_id ?? undefined,
      envelopeId: r.envelope_id, acknowledgedAt: r.acknowledged_at?.getTime(), head: r.head ?? undefined,
      attachmentsSha256: r.attachments_sha256 ?? undefined, kind: r.kind, oppositions: r.oppositions ?? [],
    };
  }

  /** The message a delivery sends: its head, then its attachments part; undefined when a part is gone (pruned). */
  async message(outbound: Outbound): Promise<Buffer | undefined> {
    if (!outbound.head) return undefined;
    if (!outbound.attachmentsSha256) return outbound.head;
    const attachments = await this.attachmentsPart(outbound.attachmentsSha256);
    return attachments ? Buffer.concat([outbound.head, attachments]) : undefined;
  }

  /**
   * The mails of a result are queued together and sent moments apart: the attachments part they share is read once.
   * A part never changes under its SHA-256, so the few most recent (a few MB at most) are kept, in flight included.
   */
  private attachmentsPart(sha256: string): Promise<Buffer | undefined> {
    const cached = this.recentAttachments.get(sha256);
    if (cached) {
      this.recentAttachments.delete(sha256);
      this.recentAttachments.set(sha256, cached);
      return cached;
    }
    const read = this.pool
      .query<{ content: Buffer | null }>({ name: 'bodies_content', text: 'select content from bodies where sha256 = $1', values: [hex(sha256)] })
      .then((r) => r.rows[0]?.content ?? undefined);
    this.recentAttachments.set(sha256, read);
    if (this.recentAttachments.size > RECENT_ATTACHMENTS) this.recentAttachments.delete(this.recentAttachments.keys().next().value!);
    // A part not (or no longer) there is not remembered: it is read again next time.
    const forget = () => this.recentAttachments.delete(sha256);
    read.then((b) => (b ? undefined : forget()), forget);
    return read;
  }
}
