// The operator console (issue #24) on the message store bench/search.ts loads (1,000,000 results): the real api
// service in its own process on that schema, the real console (services/console/dist) in Debian's headless Chromium
// driven by playwright-core. Timed: sign-in to the overview rendered, the overview's API call alone (uncached) and its
// SQL statements (with their plans), Messages search pages (first page, and the next by cursor), the JavaScript
// shipped. Run alone: `node bench/console.ts` (loads the store, runs the search mix, then this; the store is dropped
// after); MSSGW_BENCH_SEARCH_RESULTS sets its size.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createApiKey } from '@mssgw/auth';
import { DEMO_CONFIG_FILE } from '@mssgw/config';
import { OVERVIEW_QUERIES } from '@mssgw/api';
import { startGatewayProcess, type GatewayProcess } from './process.ts';
import { benchSearch, FAMILIES, type LoadedStore, type SearchBench } from './search.ts';
import { percentile, round } from './stats.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const DIST = path.join(ROOT, 'services/console/dist');
const RESULTS_DIR = path.join(ROOT, 'bench/results');
const PORT = Number(process.env['MSSGW_BENCH_CONSOLE_PORT'] ?? 18390);
/** Runs of each measure after a warm-up run. */
const RUNS = Number(process.env['MSSGW_BENCH_CONSOLE_RUNS'] ?? 10);
/** The overview's answer is cached this long by the api (OVERVIEW_TTL_MS in services/api/src/console.ts): waited past. */
const OVERVIEW_TTL_MS = 3000;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'mssgw.console.token';

const log = (s: string) => console.log(`[console] ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Timing { runs: number; p50Ms: number; p95Ms: number; maxMs: number }
const timing = (v: number[]): Timing => ({ runs: v.length, p50Ms: round(percentile(v, 50), 1), p95Ms: round(percentile(v, 95), 1), maxMs: round(Math.max(...v), 1) });

export interface ConsoleBench {
  results: number;
  lastDayResults: number;
  /** Load average (1, 5, 15 min) when the scenario began and ended: the machine is shared. */
  load: { start: number[]; end: number[] };
  /** Sign-in with an API key to the overview rendered (its tables filled), each with the overview computed afresh. */
  signInToOverview: Timing;
  /** A page load of / with the key already in the tab's session, to the overview rendered (uncached). */
  reloadToOverview: Timing;
  /**
   * Medians of where those went, by the page's clock (ms): the page loaded (HTML, JS, CSS: load event); the key typed
   * and the button clicked by the driver (sign-in only); the overview's request as the browser saw it; from its
   * answer to the tables seen by the driver (rendering, and the driver's own polling).
   */
  overviewPhases: Record<'signIn' | 'reload', { pageLoaded: number; typing?: number; overviewRequest: number; rendered: number }>;
  /** GET /api/v1/console/overview alone, uncached (after the api's cache expired), and cached. */
  overviewApi: Timing;
  overviewApiCached: Timing;
  /** The overview's PostgreSQL statements run alone with the api's parameters, and each one's plan (EXPLAIN ANALYZE). */
  overviewSql: Record<string, Timing & { plan: string }>;
  /** What the overview counted (the last day's recipients by state, results by source). */
  overviewCounts: { recipientsLastDay: number; resultsLastDay: number; states: number };
  /** Messages search pages: a page load of #/messages?… to its first 50 rows shown; the API call alone; the next page by cursor. */
  search: Record<string, { page: Timing; api: Timing; nextPage?: Timing; phases: { pageLoaded: number; searchRequest: number; rendered: number } }>;
  /** Every search page (first pages) together. */
  searchPage: Timing;
  js: { appJsBytes: number; appJsGzipBytes: number; appCssBytes: number; appCssGzipBytes: number; totalGzipBytes: number };
  screenshots: string[];
}

/** The overview's statements (OVERVIEW_QUERIES, as the api runs them), each timed and explained alone, by these names. */
const OVERVIEW_LABELS: Record<keyof typeof OVERVIEW_QUERIES, string> = {
  states: 'recipients by state (24 h)',
  received: 'results by source and hour (24 h)',
  sourceStates: 'source × state (1 h)',
  failures: 'failures by reason (24 h)',
};

// Waited for with locators: the page's Content-Security-Policy refuses the eval that waitForFunction would need.
/** The overview is on screen: its recipients-by-state, sources and hourly tables have rows. */
async function overviewRendered(page: Page): Promise<void> {
  try {
    for (const id of ['h-states', 'h-sources', 'h-throughput']) await page.locator(`section[aria-labelledby="${id}"] tbody tr`).first().waitFor({ timeout: 60_000 });
  } catch (err) {
    throw new Error(`the overview did not render; the page says: ${(await page.locator('body').innerText()).slice(0, 3000)}`, { cause: err });
  }
}
/** A Messages page shows at least `n` rows, and is not loading. */
/**
 * Where a page's time went, from its own clock (Navigation and Resource Timing, read through the debugging protocol,
 * which the CSP does not govern): the load event, and the first call to each API path named, start and end.
 */
interface PageClock { now: number; loaded: number; calls: Record<string, [start: number, end: number]> }
const pageClock = (page: Page, paths: string[]) => page.evaluate<PageClock>(`(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const calls = {};
  for (const p of ${JSON.stringify(paths)}) {
    const r = res.find((e) => new URL(e.name).pathname === p);
    if (r) calls[p] = [r.startTime, r.responseEnd];
  }
  return { now: performance.now(), loaded: nav ? nav.loadEventEnd : 0, calls };
})()`);

async function rowsShown(page: Page, n: number): Promise<void> {
  await page.locator('tbody tr[data-result]').nth(n - 1).waitFor({ timeout: 60_000 });
  await page.locator('#listed', { hasNotText: /Chargement|Loading/ }).waitFor({ timeout: 60_000 });
}

export async function benchConsole(store: LoadedStore): Promise<ConsoleBench> {
  const { pool, schema, results, lastDay } = store;
  const load = { start: loadavg().map((l) => round(l, 2)), end: [] as number[] };
  log(`load average ${load.start.join(' ')}`);
  const { key } = await createApiKey(pool, { role: 'operator', name: 'bench console', createdBy: 'bench' });
  const base = `http://127.0.0.1:${PORT}`;
  const api = (p: string) => fetch(`${base}${p}`, { headers: { authorization: `Bearer ${key}` } });

  // The demo's configuration with a rate limit a benchmark does not reach (the default, 600 a minute, it would).
  const dir = path.join(tmpdir(), `mssgw-bench-console-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'gateway.yaml');
  writeFileSync(configFile, `${readFileSync(DEMO_CONFIG_FILE, 'utf8')}\napi: { rateLimit: { max: 1000000, windowMs: 60000 } }\n`);
  let gateway: GatewayProcess | undefined;
  let browser: Browser | undefined;
  try {
    gateway = await startGatewayProcess(['api'], {
      MSSGW_CONFIG: configFile, MSSGW_ENVIRONMENT: 'test', MSSGW_POSTGRES_SCHEMA: schema, MSSGW_REDIS_PREFIX: `bench-console-${process.pid}`,
      MSSGW_HTTP_PORT: String(PORT),
    }, PORT);
    // Served once built (the api builds a missing or stale dist/ at start).
    const js = readFileSync(path.join(DIST, 'app.js'));
    const css = readFileSync(path.join(DIST, 'app.css'));
    const jsFigures = {
      appJsBytes: js.length, appJsGzipBytes: gzipSync(js, { level: 9 }).length, appCssBytes: css.length, appCssGzipBytes: gzipSync(css, { level: 9 }).length, totalGzipBytes: 0,
    };
    jsFigures.totalGzipBytes = jsFigures.appJsGzipBytes + jsFigures.appCssGzipBytes;
    log(`JS ${jsFigures.appJsBytes} bytes (${jsFigures.appJsGzipBytes} gzipped), CSS ${jsFigures.appCssGzipBytes} gzipped`);

    // The overview's statements alone, with the api's parameters: timed, then explained.
    const overviewSql: ConsoleBench['overviewSql'] = {};
    for (const [key, name] of Object.entries(OVERVIEW_LABELS)) {
      const q = OVERVIEW_QUERIES[key as keyof typeof OVERVIEW_QUERIES];
      const times: number[] = [];
      for (let i = 0; i <= RUNS; i++) {
        const now = Date.now();
        const t0 = performance.now();
        await pool.query(q.text, q.params(new Date(now - 86_400_000), new Date(now - 3_600_000)));
        if (i > 0) times.push(performance.now() - t0);
      }
      const now = Date.now();
      const plan = (await pool.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${q.text}`, q.params(new Date(now - 86_400_000), new Date(now - 3_600_000))))
        .rows.map((r) => r['QUERY PLAN']).join('\n');
      overviewSql[name] = { ...timing(times), plan };
      log(`SQL ${name.padEnd(36)} p50 ${overviewSql[name].p50Ms} ms, p95 ${overviewSql[name].p95Ms} ms`);
    }

    // The API call alone: each after the api's cache expired, then a cached one right after.
    const overviewTimes: number[] = [];
    const cachedTimes: number[] = [];
    let counts: ConsoleBench['overviewCounts'] = { recipientsLastDay: 0, resultsLastDay: 0, states: 0 };
    for (let i = 0; i <= RUNS; i++) {
      await sleep(OVERVIEW_TTL_MS + 200);
      let t0 = performance.now();
      const res = await api('/api/v1/console/overview');
      const body = (await res.json()) as { states: { day: number }[]; received: { day: number }[] };
      if (!res.ok) throw new Error(`overview answered ${res.status}: ${JSON.stringify(body)}`);
      if (i > 0) overviewTimes.push(performance.now() - t0);
      counts = { recipientsLastDay: body.states.reduce((n, s) => n + s.day, 0), resultsLastDay: body.received.reduce((n, s) => n + s.day, 0), states: body.states.length };
      t0 = performance.now();
      await (await api('/api/v1/console/overview')).arrayBuffer();
      if (i > 0) cachedTimes.push(performance.now() - t0);
    }
    log(`overview API uncached p50 ${round(percentile(overviewTimes, 50), 1)} ms, p95 ${round(percentile(overviewTimes, 95), 1)} ms; ${counts.resultsLastDay} results, ${counts.recipientsLastDay} recipients in the last day`);

    browser = await chromium.launch({ executablePath: process.env['MSSGW_BENCH_CHROMIUM'] ?? '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
    const newPage = async (withKey: boolean): Promise<Page> => {
      const context = await browser!.newContext({ viewport: { width: 1360, height: 900 }, locale: 'fr-FR', timezoneId: 'Europe/Paris' });
      if (withKey) await context.addInitScript(`try { sessionStorage.setItem(${JSON.stringify(TOKEN)}, ${JSON.stringify(key)}); } catch {}`);
      const page = await context.newPage();
      if (process.env['MSSGW_BENCH_CONSOLE_DEBUG']) {
        page.on('response', (r) => log(`${r.status()} ${r.url()}`));
        page.on('requestfailed', (r) => log(`failed ${r.url()} ${r.failure()?.errorText}`));
        page.on('console', (m) => log(`page: ${m.text()}`));
        page.on('pageerror', (e) => log(`page error: ${e.message}`));
      }
      return page;
    };
    const screenshots: string[] = [];
    const shot = async (page: Page, name: string) => {
      const file = path.join(RESULTS_DIR, `console-${name}.png`);
      mkdirSync(RESULTS_DIR, { recursive: true });
      await page.screenshot({ path: file, fullPage: true });
      screenshots.push(path.relative(ROOT, file));
    };

    // Sign-in with the key to the overview rendered; a page load of / with the key set to the same. Each computes
    // the overview afresh (the api's cache waited out), in a browser context of its own (no cached assets).
    const signIn: number[] = [];
    const reload: number[] = [];
    const median = (v: number[]) => round(percentile(v, 50), 1);
    const phases = { signIn: { pageLoaded: [] as number[], typing: [] as number[], overviewRequest: [] as number[], rendered: [] as number[] }, reload: { pageLoaded: [] as number[], overviewRequest: [] as number[], rendered: [] as number[] } };
    const OVERVIEW = '/api/v1/console/overview';
    const ME = '/api/v1/console/me';
    for (let i = 0; i <= RUNS; i++) {
      await sleep(OVERVIEW_TTL_MS + 200);
      let page = await newPage(false);
      let t0 = performance.now();
      await page.goto(`${base}/`);
      await page.locator('#api-key').fill(key);
      await page.locator('form button[type="submit"]').click();
      await overviewRendered(page);
      if (i > 0) {
        signIn.push(performance.now() - t0);
        const c = await pageClock(page, [ME, OVERVIEW]);
        phases.signIn.pageLoaded.push(c.loaded);
        phases.signIn.typing.push(c.calls[ME]![0] - c.loaded);
        phases.signIn.overviewRequest.push(c.calls[OVERVIEW]![1] - c.calls[OVERVIEW]![0]);
        phases.signIn.rendered.push(c.now - c.calls[OVERVIEW]![1]);
      }
      if (i === RUNS) await shot(page, 'overview');
      await page.context().close();

      await sleep(OVERVIEW_TTL_MS + 200);
      page = await newPage(true);
      t0 = performance.now();
      await page.goto(`${base}/`);
      await overviewRendered(page);
      if (i > 0) {
        reload.push(performance.now() - t0);
        const c = await pageClock(page, [OVERVIEW]);
        phases.reload.pageLoaded.push(c.loaded);
        phases.reload.overviewRequest.push(c.calls[OVERVIEW]![1] - c.calls[OVERVIEW]![0]);
        phases.reload.rendered.push(c.now - c.calls[OVERVIEW]![1]);
      }
      await page.context().close();
    }
    const overviewPhases: ConsoleBench['overviewPhases'] = {
      signIn: { pageLoaded: median(phases.signIn.pageLoaded), typing: median(phases.signIn.typing), overviewRequest: median(phases.signIn.overviewRequest), rendered: median(phases.signIn.rendered) },
      reload: { pageLoaded: median(phases.reload.pageLoaded), overviewRequest: median(phases.reload.overviewRequest), rendered: median(phases.reload.rendered) },
    };
    log(`phases (medians, ms): ${JSON.stringify(overviewPhases)}`);
    log(`sign-in → overview p50 ${round(percentile(signIn, 50), 1)} ms, p95 ${round(percentile(signIn, 95), 1)} ms; page load → overview p95 ${round(percentile(reload, 95), 1)} ms`);

    // Messages search pages: values drawn from the store (so that each search finds results), RUNS + 1 each.
    const sample = async (sql: string) => (await pool.query<{ v: string }>(sql, [RUNS + 1])).rows.map((r) => r.v);
    const ins = await sample(`select patient_ins as v from results where patient_ins is not null and id % 997 = 0 order by id desc limit $1`);
    const practitioners = await sample(`select recipient as v from deliveries where kind = 'professional' and result_row % 991 = 0 order by result_row desc limit $1`);
    const prefixes = FAMILIES.slice(0, 40).filter((_, i) => i % 4 === 0).map((f) => f.slice(0, 3).toLowerCase());
    const states = ['failed', 'dead-lettered', 'queued', 'delivered', 'processing-error', 'unconfirmed', 'refused', 'expanded', 'submitted', 'displayed', 'relayed'];
    const kinds: [string, string, string[]][] = [
      ['patient (INS)', 'patient', ins],
      ['name: 3-letter prefix', 'name', prefixes],
      ['recipient (a practitioner)', 'recipient', practitioners],
      ['state', 'state', states],
    ];
    const search: ConsoleBench['search'] = {};
    const allPages: number[] = [];
    const page = await newPage(true);
    for (const [kind, param, values] of kinds) {
      const pageTimes: number[] = [];
      const apiTimes: number[] = [];
      const nextTimes: number[] = [];
      const searchPhases = { pageLoaded: [] as number[], searchRequest: [] as number[], rendered: [] as number[] };
      for (let i = 0; i <= RUNS; i++) {
        const value = values[i % values.length]!;
        const hash = `#/messages?${new URLSearchParams({ [param]: value }).toString()}`;
        await page.goto('about:blank');
        const t0 = performance.now();
        await page.goto(`${base}/${hash}`);
        await rowsShown(page, 1);
        if (i > 0) {
          pageTimes.push(performance.now() - t0);
          const c = await pageClock(page, ['/api/v1/results']);
          searchPhases.pageLoaded.push(c.loaded);
          searchPhases.searchRequest.push(c.calls['/api/v1/results']![1] - c.calls['/api/v1/results']![0]);
          searchPhases.rendered.push(c.now - c.calls['/api/v1/results']![1]);
        }
        if (kind === 'name: 3-letter prefix' && i === RUNS) await shot(page, 'search');
        // The next page by cursor, when there is one: "Afficher plus" to 100 rows shown.
        const rows = await page.locator('tbody tr[data-result]').count();
        const more = page.getByRole('button', { name: /^(Afficher plus|Show more)$/ });
        if (rows >= 50 && (await more.count())) {
          const t1 = performance.now();
          await more.click();
          await rowsShown(page, rows + 1);
          if (i > 0) nextTimes.push(performance.now() - t1);
        }
        const t2 = performance.now();
        const res = await api(`/api/v1/results?${new URLSearchParams({ [param]: value, limit: '50' }).toString()}`);
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`search ${kind} answered ${res.status}`);
        if (i > 0) apiTimes.push(performance.now() - t2);
      }
      allPages.push(...pageTimes);
      search[kind] = {
        page: timing(pageTimes), api: timing(apiTimes), ...(nextTimes.length ? { nextPage: timing(nextTimes) } : {}),
        phases: { pageLoaded: median(searchPhases.pageLoaded), searchRequest: median(searchPhases.searchRequest), rendered: median(searchPhases.rendered) },
      };
      log(`search ${kind.padEnd(28)} page p50 ${search[kind].page.p50Ms} ms, p95 ${search[kind].page.p95Ms} ms; API p95 ${search[kind].api.p95Ms} ms; next page p95 ${search[kind].nextPage?.p95Ms ?? '—'} ms; phases ${JSON.stringify(search[kind].phases)}`);
    }
    await page.context().close();
    load.end = loadavg().map((l) => round(l, 2));
    log(`load average ${load.end.join(' ')}`);
    return {
      results, lastDayResults: lastDay, load,
      signInToOverview: timing(signIn), reloadToOverview: timing(reload), overviewPhases, overviewApi: timing(overviewTimes), overviewApiCached: timing(cachedTimes),
      overviewSql, overviewCounts: counts, search, searchPage: timing(allPages), js: jsFigures, screenshots,
    };
  } finally {
    await browser?.close();
    await gateway?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Alone: the search scenario's store, its searches, then the console on it.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let figures: ConsoleBench | undefined;
  // MSSGW_BENCH_SEARCH_SCHEMA: load into (or reuse) that schema and keep it, to look at it after.
  const keep = process.env['MSSGW_BENCH_SEARCH_SCHEMA'];
  const searchFigures: SearchBench = await benchSearch({
    results: Number(process.env['MSSGW_BENCH_SEARCH_RESULTS'] ?? 1_000_000),
    ...(keep ? { schema: keep, keep: true } : {}),
    whileLoaded: async (store) => void (figures = await benchConsole(store)),
  });
  const out = path.join(RESULTS_DIR, 'console.json');
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), console: figures, search: searchFigures }, null, 2) + '\n');
  console.log(`written ${out}`);
  process.exit(0);
}
