// Result search (the operator console) on a message store of 1,000,000 results with 2.5 recipients each: bulk-loaded
// into a schema of its own with insert ... select generate_series, then a fixed mix of searches, one at a time. While
// the store is loaded, a caller may run more on it (`whileLoaded`: bench/console.ts drives the console on it).
import { randomBytes } from 'node:crypto';
import { demoConfig } from '@mssgw/config';
import { connectPostgres, decodeCursor, migrate, patientSearchKey, searchResults, type Pool, type ResultSearch } from '@mssgw/store';
import { percentile, round } from './stats.ts';

export interface SearchBench {
  results: number;
  deliveries: number;
  loadSeconds: number;
  /** Per search kind: how many searches, p50 and p95 in ms (the whole call: statement, rows, summaries). */
  kinds: Record<string, { searches: number; p50Ms: number; p95Ms: number; maxMs: number }>;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** Tables with their indexes (and TOAST), and each index, in bytes. */
  bytes: { results: number; deliveries: number; indexes: Record<string, number> };
  bytesPerResult: number;
  /** What search adds: its six indexes (migration 0003), per result. */
  searchIndexBytesPerResult: number;
}

/** The indexes migration 0003 adds for the search. */
const SEARCH_INDEXES = ['results_patient_search', 'results_source', 'results_document_code', 'deliveries_state', 'deliveries_recipient', 'deliveries_result_row'];

const log = (s: string) => console.log(`[search] ${s}`);

// Family names as registers write them (accents, hyphens, particles), a long tail made of syllables, and given names.
export const FAMILIES = (
  'MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON MICHEL LEFÈVRE LEROY ROUX DAVID ' +
  'BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT FONTAINE ROUSSEAU VINCENT MÜLLER MERCIER BLANC GUÉRIN BOYER ' +
  'GARNIER CHEVALIER FRANÇOIS LEGRAND GAUTHIER GARCIA PERRIN ROBIN CLÉMENT MORIN NICOLAS HENRY ROUSSEL MATHIEU MASSON ' +
  'MARCHAND DUVAL DENIS DUMONT LEMAIRE NOËL MEYER DUFOUR MEUNIER BRUN BLANCHARD GIRAUD JOLY RIVIÈRE LUCAS BRUNET ' +
  'GAILLARD BARBIER ARNAUD MARTÍNEZ GÉRARD ROCHE RENARD SCHMITT ROY LEROUX COLIN VIDAL CARON PICARD ROGER FABRE ' +
  'AUBERT LEMOINE RENAUD DUMAS LACROIX OLIVIER PHILIPPE BOURGEOIS PIERRE BENOÎT REY LECLERC PAYET ROLLAND LECLERCQ ' +
  'GUILLAUME LECOMTE LOPEZ JEAN DUPUY GUILLOT HUBERT BERGER CARPENTIER SANCHEZ DUPUIS MOULIN LOUIS DESCHAMPS HUET ' +
  'VASSEUR PEREZ BOUCHER FLEURY ROYER KLEIN JACQUET ADAM PARIS POIRIER MARTY AUBRY GUYOT CARRÉ CHARLES RENAULT ' +
  'CHARPENTIER MÉNARD MAILLARD BARON BERTIN BAILLY HERVÉ SCHNEIDER FERNANDEZ LE_GALL COLLET LÉGER BOUVIER JULIEN ' +
  "PRÉVOST MILLET PERROT DANIEL LE_ROUX COUSIN GERMAIN BRETON BESSON LANGLOIS RÉMY LE_GOFF PELLETIER LÉVÊQUE D'ALMEIDA " +
  'LEBLANC BARRÉ LEBRUN MARCHAL WEBER MALLET HAMON BOULANGER JACOB MONNIER MICHAUD RODRIGUEZ GUICHARD GILLET ÉTIENNE ' +
  'GRONDIN POULAIN TESSIER CHEVALLIER COLLIN CHAUVIN DA_SILVA BOUCHET GAY LEMAÎTRE BÉNARD MARÉCHAL HUMBERT REYNAUD ' +
  'ANTOINE HOARAU PERRET BARTHÉLEMY CORDIER PICHON LEJEUNE GILBERT LAMY DELAUNAY PASQUIER CARLIER LAPORTE ŒUVRARD'
).split(' ').map((f) => f.replace(/_/g, ' '));
const SYLLABLES = 'ker bra gan lou mor ven ta ri do sa lin bel cha pon vil rou mar tel gra fon nou del gui bre cou lan vor mez tru'.split(' ');
const GIVEN = (
  'Jean Marie Élodie Anaïs Zoé Chloé Loïc Gaël Hélène François Céline Jérôme Noémie Léa Louis Gabriel Raphaël Jules Adam ' +
  'Lucas Emma Jade Louise Alice Inès Léna Lina Mila Ambre Julia Hugo Arthur Maël Paul Nathan Théo Sacha Noah Rose Anna ' +
  'Agnès Béatrice Josée Hervé Rémi Stéphane Frédéric Benoît Geneviève Françoise Thérèse Joël Maëlle Clémence Aurélie'
).split(' ');

/** A seeded generator: the same data, and the same searches, on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface BenchPatient { ins: string; family: string; given: string }

/** Patients: 70 % with a common name (skewed, as surnames are), the rest a rarer one; an INS each. */
export function makePatients(n: number): BenchPatient[] {
  const rnd = random(21);
  const title = (s: string) => s[0]!.toUpperCase() + s.slice(1);
  return Array.from({ length: n }, (_, i) => {
    const family = rnd() < 0.7
      ? FAMILIES[Math.floor(FAMILIES.length * rnd() ** 2)]!
      : Array.from({ length: 2 + Math.floor(rnd() * 2) }, () => SYLLABLES[Math.floor(rnd() * SYLLABLES.length)]!).join('').toUpperCase();
    const given = GIVEN[Math.floor(GIVEN.length * rnd() ** 1.5)]!;
    return { ins: `${1 + (i % 2)}${String(i + 1).padStart(12, '0')}${String((i * 7) % 97).padStart(2, '0')}`, family, given: rnd() < 0.1 ? title(given.toLowerCase()) : given.toUpperCase() };
  });
}

const DOCTORS = 20_000;
/** Where the k-th practitioner (by rank: the first ones receive the most) gets mail; a few are written in capitals. */
export const doctorAddress = (k: number) => (k % 10 === 3 ? `Dr.${k}@Cabinet-${k % 700}.MSSante.fr` : `dr.${k}@cabinet-${k % 700}.mssante.fr`);
export const PATHOLOGY = '11526-1';

// u(x, seed): a uniform number in [0, 1) from a hash, so each column draws independently and reproducibly.
const U = (x: string, seed: number) => `(((hashint8extended(${x}, ${seed}) % 1000000) + 1000000) % 1000000)::float8 / 1e6`;

/** How many of `n` results fall in the last 24 hours by default: 3 % (30,000 of 1,000,000: a hospital's busy day). */
export const lastDayShare = (n: number) => Math.round(n * 0.03);

/**
 * Loads `n` results (ids in the order of reception, as the intake writes them): `lastDay` of them received over the
 * last 24 hours (the day the console's overview counts), the others spread evenly over the 364 days before. Each has
 * 2 or 3 recipients: the patient (from a qualified INS, most of the time) and practitioners drawn from 20,000, the
 * first ranks receiving most. States: the recipients of the last 300 results still in flight, the others final in
 * proportions of a working gateway (55 % delivered, 20 % displayed, 6 % refused, 3 % failed...), the last day too.
 */
export async function loadSearchData(pool: Pool, n: number, lastDay = lastDayShare(n)): Promise<void> {
  const patients = makePatients(Math.max(10, Math.round(n * 0.3)));
  const end = Date.now() - 60_000;
  const day = Math.min(Math.max(0, Math.round(lastDay)), n - 1);
  const older = n - day;
  const stepUs = Math.floor((364 * 86_400_000_000) / older);
  const dayStepUs = Math.floor(86_400_000_000 / Math.max(1, day));
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(`create temporary table bench_patients (n integer primary key, ins text, family text, given text, search text) on commit drop`);
    await client.query(
      'insert into bench_patients select * from unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[])',
      [patients.map((_, i) => i), patients.map((p) => p.ins), patients.map((p) => p.family), patients.map((p) => p.given), patients.map((p) => patientSearchKey(p.family, p.given))],
    );
    const body = randomBytes(32);
    await client.query(`insert into bodies (sha256, media_type, size, content) values ($1, 'x-application/hl7-v2+er7', 7400, null)`, [body]);
    await client.query(`
      insert into results (result_id, source, transport, sending_application, sending_facility, control_id, content_sha256, hl7_sha256,
        message_type, action, document_code, patient_ins, received_at, acknowledged_at, ack_reception, ack_read, routed_at,
        patient_family, patient_given, patient_search)
      select 'r-' || lpad(to_hex(g), 24, '0'), src, case when src = 'lab-kafka' then 'kafka' else 'mllp' end, 'SIL-BENCH', 'CHU-BENCH',
        'BENCH-' || g, sha256(int8send(g)), $1, 'ORU^R01',
        case when ${U('g', 2)} < 0.97 then 'initial' when ${U('g', 2)} < 0.995 then 'replace' else 'delete' end,
        case src when 'radiology' then '18748-4' when 'pathology' then '${PATHOLOGY}' else case when ${U('g', 3)} < 0.95 then '11502-2' else '34117-2' end end,
        case when ${U('g', 4)} < 0.05 then null else p.ins end, at, at + interval '2 milliseconds', true, ${U('g', 5)} < 0.3, at + interval '40 milliseconds',
        p.family, p.given, p.search
      from (
        select g, case when g <= ${older}
            then to_timestamp(${(end - 365 * 86_400_000) / 1000}) + ((g - 1) * ${stepUs}::bigint + floor(${U('g', 6)} * ${stepUs}))::bigint * interval '1 microsecond'
            else to_timestamp(${(end - 86_400_000) / 1000}) + ((g - ${older} - 1) * ${dayStepUs}::bigint + floor(${U('g', 6)} * ${dayStepUs}))::bigint * interval '1 microsecond'
          end as at,
          case when ${U('g', 1)} < 0.60 then 'lab' when ${U('g', 1)} < 0.85 then 'radiology' when ${U('g', 1)} < 0.95 then 'lab-kafka' else 'pathology' end as src,
          (hashint8extended(g, 7) % $2 + $2) % $2 as pn
        from generate_series(1, $3::bigint) g) x
      join bench_patients p on p.n = x.pn
      order by g`, [body, patients.length, n]);
    // The recipients: 2 or 3 per result; the first is the patient 70 % of the time. Their copy of the result's place
    // (received_at, result_row) is written here rather than looked up by the trigger, for speed.
    await client.query('alter table deliveries disable trigger deliveries_result_order');
    await client.query(`
      insert into deliveries (delivery_id, result_id, recipient, recipient_id, kind, state, mail_id, message_id, mailbox, reason, dsn_status,
        updated_at, submitted_at, received_at, result_row)
      select 'd-' || lpad(to_hex(r.id * 4 + j), 24, '0'), r.result_id, who.recipient, who.recipient_id, who.kind, st.state,
        r.result_id || case who.kind when 'patient' then '-pat' else '-ps' end,
        '<' || r.result_id || case who.kind when 'patient' then '-pat' else '-ps' end || '@chu-bench.mssante.fr>',
        'labo-noreply@chu-bench.mssante.fr',
        case st.state when 'refused' then 'not-whitelisted' when 'failed' then '5.1.1' when 'unconfirmed' then 'no-final-dsn' end,
        case when st.state in ('delivered', 'displayed', 'processed', 'relayed', 'failed') then '2.0.0' end,
        r.received_at + interval '5 minutes', case when st.state not in ('refused', 'queued') then r.received_at + interval '1 second' end,
        r.received_at, r.id
      from results r
      cross join lateral generate_series(0, 1 + r.id % 2) j
      cross join lateral (select case
        when j = 0 and r.patient_ins is not null and ${U('r.id', 10)} < 0.7 then 'patient'
        else 'professional' end as kind, floor(${DOCTORS} * (${U('r.id * 4 + j', 11)}) ^ 2)::int as k) k
      cross join lateral (select k.kind,
        case k.kind when 'patient' then r.patient_ins || '@patient.mssante.fr'
          else case when k.k % 10 = 3 then 'Dr.' || k.k || '@Cabinet-' || k.k % 700 || '.MSSante.fr' else 'dr.' || k.k || '@cabinet-' || k.k % 700 || '.mssante.fr' end end as recipient,
        case k.kind when 'patient' then r.patient_ins else '8' || lpad(k.k::text, 10, '0') end as recipient_id) who
      cross join lateral (select case
        when r.id > $1 - 300 then (array['queued', 'submitted', 'delayed'])[1 + (r.id * 4 + j) % 3]
        else case
          when ${U('r.id * 4 + j', 12)} < 0.55 then 'delivered' when ${U('r.id * 4 + j', 12)} < 0.75 then 'displayed'
          when ${U('r.id * 4 + j', 12)} < 0.77 then 'processed' when ${U('r.id * 4 + j', 12)} < 0.83 then 'refused'
          when ${U('r.id * 4 + j', 12)} < 0.86 then 'failed' when ${U('r.id * 4 + j', 12)} < 0.88 then 'unconfirmed'
          when ${U('r.id * 4 + j', 12)} < 0.91 then 'relayed' when ${U('r.id * 4 + j', 12)} < 0.915 then 'deleted'
          when ${U('r.id * 4 + j', 12)} < 0.92 then 'dead-lettered' when ${U('r.id * 4 + j', 12)} < 0.923 then 'processing-error'
          when ${U('r.id * 4 + j', 12)} < 0.925 then 'expanded' when ${U('r.id * 4 + j', 12)} < 0.93 then 'delayed'
          else 'delivered' end end as state) st
      order by r.id, j`, [n]);
    await client.query('alter table deliveries enable trigger deliveries_result_order');
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  } finally {
    client.release();
  }
  await pool.query('vacuum analyze results');
  await pool.query('vacuum analyze deliveries');
  await pool.query('vacuum analyze bodies');
}

/** The fixed mix: each kind of search with 20 values drawn from the data, the same on every run. */
export function searchMix(n: number): [kind: string, query: ResultSearch][] {
  const rnd = random(7);
  const patients = makePatients(Math.max(10, Math.round(n * 0.3)));
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
  const days = (d: number) => new Date(Date.now() - d * 86_400_000).toISOString().slice(0, 10);
  const dayEnd = (d: number) => new Date(Date.now() - (d - 1) * 86_400_000).toISOString().slice(0, 10);
  const limit = 50;
  const mix: [string, (i: number) => Omit<ResultSearch, 'limit'>][] = [
    ['newest (no filter)', () => ({})],
    ['patient (INS)', () => ({ patientIns: pick(patients).ins })],
    ['name: whole family name', () => ({ name: pick(FAMILIES) })],
    ['name: "family given"', () => { const p = pick(patients); return { name: `${p.family} ${p.given}` }; }],
    ['name: 3 letters', () => ({ name: pick(FAMILIES).slice(0, 3).toLowerCase() })],
    ['name: 1 letter', () => ({ name: pick('abcdefghijlmnoprstv'.split('')) })],
    ['name: no match', (i) => ({ name: `zz${i}` })],
    ['source', (i) => ({ source: ['lab', 'radiology', 'lab-kafka', 'pathology'][i % 4]! })],
    ['documentType', (i) => ({ documentCode: ['11502-2', '18748-4', PATHOLOGY, '34117-2'][i % 4]! })],
    ['recipient: busiest practitioners', (i) => ({ recipient: doctorAddress(i) })],
    ['recipient: other practitioners', () => ({ recipient: doctorAddress(Math.floor(rnd() * DOCTORS)).toUpperCase() })],
    ['recipient: patient', () => ({ recipient: `${pick(patients).ins}@patient.mssante.fr` })],
    ['state', (i) => ({ state: ['failed', 'dead-lettered', 'queued', 'delivered', 'processing-error', 'unconfirmed', 'refused', 'expanded', 'submitted', 'deleted'][i % 10]! })],
    ['from/to: one day', () => { const d = 1 + Math.floor(rnd() * 360); return { from: `${days(d)}T00:00:00Z`, to: `${dayEnd(d)}T00:00:00Z` }; }],
    ['from: last 30 days', () => ({ from: `${days(30)}T00:00:00Z` })],
    ['state + source + from', (i) => ({ state: ['failed', 'dead-lettered', 'unconfirmed'][i % 3]!, source: ['radiology', 'pathology'][i % 2]!, from: `${days(30 + i * 10)}T00:00:00Z` })],
    ['name + documentType', (i) => ({ name: pick(FAMILIES).slice(0, 2 + (i % 4)), documentCode: ['18748-4', PATHOLOGY][i % 2]! })],
    ['recipient + state', (i) => ({ recipient: doctorAddress(i * 3), state: ['displayed', 'failed', 'refused', 'processing-error'][i % 4]! })],
    ['patient + state', () => ({ patientIns: pick(patients).ins, state: 'delivered' })],
    ['rare: state + documentType + source', (i) => ({ state: ['processing-error', 'expanded'][i % 2]!, documentCode: '34117-2', source: 'lab-kafka' })],
    ['name + state', (i) => { const p = pick(patients); return { name: `${p.family} ${p.given}`, state: ['delivered', 'displayed', 'failed', 'refused'][i % 4]! }; }],
    ['name prefix + state', (i) => ({ name: pick(FAMILIES).slice(0, 3), state: ['failed', 'dead-lettered', 'delivered', 'unconfirmed'][i % 4]! })],
    ['recipient + from/to', (i) => { const d = 20 + Math.floor(rnd() * 300); return { recipient: doctorAddress(i), from: `${days(d)}T00:00:00Z`, to: `${dayEnd(d)}T00:00:00Z` }; }],
    ['state + from/to', (i) => { const d = 20 + Math.floor(rnd() * 300); return { state: ['failed', 'delivered', 'processing-error', 'refused'][i % 4]!, from: `${days(d)}T00:00:00Z`, to: `${dayEnd(d)}T00:00:00Z` }; }],
    ['to: before a date', () => ({ to: `${days(30 + Math.floor(rnd() * 300))}T00:00:00Z` })],
    ['every filter', (i) => {
      const p = pick(patients);
      return { patientIns: p.ins, name: p.family, source: 'lab', documentCode: '11502-2', recipient: `${p.ins}@patient.mssante.fr`, state: 'delivered', from: `${days(365)}T00:00:00Z`, to: `${days(i)}T00:00:00Z` };
    }],
    ['name + from/to', () => { const d = 1 + Math.floor(rnd() * 300); return { name: pick(FAMILIES).slice(0, 3), from: `${days(d + 30)}T00:00:00Z`, to: `${days(d)}T00:00:00Z` }; }],
  ];
  return mix.flatMap(([kind, make]) => Array.from({ length: 20 }, (_, i) => [kind, { ...make(i), limit }] as [string, ResultSearch]));
}

/** Pages 2 to 10 of broad searches, each from the cursor of the page before (keyset: as fast as the first). */
const PAGED: Omit<ResultSearch, 'limit'>[] = [{}, { state: 'failed' }, { source: 'pathology' }, { recipient: doctorAddress(0) }, { name: 'mar' }, { documentCode: '18748-4' }];

/** The loaded store, for what runs on it before it is dropped (bench/console.ts). */
export interface LoadedStore { pool: Pool; schema: string; results: number; lastDay: number }

export async function benchSearch(opts: {
  results?: number; schema?: string; keep?: boolean; lastDay?: number;
  /** Runs once the searches are measured, on the same store, before it is dropped. */
  whileLoaded?: (store: LoadedStore) => Promise<void>;
} = {}): Promise<SearchBench> {
  const n = opts.results ?? 1_000_000;
  const lastDay = opts.lastDay ?? lastDayShare(n);
  const schema = opts.schema ?? `bench_search_${randomBytes(4).toString('hex')}`;
  const pool = connectPostgres({ ...demoConfig().postgres, schema, poolSize: 2 }, 'mssgw-bench-search');
  try {
    const loaded = (await pool.query<{ t: string | null }>(`select to_regclass('${schema}.results')::text as t`)).rows[0]!.t
      && Number((await pool.query<{ n: string }>('select count(*) as n from results')).rows[0]!.n) === n;
    let loadSeconds = 0;
    if (!loaded) {
      await migrate(pool);
      const t0 = performance.now();
      log(`loading ${n} results (${lastDay} in the last 24 hours) into schema ${schema}`);
      await loadSearchData(pool, n, lastDay);
      loadSeconds = round((performance.now() - t0) / 1000, 1);
      log(`loaded in ${loadSeconds} s`);
    }
    const deliveries = Number((await pool.query<{ n: string }>('select count(*) as n from deliveries')).rows[0]!.n);
    const sizes = (await pool.query<{ name: string; bytes: string }>(
      `select c.relname as name, pg_relation_size(c.oid) as bytes from pg_class c join pg_namespace s on s.oid = c.relnamespace
       where s.nspname = $1 and c.relkind = 'i' and c.relname not like 'pg_toast%'`, [schema])).rows;
    const total = (t: string) => pool.query<{ b: string }>(`select pg_total_relation_size('${schema}.${t}') as b`).then((r) => Number(r.rows[0]!.b));
    const bytes = { results: await total('results'), deliveries: await total('deliveries'), indexes: Object.fromEntries(sizes.map((s) => [s.name, Number(s.bytes)])) };

    const mix = searchMix(n);
    // One pass to warm the caches (a console's searches find a warm database), then the measured pass.
    for (const [, q] of mix) await searchResults(pool, q);
    const times = new Map<string, number[]>();
    const time = async (kind: string, q: ResultSearch) => {
      const t = performance.now();
      const page = await searchResults(pool, q);
      (times.get(kind) ?? times.set(kind, []).get(kind)!).push(performance.now() - t);
      return page;
    };
    for (const [kind, q] of mix) await time(kind, q);
    for (const q of PAGED) {
      let next = (await searchResults(pool, { ...q, limit: 50 })).next;
      for (let p = 2; p <= 10 && next; p++) next = (await time('pages 2-10 (cursor)', { ...q, limit: 50, after: decodeCursor(next)! })).next;
    }
    const all = [...times.values()].flat();
    const kinds = Object.fromEntries([...times].map(([k, v]) => [k, { searches: v.length, p50Ms: round(percentile(v, 50), 1), p95Ms: round(percentile(v, 95), 1), maxMs: round(Math.max(...v), 1) }]));
    for (const [k, v] of Object.entries(kinds)) log(`${k.padEnd(40)} p50 ${v.p50Ms} ms, p95 ${v.p95Ms} ms, max ${v.maxMs} ms`);
    if (opts.whileLoaded) await opts.whileLoaded({ pool, schema, results: n, lastDay });
    return {
      results: n, deliveries, loadSeconds, kinds,
      p50Ms: round(percentile(all, 50), 1), p95Ms: round(percentile(all, 95), 1), maxMs: round(Math.max(...all), 1),
      bytes, bytesPerResult: Math.round((bytes.results + bytes.deliveries) / n),
      searchIndexBytesPerResult: Math.round(SEARCH_INDEXES.reduce((sum, i) => sum + (bytes.indexes[i] ?? 0), 0) / n),
    };
  } finally {
    if (!opts.keep) await pool.query(`drop schema if exists ${schema} cascade`).catch(() => undefined);
    await pool.end();
  }
}
