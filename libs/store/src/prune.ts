import type { Pool } from './postgres.ts';

/** What a prune removed, or would remove (dry run). */
export interface PruneReport {
  results: number;
  deliveries: number;
  events: number;
  bodies: number;
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

// One batch, one transaction: the results, their recipients, their events and their document index. The version
// claims stay: they are what keeps a document version from being sent twice, years later.
const DELETE = `
with gone as (delete from results where result_id = any($1::text[]) returning hl7_sha256),
d as (delete from deliveries where result_id = any($1::text[]) returning delivery_id),
e as (delete from delivery_events where delivery_id in (select delivery_id from d) returning 1),
rd as (delete from result_documents where result_id = any($1::text[])),
b as (
  delete from bodies where sha256 in (select hl7_sha256 from gone)
    and not exists (select 1 from results r where r.hl7_sha256 = bodies.sha256 and r.result_id <> all($1::text[]))
  returning 1)
select (select count(*) from gone)::int as results, (select count(*) from d)::int as deliveries,
  (select count(*) from e)::int as events, (select count(*) from b)::int as bodies`;

/**
 * Retention: removes, in batches of `batch` results, what was received before `olderThan` and is over (every
 * recipient final). Small transactions, so the intake's commits never wait long behind it. A dry run counts only.
 */
export async function pruneRecords(
  pool: Pool,
  options: { olderThan: Date; finalStates: readonly string[]; dryRun?: boolean; batch?: number },
): Promise<PruneReport> {
  const total: PruneReport = { results: 0, deliveries: 0, events: 0, bodies: 0 };
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
        return res.rows[0]!;
      }
      for (;;) {
        const due = (await client.query<{ result_id: string }>(DUE, [options.olderThan, options.finalStates, batch])).rows.map((r) => r.result_id);
        if (due.length === 0) return total;
        const r = (await client.query<PruneReport>(DELETE, [due])).rows[0]!;
        for (const k of Object.keys(total) as (keyof PruneReport)[]) total[k] += r[k];
        if (due.length < batch) return total;
      }
    } finally {
      await client.query('select pg_advisory_unlock($1, hashtext($2))', [PRUNE_LOCK, schema]);
    }
  } finally {
    client.release();
  }
}
