// The search of GET /api/v1/results on the real sandbox: results sent over MLLP to two listeners, routed, sent to the
// sandbox operator (delivered, refused, failed at SMTP, held without a DSN), then found by every filter, combined,
// page by page; refusals with their reason. Then the statements' plans on a few thousand rows, and the time limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoDefaults } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { buildSearch, connectPostgres, migrate, searchResults, SearchTimeoutError, type Pool } from '@mssgw/store';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { doctorAddress, loadSearchData } from '../../bench/search.ts';
import { makeCisisResult, PATIENTS, type SamplePatient, type SamplePractitioner } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';
import { apiClient, type ApiClient } from '../support/api.ts';

interface Summary {
  resultId: string; source: string; controlId: string; receivedAt: number; acknowledgedAt: number; documentCode: string; action: string;
  patient: { ins?: string; family?: string; given?: string }; recipients: Record<string, number>;
}
interface Page { results: Summary[]; next?: string }

describe('GET /api/v1/results: the search', () => {
  let gateway: Gateway;
  let base: string;
  let api: ApiClient;
  const t = tag();
  const noel = PATIENTS[2]!; // ESSAI-NOËL ÉLODIE
  const martin = PATIENTS[1]!; // DEMO-MARTIN LUC
  const lefevre: SamplePatient = { ins: '280017512345678', family: 'Lefèvre', given: 'Zoé', birthDate: '19800101', sex: 'F' };
  const lefebvre: SamplePatient = { ins: '180017512345699', family: 'LEFEBVRE', given: 'MARC', birthDate: '19800101', sex: 'M' };
  // The sandbox operator delivers any address of its domains, refuses "reject*" at RCPT (550) and holds "silent*" (no DSN).
  const doctor = (n: number, local: string): SamplePractitioner => ({ rpps: `81000000${String(n).padStart(4, '0')}`, family: 'DOC', given: `N${n}`, address: `${local}-${t}@cabinet-demo.mssante.test` });
  const a = doctor(1, 'search-a');
  const b = doctor(2, 'search-b');
  const rejected = doctor(3, 'reject-search');
  const silent = doctor(4, 'silent-search');
  // In the order sent: R1 is the oldest.
  const sent = [
    { name: 'R1', source: 'lab', o: { patient: noel, doctors: [a], extraAddresses: ['x@example.org'] }, states: { delivered: 1, refused: 1 } },
    { name: 'R2', source: 'imaging', o: { patient: noel, doctors: [b], kind: 'imaging' as const }, states: { delivered: 1 } },
    { name: 'R3', source: 'lab', o: { patient: martin, doctors: [a, b] }, states: { delivered: 2 } },
    { name: 'R4', source: 'lab', o: { patient: lefevre, doctors: [rejected] }, states: { failed: 1 } },
    { name: 'R5', source: 'imaging', o: { patient: lefebvre, doctors: [silent], kind: 'imaging' as const }, states: { submitted: 1 } },
    { name: 'R6', source: 'lab', o: { patient: martin, doctors: [a], toPatient: true }, states: { delivered: 2 } },
  ];
  const ids = new Map<string, string>(); // R1 → result id
  const names = new Map<string, string>(); // result id → R1

  const get = async (query: string): Promise<{ status: number; body: Page & { error?: string; reason?: string } }> => {
    const res = await api.fetch(`${base}/api/v1/results${query ? `?${query}` : ''}`);
    return { status: res.status, body: (await res.json()) as Page & { error?: string; reason?: string } };
  };
  /** The results a search finds, by their names in `sent`, newest first (one page of up to 500). */
  const found = async (params: Record<string, string>): Promise<string[]> => {
    const { status, body } = await get(new URLSearchParams({ ...params, limit: '500' }).toString());
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.next).toBeUndefined();
    return body.results.map((r) => names.get(r.resultId) ?? r.resultId);
  };

  beforeAll(async () => {
    gateway = await startGateway(testConfig('search', (c) => {
      c.mllp.listeners.push({ ...c.mllp.listeners[0]!, source: 'imaging' });
      c.mailboxes[0]!.sources = ['lab', 'imaging'];
    }));
    base = `http://127.0.0.1:${gateway.api!.port}`;
    api = await apiClient(gateway.ctx.pg, 'operator');
    for (const r of sent) {
      const listener = gateway.intake!.listeners.find((l) => l.source === r.source)!;
      const c = new MllpClient({ host: '127.0.0.1', port: listener.port });
      await c.connect();
      const ack = await c.send(makeCisisResult({ controlId: `S-${r.name}-${t}`, ...r.o }));
      await c.close();
      expect(ack.code).toBe('AA');
      const { body } = await get(`controlId=S-${r.name}-${t}`);
      ids.set(r.name, body.results[0]!.resultId);
    }
    for (const [n, id] of ids) names.set(id, n);
    // Every recipient where the operator leaves it: the DSNs of the delivered ones are read by the receipts sweep.
    await waitFor('every recipient in its final state', async () => {
      await gateway.receipts!.sweep();
      const { body } = await get('');
      return body.results?.length === sent.length && sent.every((r) => JSON.stringify(body.results.find((x) => x.resultId === ids.get(r.name))?.recipients) === JSON.stringify(r.states));
    }, 60_000, 500);
  });
  afterAll(async () => gateway?.stop());

  it('lists every result newest first with its summary, recipients counted by state', async () => {
    expect(await found({})).toEqual(['R6', 'R5', 'R4', 'R3', 'R2', 'R1']);
    const { body } = await get('');
    const r1 = body.results.find((r) => r.resultId === ids.get('R1'))!;
    const { receivedAt, acknowledgedAt, ...rest } = r1;
    expect(rest).toEqual({
      resultId: ids.get('R1'), source: 'lab', controlId: `S-R1-${t}`, documentCode: '11502-2', action: 'initial',
      patient: { ins: noel.ins, family: 'ESSAI-NOËL', given: 'ÉLODIE' }, recipients: { delivered: 1, refused: 1 },
    });
    expect(acknowledgedAt).toBeGreaterThanOrEqual(receivedAt);
    expect(Math.abs(receivedAt - Date.now())).toBeLessThan(120_000);
    // The counts are those of the result's own record.
    const full = (await (await api.fetch(`${base}/api/v1/results/${ids.get('R1')}`)).json()) as { deliveries: { state: string }[] };
    expect(full.deliveries.map((d) => d.state).sort()).toEqual(['delivered', 'refused']);
    expect(body.results.map((r) => r.receivedAt)).toEqual([...body.results.map((r) => r.receivedAt)].sort((x, y) => y - x));
  });

  it('finds by patient (INS), source, document type and recipient (exact, any case)', async () => {
    expect(await found({ patient: martin.ins })).toEqual(['R6', 'R3']);
    expect(await found({ patient: '180126511000158' })).toEqual([]);
    expect(await found({ source: 'imaging' })).toEqual(['R5', 'R2']);
    expect(await found({ source: 'lab' })).toEqual(['R6', 'R4', 'R3', 'R1']);
    expect(await found({ documentType: '18748-4' })).toEqual(['R5', 'R2']);
    expect(await found({ documentType: '11502-2' })).toEqual(['R6', 'R4', 'R3', 'R1']);
    expect(await found({ recipient: a.address! })).toEqual(['R6', 'R3', 'R1']);
    expect(await found({ recipient: a.address!.toUpperCase() })).toEqual(['R6', 'R3', 'R1']);
    expect(await found({ recipient: `${martin.ins}@patient.mssante.fr` })).toEqual(['R6']);
    expect(await found({ recipient: 'X@Example.ORG' })).toEqual(['R1']);
    expect(await found({ recipient: `search-a-${t}` })).toEqual([]);
  });

  it('finds by a prefix of the family name (or "family given"), whatever the case and accents', async () => {
    for (const name of ['essai', 'Essai-Noël', 'ESSAI NOEL', 'essai-noel elo', 'ESSAI-NOËL ÉLODIE', ' essai  noël,élodie ']) {
      expect(await found({ name }), name).toEqual(['R2', 'R1']);
    }
    expect(await found({ name: 'noel' })).toEqual([]); // a prefix of the family name, not any word
    expect(await found({ name: 'essai noel elodie x' })).toEqual([]);
    expect(await found({ name: 'lefe' })).toEqual(['R5', 'R4']);
    expect(await found({ name: 'Lefèvre' })).toEqual(['R4']);
    expect(await found({ name: 'LEFEVRE ZOE' })).toEqual(['R4']);
    expect(await found({ name: 'lefebvre' })).toEqual(['R5']);
    expect(await found({ name: 'demo martin' })).toEqual(['R6', 'R3']);
  });

  it('finds results with a recipient in a state; with a recipient too, that recipient in that state', async () => {
    expect(await found({ state: 'delivered' })).toEqual(['R6', 'R3', 'R2', 'R1']);
    expect(await found({ state: 'refused' })).toEqual(['R1']);
    expect(await found({ state: 'failed' })).toEqual(['R4']);
    expect(await found({ state: 'submitted' })).toEqual(['R5']);
    expect(await found({ state: 'displayed' })).toEqual([]);
    expect(await found({ recipient: a.address!, state: 'delivered' })).toEqual(['R6', 'R3', 'R1']);
    // R1 has a refused recipient, but not this one.
    expect(await found({ recipient: a.address!, state: 'refused' })).toEqual([]);
  });

  it('finds by reception time: from included, to excluded, a date alone a whole UTC day', async () => {
    const { body } = await get('');
    const at = (n: string) => body.results.find((r) => r.resultId === ids.get(n))!.receivedAt;
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await found({ from: iso(at('R3')) })).toEqual(['R6', 'R5', 'R4', 'R3']);
    expect(await found({ to: iso(at('R3')) })).toEqual(['R2', 'R1']);
    expect(await found({ from: iso(at('R2')), to: iso(at('R5')) })).toEqual(['R4', 'R3', 'R2']);
    // The same instant written in another zone.
    const paris = new Date(at('R3') + 3_600_000).toISOString().replace('Z', '+01:00');
    expect(await found({ from: paris })).toEqual(['R6', 'R5', 'R4', 'R3']);
    const day = (ms: number) => iso(ms).slice(0, 10);
    const all = sent.map((r) => r.name).reverse();
    expect(await found({ from: day(at('R1')), to: day(at('R6')) })).toEqual(all);
    expect(await found({ from: day(at('R6') + 86_400_000) })).toEqual([]);
    expect(await found({ to: day(at('R1') - 86_400_000) })).toEqual([]);
  });

  it('combines filters', async () => {
    expect(await found({ name: 'lefe', source: 'imaging' })).toEqual(['R5']);
    expect(await found({ name: 'essai', documentType: '18748-4' })).toEqual(['R2']);
    expect(await found({ patient: martin.ins, recipient: b.address! })).toEqual(['R3']);
    expect(await found({ state: 'delivered', source: 'lab', name: 'ESSAI' })).toEqual(['R1']);
    expect(await found({ state: 'delivered', documentType: '18748-4', patient: noel.ins, recipient: b.address! })).toEqual(['R2']);
    expect(await found({ state: 'failed', source: 'imaging' })).toEqual([]);
  });

  it('pages newest first with a cursor, without a result twice or missing, with or without a recipient filter', async () => {
    for (const [filters, expected] of [
      [{}, ['R6', 'R5', 'R4', 'R3', 'R2', 'R1']],
      // R3 and R6 have two delivered recipients each: listed once.
      [{ state: 'delivered' }, ['R6', 'R3', 'R2', 'R1']],
      [{ source: 'lab' }, ['R6', 'R4', 'R3', 'R1']],
    ] as [Record<string, string>, string[]][]) {
      for (const limit of [1, 2, 4]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const { status, body } = await get(new URLSearchParams({ ...filters, limit: String(limit), ...(cursor ? { cursor } : {}) }).toString());
          expect(status).toBe(200);
          expect(body.results.length).toBeLessThanOrEqual(limit);
          seen.push(...body.results.map((r) => names.get(r.resultId)!));
          cursor = body.next;
          pages++;
        } while (cursor);
        expect(seen, `${JSON.stringify(filters)} by ${limit}`).toEqual(expected);
        expect(pages).toBe(Math.ceil(expected.length / limit));
      }
    }
    // 50 by default.
    expect((await get('')).body.results).toHaveLength(6);
  });

  it('answers 400 with the parameter at fault, never its value', async () => {
    const cases: [string, RegExp][] = [
      ['limit=0', /limit must be >= 1/],
      ['limit=501', /limit must be <= 500/],
      ['limit=lots', /limit must be integer/],
      ['state=lost', /state must be equal to one of the allowed values/],
      ['patient=INS%20SECRET', /patient must match pattern/],
      ['documentType=%2511502', /documentType must match pattern/],
      ['name=%2D%2D', /^name must have a letter or a digit$/],
      ['from=2026-02-30', /^from must be an ISO 8601 date/],
      ['to=2031-05-04T08:15', /^to must be an ISO 8601 date/],
      ['from=2031-05-05&to=2031-05-04', /^from must be before to$/],
      ['cursor=c2VjcmV0', /^cursor is not one this API gave$/],
      ['patien=280017512345678', /^unknown parameter patien$/],
      [`controlId=S-R1-${t}&patient=280017512345678`, /^controlId or documentId is looked up alone$/],
      ['name=', /name must NOT have fewer than 1 characters/],
    ];
    for (const [query, reason] of cases) {
      const { status, body } = await get(query);
      expect([status, body.error], query).toEqual([400, 'bad-request']);
      expect(body.reason, query).toMatch(reason);
      for (const [, v] of new URLSearchParams(query)) if (v.length > 3) expect(body.reason, query).not.toContain(v);
    }
  });

  it('still looks up by control id and by document id, with the full records', async () => {
    const { body } = await get(`controlId=S-R3-${t}`);
    expect(body.results.map((r) => r.resultId)).toEqual([ids.get('R3')]);
    expect((body.results[0] as unknown as { deliveries: unknown[] }).deliveries).toHaveLength(2);
    const byDoc = await get(`documentId=${encodeURIComponent(`1.2.250.1.999.2.1^DOC-S-R2-${t}`)}`);
    expect(byDoc.body.results.map((r) => r.resultId)).toEqual([ids.get('R2')]);
  });
});

describe('the search statements on a few thousand results', () => {
  let pool: Pool;
  const schema = `test_search_plans_${tag()}`;

  beforeAll(async () => {
    pool = connectPostgres({ ...demoDefaults().postgres, schema, poolSize: 2 }, 'mssgw-test');
    await migrate(pool);
    await loadSearchData(pool, 3_000);
  });
  afterAll(async () => {
    await pool?.query(`drop schema if exists ${schema} cascade`);
    await pool?.end();
  });

  /** The scans of a search's plan: "Index Scan:results_source", "Seq Scan:results"... */
  const scans = async (q: Parameters<typeof buildSearch>[0]): Promise<string[]> => {
    const { text, values } = buildSearch(q);
    const plan = (await pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`explain (format json) ${text}`, values)).rows[0]!['QUERY PLAN'][0].Plan;
    interface PlanNode { 'Node Type': string; 'Index Name'?: string; 'Relation Name'?: string; Plans?: PlanNode[] }
    const out: string[] = [];
    const walk = (p: PlanNode) => {
      if (p['Node Type'].endsWith('Scan')) out.push(`${p['Node Type']}:${p['Index Name'] ?? p['Relation Name'] ?? ''}`);
      (p.Plans ?? []).forEach(walk);
    };
    walk(plan);
    return out;
  };

  it('read each filter through its index, never a whole table', async () => {
    const { rows: [one] } = await pool.query<{ patient_ins: string; patient_family: string; patient_given: string }>(
      'select patient_ins, patient_family, patient_given from results where patient_ins is not null and patient_family is not null order by id limit 1');
    const expected: [Parameters<typeof buildSearch>[0], RegExp][] = [
      [{ limit: 50 }, /Index Scan:results_received/],
      [{ patientIns: one!.patient_ins, limit: 50 }, /Scan:results_patient_ins/],
      [{ name: `${one!.patient_family} ${one!.patient_given}`, limit: 50 }, /Scan:results_patient_search/],
      [{ source: 'pathology', limit: 50 }, /Index Scan:results_source/],
      [{ documentCode: '11526-1', limit: 50 }, /Index Scan:results_document_code/],
      [{ recipient: doctorAddress(5), limit: 50 }, /Scan:deliveries_recipient/],
      [{ state: 'failed', limit: 50 }, /Scan:deliveries_state/],
      [{ state: 'delivered', limit: 50 }, /Scan:deliveries_state/],
      [{ from: new Date(Date.now() - 10 * 86_400_000).toISOString(), to: new Date(Date.now() - 9 * 86_400_000).toISOString(), limit: 50 }, /Index Scan:results_received/],
    ];
    for (const [q, index] of expected) {
      const s = await scans(q);
      expect(s.join(' '), JSON.stringify(q)).toMatch(index);
      expect(s.filter((x) => x.startsWith('Seq Scan')), JSON.stringify(q)).toEqual([]);
    }
  });

  it('look a "family given" up in the name index first (the planner may think it names thousands), not a family name alone, a one-letter given name, nor with an INS', async () => {
    // On 1,000,000 results a misestimated "family given" walked the results newest first: 200-700 ms (docs/benchmarks.md).
    const cte = async (q: Parameters<typeof buildSearch>[0]) => (await scans(q)).filter((x) => x.startsWith('CTE Scan'));
    expect(await cte({ name: 'Dupont Marie', limit: 50 })).toHaveLength(1);
    expect((await scans({ name: 'Dupont Marie', state: 'delivered', limit: 50 })).join(' ')).toMatch(/Scan:results_patient_search/);
    expect(await cte({ name: 'Dupont', limit: 50 })).toEqual([]);
    // A given name of one letter so far may still name thousands: newest first too.
    expect(await cte({ name: 'Dupont M', limit: 50 })).toEqual([]);
    expect(await cte({ name: 'Dupont Marie', patientIns: '255069999999934', limit: 50 })).toEqual([]);
  });

  it('stop at their time limit', async () => {
    // A search that waits for a lock cannot finish in time.
    const holder = await pool.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table results in access exclusive mode');
      await expect(searchResults(pool, { limit: 50 }, { timeoutMs: 200 })).rejects.toBeInstanceOf(SearchTimeoutError);
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    expect((await searchResults(pool, { limit: 50 })).results).toHaveLength(50);
  });
});
