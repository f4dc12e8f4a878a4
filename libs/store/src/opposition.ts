import type { Pool } from './postgres.ts';

/** Which way an opposition goes: mails to the patient, or mails about the patient to professionals. */
export type OppositionDirection = 'patient' | 'professionals';
export const OPPOSITION_DIRECTIONS: readonly OppositionDirection[] = ['patient', 'professionals'];

/**
 * Whom an opposition names: an INS; an IPP with the facility that assigned it (an IPP alone means nothing across
 * facilities); or, from an opposition file of the old format, a bare id matched as an INS or an IPP of any facility.
 */
export type OppositionSubject = { idType: 'ins'; patientId: string } | { idType: 'ipp'; patientId: string; facility: string } | { idType: 'any'; patientId: string };

/** Who recorded an opposition: the opposition file (kept in step with it), the CLI, the API. */
export type OppositionOrigin = 'file' | 'cli' | 'api';

export type NewOpposition = OppositionSubject & { direction: OppositionDirection; opposedAt: number };

export interface Opposition {
  id: string;
  idType: OppositionSubject['idType'];
  patientId: string;
  /** The facility that assigned an IPP ('' otherwise). */
  facility: string;
  direction: OppositionDirection;
  opposedAt: number;
  recordedAt: number;
  origin: OppositionOrigin;
}

/** A patient as a result names them: the INS, the IPP, and the facility that sent it (MSH-4). */
export interface PatientIds {
  ins?: string | undefined;
  ipp?: string | undefined;
  facility: string;
}

/** The oppositions of one patient: those under the INS (or an old bare id), or under the IPP of this facility. */
export const OPPOSITION_MATCH = (ins: string, ipp: string, facility: string) => `
  (o.id_type in ('ins', 'any') and o.patient_id = ${ins})
  or (o.id_type = 'any' and o.patient_id = ${ipp})
  or (o.id_type = 'ipp' and o.patient_id = ${ipp} and lower(o.facility) = lower(${facility}))`;

interface Row {
  id: string; id_type: Opposition['idType']; patient_id: string; facility: string; direction: OppositionDirection;
  opposed_at: Date; recorded_at: Date; origin: OppositionOrigin;
}
const COLUMNS = 'id::text, id_type, patient_id, facility, direction, opposed_at, recorded_at, origin';
const of = (r: Row): Opposition => ({
  id: r.id, idType: r.id_type, patientId: r.patient_id, facility: r.facility, direction: r.direction,
  opposedAt: r.opposed_at.getTime(), recordedAt: r.recorded_at.getTime(), origin: r.origin,
});
const facilityOf = (s: OppositionSubject) => (s.idType === 'ipp' ? s.facility : '');

/**
 * The patients' oppositions (migration 0008), in the message store: recorded by the CLI or the API, or imported from
 * the opposition file; read by the router for each result and, in the dispatcher's outbound statement, before each send.
 */
export class OppositionStore {
  private readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
  }

  /** Records oppositions; one already recorded (same id, facility, direction) keeps its date and origin. Returns the rows created. */
  async add(list: NewOpposition[], origin: OppositionOrigin): Promise<Opposition[]> {
    if (!list.length) return [];
    const res = await this.pool.query<Row>(
      `insert into oppositions (id_type, patient_id, facility, direction, opposed_at, origin)
       select * , $6 from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
       on conflict (id_type, patient_id, facility, direction) do nothing
       returning ${COLUMNS}`,
      [list.map((o) => o.idType), list.map((o) => o.patientId), list.map(facilityOf), list.map((o) => o.direction), list.map((o) => new Date(o.opposedAt)), origin],
    );
    return res.rows.map(of);
  }

  /** Removes a patient's oppositions (in one direction, or both). Returns the rows removed. */
  async remove(subject: OppositionSubject, direction?: OppositionDirection): Promise<Opposition[]> {
    const res = await this.pool.query<Row>(
      `delete from oppositions where id_type = $1 and patient_id = $2 and facility = $3 and ($4::text is null or direction = $4) returning ${COLUMNS}`,
      [subject.idType, subject.patientId, facilityOf(subject), direction ?? null],
    );
    return res.rows.map(of);
  }

  /** Removes one opposition by its row id; undefined when there is none. */
  async removeById(id: string): Promise<Opposition | undefined> {
    if (!/^\d{1,18}$/.test(id)) return undefined;
    const res = await this.pool.query<Row>(`delete from oppositions where id = $1::bigint returning ${COLUMNS}`, [id]);
    return res.rows[0] ? of(res.rows[0]) : undefined;
  }

  /** Every opposition recorded (or those naming one id), oldest first. */
  async list(filter: { patientId?: string; limit?: number } = {}): Promise<Opposition[]> {
    const limit = Math.min(Math.max(Math.trunc(filter.limit ?? 1000), 1), 100_000);
    const res = await this.pool.query<Row>(
      `select ${COLUMNS} from oppositions where ($1::text is null or patient_id = $1) order by id limit ${limit}`,
      [filter.patientId ?? null],
    );
    return res.rows.map(of);
  }

  async count(): Promise<number> {
    return Number((await this.pool.query<{ n: string }>('select count(*) as n from oppositions')).rows[0]!.n);
  }

  /** The oppositions that apply to a result's patient (see OPPOSITION_MATCH). */
  async forPatient(p: PatientIds): Promise<Opposition[]> {
    if (!p.ins && !p.ipp) return [];
    const res = await this.pool.query<Row>({
      name: 'oppositions_for_patient',
      text: `select ${COLUMNS} from oppositions o where ${OPPOSITION_MATCH('$1', '$2', '$3')} order by o.id`,
      values: [p.ins ?? null, p.ipp ?? null, p.facility],
    });
    return res.rows.map(of);
  }

  /**
   * Keeps the oppositions that came from the file in step with it, in one transaction: those of the file are added
   * (with the file's date, else now), those of an earlier file that it no longer lists are removed. Oppositions
   * recorded by the CLI or the API are left as they are.
   */
  async syncFile(list: NewOpposition[]): Promise<{ added: number; removed: number; total: number }> {
    const key = (o: { idType: string; patientId: string; facility: string; direction: string }) => `${o.idType}\u0000${o.patientId}\u0000${o.facility}\u0000${o.direction}`;
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      // One import at a time (every router watches the same file).
      await client.query("select pg_advisory_xact_lock(hashtext('mssgw oppositions file'))");
      const current = (await client.query<Row>(`select ${COLUMNS} from oppositions where origin = 'file'`)).rows.map(of);
      const wanted = new Set(list.map((o) => key({ ...o, facility: facilityOf(o) })));
      const gone = current.filter((o) => !wanted.has(key(o))).map((o) => o.id);
      if (gone.length) await client.query('delete from oppositions where id = any($1::bigint[])', [gone]);
      const res = list.length
        ? await client.query(
          `insert into oppositions (id_type, patient_id, facility, direction, opposed_at, origin)
           select *, 'file' from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
           on conflict (id_type, patient_id, facility, direction) do nothing`,
          [list.map((o) => o.idType), list.map((o) => o.patientId), list.map(facilityOf), list.map((o) => o.direction), list.map((o) => new Date(o.opposedAt))],
        )
        : { rowCount: 0 };
      await client.query('commit');
      return { added: res.rowCount ?? 0, removed: gone.length, total: list.length };
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}
