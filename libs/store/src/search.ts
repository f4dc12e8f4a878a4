import type { Pool } from './postgres.ts';

// Letters that NFKD does not split into a base letter and a mark.
const LETTERS: Record<string, string> = { œ: 'oe', æ: 'ae', ß: 'ss', ø: 'o', đ: 'd', ł: 'l', ı: 'i' };

/**
 * The key a patient's name is found by: lower case, without accents, punctuation and spaces reduced to one space
 * ("ESSAI-NOËL Élodie" → "essai noel elodie"). Written by the intake and applied to what is searched, in TypeScript:
 * PostgreSQL's unaccent extension may not be available to the gateway's user.
 */
export function searchKey(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[œæßøđłı]/g, (c) => LETTERS[c]!)
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** The search key of a patient (family name, then given name), or null when there is no name. */
export function patientSearchKey(family: string | undefined, given: string | undefined): string | null {
  return searchKey(`${family ?? ''} ${given ?? ''}`) || null;
}

/** Where a page ended: the last result's reception time (µs since the epoch, as PostgreSQL holds it) and row id. */
export interface SearchCursor {
  atMicros: string;
  id: string;
}

/** Opaque to clients; decodeCursor refuses anything it did not write. */
export const encodeCursor = (c: SearchCursor): string => Buffer.from(`${c.atMicros}.${c.id}`).toString('base64url');

export function decodeCursor(text: string): SearchCursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(text)) return undefined;
  const m = /^(-?\d{1,17})\.(\d{1,19})$/.exec(Buffer.from(text, 'base64url').toString('latin1'));
  return m ? { atMicros: m[1]!, id: m[2]! } : undefined;
}

/** A search of the results received; every filter optional, all of them combined (and). Validated by the caller. */
export interface ResultSearch {
  /** The patient's INS, exactly. */
  patientIns?: string;
  /** A prefix of the patient's "family given" name, as typed: compared through searchKey. Must have a letter or digit. */
  name?: string;
  source?: string;
  documentCode?: string;
  /** A recipient's address (or "<field>:<id>"), any case. With `state`: that recipient is in that state. */
  recipient?: string;
  /** At least one recipient in this state. */
  state?: string;
  /** Instants (ISO 8601 with their zone): received at or after `from`, before `to`. */
  from?: string;
  to?: string;
  /** Continue after this position (the `next` of the page before). */
  after?: SearchCursor;
  limit: number;
}

/** One result as the search lists it: its summary, its recipients counted by state. */
export interface ResultSummary {
  resultId: string;
  source: string;
  controlId: string;
  receivedAt: number;
  acknowledgedAt: number;
  documentCode: string;
  action: string;
  patient: { ins?: string; family?: string; given?: string };
  /** How many of its recipients are in each state (no key for a state none is in). */
  recipients: Record<string, number>;
}

export interface SearchPage {
  results: ResultSummary[];
  /** The cursor of the next page, when more results remain. */
  next?: string;
}

/**
 * The statement of a search: newest first (reception time, then row id), keyset pagination from the cursor, one more
 * row than the page to know whether more remain. A filter on the recipients (state, address) reads the recipients'
 * own index in that order (each carries its result's reception time and row id, migration 0003) and keeps each result
 * once; the others read the results. The page is cut before its recipients are counted.
 */
export function buildSearch(q: ResultSearch): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const $ = (v: unknown) => `$${values.push(v)}`;
  const byRecipient = q.recipient !== undefined || q.state !== undefined;
  // Where the order comes from: the recipient's copy of its result's place, or the result itself.
  const [at, row] = byRecipient ? ['d.received_at', 'd.result_row'] : ['r.received_at', 'r.id'];
  const where: string[] = [];
  if (q.recipient !== undefined) where.push(`lower(d.recipient) = lower(${$(q.recipient)})`);
  if (q.state !== undefined) where.push(`d.state = ${$(q.state)}`);
  if (q.patientIns !== undefined) where.push(`r.patient_ins = ${$(q.patientIns)}`);
  // The key holds letters, digits and spaces only: nothing in it is a LIKE wildcard. A "family given" names few
  // patients, but the planner can think it names thousands (its estimate for a long prefix comes from a sample) and
  // then walks every result newest first to find them: 200-700 ms on 1,000,000 results. Such a name (two words, the
  // last of two letters or more) is looked up in its own index first (a materialized CTE the planner cannot undo),
  // unless an INS already narrows the search. A family name alone may name tens of thousands of results: newest
  // first, it finds a page of them soonest.
  const nameKey = q.name !== undefined ? searchKey(q.name) : undefined;
  const named = nameKey !== undefined && /\S \S{2,}/.test(nameKey) && q.patientIns === undefined;
  if (nameKey !== undefined) where.push(named ? 'r.id in (select id from named)' : `r.patient_search like ${$(`${nameKey}%`)}`);
  if (q.source !== undefined) where.push(`r.source = ${$(q.source)}`);
  if (q.documentCode !== undefined) where.push(`r.document_code = ${$(q.documentCode)}`);
  if (q.from !== undefined) where.push(`${at} >= ${$(q.from)}::timestamptz`);
  if (q.to !== undefined) where.push(`${at} < ${$(q.to)}::timestamptz`);
  if (q.after) where.push(`(${at}, ${row}) < (timestamptz 'epoch' + ${$(q.after.atMicros)}::bigint * interval '1 microsecond', ${$(q.after.id)}::bigint)`);
  const text = `
with ${named ? `named as materialized (select id from results where patient_search like ${$(`${nameKey}%`)}),
` : ''}page as (
  select${byRecipient ? ` distinct on (${at}, ${row})` : ''} r.id, r.result_id, r.source, r.control_id, r.received_at, r.acknowledged_at,
    r.document_code, r.action, r.patient_ins, r.patient_family, r.patient_given
  from ${byRecipient ? 'deliveries d join results r on r.id = d.result_row' : 'results r'}${where.length ? `\n  where ${where.join('\n    and ')}` : ''}
  order by ${at} desc, ${row} desc
  limit ${$(q.limit + 1)})
select page.*, (extract(epoch from page.received_at) * 1000000)::bigint::text as at_us,
  (select coalesce(json_object_agg(s.state, s.n), '{}') from (
    select d.state, count(*)::int as n from deliveries d where d.result_id = page.result_id group by d.state) s) as recipients
from page
order by page.received_at desc, page.id desc`;
  return { text, values };
}

interface SummaryRow {
  id: string; result_id: string; source: string; control_id: string; received_at: Date; acknowledged_at: Date; document_code: string;
  action: string; patient_ins: string | null; patient_family: string | null; patient_given: string | null; at_us: string;
  recipients: Record<string, number>;
}

/** A search stopped by its time limit (statement_timeout). */
export class SearchTimeoutError extends Error {
  readonly code = 'MSSGW_SEARCH_TIMEOUT';
  constructor() {
    super('the search took too long');
    this.name = 'SearchTimeoutError';
  }
}

/**
 * One page of a search, newest first. Without parallel workers: on a page of 50 they cost more than they save, on
 * cores shared with the intake. A search that goes wrong is stopped after `timeoutMs` rather than left to hold a core.
 */
export async function searchResults(pool: Pool, q: ResultSearch, options: { timeoutMs?: number } = {}): Promise<SearchPage> {
  const { text, values } = buildSearch(q);
  const client = await pool.connect();
  let rows: SummaryRow[];
  try {
    await client.query(`begin read only; set local max_parallel_workers_per_gather = 0; set local statement_timeout = ${Math.trunc(options.timeoutMs ?? 5_000)}`);
    rows = (await client.query<SummaryRow>(text, values)).rows;
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    // 57014: canceled by statement_timeout.
    throw (err as { code?: string }).code === '57014' ? new SearchTimeoutError() : err;
  } finally {
    client.release();
  }
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    results: page.map((r) => ({
      resultId: r.result_id, source: r.source, controlId: r.control_id, receivedAt: r.received_at.getTime(),
      acknowledgedAt: r.acknowledged_at.getTime(), documentCode: r.document_code, action: r.action,
      patient: {
        ...(r.patient_ins ? { ins: r.patient_ins } : {}), ...(r.patient_family ? { family: r.patient_family } : {}),
        ...(r.patient_given ? { given: r.patient_given } : {}),
      },
      recipients: r.recipients,
    })),
    ...(rows.length > q.limit && last ? { next: encodeCursor({ atMicros: last.at_us, id: last.id }) } : {}),
  };
}
