// The operator console (issue #24): sign-in, overview, messages, a result with its document and recipients'
// timelines, dead letters, audit log. Hash routes (#/messages, #/results/r-…) so that the api serves one page.
import { render, type ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, call, finishOidc, get, post, session, setOnUnauthorized, startOidc, type Me, type OidcSettings } from './api.ts';
import { formatTime, parisDayStart, WORDS, type Lang } from './i18n.ts';

type Words = (typeof WORDS)['fr'];
const STATES = ['refused', 'queued', 'submitted', 'delayed', 'delivered', 'relayed', 'expanded', 'failed', 'dead-lettered', 'unconfirmed', 'displayed', 'processed', 'deleted', 'processing-error'];
const POLL_MS = 5000;

const savedLang = (): Lang => (localStorage.getItem('mssgw.console.lang') === 'en' ? 'en' : 'fr');

interface Ctx { t: Words; lang: Lang; me: Me; go: (hash: string) => void }

/** Polls `load` every POLL_MS while the page shows it; `reload` fetches at once. */
function usePoll<T>(load: () => Promise<T>, deps: unknown[], every = POLL_MS): { data?: T; error?: string; reload: () => void; at?: number } {
  const [state, setState] = useState<{ data?: T; error?: string; at?: number }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const run = () => load().then((data) => live && setState({ data, at: Date.now() }), (e: Error) => live && setState((s) => ({ ...s, error: e.message })));
    void run();
    const timer = every > 0 ? window.setInterval(() => void run(), every) : undefined;
    return () => {
      live = false;
      if (timer !== undefined) window.clearInterval(timer);
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((n) => n + 1) };
}

const Badge = ({ state, t }: { state: string; t: Words }) => <span class={`badge s-${state}`} data-state={state}>{t.states[state] ?? state}</span>;
const Err = ({ text, t }: { text?: string | undefined; t: Words }) => (text ? <p class="error" role="alert">{t.error} : {text}</p> : null);

function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  const hid = `h-${id ?? title.replace(/\W+/g, '-')}`;
  return (
    <section aria-labelledby={hid} class="card">
      <h2 id={hid}>{title}</h2>
      {children}
    </section>
  );
}

// ---- Sign-in ----------------------------------------------------------------------------------------------------

function SignIn({ t, onKey, oidc, error }: { t: Words; onKey: (key: string) => void; oidc: OidcSettings | null; error?: string | undefined }) {
  const [key, setKey] = useState('');
  return (
    <main id="main" class="signin">
      <h1>{t.title}</h1>
      <Err text={error} t={t} />
      {oidc && (
        <section class="card" aria-labelledby="h-oidc">
          <h2 id="h-oidc">{t.signIn}</h2>
          <button type="button" class="primary" onClick={() => void startOidc(oidc)}>{t.signInOidc}</button>
        </section>
      )}
      <section class="card" aria-labelledby="h-key">
        <h2 id="h-key">{t.signInKey}</h2>
        <form onSubmit={(e) => { e.preventDefault(); if (key.trim()) onKey(key.trim()); }}>
          <label for="api-key">{t.apiKey}</label>
          <input id="api-key" name="api-key" type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
          <button type="submit" class="primary">{t.signIn}</button>
        </form>
      </section>
    </main>
  );
}

// ---- Overview ---------------------------------------------------------------------------------------------------

interface Gauge { labels: Record<string, string>; value: number }

interface Overview {
  at: number;
  states: { state: string; hour: number; day: number }[];
  received: { source: string; hour: number; day: number }[];
  sourceStates: { source: string; state: string; count: number }[];
  failures: { state: string; reason: string; count: number }[];
  throughput: { at: number; count: number }[];
  queues: { queue: string; waiting?: number; active?: number; delayed?: number; failed?: number; prioritized?: number; oldestWaitingAt: number | null }[] | null;
  health: {
    redis: { ok: boolean; ms: number | null }; postgres: { ok: boolean; ms: number | null };
    /** Every service instance's beacon (null when Redis does not answer). */
    instances: Instance[] | null; services: { service: string; live: number; gone: number }[] | null; warnings: HealthWarning[] | null;
    operatorRate?: Gauge[];
  };
}

interface Instance {
  service: string; instance: string; state: 'live' | 'gone'; version: string; startedAt: number; lastSeenAt: number;
  mllp?: { source: string; port: number; connections: number; peers: number }[];
  kafka?: { groupId: string; consuming: boolean; lagAt: number | null; partitions: { topic: string; partition: number; lag: number; assigned: boolean; paused: boolean }[] };
  imap?: { mailbox: string; connected: boolean; lastPollAt: number | null }[];
  smtp?: { mailbox: string; paused: string | null; lastAcceptedAt: number | null; dsn: boolean | null }[];
  reference?: { data: string; loadedAt: number | null }[];
}
interface HealthWarning { code: string; service: string; instance?: string; subject?: string }

const Yes = ({ on, t, bad = !on }: { on: boolean | null; t: Words; bad?: boolean }) => (on === null ? <>—</> : <span class={bad ? 'down' : 'ok'}>{on ? t.yes : t.no}</span>);

/** One table of the health section: its heading, its column headers, its rows. */
function HealthTable({ title, kind, cols, children }: { title: string; kind: string; cols: [string, boolean?][]; children: ComponentChildren }) {
  return (
    <>
      <h3>{title}</h3>
      <table data-health={kind}>
        <thead><tr>{cols.map(([c, num]) => <th key={c} scope="col" class={num ? 'num' : undefined}>{c}</th>)}</tr></thead>
        <tbody>{children}</tbody>
      </table>
    </>
  );
}

/** The health of every service instance (their beacons): what needs attention first, then one table per kind of link. */
function Health({ h, t, lang }: { h: Overview['health']; t: Words; lang: Lang }) {
  const live = (h.instances ?? []).filter((i) => i.state === 'live');
  const rows = <T,>(pick: (i: Instance) => T[] | undefined) => live.flatMap((i) => (pick(i) ?? []).map((x) => ({ i, x })));
  // Every intake reads its whole group's lag: one row per partition, with the instance that has it.
  const partitions = new Map<string, { topic: string; partition: number; lag: number; by?: string; paused: boolean }>();
  for (const { i, x } of rows((i) => i.kafka?.partitions)) {
    const key = `${x.topic}/${x.partition}`;
    const p = partitions.get(key) ?? { topic: x.topic, partition: x.partition, lag: 0, paused: false };
    p.lag = Math.max(p.lag, x.lag);
    if (x.assigned) Object.assign(p, { by: i.instance, paused: x.paused });
    partitions.set(key, p);
  }
  const warned = (code: string, subject: string) => h.warnings?.some((w) => w.code === code && (w.subject ?? '').startsWith(subject)) ?? false;
  const mllp = rows((i) => i.mllp);
  const imap = rows((i) => i.imap);
  const smtp = rows((i) => i.smtp);
  const reference = rows((i) => i.reference);
  return (
    <div class="health">
      <ul>
        <li>Redis : <span class={h.redis.ok ? 'ok' : 'down'}>{h.redis.ok ? `${t.healthOk} (${h.redis.ms} ms)` : t.healthDown}</span></li>
        <li>PostgreSQL : <span class={h.postgres.ok ? 'ok' : 'down'}>{h.postgres.ok ? `${t.healthOk} (${h.postgres.ms} ms)` : t.healthDown}</span></li>
        {h.operatorRate?.length ? <li>{t.operatorRate} ({t.thisProcess}) : {h.operatorRate.map((g) => `${g.labels['operator'] ?? ''} ${Math.round(g.value)} ${t.perSecond}`).join(', ')}</li> : null}
      </ul>
      <h3 id="h-health-warnings">{t.healthWarnings}</h3>
      {h.warnings?.length ? (
        <ul class="warnings" aria-labelledby="h-health-warnings">
          {h.warnings.map((w, n) => (
            <li key={n} data-warning={w.code}><span aria-hidden="true">⚠ </span><strong>{w.service}</strong>{w.instance ? ` (${w.instance})` : ''} : {t.warnings[w.code] ?? w.code}{w.subject ? ` — ${w.subject}` : ''}</li>
          ))}
        </ul>
      ) : <p class="muted">{h.warnings ? t.noWarnings : t.healthDown}</p>}
      <HealthTable title={t.instances} kind="instances" cols={[[t.service], [t.instance], [t.state], [t.version], [t.startedAt], [t.lastBeacon]]}>
        {(h.instances ?? []).map((i) => (
          <tr key={`${i.service}:${i.instance}`} data-service={i.service} data-instance-state={i.state} class={i.state === 'gone' ? 'warn' : undefined}>
            <th scope="row">{i.service}</th><td class="ids">{i.instance}</td><td><span class={i.state === 'live' ? 'ok' : 'down'}>{i.state === 'live' ? t.live : t.gone}</span></td>
            <td>{i.version || '—'}</td><td>{i.startedAt ? formatTime(lang, i.startedAt) : '—'}</td><td>{formatTime(lang, i.lastSeenAt)}</td>
          </tr>
        ))}
      </HealthTable>
      {mllp.length > 0 && (
        <HealthTable title={t.mllpListeners} kind="mllp" cols={[[t.source], [t.instance], [t.port, true], [t.connections, true], [t.peers, true]]}>
          {mllp.map(({ i, x }) => <tr key={`${i.instance}/${x.source}`}><th scope="row">{x.source}</th><td class="ids">{i.instance}</td><td class="num">{x.port}</td><td class="num">{x.connections}</td><td class="num">{x.peers}</td></tr>)}
        </HealthTable>
      )}
      {partitions.size > 0 && (
        <HealthTable title={t.kafkaLag} kind="kafka" cols={[[t.topic], [t.partition, true], [t.lag, true], [t.consumedBy], [t.paused]]}>
          {[...partitions.values()].map((p) => {
            const bad = warned('kafka-lag', `${p.topic}/${p.partition}:`);
            return (
              <tr key={`${p.topic}/${p.partition}`} class={bad ? 'warn' : undefined}>
                <th scope="row">{p.topic}</th><td class="num">{p.partition}</td><td class="num"><span class={bad ? 'down' : undefined}>{p.lag}</span></td>
                <td class="ids">{p.by ?? <span class="down">{t.none}</span>}</td><td><Yes on={p.paused} t={t} bad={p.paused} /></td>
              </tr>
            );
          })}
        </HealthTable>
      )}
      {imap.length > 0 && (
        <HealthTable title={t.imapMailboxes} kind="imap" cols={[[t.mailbox], [t.instance], [t.connected], [t.lastPoll]]}>
          {imap.map(({ i, x }) => {
            const stale = warned('imap-poll-stale', x.mailbox);
            return (
              <tr key={`${i.instance}/${x.mailbox}`} class={!x.connected || stale ? 'warn' : undefined}>
                <th scope="row">{x.mailbox}</th><td class="ids">{i.instance}</td><td><Yes on={x.connected} t={t} /></td>
                <td><span class={stale ? 'down' : undefined}>{x.lastPollAt ? formatTime(lang, x.lastPollAt) : '—'}</span></td>
              </tr>
            );
          })}
        </HealthTable>
      )}
      {smtp.length > 0 && (
        <HealthTable title={t.smtpMailboxes} kind="smtp" cols={[[t.mailbox], [t.instance], [t.pause], [t.lastAccepted], [t.dsnAdvertised]]}>
          {smtp.map(({ i, x }) => (
            <tr key={`${i.instance}/${x.mailbox}`} class={x.paused || x.dsn === false ? 'warn' : undefined}>
              <th scope="row">{x.mailbox}</th><td class="ids">{i.instance}</td><td>{x.paused ? <span class="down">{x.paused}</span> : t.no}</td>
              <td>{x.lastAcceptedAt ? formatTime(lang, x.lastAcceptedAt) : '—'}</td><td><Yes on={x.dsn} t={t} /></td>
            </tr>
          ))}
        </HealthTable>
      )}
      {reference.length > 0 && (
        <HealthTable title={t.referenceAge} kind="reference" cols={[[t.referenceData], [t.instance], [t.loadedAt]]}>
          {reference.map(({ i, x }) => {
            const stale = h.warnings?.some((w) => w.code === 'reference-stale' && w.instance === i.instance && w.subject === x.data) ?? false;
            return (
              <tr key={`${i.instance}/${x.data}`} class={stale ? 'warn' : undefined}>
                <th scope="row">{t.referenceNames[x.data] ?? x.data}</th><td class="ids">{i.instance}</td>
                <td><span class={stale ? 'down' : undefined}>{x.loadedAt ? formatTime(lang, x.loadedAt) : '—'}</span></td>
              </tr>
            );
          })}
        </HealthTable>
      )}
    </div>
  );
}

/** Sources down, states across: the states some recipient is in, in the lifecycle's order. */
function SourceStates({ rows, t }: { rows: Overview['sourceStates']; t: Words }) {
  const states = STATES.filter((s) => rows.some((r) => r.state === s));
  const sources = [...new Set(rows.map((r) => r.source))].sort();
  const n = (source: string, state: string) => rows.find((r) => r.source === source && r.state === state)?.count ?? 0;
  if (!rows.length) return <p class="muted">{t.none}</p>;
  return (
    <table>
      <thead><tr><th scope="col">{t.source}</th>{states.map((s) => <th key={s} scope="col" class="num"><Badge state={s} t={t} /></th>)}</tr></thead>
      <tbody>{sources.map((src) => <tr key={src}><th scope="row">{src}</th>{states.map((s) => <td key={s} class="num">{n(src, s)}</td>)}</tr>)}</tbody>
    </table>
  );
}

function OverviewPage({ t, lang }: Ctx) {
  const { data, error, at } = usePoll(() => get<Overview>('/api/v1/console/overview'), []);
  const max = Math.max(1, ...(data?.throughput.map((p) => p.count) ?? [1]));
  return (
    <>
      <h1>{t.overview}</h1>
      <Err text={error} t={t} />
      {!data ? <p>{t.loading}</p> : (
        <div class="grid">
          <Section title={t.recipientsByState} id="states">
            <table>
              <thead><tr><th scope="col">{t.state}</th><th scope="col" class="num">{t.lastHour}</th><th scope="col" class="num">{t.lastDay}</th></tr></thead>
              <tbody>{data.states.map((s) => <tr key={s.state}><th scope="row"><Badge state={s.state} t={t} /></th><td class="num">{s.hour}</td><td class="num">{s.day}</td></tr>)}</tbody>
            </table>
          </Section>
          <Section title={t.receivedBySource} id="sources">
            <table>
              <thead><tr><th scope="col">{t.source}</th><th scope="col" class="num">{t.lastHour}</th><th scope="col" class="num">{t.lastDay}</th></tr></thead>
              <tbody>{data.received.map((s) => <tr key={s.source}><th scope="row">{s.source}</th><td class="num">{s.hour}</td><td class="num">{s.day}</td></tr>)}</tbody>
            </table>
          </Section>
          <Section title={t.sourceStates} id="source-states">
            <SourceStates rows={data.sourceStates} t={t} />
          </Section>
          <Section title={t.queues} id="queues">
            <table>
              <thead><tr><th scope="col">{t.queue}</th><th scope="col" class="num">{t.waiting}</th><th scope="col" class="num">{t.active}</th><th scope="col" class="num">{t.delayed}</th><th scope="col" class="num">{t.failedJobs}</th><th scope="col">{t.oldestWaiting}</th></tr></thead>
              <tbody>{(data.queues ?? []).map((q) => (
                <tr key={q.queue}><th scope="row">{q.queue}</th><td class="num">{(q.waiting ?? 0) + (q.prioritized ?? 0)}</td><td class="num">{q.active ?? 0}</td><td class="num">{q.delayed ?? 0}</td><td class="num">{q.failed ?? 0}</td><td>{formatTime(lang, q.oldestWaitingAt)}</td></tr>
              ))}</tbody>
            </table>
          </Section>
          <Section title={t.failuresByReason} id="failures">
            <table>
              <thead><tr><th scope="col">{t.state}</th><th scope="col">{t.reason}</th><th scope="col" class="num">{t.count}</th></tr></thead>
              <tbody>{data.failures.map((f) => <tr key={`${f.state}/${f.reason}`}><td><Badge state={f.state} t={t} /></td><td>{f.reason || '—'}</td><td class="num">{f.count}</td></tr>)}</tbody>
            </table>
          </Section>
          <Section title={t.throughput} id="throughput">
            <table class="bars">
              <thead><tr><th scope="col">{t.hour}</th><th scope="col">{t.received}</th></tr></thead>
              <tbody>{data.throughput.map((p) => (
                <tr key={p.at}><th scope="row">{formatTime(lang, p.at, false)}</th><td><span class="bar" style={{ width: `${Math.max(2, (100 * p.count) / max)}%` }} aria-hidden="true" /> {p.count}</td></tr>
              ))}</tbody>
            </table>
          </Section>
          <Section title={t.health} id="health">
            <Health h={data.health} t={t} lang={lang} />
          </Section>
        </div>
      )}
      {at && <p class="muted" aria-live="polite">{t.refreshed} {formatTime(lang, at)}</p>}
    </>
  );
}

// ---- Messages ---------------------------------------------------------------------------------------------------

interface Summary {
  resultId: string; source: string; controlId: string; receivedAt: number; documentCode: string; action: string;
  patient: { ins?: string; family?: string; given?: string }; recipients: Record<string, number>;
}

const FILTERS = ['patient', 'name', 'from', 'to', 'source', 'documentType', 'recipient', 'state'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

function filtersFromHash(): Filters {
  const q = new URLSearchParams(location.hash.split('?')[1] ?? '');
  return Object.fromEntries(FILTERS.filter((f) => q.get(f)).map((f) => [f, q.get(f)!]));
}

function query(f: Filters, cursor?: string): string {
  const q = new URLSearchParams();
  for (const k of FILTERS) {
    const v = f[k]?.trim();
    if (!v) continue;
    if (k === 'from' || k === 'to') q.set(k, parisDayStart(v, k === 'to') ?? v);
    else q.set(k, v);
  }
  q.set('limit', '50');
  if (cursor) q.set('cursor', cursor);
  return q.toString();
}

const csvCell = (v: string) => (/[",\n;]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

function MessagesPage({ t, lang, me, go }: Ctx) {
  const identity = me.role !== 'viewer';
  const [filters, setFilters] = useState<Filters>(filtersFromHash);
  const [form, setForm] = useState<Filters>(filters);
  const [rows, setRows] = useState<Summary[]>([]);
  const [next, setNext] = useState<string | undefined>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const load = useCallback(async (f: Filters, cursor?: string) => {
    setBusy(true);
    setError(undefined);
    try {
      const page = await get<{ results: Summary[]; next?: string }>(`/api/v1/results?${query(f, cursor)}`);
      setRows((r) => (cursor ? [...r, ...page.results] : page.results));
      setNext(page.next);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }, []);
  useEffect(() => void load(filters), [filters, load]);

  const submit = (e: Event) => {
    e.preventDefault();
    const clean = Object.fromEntries(Object.entries(form).filter(([, v]) => v && v.trim())) as Filters;
    history.replaceState(null, '', `#/messages?${new URLSearchParams(clean).toString()}`);
    setFilters(clean);
  };
  const exportCsv = () => {
    const head = [t.receivedAt, 'INS', t.patient, t.source, t.controlId, t.documentType, t.action, t.recipients, 'resultId'];
    const lines = rows.map((r) => [
      formatTime(lang, r.receivedAt), r.patient.ins ?? '', [r.patient.family, r.patient.given].filter(Boolean).join(' '), r.source, r.controlId, r.documentCode, r.action,
      Object.entries(r.recipients).map(([s, n]) => `${t.states[s] ?? s}: ${n}`).join(' / '), r.resultId,
    ]);
    const csv = '\ufeff' + [head, ...lines].map((l) => l.map(csvCell).join(';')).join('\r\n') + '\r\n';
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
    a.download = `mssgw-resultats-${new Date().toISOString().slice(0, 10)}.csv`;
    document.body.append(a);
    a.click();
    a.remove();
  };
  const field = (k: (typeof FILTERS)[number], label: string, type = 'text', disabled = false) => (
    <div class="field">
      <label for={`f-${k}`}>{label}</label>
      <input id={`f-${k}`} name={k} type={type} value={form[k] ?? ''} disabled={disabled} onInput={(e) => setForm({ ...form, [k]: e.currentTarget.value })} />
    </div>
  );
  return (
    <>
      <h1>{t.messages}</h1>
      <form class="card filters" role="search" onSubmit={submit}>
        {identity && field('patient', t.patientIns)}
        {identity && field('name', t.patientName)}
        {field('from', t.from, 'date')}
        {field('to', t.to, 'date')}
        {field('source', t.source)}
        {field('documentType', t.documentType)}
        {identity && field('recipient', t.recipient)}
        <div class="field">
          <label for="f-state">{t.state}</label>
          <select id="f-state" name="state" value={form.state ?? ''} onChange={(e) => setForm({ ...form, state: e.currentTarget.value })}>
            <option value="">{t.any}</option>
            {STATES.map((s) => <option key={s} value={s}>{t.states[s]}</option>)}
          </select>
        </div>
        <div class="actions">
          <button type="submit" class="primary">{t.search}</button>
          <button type="button" onClick={() => { setForm({}); history.replaceState(null, '', '#/messages'); setFilters({}); }}>{t.reset}</button>
        </div>
        {!identity && <p class="muted">{t.identityFiltersNeedOperator}</p>}
      </form>
      <Err text={error} t={t} />
      <div class="toolbar">
        <p aria-live="polite" id="listed">{busy ? t.loading : t.listed(rows.length)}</p>
        <button type="button" onClick={exportCsv} disabled={!rows.length}>{t.exportCsv}</button>
      </div>
      {rows.length === 0 && !busy ? <p>{t.noResults}</p> : (
        <table class="results">
          <caption class="sr-only">{t.messages}</caption>
          <thead><tr>
            <th scope="col">{t.receivedAt}</th><th scope="col">{t.patient}</th><th scope="col">{t.source}</th><th scope="col">{t.controlId}</th>
            <th scope="col">{t.documentType}</th><th scope="col">{t.action}</th><th scope="col">{t.recipients}</th>
          </tr></thead>
          <tbody>{rows.map((r) => (
            <tr key={r.resultId} data-result={r.resultId}>
              <td><a href={`#/results/${r.resultId}`} onClick={(e) => { e.preventDefault(); go(`#/results/${r.resultId}`); }}>{formatTime(lang, r.receivedAt)}</a></td>
              <td class="patient"><span class="ins">{r.patient.ins ?? '—'}</span> {[r.patient.family, r.patient.given].filter(Boolean).join(' ')}</td>
              <td>{r.source}</td><td>{r.controlId}</td><td>{r.documentCode}</td><td>{r.action}</td>
              <td>{Object.entries(r.recipients).map(([s, n]) => <span key={s} class="count"><Badge state={s} t={t} /> {n}</span>)}</td>
            </tr>
          ))}</tbody>
        </table>
      )}
      {next && <button type="button" onClick={() => void load(filters, next)} disabled={busy}>{t.more}</button>}
    </>
  );
}

// ---- A result ---------------------------------------------------------------------------------------------------

interface HistoryEvent { at: number; state: string; applied: boolean; source: string; detail?: string }
interface Delivery {
  deliveryId: string; recipient: string; recipientId?: string; kind: string; state: string; reason?: string; detail?: string; smtpResponse?: string;
  queueId?: string; dsnStatus?: string; mailbox?: string; messageId?: string; updatedAt: number; history: HistoryEvent[];
}
interface ResultView {
  resultId: string; source: string; transport: string; receivedAt: number; acknowledgedAt?: number; routedAt?: number; duplicateOf?: string;
  hl7: Record<string, string | boolean | Record<string, boolean> | undefined>;
  patient: { ins?: string; insQualified: boolean; family?: string; given?: string; birthDate?: string; sex?: string };
  documents: { index: number; kind?: string; mediaType?: string; bytes?: number; code?: string; label?: string }[];
  versions: { resultId: string; version: number; action: string | null; receivedAt: number | null }[];
  deliveries: Delivery[];
  bodiesPruned: boolean;
}

function Facts({ rows }: { rows: [string, ComponentChildren][] }) {
  return <dl class="facts">{rows.filter(([, v]) => v !== undefined && v !== '' && v !== null).map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}</dl>;
}

/** A CDA document: its header, and its PDF (level 1) or its sections' text (level 3). */
function Cda({ xml, t }: { xml: string; t: Words }) {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const one = (sel: string) => doc.getElementsByTagNameNS('urn:hl7-org:v3', sel)[0];
  const text = (el: Element | undefined) => el?.textContent?.trim() ?? '';
  const title = text(one('title'));
  const time = one('effectiveTime')?.getAttribute('value') ?? '';
  // A person's name: its parts (prefix, given, family) in the document's order, spaced.
  const person = (root: Element | undefined) => {
    const name = root?.getElementsByTagNameNS('urn:hl7-org:v3', 'name')[0];
    return name ? [...name.children].map((c) => c.textContent?.trim()).filter(Boolean).join(' ') || text(name) : '';
  };
  const author = person(one('author'));
  const custodian = text(one('custodian')?.getElementsByTagNameNS('urn:hl7-org:v3', 'name')[0]);
  const nonXml = one('nonXMLBody');
  const b64 = nonXml ? text(nonXml.getElementsByTagNameNS('urn:hl7-org:v3', 'text')[0]).replace(/\s+/g, '') : '';
  const [pdf, setPdf] = useState<string>();
  useEffect(() => {
    if (!b64) return;
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: 'application/pdf' }));
    setPdf(url);
    return () => URL.revokeObjectURL(url);
  }, [b64]);
  const when = /^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?/.exec(time);
  const sections = [...doc.getElementsByTagNameNS('urn:hl7-org:v3', 'section')];
  return (
    <div class="cda">
      <h3>{t.cdaHeader}</h3>
      <Facts rows={[
        [t.document, title],
        // As the document states it (its own time, no zone conversion).
        [t.effectiveTime, when ? `${when[3]}/${when[2]}/${when[1]}${when[4] ? ` ${when[4]}:${when[5] ?? '00'}` : ''}` : time],
        [t.author, author],
        [t.custodian, custodian],
      ]} />
      {sections.map((s, i) => <div key={i} class="section"><h4>{text(s.getElementsByTagNameNS('urn:hl7-org:v3', 'title')[0])}</h4><p>{text(s.getElementsByTagNameNS('urn:hl7-org:v3', 'text')[0])}</p></div>)}
      {pdf && <iframe class="pdf" src={pdf} title={t.documentFrame} />}
    </div>
  );
}

function DocumentView({ resultId, index, t }: { resultId: string; index: number; t: Words }) {
  const [doc, setDoc] = useState<{ pdf?: string; xml?: string; text?: string; error?: string }>({});
  useEffect(() => {
    let url: string | undefined;
    void (async () => {
      try {
        const token = session.token();
        const res = await fetch(`/api/v1/console/results/${resultId}/documents/${index}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        if (!res.ok) throw new ApiError(res.status, ((await res.json()) as { reason?: string }).reason ?? `HTTP ${res.status}`);
        const type = res.headers.get('content-type') ?? '';
        if (type.startsWith('application/pdf')) {
          url = URL.createObjectURL(await res.blob());
          setDoc({ pdf: url });
        } else if (/xml/.test(type)) setDoc({ xml: await res.text() });
        else setDoc({ text: await res.text() });
      } catch (e) {
        setDoc({ error: (e as Error).message });
      }
    })();
    return () => url && URL.revokeObjectURL(url);
  }, [resultId, index]);
  if (doc.error) return <Err text={doc.error} t={t} />;
  if (doc.pdf) return <iframe class="pdf" src={doc.pdf} title={t.documentFrame} />;
  if (doc.xml) return <Cda xml={doc.xml} t={t} />;
  if (doc.text !== undefined) return <pre>{doc.text}</pre>;
  return <p>{t.loading}</p>;
}

const RESENDABLE = ['delivered', 'relayed', 'expanded', 'failed', 'unconfirmed', 'displayed', 'processed', 'deleted', 'processing-error'];

function Recipient({ d, t, lang, me, onReplay, onCancel, onResend }: {
  d: Delivery; t: Words; lang: Lang; me: Me; onReplay: (d: Delivery) => void; onCancel: (d: Delivery) => void; onResend: (d: Delivery) => void;
}) {
  return (
    <li class="recipient card" data-delivery={d.deliveryId} data-state={d.state}>
      <h3><span class="addr">{d.recipient}</span> <Badge state={d.state} t={t} /></h3>
      <Facts rows={[
        [t.kind, d.kind],
        [t.reason, d.reason],
        [t.dsnStatus, d.dsnStatus],
        [t.smtpReply, d.smtpResponse],
        [t.queueId, d.queueId],
        [t.mailbox, d.mailbox],
      ]} />
      <h4>{t.timeline}</h4>
      <ol class="timeline">
        {d.history.map((h, i) => (
          <li key={i} class={h.applied ? '' : 'late'}>
            <time dateTime={new Date(h.at).toISOString()}>{formatTime(lang, h.at)}</time> <Badge state={h.state} t={t} /> <span class="src">{t.sources[h.source] ?? h.source}</span>
            {h.detail && <span class="detail"> — {h.detail}</span>}
          </li>
        ))}
      </ol>
      {me.role !== 'viewer' && RESENDABLE.includes(d.state) && <div class="actions"><button type="button" onClick={() => onResend(d)}>{t.resend}</button></div>}
      {me.role !== 'viewer' && (d.state === 'dead-lettered' || d.state === 'queued') && (
        <div class="actions">
          {d.state === 'dead-lettered' && <button type="button" class="primary" onClick={() => onReplay(d)}>{t.replay}</button>}
          <button type="button" onClick={() => onCancel(d)}>{t.cancel}</button>
        </div>
      )}
    </li>
  );
}

function ResultPage({ t, lang, me, id }: Ctx & { id: string }) {
  const { data, error, reload } = usePoll(() => get<ResultView>(`/api/v1/console/results/${id}`), [id]);
  const [shown, setShown] = useState<number>();
  const [hl7, setHl7] = useState<string>();
  const showHl7 = async () => {
    try {
      setHl7(await (await call(`/api/v1/console/results/${id}/hl7`)).text());
    } catch (e) {
      setHl7(`${t.error} : ${(e as Error).message}`);
    }
  };
  const [notice, setNotice] = useState<string>();
  // An operator's action on one recipient: confirmed, posted, its outcome shown, the result read again.
  const act = (confirm: (recipient: string) => string, path: (id: string) => string, done: string) => async (d: Delivery) => {
    if (!window.confirm(confirm(d.recipient))) return;
    try {
      await post(path(d.deliveryId));
      setNotice(done);
    } catch (e) {
      setNotice(`${t.error} : ${(e as Error).message}`);
    }
    reload();
  };
  const replay = act(t.confirmReplay, (id) => `/api/v1/dead-letters/${id}/replay`, t.replayed);
  const cancel = act(t.confirmCancel, (id) => `/api/v1/console/deliveries/${id}/cancel`, t.cancelled);
  const resend = act(t.confirmResend, (id) => `/api/v1/console/deliveries/${id}/resend`, t.resent);
  if (error && !data) return <><h1>{t.result}</h1><Err text={error} t={t} /></>;
  if (!data) return <p>{t.loading}</p>;
  const h = data.hl7;
  const s = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'boolean' ? (v ? t.yes : t.no) : undefined);
  return (
    <>
      <h1>{t.result} {s(h['controlId']) ?? ''}</h1>
      {notice && <p role="status" class="notice">{notice}</p>}
      <div class="grid">
        <Section title={t.patient} id="patient">
          <Facts rows={[['INS', <span class="ins">{data.patient.ins}</span>], [t.insQualified, s(data.patient.insQualified)], [t.patient, <span class="name">{[data.patient.family, data.patient.given].filter(Boolean).join(' ')}</span>], [t.birthDate, data.patient.birthDate?.replace(/^(\d{4})(\d{2})(\d{2})$/, '$3/$2/$1')], [t.sex, data.patient.sex]]} />
        </Section>
        <Section title={t.hl7Facts} id="hl7">
          <Facts rows={[
            [t.messageType, `${s(h['messageType']) ?? ''} ${s(h['event']) ?? ''}`.trim()], [t.version, s(h['version'])], ['Profil', s(h['profile'])],
            [t.controlId, s(h['controlId'])], [t.sendingApplication, s(h['sendingApplication'])], [t.sendingFacility, s(h['sendingFacility'])],
            [t.receivingApplication, s(h['receivingApplication'])], [t.source, `${data.source} (${data.transport})`], [t.action, `${s(h['action']) ?? ''} (ORC-1 ${s(h['orderControl']) ?? ''})`],
            [t.documentType, `${s(h['documentCode']) ?? ''} ${s(h['documentLabel']) ?? ''}`], [t.documentId, s(h['documentId'])], [t.orderId, s(h['orderId'])], [t.urgent, s(h['urgent'])],
            [t.receivedAt, formatTime(lang, data.receivedAt)], [t.acknowledgedAt, formatTime(lang, data.acknowledgedAt)], [t.routedAt, formatTime(lang, data.routedAt)],
          ]} />
          {me.role !== 'viewer' && !hl7 && <button type="button" onClick={() => void showHl7()}>{t.showHl7}</button>}
        </Section>
      </div>
      {hl7 !== undefined && (
        <Section title={t.hl7Message} id="hl7-message">
          <pre class="hl7" tabIndex={0}>{hl7}</pre>
        </Section>
      )}
      {data.versions.length > 0 && (
        <Section title={t.versions} id="versions">
          <ol class="versions">{data.versions.map((v) => (
            <li key={v.resultId}>v{v.version} — {v.action ?? '?'} — {formatTime(lang, v.receivedAt)} — {v.resultId === data.resultId ? <strong>{t.thisResult}</strong> : <a href={`#/results/${v.resultId}`}>{v.resultId}</a>}</li>
          ))}</ol>
        </Section>
      )}
      <Section title={t.documents} id="documents">
        {data.bodiesPruned && <p>{t.bodiesPruned}</p>}
        <ul class="documents">{data.documents.map((d) => (
          <li key={d.index}>
            {d.label ?? d.code} — {d.kind} ({d.mediaType}, {d.bytes} o){' '}
            {me.role === 'viewer' ? <span class="muted">{t.documentNeedsOperator}</span> : <button type="button" onClick={() => setShown(d.index)}>{t.showDocument}</button>}
          </li>
        ))}</ul>
        {shown !== undefined && <DocumentView resultId={data.resultId} index={shown} t={t} />}
      </Section>
      <section aria-labelledby="h-recipients">
        <h2 id="h-recipients">{t.recipients}</h2>
        <ul class="recipients">{data.deliveries.map((d) => <Recipient key={d.deliveryId} d={d} t={t} lang={lang} me={me} onReplay={(x) => void replay(x)} onCancel={(x) => void cancel(x)} onResend={(x) => void resend(x)} />)}</ul>
      </section>
    </>
  );
}

// ---- Dead letters, audit ----------------------------------------------------------------------------------------

interface DeadLetter { deliveryId: string; resultId: string; mailbox: string; queue: string; reason: string; failedAt: number }

function DeadLettersPage({ t, lang, me, go }: Ctx) {
  const { data, error, reload } = usePoll(() => get<{ deadLetters: DeadLetter[] }>('/api/v1/dead-letters'), []);
  const [notice, setNotice] = useState<string>();
  const replay = async (d: DeadLetter) => {
    if (!window.confirm(t.confirmReplay(d.deliveryId))) return;
    try {
      await post(`/api/v1/dead-letters/${d.deliveryId}/replay`);
      setNotice(t.replayed);
    } catch (e) {
      setNotice(`${t.error} : ${(e as Error).message}`);
    }
    reload();
  };
  return (
    <>
      <h1>{t.deadLetters}</h1>
      <Err text={error} t={t} />
      {notice && <p role="status" class="notice">{notice}</p>}
      {!data ? <p>{t.loading}</p> : data.deadLetters.length === 0 ? <p>{t.noDeadLetters}</p> : (
        <table>
          <thead><tr><th scope="col">{t.failedAt}</th><th scope="col">{t.delivery}</th><th scope="col">{t.result}</th><th scope="col">{t.mailbox}</th><th scope="col">{t.reason}</th>{me.role !== 'viewer' && <th scope="col"><span class="sr-only">{t.action}</span></th>}</tr></thead>
          <tbody>{data.deadLetters.map((d) => (
            <tr key={d.deliveryId} data-delivery={d.deliveryId}>
              <td>{formatTime(lang, d.failedAt)}</td><td>{d.deliveryId}</td>
              <td><a href={`#/results/${d.resultId}`} onClick={(e) => { e.preventDefault(); go(`#/results/${d.resultId}`); }}>{d.resultId}</a></td>
              <td>{d.mailbox}</td><td>{d.reason}</td>
              {me.role !== 'viewer' && <td><button type="button" onClick={() => void replay(d)}>{t.replay}</button></td>}
            </tr>
          ))}</tbody>
        </table>
      )}
    </>
  );
}

interface AuditEvent { id: string; at: number; actorKind: string; actor?: string; role?: string; method: string; route: string; status: number; outcome: string; reason?: string; ids: string[]; filters: string[]; client: string }

function AuditPage({ t, lang }: Ctx) {
  const [form, setForm] = useState<{ actor?: string; id?: string; outcome?: string }>({});
  const [filters, setFilters] = useState<{ actor?: string; id?: string; outcome?: string }>({});
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [next, setNext] = useState<string>();
  const [error, setError] = useState<string>();
  const load = useCallback(async (f: typeof filters, cursor?: string) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
    q.set('limit', '100');
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await get<{ events: AuditEvent[]; next?: string }>(`/api/v1/audit?${q.toString()}`);
      setEvents((e) => (cursor ? [...e, ...page.events] : page.events));
      setNext(page.next);
      setError(undefined);
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);
  useEffect(() => void load(filters), [filters, load]);
  return (
    <>
      <h1>{t.audit}</h1>
      <form class="card filters" role="search" onSubmit={(e) => { e.preventDefault(); setFilters({ ...form }); }}>
        <div class="field"><label for="a-actor">{t.actor}</label><input id="a-actor" value={form.actor ?? ''} onInput={(e) => setForm({ ...form, actor: e.currentTarget.value })} /></div>
        <div class="field"><label for="a-id">{t.ids}</label><input id="a-id" value={form.id ?? ''} onInput={(e) => setForm({ ...form, id: e.currentTarget.value })} /></div>
        <div class="field"><label for="a-outcome">{t.outcome}</label>
          <select id="a-outcome" value={form.outcome ?? ''} onChange={(e) => setForm({ ...form, outcome: e.currentTarget.value })}>
            <option value="">{t.any}</option><option value="allowed">allowed</option><option value="refused">refused</option>
          </select>
        </div>
        <div class="actions"><button type="submit" class="primary">{t.search}</button></div>
      </form>
      <Err text={error} t={t} />
      <table class="audit">
        <thead><tr><th scope="col">{t.at}</th><th scope="col">{t.actor}</th><th scope="col">{t.route}</th><th scope="col">{t.status}</th><th scope="col">{t.outcome}</th><th scope="col">{t.ids}</th><th scope="col">{t.client}</th></tr></thead>
        <tbody>{events.map((e) => (
          <tr key={e.id}>
            <td>{formatTime(lang, e.at)}</td><td>{e.actorKind}:{e.actor ?? '—'} {e.role ? `(${e.role})` : ''}</td><td>{e.method} {e.route}</td><td>{e.status}</td>
            <td>{e.outcome}{e.reason ? ` — ${e.reason}` : ''}</td><td class="ids">{e.ids.slice(0, 4).join(' ')}{e.ids.length > 4 ? ` +${e.ids.length - 4}` : ''}</td><td>{e.client}</td>
          </tr>
        ))}</tbody>
      </table>
      {next && <button type="button" onClick={() => void load(filters, next)}>{t.more}</button>}
    </>
  );
}

// ---- Directory --------------------------------------------------------------------------------------------------

interface DirectoryAnswer {
  directory: { source: string; importedAt: number; mailboxes: number } | null;
  mailboxes: { address: string; type: string; family?: string; given?: string; profession?: string; structureName?: string; practitionerNationalId?: string; structureId?: string; whitelisted: boolean }[];
}

function DirectoryPage({ t, lang }: Ctx) {
  const [q, setQ] = useState('');
  const [type, setType] = useState('');
  const [answer, setAnswer] = useState<DirectoryAnswer>();
  const [error, setError] = useState<string>();
  const search = async (e: Event) => {
    e.preventDefault();
    if (!q.trim()) return;
    try {
      setAnswer(await get<DirectoryAnswer>(`/api/v1/console/directory?${new URLSearchParams({ q: q.trim(), type }).toString()}`));
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <>
      <h1>{t.directory}</h1>
      <form class="card filters" role="search" onSubmit={(e) => void search(e)}>
        <div class="field"><label for="d-q">{t.directoryQuery}</label><input id="d-q" value={q} onInput={(e) => setQ(e.currentTarget.value)} /></div>
        <div class="field"><label for="d-type">{t.idType}</label>
          <select id="d-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">{t.anyType}</option>
            {['RPPS', 'IDNPS', 'ADELI', 'FINESS', 'SIRET', 'IDNST'].map((x) => <option key={x} value={x}>{x}</option>)}
          </select>
        </div>
        <div class="actions"><button type="submit" class="primary">{t.search}</button></div>
      </form>
      <Err text={error} t={t} />
      {answer && <p class="muted">{answer.directory ? t.directoryFrom(answer.directory.source, answer.directory.mailboxes, formatTime(lang, answer.directory.importedAt)) : t.noDirectory}</p>}
      {answer && (answer.mailboxes.length === 0 ? <p>{t.noMailbox}</p> : (
        <table class="directory">
          <thead><tr><th scope="col">{t.recipient}</th><th scope="col">{t.kind}</th><th scope="col">{t.name}</th><th scope="col">{t.profession}</th><th scope="col">{t.structure}</th><th scope="col">{t.whitelisted}</th></tr></thead>
          <tbody>{answer.mailboxes.map((m) => (
            <tr key={m.address}>
              <td>{m.address}</td><td>{m.type}</td><td>{[m.family, m.given].filter(Boolean).join(' ')} {m.practitionerNationalId ?? ''}</td><td>{m.profession ?? ''}</td>
              <td>{m.structureName ?? ''} {m.structureId ?? ''}</td><td><span class={`badge ${m.whitelisted ? 's-delivered' : 's-failed'}`}>{m.whitelisted ? t.allowed : t.notAllowed}</span></td>
            </tr>
          ))}</tbody>
        </table>
      ))}
    </>
  );
}

// ---- API keys (admin) -------------------------------------------------------------------------------------------

interface ApiKey { keyId: string; name: string; role: string; createdAt: number; createdBy: string; revokedAt?: number; lastUsedAt?: number }

function KeysPage({ t, lang }: Ctx) {
  const { data, error, reload } = usePoll(() => get<{ keys: ApiKey[] }>('/api/v1/keys'), [], 0);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [created, setCreated] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const create = async (e: Event) => {
    e.preventDefault();
    if (!name.trim()) return;
    try {
      setCreated((await post<{ key: string }>('/api/v1/keys', { name: name.trim(), role })).key);
      setName('');
      setNotice(undefined);
    } catch (err) {
      setNotice(`${t.error} : ${(err as Error).message}`);
    }
    reload();
  };
  const revoke = async (k: ApiKey) => {
    if (!window.confirm(t.confirmRevoke(k.name))) return;
    try {
      await call(`/api/v1/keys/${k.keyId}`, { method: 'DELETE' });
    } catch (err) {
      setNotice(`${t.error} : ${(err as Error).message}`);
    }
    reload();
  };
  return (
    <>
      <h1>{t.keys}</h1>
      <form class="card filters" onSubmit={(e) => void create(e)}>
        <div class="field"><label for="k-name">{t.keyName}</label><input id="k-name" value={name} maxLength={100} onInput={(e) => setName(e.currentTarget.value)} /></div>
        <div class="field"><label for="k-role">{t.role}</label>
          <select id="k-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {(['viewer', 'operator', 'admin'] as const).map((r) => <option key={r} value={r}>{t.roles[r]}</option>)}
          </select>
        </div>
        <div class="actions"><button type="submit" class="primary">{t.createKey}</button></div>
      </form>
      {created && <p role="status" class="notice">{t.newKey} <code class="ids">{created}</code></p>}
      {notice && <p role="alert" class="error">{notice}</p>}
      <Err text={error} t={t} />
      {data && (
        <table class="keys">
          <thead><tr><th scope="col">{t.keyName}</th><th scope="col">{t.role}</th><th scope="col">{t.createdAt}</th><th scope="col">{t.createdBy}</th><th scope="col">{t.lastUsedAt}</th><th scope="col">{t.revoked}</th><th scope="col"><span class="sr-only">{t.action}</span></th></tr></thead>
          <tbody>{data.keys.map((k) => (
            <tr key={k.keyId} data-key={k.keyId}>
              <td>{k.name} <span class="ids">{k.keyId}</span></td><td>{k.role}</td><td>{formatTime(lang, k.createdAt)}</td><td>{k.createdBy}</td>
              <td>{formatTime(lang, k.lastUsedAt)}</td><td>{formatTime(lang, k.revokedAt)}</td>
              <td>{!k.revokedAt && <button type="button" onClick={() => void revoke(k)}>{t.revoke}</button>}</td>
            </tr>
          ))}</tbody>
        </table>
      )}
    </>
  );
}

// ---- The shell --------------------------------------------------------------------------------------------------

function App() {
  const [lang, setLang] = useState<Lang>(savedLang);
  const [hash, setHash] = useState(location.hash || '#/');
  const [me, setMe] = useState<Me | null>(null);
  const [ready, setReady] = useState(false);
  const [oidc, setOidc] = useState<OidcSettings | null>(null);
  const [error, setError] = useState<string>();
  const t = WORDS[lang];

  useEffect(() => {
    document.documentElement.lang = lang;
    localStorage.setItem('mssgw.console.lang', lang);
  }, [lang]);
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const signOut = useCallback(() => {
    session.clear();
    setMe(null);
  }, []);
  useEffect(() => {
    // A credential refused while signed in (a token expired, a key revoked): back to the sign-in page, saying why.
    setOnUnauthorized(() => {
      if (session.token()) setError(WORDS[savedLang()].sessionExpired);
      signOut();
    });
    void (async () => {
      try {
        const res = await fetch('/console/settings');
        setOidc(res.ok ? ((await res.json()) as { oidc: OidcSettings | null }).oidc : null);
        await finishOidc();
        if (session.token()) setMe(await get<Me>('/api/v1/console/me'));
      } catch (e) {
        setError((e as Error).message);
      } finally {
        setReady(true);
      }
    })();
  }, [signOut]);

  const signInKey = async (key: string) => {
    session.set(key);
    try {
      setMe(await get<Me>('/api/v1/console/me'));
      setError(undefined);
    } catch (e) {
      session.clear();
      setError((e as Error).message);
    }
  };
  const go = (h: string) => {
    location.hash = h;
  };
  const path = hash.replace(/^#/, '').split('?')[0] ?? '/';
  const page = path.startsWith('/results/') ? 'result' : path === '/messages' ? 'messages' : path === '/dead-letters' ? 'dead-letters' : path === '/audit' ? 'audit'
    : path === '/directory' ? 'directory' : path === '/keys' ? 'keys' : path === '/' ? 'overview' : 'none';
  useEffect(() => {
    const names: Record<string, string> = { overview: t.overview, messages: t.messages, result: t.result, 'dead-letters': t.deadLetters, audit: t.audit, directory: t.directory, keys: t.keys, none: t.notFound };
    document.title = me ? `${names[page]} — ${t.title}` : `${t.signIn} — ${t.title}`;
  }, [page, me, t]);

  const langSwitch = (
    <div class="lang">
      <label for="lang">{t.language}</label>
      <select id="lang" value={lang} onChange={(e) => setLang(e.currentTarget.value === 'en' ? 'en' : 'fr')}>
        <option value="fr">Français</option><option value="en">English</option>
      </select>
    </div>
  );
  if (!ready) return <main id="main"><p>{t.loading}</p></main>;
  if (!me) return <>{langSwitch}<SignIn t={t} oidc={oidc} error={error} onKey={(k) => void signInKey(k)} /></>;
  const ctx: Ctx = { t, lang, me, go };
  const link = (h: string, label: string, name: string) => <a href={h} aria-current={page === name ? 'page' : undefined}>{label}</a>;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>{t.skip}</a>
      <header class="top">
        <p class="brand">mssante-gateway</p>
        <nav aria-label={t.title}>
          {link('#/', t.overview, 'overview')}
          {link('#/messages', t.messages, 'messages')}
          {link('#/dead-letters', t.deadLetters, 'dead-letters')}
          {me.role !== 'viewer' && link('#/directory', t.directory, 'directory')}
          {me.role === 'admin' && link('#/audit', t.audit, 'audit')}
          {me.role === 'admin' && link('#/keys', t.keys, 'keys')}
        </nav>
        <div class="who">
          <span data-role={me.role}>{t.signedInAs} : {me.id} — {t.roles[me.role]}</span>
          {langSwitch}
          <button type="button" onClick={signOut}>{t.signOut}</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page === 'overview' && <OverviewPage {...ctx} />}
        {page === 'messages' && <MessagesPage key={hash} {...ctx} />}
        {page === 'result' && <ResultPage {...ctx} id={path.slice('/results/'.length)} />}
        {page === 'dead-letters' && <DeadLettersPage {...ctx} />}
        {page === 'audit' && (me.role === 'admin' ? <AuditPage {...ctx} /> : <p>{t.notFound}</p>)}
        {page === 'directory' && (me.role !== 'viewer' ? <DirectoryPage {...ctx} /> : <p>{t.notFound}</p>)}
        {page === 'keys' && (me.role === 'admin' ? <KeysPage {...ctx} /> : <p>{t.notFound}</p>)}
        {page === 'none' && <p>{t.notFound}</p>}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
