import { bodyParams, sha256Of, writeBodies, type Body } from './bodies.ts';
import { textParams, type Pool } from './postgres.ts';
import { patientSearchKey } from './search.ts';

/** What the message store keeps of a received result; written before the producer is told AA. */
export interface ReceivedResult {
  resultId: string;
  source: string;
  transport: 'mllp' | 'kafka';
  sendingApplication: string;
  sendingFacility: string;
  controlId: string;
  /** contentHashOf the message (@mssgw/hl7): what tells a retransmission from a reused control id. */
  contentSha256: string;
  /** The message as received. */
  hl7: Buffer;
  messageType: string;
  action: string;
  documentCode: string;
  patientIns?: string;
  /** PID-5 as received: what the search by name finds (through its key, searchKey) and shows. */
  patientFamily?: string;
  patientGiven?: string;
  /** The producer asked for MSSanté reception / read acknowledgements (ACK_RECEPTION, ACK_LECTURE_MSS). */
  ackReception: boolean;
  ackRead: boolean;
  receivedAt: number;
  /** The documents the result carries, held as bodies with it. */
  documents?: Body[];
  /** The result as the intake read it, for the router (JSON). */
  normalized?: unknown;
  /** The document set a wrapped result belongs to (wrappedSetKey, @mssgw/mssante): its versions follow reception order. */
  setKey?: string;
}

// One statement, one transaction, one WAL flush for a whole batch: the bodies first (a body already held is kept),
// then the results and the bodies each holds; a result already recorded (same source, facility, control id and
// content) is left as it was. The rows returned are the results this batch recorded for the first time.
const recordStatement = (bodies: number, first: number) => `
with ${writeBodies(bodies, first)},
rb as (
  insert into result_bodies (result_id, sha256)
  select r, decode(s, 'hex') from unnest($20::text[], $21::text[]) as x (r, s)
  on conflict do nothing
)
insert into results (result_id, source, transport, sending_application, sending_facility, control_id, content_sha256,
  hl7_sha256, message_type, action, document_code, patient_ins, received_at, ack_reception, ack_read, patient_family, patient_given, patient_search,
  normalized, set_key)
select r, s, t, sa, sf, c, decode(ch, 'hex'), decode(hh, 'hex'), mt, a, dc, pi, ra, ar, ad, pf, pg, ps, nz::json, sk
from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
  $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::boolean[], $15::boolean[], $16::text[], $17::text[], $18::text[],
  $19::text[], $22::text[])
  as x (r, s, t, sa, sf, c, ch, hh, mt, a, dc, pi, ra, ar, ad, pf, pg, ps, nz, sk)
-- The order of unnest's rows is the order of the batch, so ids (and set ranks) follow the order of reception.
-- Any unique key: result_id derives from (source, facility, control id, content hash), so the two say the same, but a
-- copy committing side by side in another batch may be found first by either.
on conflict do nothing
returning result_id`;

const HL7_MEDIA_TYPE = 'x-application/hl7-v2+er7';

export class ResultStore {
  private readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
  }

  /**
   * Records a batch of received results durably (committed with synchronous_commit on) and says, for each, whether
   * it was already recorded: a retransmission, to be acknowledged again and not sent twice.
   */
  async record(results: ReceivedResult[]): Promise<boolean[]> {
    if (!results.length) return [];
    const hl7Sha = results.map((r) => sha256Of(r.hl7));
    const bodies = new Map<string, Body>();
    const held: [string, string][] = [];
    results.forEach((r, i) => {
      bodies.set(hl7Sha[i]!, { sha256: hl7Sha[i]!, mediaType: HL7_MEDIA_TYPE, content: r.hl7 });
      held.push([r.resultId, hl7Sha[i]!]);
      for (const d of r.documents ?? []) {
        bodies.set(d.sha256, d);
        held.push([r.resultId, d.sha256]);
      }
    });
    const col = <T>(f: (r: ReceivedResult) => T) => results.map(f);
    const columns = [
      col((r) => r.resultId), col((r) => r.source), col((r) => r.transport), col((r) => r.sendingApplication), col((r) => r.sendingFacility),
      col((r) => r.controlId), col((r) => r.contentSha256), hl7Sha,
      col((r) => r.messageType), col((r) => r.action), col((r) => r.documentCode), col((r) => r.patientIns ?? null),
      col((r) => new Date(r.receivedAt)), col((r) => r.ackReception), col((r) => r.ackRead),
      col((r) => r.patientFamily || null), col((r) => r.patientGiven || null), col((r) => patientSearchKey(r.patientFamily, r.patientGiven)),
      col((r) => (r.normalized === undefined ? null : JSON.stringify(r.normalized))),
      held.map(([r]) => r), held.map(([, s]) => s),
      col((r) => r.setKey ?? null),
    ];
    const sql = recordStatement(bodies.size, columns.length + 1);
    const params = [...textParams(columns), ...bodyParams(bodies.values())];
    const res = await retryDeadlock(() => this.pool.query<{ result_id: string }>(sql, params));
    const recorded = new Set(res.rows.map((r) => r.result_id));
    // Two copies in one batch: the first is the new one, the second a repeat.
    const seen = new Set<string>();
    return results.map((r) => {
      const repeat = !recorded.has(r.resultId) || seen.has(r.resultId);
      seen.add(r.resultId);
      return repeat;
    });
  }

  /** A result's stored record (the API and the tests read it; the console will search it). */
  async get(resultId: string): Promise<(Omit<ReceivedResult, 'hl7' | 'ackReception' | 'ackRead'> & { acknowledgedAt: number }) | undefined> {
    const res = await this.pool.query(
      `select result_id, source, transport, sending_application, sending_facility, control_id, encode(content_sha256, 'hex') as content_sha256,
        message_type, action, document_code, patient_ins, received_at, acknowledged_at from results where result_id = $1`,
      [resultId],
    );
    const r = res.rows[0] as Record<string, string | Date | null> | undefined;
    if (!r) return undefined;
    return {
      resultId: r['result_id'] as string, source: r['source'] as string, transport: r['transport'] as 'mllp' | 'kafka',
      sendingApplication: r['sending_application'] as string, sendingFacility: r['sending_facility'] as string, controlId: r['control_id'] as string,
      contentSha256: r['content_sha256'] as string, messageType: r['message_type'] as string, action: r['action'] as string,
      documentCode: r['document_code'] as string, ...(r['patient_ins'] ? { patientIns: r['patient_ins'] as string } : {}),
      receivedAt: (r['received_at'] as Date).getTime(), acknowledgedAt: (r['acknowledged_at'] as Date).getTime(),
    };
  }

  /** The message as received, from its content-addressed body. */
  async hl7Of(resultId: string): Promise<Buffer | undefined> {
    const res = await this.pool.query<{ content: Buffer | null }>(
      'select b.content from results r join bodies b on b.sha256 = r.hl7_sha256 where r.result_id = $1',
      [resultId],
    );
    return res.rows[0]?.content ?? undefined;
  }
}

/**
 * A statement PostgreSQL chose as a deadlock's victim (40P01) is run again, a few times: it did nothing, and two
 * batches that carry the same result or body, in different orders, may meet that way.
 */
async function retryDeadlock<T>(run: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 20));
    }
  }
}
