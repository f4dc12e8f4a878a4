import type { Pool } from '@mssgw/store';

/**
 * The audit trail: one row per read of patient data, per action and per refusal. Ids only (result, delivery, mail
 * and key ids; a search's filter names, not their values): never a name, an INS or an address.
 */
export interface AuditEvent {
  id: string;
  at: Date;
  actorKind: 'key' | 'oidc' | 'none';
  /** The API key's id, or the OIDC token's subject; null when no credential was given. */
  actor: string | null;
  role: string | null;
  method: string;
  /** The route's pattern (/api/v1/results/:id), never the URL as sent (a search's values are personal data). */
  route: string;
  status: number;
  outcome: 'allowed' | 'refused';
  reason: string | null;
  ids: string[];
  filters: string[];
  client: string;
  requestId: string;
}

export type NewAuditEvent = Omit<AuditEvent, 'id' | 'at'>;

export async function recordAudit(pool: Pool, e: NewAuditEvent): Promise<void> {
  await pool.query(
    `insert into audit_events (actor_kind, actor, role, method, route, status, outcome, reason, ids, filters, client, request_id)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [e.actorKind, e.actor, e.role, e.method, e.route, e.status, e.outcome, e.reason, e.ids, e.filters, e.client, e.requestId],
  );
}

export interface AuditQuery {
  actor?: string;
  outcome?: 'allowed' | 'refused';
  /** Events naming this id (a result, delivery, mail or key id). */
  id?: string;
  route?: string;
  from?: Date;
  to?: Date;
  limit: number;
  /** The `next` of the page before. */
  cursor?: string;
}

export interface AuditPage {
  events: AuditEvent[];
  next?: string;
}

/** A keyset cursor: the last event's time (µs, as PostgreSQL keeps it) and id. */
export const encodeAuditCursor = (atMicros: string, id: string) => Buffer.from(`${atMicros}.${id}`).toString('base64url');
export function decodeAuditCursor(cursor: string): { atMicros: string; id: string } | undefined {
  const m = /^(\d{1,20})\.(\d{1,20})$/.exec(Buffer.from(cursor, 'base64url').toString());
  return m ? { atMicros: m[1]!, id: m[2]! } : undefined;
}

interface Row {
  id: string; at: Date; at_us: string; actor_kind: AuditEvent['actorKind']; actor: string | null; role: string | null; method: string; route: string;
  status: number; outcome: AuditEvent['outcome']; reason: string | null; ids: string[]; filters: string[]; client: string; request_id: string;
}

/** Events newest first, one page at a time (keyset: page 100 costs what page 1 does). Throws on a cursor it did not give. */
export async function queryAudit(pool: Pool, q: AuditQuery): Promise<AuditPage> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (q.actor !== undefined) add('actor = ?', q.actor);
  if (q.outcome !== undefined) add('outcome = ?', q.outcome);
  if (q.id !== undefined) add('ids @> array[?::text]', q.id);
  if (q.route !== undefined) add('route = ?', q.route);
  if (q.from) add('at >= ?', q.from);
  if (q.to) add('at < ?', q.to);
  if (q.cursor !== undefined) {
    const c = decodeAuditCursor(q.cursor);
    if (!c) throw new RangeError('cursor is not one this API gave');
    params.push(c.atMicros, c.id);
    where.push(`(at, id) < (timestamptz 'epoch' + $${params.length - 1}::bigint * interval '1 microsecond', $${params.length}::bigint)`);
  }
  params.push(q.limit + 1);
  const { rows } = await pool.query<Row>(
    `select id::text, at, (extract(epoch from at) * 1e6)::bigint::text as at_us, actor_kind, actor, role, method, route, status, outcome, reason,
       ids, filters, client, request_id
     from audit_events ${where.length ? `where ${where.join(' and ')}` : ''}
     order by at desc, id desc limit $${params.length}`,
    params,
  );
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    events: page.map((r) => ({
      id: r.id, at: r.at, actorKind: r.actor_kind, actor: r.actor, role: r.role, method: r.method, route: r.route, status: r.status,
      outcome: r.outcome, reason: r.reason, ids: r.ids, filters: r.filters, client: r.client, requestId: r.request_id,
    })),
    ...(rows.length > q.limit && last ? { next: encodeAuditCursor(last.at_us, last.id) } : {}),
  };
}

/** Retention: removes the events older than `olderThan`, in batches; returns how many. */
export async function pruneAudit(pool: Pool, olderThan: Date, batch = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await pool.query('delete from audit_events where id in (select id from audit_events where at < $1 limit $2)', [olderThan, batch]);
    total += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < batch) return total;
  }
}
