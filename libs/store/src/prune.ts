import type { Pool, PoolClient } from './postgres.ts';

/** What a prune removed, or would remove (dry run). */
export interface PruneReport {
  results: number;
  deliveries: number;
  events: number;
  bodies: number;
  /** Results whose bodies (normalized form, mails, documents, HL7 text) were emptied, their records kept. */
  emptied: number;
}

/** Any fixed number: one prune at a time per schema, whichever process runs it. */
const PRUNE_LOCK = 0x70726e65; // "prne"

// The results received before the cutoff whose every recipient has its final outcome: a result still waiting for a
// DSN is kept, however old, so that the receipt that comes still finds it.
const DUE = `
select r.result_id from results r
where r.received_at < $1
  and not exists (select 1 from deliveries d where d.result_id = r.result_id and not (d.state = any($2::text[])))
order by r.received_at limit $3`;

// A conversation's closing mail (mssgw patient close) is filed under its own id `c-…`, with no result row: its record
// goes once its recipient is final and has not changed since the cutoff.
const CLOSING_OVER = `d.result_id like 'c-%' and d.updated_at < $1 and d.state = any($2::text[])
  and not exists (select 1 from results r where r.result_id = d.result_id)`;
const CLOSINGS_DUE = `
select d.result_id from deliveries d
where ${CLOSING_OVER}
order by d.updated_at limit $3`;

// One batch, one transaction: the results, their recipients, their events, their document index, their mails and the
// bodies nothing else holds. The version claims stay: they are what keeps a document version from being sent twice,
// years later. Every sub-statement sees the tables as they were: what other results hold is found by leaving the
// batch's out.
const DELETE = `
with gone as (delete from results where result_id = any($1::text[]) returning hl7_sha256),
d as (delete from deliveries where result_id = any($1::text[]) returning delivery_id),
e as (delete from delivery_events where delivery_id in (select delivery_id from d) returning 1),
rd as (delete from result_documents where result_id = any($1::text[])),
m as (delete from mails where result_id = any($1::text[])),
rb as (delete from result_bodies where result_id = any($1::text[]) returning sha256),
b as (
  delete from bodies where sha256 in (select hl7_sha256 from gone union select sha256 from rb)
    and not exists (select 1 from results r where r.hl7_sha256 = bodies.sha256 and r.result_id <> all($1::text[]))
    and not exists (select 1 from result_bodies x where x.sha256 = bodies.sha256 and x.result_id <> all($1::text[]))
    and not exists (select 1 from mails x where x.attachments_sha256 = bodies.sha256 and x.result_id <> all($1::text[]))
  returning 1)
select (select count(*) from gone)::int as results, (select count(*) from d)::int as deliveries,
  (select count(*) from e)::int as events, (select count(*) from b)::int as bodies`;

// Bodies are kept for less time than records: a result whose every recipient is final, and has been for the body
// retention, keeps its record and its timelines but not its patient data.
const BODIES_DUE = `
select r.result_id from results r
where r.bodies_pruned_at is null and r.received_at < $1
  and not exists (select 1 from deliveries d where d.result_id = r.result_id and (not (d.state = any($2::text[])) or d.updated_at >= $1))
order by r.received_at limit $3`;

// A closing's mail head names the patient's address: emptied with the bodies, once its recipient is final and has
// been for the body retention; its record stays until the record retention (CLOSINGS_DUE).
const CLOSING_HEADS = `
update mails m set head = null
from deliveries d
where d.mail_id = m.mail_id and m.head is not null and ${CLOSING_OVER}`;

const EMPTY = `
with r as (update results set normalized = null, bodies_pruned_at = now() where result_id = any($1::text[]) returning hl7_sha256),
m as (update mails set head = null where result_id = any($1::text[]) and head is not null),
held as (select sha256 from result_bodies where result_id = any($1::text[]) union select hl7_sha256 from r),
b as (
  update bodies set content = null, pruned_at = now() where content is not null and sha256 in (select sha256 from held)
    and not exists (
      select 1 from result_bodies x join results y on y.result_id = x.result_id
      where x.sha256 = bodies.sha256 and y.bodies_pruned_at is null and x.result_id <> all($1::text[]))
  returning 1)
select (select count(*) from r)::int as emptied, (select count(*) from b)::int as bodies`;

/**
 * Retention: removes, in batches of `batch` results, what was received before `olderThan` and is over (every
 * recipient final); then, with `bodiesOlderThan`, empties the bodies of the results over since before that time.
 * Small transactions, so the intake's commits never wait long behind it. A dry run counts only.
 */
export async function pruneRecords(
  pool: Pool,
  options: { olderThan: Date; bodiesOlderThan?: Date; finalStates: readonly string[]; dryRun?: boolean; batch?: number },
): Promise<PruneReport> {
  const total: PruneReport = { results: 0, deliveries: 0, events: 0, bodies: 0, emptied: 0 };
  const batch = options.batch ?? 1000;
  const client = await pool.connect();
  try {
    const schema = (await client.query<{ s: string }>(`select current_setting('search_path') as s`)).rows[0]!.s;
    const locked = (await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [PRUNE_LOCK, schema])).rows[0]!.ok;
    if (!locked) return total; // another process is pruning this schema
    try {
      if (options.dryRun) {
        const res = await client.query<PruneReport>(
          `with due as (${DUE.replace('limit $3', '')})
           select (select count(*) from due)::int as results,
             (select count(*) from deliveries where result_id in (select result_id from due))::int as deliveries,
             (select count(*) from delivery_events where delivery_id in (select delivery_id from deliveries where result_id in (select result_id from due)))::int as events,
             (select count(distinct hl7_sha256) from results where result_id in (select result_id from due))::int as bodies`,
          [options.olderThan, options.finalStates],
        );
        const emptied = options.bodiesOlderThan
          ? (await client.query<{ n: number }>(`select count(*)::int as n from (${BODIES_DUE.replace('limit $3', '')}) x`, [options.bodiesOlderThan, options.finalStates])).rows[0]!.n
          : 0;
        // Closings have no result row: counted with the recipients and events they take.
        const closings = (await client.query<{ deliveries: number; events: number }>(
          `with due as (${CLOSINGS_DUE.replace('limit $3', '')})
           select (select count(*) from due)::int as deliveries,
             (select count(*) from delivery_events where delivery_id in (select delivery_id from deliveries where result_id in (select result_id from due)))::int as events`,
          [options.olderThan, options.finalStates],
        )).rows[0]!;
        const r = res.rows[0]!;
        return { ...r, deliveries: r.deliveries + closings.deliveries, events: r.events + closings.events, emptied };
      }
      const add = (r: Partial<PruneReport>) => {
        for (const k of Object.keys(r) as (keyof PruneReport)[]) total[k] += r[k]!;
      };
      await inBatches(client, DUE, [options.olderThan, options.finalStates], batch, async (due) => add((await client.query<PruneReport>(DELETE, [due])).rows[0]!));
      await inBatches(client, CLOSINGS_DUE, [options.olderThan, options.finalStates], batch, async (due) => add((await client.query<PruneReport>(DELETE, [due])).rows[0]!));
      if (options.bodiesOlderThan) {
        await inBatches(client, BODIES_DUE, [options.bodiesOlderThan, options.finalStates], batch, async (due) => add((await client.query<Partial<PruneReport>>(EMPTY, [due])).rows[0]!));
        await client.query(CLOSING_HEADS, [options.bodiesOlderThan, options.finalStates]);
      }
      return total;
    } finally {
      await client.query('select pg_advisory_unlock($1, hashtext($2))', [PRUNE_LOCK, schema]);
    }
  } finally {
    client.release();
  }
}

/** Runs `each` on the ids `select` finds, `batch` at a time, until it finds fewer. */
async function inBatches(client: PoolClient, select: string, params: unknown[], batch: number, each: (ids: string[]) => Promise<void>): Promise<void> {
  for (;;) {
    const ids = (await client.query<{ result_id: string }>(select, [...params, batch])).rows.map((r) => r.result_id);
    if (ids.length) await each(ids);
    if (ids.length < batch) return;
  }
}
