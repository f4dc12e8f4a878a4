import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  confirmationClock, confirmationTimeout, ENTER_FROM, type DeliveryEventSource, type DeliveryState, type HistoryNote, type Transition, type TransitionFields,
} from '@mssgw/lifecycle';
import { mailsWrite, textParams, type Queryable, type StoredMail } from '@mssgw/store';
import { ReplyStore, type Reply, type ReplyFilter } from './replies.ts';

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
  /** The DSN ENVID its mail was sent with: random, so that a DSN naming it comes from who saw the envelope. */
  envelopeId?: string;
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

/** One entry of the outbox: a recipient's state changed. */
export interface StatusEvent {
  id: string;
  deliveryId: string;
  state: DeliveryState;
  previous: DeliveryState | '';
  source: DeliveryEvent['source'];
}

const ms = (d: Date | null | undefined): number | undefined => (d ? d.getTime() : undefined);
const date = (n: number | undefined): Date | null => (n === undefined ? null : new Date(n));

interface DeliveryRow {
  delivery_id: string; result_id: string; recipient: string; recipient_id: string | null; kind: string; state: string;
  mail_id: string | null; message_id: string | null; mailbox: string | null; reason: string | null; detail: string | null;
  smtp_response: string | null; queue_id: string | null; dsn_status: string | null; dsn_at: Date | null; submitted_at: Date | null; updated_at: Date;
  envelope_id?: string | null;
}

function deliveryOf(r: DeliveryRow): Delivery {
  const optional = {
    recipientId: r.recipient_id, mailId: r.mail_id, messageId: r.message_id, mailbox: r.mailbox, envelopeId: r.envelope_id, reason: r.reason, detail: r.detail,
    smtpResponse: r.smtp_response, queueId: r.queue_id, dsnStatus: r.dsn_status, dsnAt: ms(r.dsn_at), submittedAt: ms(r.submitted_at),
  };
  return {
    deliveryId: r.delivery_id, resultId: r.result_id, recipient: r.recipient, kind: r.kind as RecipientKind, state: r.state as DeliveryState,
    updatedAt: r.updated_at.getTime(),
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== null && v !== undefined)),
  };
}

// Compare-and-set in one statement: the row is locked, the state changes only from a state the lifecycle allows,
// the event joins the history either way, and an applied change enters the outbox in the same transaction (nothing
// told twice or never). $11 says what the change does to the confirmation clock: start (at $3), stop, or nothing.
const TRANSITION = `
with cur as (select delivery_id, state from deliveries where delivery_id = $1 for update),
upd as (
  update deliveries d set state = $2, updated_at = $3,
    reason = coalesce($6, d.reason), detail = coalesce($7, d.detail), dsn_status = coalesce($8, d.dsn_status),
    smtp_response = coalesce($9, d.smtp_response), queue_id = coalesce($10, d.queue_id),
    submitted_at = coalesce($12, d.submitted_at), dsn_at = coalesce($13, d.dsn_at),
    awaiting_since = case $11 when 'start' then $3 when 'stop' then null else d.awaiting_since end
  from cur where d.delivery_id = cur.delivery_id and cur.state = any($4::text[])
  returning cur.state as previous),
ev as (
  insert into delivery_events (delivery_id, at, state, applied, source, detail)
  select delivery_id, $3, $2, exists (select 1 from upd), $5, $14 from cur),
ob as (insert into status_outbox (delivery_id, state, previous, source) select $1, $2, previous, $5 from upd)
select (select state from cur) as current, exists (select 1 from upd) as applied`;

// Recipients' first records, their first events and their outbox entries, all or nothing, in one statement: one round
// trip and one commit, whatever their number. A recipient already recorded is left as it was.
const CREATE_CTES = `
ins as (
  insert into deliveries (delivery_id, result_id, recipient, recipient_id, kind, state, mail_id, message_id, mailbox, reason, detail, updated_at)
  select r.delivery_id, r.result_id, r.recipient, r.recipient_id, r.kind, r.state, r.mail_id, r.message_id, r.mailbox, r.reason, r.detail, $12::timestamptz
  from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
    as r (delivery_id, result_id, recipient, recipient_id, kind, state, mail_id, message_id, mailbox, reason, detail)
  on conflict (delivery_id) do nothing
  returning delivery_id, state),
ev as (
  insert into delivery_events (delivery_id, at, state, applied, source, detail)
  select ins.delivery_id, $12, ins.state, true, 'router', e.detail
  from ins join unnest($1::text[], $13::text[]) as e (delivery_id, detail) on e.delivery_id = ins.delivery_id),
ob as (insert into status_outbox (delivery_id, state, previous, source) select delivery_id, state, '', 'router' from ins)`;
const CREATE = `with ${CREATE_CTES}
select delivery_id from ins`;

// What routing decides about a result, in one statement after the recipients' CTEs ($1-$13): the documents it is
// indexed by ($15), its routed mark ($16, $17) and its rendered mails (from $18, mailsWrite, which names the result again). One round trip, one
// commit: a dispatcher never finds a delivery whose mail is not there, and a crash leaves all of it or none.
const ROUTED_CTES = `
docs as (insert into result_documents (document_id, result_id) select d, $14::text from unnest($15::text[]) as d on conflict do nothing),
routed as (update results set routed_at = $16, acknowledged_at = coalesce($17, acknowledged_at) where result_id = $14::text)`;

/** What the router records of a result it routed (StatusStore.recordRouting). */
export interface RoutingRecord {
  resultId: string;
  /** Its rendered mails (heads, and the attachments part they share). */
  mails: StoredMail[];
  /** The ids of the documents it carries (CDA ClinicalDocument/id, TXA-12), as root^extension. */
  documentIds: string[];
  /** Its recipients' first records: queued, or refused (each event's detail is the refusal's reason). */
  deliveries: NewDelivery[];
  /** When its ACK went (the intake's time). */
  acknowledgedAt: number | undefined;
}

type NewDelivery = Omit<Delivery, 'updatedAt'> & { updatedAt?: number };

/** The parameters of CREATE_CTES ($1-$13): the recipients' columns, the time, each first event's detail. */
function createParams(list: NewDelivery[], eventDetails: (string | undefined)[], at: number): unknown[] {
  const col = (f: (d: NewDelivery) => string | undefined) => list.map((d) => f(d) ?? null);
  return [
    col((d) => d.deliveryId), col((d) => d.resultId), col((d) => d.recipient), col((d) => d.recipientId), col((d) => d.kind), col((d) => d.state),
    col((d) => d.mailId), col((d) => d.messageId), col((d) => d.mailbox), col((d) => d.reason), col((d) => d.detail), new Date(at),
    eventDetails.map((e) => e ?? null),
  ];
}

const STATEMENT_NAMES = new Map<string, string>();

/**
 * The record of every recipient of every result, in the message store (PostgreSQL): its state as the delivery
 * lifecycle (@mssgw/lifecycle) moves it, the history of its events, and the outbox the feedback service reads.
 */
export class StatusStore {
  private readonly pool: Queryable;
  /** Where the dispatcher's "attempt in progress" markers live (`clears`), deleted once a change is committed. */
  private readonly redis: Redis | undefined;
  /** The replies that reach the sending mailboxes (issue #25). */
  readonly replies: ReplyStore;

  constructor(pool: Queryable, redis?: Redis) {
    this.pool = pool;
    this.redis = redis;
    this.replies = new ReplyStore(pool);
  }

  /**
   * The same store on one connection, in the transaction the caller holds (inTransaction, @mssgw/store): the router
   * commits a result's mails, recipients and routed mark at once. A change that clears a Redis marker is not for it.
   */
  on(client: Queryable): StatusStore {
    return new StatusStore(client);
  }

  /** Replies newest first (see ReplyStore.list): `{ unmatched: true }` lists those that answer nothing we know. */
  listReplies(filter: ReplyFilter = {}): Promise<Reply[]> {
    return this.replies.list(filter);
  }

  /** Every statement's text parameters lose their NULs: a hostile DSN or Message-ID must not fail its statement forever. */
  private q<R extends object>(sql: string, params: unknown[]) {
    // Named, so each connection parses and plans a statement once: these run several times per mail.
    let name = STATEMENT_NAMES.get(sql);
    if (!name) STATEMENT_NAMES.set(sql, (name = `status_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`));
    return this.pool.query<R>({ name, text: sql, values: textParams(params) });
  }

  /** The result was routed: when, and when its ACK went (the intake's time, carried by its job). */
  async markRouted(resultId: string, acknowledgedAt: number | undefined, at = Date.now()): Promise<void> {
    await this.q('update results set routed_at = $2, acknowledged_at = coalesce($3, acknowledged_at) where result_id = $1', [resultId, new Date(at), date(acknowledgedAt)]);
  }

  /**
   * Creates a recipient's record in its first state (queued or refused). A second call changes nothing. The first
   * event's detail is `detail`, else the recipient's reason.
   */
  async createDelivery(d: NewDelivery, detail?: string): Promise<boolean> {
    return (await this.create([d], [detail ?? d.reason], d.updatedAt ?? Date.now())).length === 1;
  }

  /** Creates the records of many recipients at once (see createDelivery; each event's detail is the recipient's detail, else its reason); returns the ids created now. */
  async createDeliveries(list: NewDelivery[], at = Date.now()): Promise<string[]> {
    return this.create(list, list.map((d) => d.detail ?? d.reason), at);
  }

  /**
   * Records at once what routing decided about a result (RoutingRecord): its mails, its recipients' records (queued
   * or refused) with their first events and outbox entries, the documents it is indexed by, and its routed mark.
   * Returns the ids of the recipients recorded now (none when a retried job finds them recorded).
   */
  async recordRouting(r: RoutingRecord, at = Date.now()): Promise<string[]> {
    const mails = mailsWrite(r.resultId, r.mails, 18);
    const sql = `with ${[CREATE_CTES, ROUTED_CTES, ...(r.mails.length ? mails.ctes : [])].join(',\n')}
select delivery_id from ins`;
    const res = await this.q<{ delivery_id: string }>(sql, [
      ...createParams(r.deliveries, r.deliveries.map((d) => (d.state === 'refused' ? d.reason : d.detail ?? d.reason)), at),
      r.resultId, r.documentIds, new Date(at), date(r.acknowledgedAt),
      ...(r.mails.length ? mails.params : []),
    ]);
    return res.rows.map((x) => x.delivery_id);
  }

  private async create(list: NewDelivery[], eventDetails: (string | undefined)[], at: number): Promise<string[]> {
    if (!list.length) return [];
    const res = await this.q<{ delivery_id: string }>(CREATE, createParams(list, eventDetails, at));
    return res.rows.map((r) => r.delivery_id);
  }

  /**
   * Moves a recipient to `state` if the lifecycle allows it from where it is; the event joins its history either
   * way. Returns whether the state changed and the state it was in. `clears` names a Redis key deleted once the
   * change is committed (the dispatcher's marker: one left behind by a crash is harmless, since a recipient no longer
   * queued is never sent again).
   */
  async transition(
    deliveryId: string,
    state: DeliveryState,
    source: DeliveryEvent['source'],
    fields: TransitionFields = {},
    at = Date.now(),
    clears = '',
  ): Promise<{ applied: boolean; previous: DeliveryState | undefined }> {
    const res = await this.q<{ current: string | null; applied: boolean }>(TRANSITION, [
      deliveryId, state, new Date(at), ENTER_FROM[state], source, fields.reason ?? null, fields.detail ?? null, fields.dsnStatus ?? null,
      fields.smtpResponse ?? null, fields.queueId ?? null, confirmationClock(state), date(fields.submittedAt), date(fields.dsnAt),
      fields.detail ?? fields.reason ?? null,
    ]);
    if (clears && this.redis) await this.redis.del(clears);
    const row = res.rows[0]!;
    return { applied: row.applied, previous: (row.current ?? undefined) as DeliveryState | undefined };
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
    const due = await this.q<{ delivery_id: string }>(
      'select delivery_id from deliveries where awaiting_since <= $1 order by awaiting_since limit 1000', [new Date(now - timeoutMs)],
    );
    const moved: string[] = [];
    for (const { delivery_id: id } of due.rows) {
      const { applied } = await this.apply(id, confirmationTimeout(timeoutMs), now);
      if (applied) moved.push(id);
      else await this.q('update deliveries set awaiting_since = null where delivery_id = $1', [id]);
    }
    return moved;
  }

  async getDelivery(deliveryId: string): Promise<Delivery | undefined> {
    const res = await this.q<DeliveryRow>('select * from deliveries where delivery_id = $1', [deliveryId]);
    return res.rows[0] ? deliveryOf(res.rows[0]) : undefined;
  }

  async history(deliveryId: string): Promise<DeliveryEvent[]> {
    const res = await this.q<{ at: Date; state: string; applied: boolean; source: string; detail: string | null }>(
      'select at, state, applied, source, detail from delivery_events where delivery_id = $1 order by id', [deliveryId],
    );
    return res.rows.map((e) => ({
      at: e.at.getTime(), state: e.state as DeliveryState, applied: e.applied, source: e.source as DeliveryEventSource, ...(e.detail !== null ? { detail: e.detail } : {}),
    }));
  }

  async getResult(resultId: string, options: { withDeliveries?: boolean } = {}): Promise<(ResultRecord & { deliveries: Delivery[] }) | undefined> {
    const res = await this.q<{
      result_id: string; source: string; transport: string; control_id: string; sending_application: string; sending_facility: string;
      ack_reception: boolean; ack_read: boolean; action: string; document_code: string; received_at: Date; acknowledged_at: Date | null;
      routed_at: Date | null; duplicate_of: string | null;
    }>(
      `select result_id, source, transport, control_id, sending_application, sending_facility, ack_reception, ack_read, action, document_code,
        received_at, acknowledged_at, routed_at, duplicate_of from results where result_id = $1`, [resultId],
    );
    const r = res.rows[0];
    if (!r) return undefined;
    const deliveries = options.withDeliveries === false ? [] : (await this.q<DeliveryRow>(
      'select * from deliveries where result_id = $1', [resultId],
    )).rows.map(deliveryOf);
    deliveries.sort((a, b) => a.recipient.localeCompare(b.recipient));
    return {
      resultId: r.result_id, source: r.source, transport: r.transport, controlId: r.control_id, sendingApplication: r.sending_application,
      sendingFacility: r.sending_facility, ackReception: r.ack_reception ? '1' : '0', ackRead: r.ack_read ? '1' : '0', action: r.action,
      documentCode: r.document_code, receivedAt: r.received_at.getTime(),
      ...(r.acknowledged_at ? { acknowledgedAt: r.acknowledged_at.getTime() } : {}),
      ...(r.routed_at ? { routedAt: r.routed_at.getTime() } : {}),
      ...(r.duplicate_of ? { duplicateOf: r.duplicate_of } : {}),
      deliveries,
    };
  }

  async resultsByControlId(controlId: string): Promise<string[]> {
    return (await this.q<{ result_id: string }>('select result_id from results where control_id = $1 order by id', [controlId])).rows.map((r) => r.result_id);
  }

  /**
   * Claims a document version for a result: the first result to carry it gets it. Returns the result that holds
   * it (this one, or the one that came first), so a second result with the same document and version is not sent.
   */
  async claimDocumentVersion(documentVersion: string, resultId: string): Promise<string> {
    const res = await this.q<{ result_id: string }>(
      `with ins as (insert into document_versions (document_version, result_id) values ($1, $2) on conflict do nothing returning result_id)
       select result_id from ins union all select result_id from document_versions where document_version = $1`,
      [documentVersion, resultId],
    );
    return res.rows[0]?.result_id ?? resultId;
  }

  /**
   * The version number of a wrapped document for this result: its rank among the results of its set in the order
   * they were received (results.id), so versions follow the producer's order whatever order the routers finish in,
   * and a retried routing finds the same number. A deletion names the current version without taking a new one.
   */
  async versionInSet(resultId: string): Promise<number> {
    const res = await this.q<{ v: number }>(
      `select count(x.id)::int as v from results r
       left join results x on x.set_key = r.set_key and x.id <= r.id and x.action <> 'delete'
       where r.result_id = $1`,
      [resultId],
    );
    return Math.max(1, res.rows[0]?.v ?? 1);
  }

  async markDuplicate(resultId: string, duplicateOf: string): Promise<void> {
    await this.q('update results set duplicate_of = $2, routed_at = now() where result_id = $1', [resultId, duplicateOf]);
  }

  /** Indexes a result by the id of a document it carries (CDA ClinicalDocument/id, or TXA-12), as root^extension. */
  async indexDocument(documentId: string, resultId: string): Promise<void> {
    await this.q('insert into result_documents (document_id, result_id) values ($1, $2) on conflict do nothing', [documentId, resultId]);
  }

  async resultsByDocumentId(documentId: string): Promise<string[]> {
    return (await this.q<{ result_id: string }>('select result_id from result_documents where document_id = $1', [documentId])).rows.map((r) => r.result_id);
  }

  /**
   * Claims outbox entries for a consumer: those never claimed, and those another consumer claimed more than
   * `claimIdleMs` ago without acknowledging them (it crashed, or its producer was unreachable). One consumer group
   * reads the outbox (the feedback service); `group` names it in the claims. Waits up to `blockMs` when there is none.
   */
  async readEvents(group: string, consumer: string, count = 100, blockMs = 1000, claimIdleMs = 30_000): Promise<StatusEvent[]> {
    const claim = async () => (await this.q<{ id: string; delivery_id: string; state: string; previous: string; source: string }>(
      `update status_outbox set claimed_by = $1, claimed_at = now()
       where id in (select id from status_outbox where claimed_at is null or claimed_at < now() - make_interval(secs => $2::float8 / 1000)
                    order by id limit $3 for update skip locked)
       returning id::text, delivery_id, state, previous, source`,
      [`${group}/${consumer}`, claimIdleMs, count],
    )).rows;
    let rows = await claim();
    if (rows.length === 0 && blockMs > 1) {
      await new Promise((r) => setTimeout(r, Math.min(blockMs, 1000)));
      rows = await claim();
    }
    return rows
      .sort((a, b) => Number(a.id) - Number(b.id))
      .map((r) => ({ id: r.id, deliveryId: r.delivery_id, state: r.state as DeliveryState, previous: r.previous as DeliveryState | '', source: r.source as DeliveryEventSource }));
  }

  /** The consumer has told the producers: the entries leave the outbox. */
  async ackEvents(_group: string, ids: string[]): Promise<void> {
    if (ids.length) await this.q('delete from status_outbox where id = any($1::bigint[])', [ids]);
  }

  /** The delivery a DSN's ENVID names (its random envelope id), if any. */
  async deliveryForEnvelope(envelopeId: string): Promise<Delivery | undefined> {
    const res = await this.q<DeliveryRow>('select * from deliveries where envelope_id = $1', [envelopeId]);
    return res.rows[0] ? deliveryOf(res.rows[0]) : undefined;
  }

  /**
   * Adds an entry to a recipient's history that changes nothing (`applied: false`): a receipt that was not believed,
   * a reply. Returns false when there is no such recipient.
   */
  async note(deliveryId: string, note: HistoryNote, at = Date.now()): Promise<boolean> {
    const res = await this.q(
      `insert into delivery_events (delivery_id, at, state, applied, source, detail)
       select delivery_id, $2, $3, false, $4, $5 from deliveries where delivery_id = $1`,
      [deliveryId, new Date(at), note.state, note.source, note.detail],
    );
    return (res.rowCount ?? 0) > 0;
  }

  /** For MDNs, which name the original Message-ID and the recipient rather than our envelope id. */
  async deliveryForMessage(messageId: string, recipient: string): Promise<string | undefined> {
    const res = await this.q<{ delivery_id: string }>(
      'select delivery_id from deliveries where lower(message_id) = lower($1) and lower(recipient) = lower($2) limit 1', [messageId, recipient],
    );
    return res.rows[0]?.delivery_id;
  }
}
