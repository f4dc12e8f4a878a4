import type { Pool, PoolClient } from './postgres.ts';

/** A result the message store holds but nobody routed: its routing job, rebuilt. */
export interface UnroutedResult {
  resultId: string;
  source: string;
  transport: 'mllp' | 'kafka';
  receivedAt: number;
  acknowledgedAt: number;
}

/** A recipient still waiting to be sent: its delivery job, rebuilt. */
export interface WaitingDelivery {
  deliveryId: string;
  resultId: string;
  mailbox: string;
  urgent: boolean;
}

/** Where a sweep of a large set stopped: the next one goes on from there, and starts over once it reached the end. */
export interface SweepCursor {
  at: Date;
  id: string;
}

// Not routed, not a duplicate, and no recipient recorded (a routing that failed for good records its refusal).
const UNROUTED = `
select r.result_id, r.source, r.transport, r.received_at, r.acknowledged_at from results r
where r.routed_at is null and r.duplicate_of is null and r.received_at < $1
  and (r.received_at, r.result_id) > ($2::timestamptz, $3::text)
  and not exists (select 1 from deliveries d where d.result_id = r.result_id)
order by r.received_at, r.result_id limit $4`;

const WAITING = `
select d.delivery_id, d.result_id, d.mailbox, d.updated_at, coalesce((r.normalized ->> 'urgent')::boolean, false) as urgent
from deliveries d left join results r on r.result_id = d.result_id
where d.state = 'queued' and d.mailbox is not null and d.updated_at < $1
  and (d.updated_at, d.delivery_id) > ($2::timestamptz, $3::text)
order by d.updated_at, d.delivery_id limit $4`;

const START: SweepCursor = { at: new Date(0), id: '' };

/** The queries of the sweeper (services/router): what the message store says should be on a queue. */
export class SweepQueries {
  private readonly client: PoolClient;

  constructor(client: PoolClient) {
    this.client = client;
  }

  async unrouted(before: Date, after: SweepCursor = START, limit = 1000): Promise<{ rows: UnroutedResult[]; next?: SweepCursor }> {
    const res = await this.client.query<{ result_id: string; source: string; transport: 'mllp' | 'kafka'; received_at: Date; acknowledged_at: Date }>({
      name: 'sweep_unrouted', text: UNROUTED, values: [before, after.at, after.id, limit],
    });
    const rows = res.rows.map((r) => ({ resultId: r.result_id, source: r.source, transport: r.transport, receivedAt: r.received_at.getTime(), acknowledgedAt: r.acknowledged_at.getTime() }));
    const last = res.rows.at(-1);
    return { rows, ...(res.rows.length === limit && last ? { next: { at: last.received_at, id: last.result_id } } : {}) };
  }

  async waiting(before: Date, after: SweepCursor = START, limit = 1000): Promise<{ rows: WaitingDelivery[]; next?: SweepCursor }> {
    const res = await this.client.query<{ delivery_id: string; result_id: string; mailbox: string; updated_at: Date; urgent: boolean }>({
      name: 'sweep_waiting', text: WAITING, values: [before, after.at, after.id, limit],
    });
    const rows = res.rows.map((r) => ({ deliveryId: r.delivery_id, resultId: r.result_id, mailbox: r.mailbox, urgent: r.urgent }));
    const last = res.rows.at(-1);
    return { rows, ...(res.rows.length === limit && last ? { next: { at: last.updated_at, id: last.delivery_id } } : {}) };
  }
}

/** Any fixed number: one sweep at a time per schema, whichever router runs it. */
const SWEEP_LOCK = 0x73776570; // "swep"

/** Runs `fn` with a connection holding the schema's sweep lock, or returns undefined when another process holds it. */
export async function withSweepLock<T>(pool: Pool, fn: (queries: SweepQueries) => Promise<T>): Promise<T | undefined> {
  const client = await pool.connect();
  try {
    const schema = (await client.query<{ s: string }>(`select current_setting('search_path') as s`)).rows[0]!.s;
    const locked = (await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [SWEEP_LOCK, schema])).rows[0]!.ok;
    if (!locked) return undefined;
    try {
      return await fn(new SweepQueries(client));
    } finally {
      await client.query('select pg_advisory_unlock($1, hashtext($2))', [SWEEP_LOCK, schema]);
    }
  } finally {
    client.release();
  }
}
