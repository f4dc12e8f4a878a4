// npm run bench: runs the benchmarks on the sandbox and writes bench/results/latest.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connectRedis } from '@mssgw/queue';
import { benchCompose } from './compose.ts';
import { benchConsole, type ConsoleBench } from './console.ts';
import { benchDirectory } from './directory.ts';
import { benchDispatch } from './dispatch.ts';
import { benchIntake } from './intake.ts';
import { benchMachine } from './machine.ts';
import { benchReceipts } from './receipts.ts';
import { benchSearch } from './search.ts';
import { benchStages } from './stages.ts';
import { round } from './stats.ts';

const seconds = Number(process.env['MSSGW_BENCH_SECONDS'] ?? 10);

/**
 * Between scenarios: the benchmark's keys leave the sandbox Redis, and a running AOF rewrite is waited for. Otherwise
 * one scenario's data (hundreds of MB) is copied by the AOF rewrites of the next one, which takes a core from it.
 */
async function settleRedis(): Promise<void> {
  const redis = connectRedis('redis://127.0.0.1:16379');
  for (const pattern of ['bench-*', 'test-bench-*']) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  }
  while ((await redis.info('persistence')).includes('aof_rewrite_in_progress:1')) await new Promise((r) => setTimeout(r, 200));
  await redis.quit();
}

// The CPU-only and light scenarios first; the dispatcher's million-job backlog last (Redis is busy after it).
await settleRedis();
const machine = await benchMachine();
const compose = await benchCompose(Number(process.env['MSSGW_BENCH_COMPOSE_RESULTS'] ?? 2_000));
const directory = await benchDirectory(Number(process.env['MSSGW_BENCH_DIRECTORY_ROWS'] ?? 535_000));
await settleRedis();
const intake = await benchIntake({ seconds, kafkaMessages: Number(process.env['MSSGW_BENCH_KAFKA_MESSAGES'] ?? 50_000) });
await settleRedis();
const receipts = await benchReceipts(Number(process.env['MSSGW_BENCH_RECEIPTS'] ?? 3000));
await settleRedis();
const stages = await benchStages(Number(process.env['MSSGW_BENCH_STAGE_RESULTS'] ?? 1_500));
await settleRedis();
// PostgreSQL only: a message store of its own, loaded in bulk, searched, the console driven on it, then dropped.
const held: { console?: ConsoleBench } = {};
const search = await benchSearch({
  results: Number(process.env['MSSGW_BENCH_SEARCH_RESULTS'] ?? 1_000_000),
  whileLoaded: async (store) => void (held.console = await benchConsole(store)),
});
const ui = held.console!;
const dispatch = await benchDispatch({
  results: Number(process.env['MSSGW_BENCH_DISPATCH_RESULTS'] ?? 3_000),
  pacedMailsPerSecond: Number(process.env['MSSGW_BENCH_PACED_MAILS'] ?? 300),
  pacedSeconds: 10,
  backlog: Number(process.env['MSSGW_BENCH_BACKLOG'] ?? 1_000_000),
  mailBytes: compose.mailBytes,
});
const rows: [string, string, string][] = [
  ['Machine: a round trip between two processes (loopback TCP)', `${machine.roundTripUs} µs`, `${machine.roundTripCpuUsPerSide} µs of CPU on each side`],
  ['Machine: Redis, one connection', `${machine.redisRoundTripsPerSecond} round trips/s`, `${machine.redisPipelinedCommandsPerSecond} commands/s pipelined 100 deep`],
  ['MLLP intake, 8 senders, closed loop', `${intake.mllpAckedPerSecond} results/s acknowledged`, `ACK p50 ${intake.mllpAckP50Ms} ms, p99 ${intake.mllpAckP99Ms} ms, intake peak RSS ${intake.intakePeakRssMb} MB`],
  [`MLLP intake paced at ${intake.pacedRatePerSecond}/s`, `${intake.messageBytes}-byte CI-SIS ORU`, `ACK p50 ${intake.pacedAckP50Ms} ms, p99 ${intake.pacedAckP99Ms} ms`],
  ['Kafka intake (consumed, queued, committed)', `${intake.kafkaQueuedPerSecond} results/s`, `CPU per record: intake ${intake.kafkaCpuMsPerRecord} ms, Redis ${intake.kafkaRedisCpuMsPerRecord} ms, broker ${intake.kafkaBrokerCpuMsPerRecord} ms`],
  ['Receipt parsing in-process', `${receipts.postfixDsnPerSecond} Postfix DSNs/s`, `${receipts.corpusMixPerSecond}/s on the bounce corpus mix`],
  [`Hostile mail parsing in-process (${receipts.hostile.mails} mails, ${receipts.hostile.megabytes} MB)`, `worst ${receipts.hostile.worstMsPerMb} ms per MB (${receipts.hostile.worstMail})`, `CPU ${receipts.hostile.cpuMsPerMb} ms per MB`],
  ['Receipts from Dovecot (IMAP, parsed, recorded)', `${receipts.endToEndPerSecond} receipts/s`, `${receipts.endToEndReceipts} DSNs`],
  [`Directory import, ${directory.rows} rows`, `${directory.importSeconds} s (${directory.mailboxes} mailboxes, ${directory.rejected} rejected)`, `import peak RSS ${directory.importPeakRssMb} MB`],
  [`End to end, MLLP → intake → router → dispatcher → smtp-sink (${dispatch.connections} connections, mails of ${Math.round(dispatch.mailBytes / 1024)} KB)`, `${dispatch.mailsPerSecond} mails/s`, `ceiling (smtp-source, same size and connections) ${dispatch.ceilingMailsPerSecond} mails/s, ratio ${dispatch.ratio}`],
  ['End to end: CPU per mail', Object.entries(dispatch.cpuMsPerMail).map(([k, v]) => `${k} ${v}`).join(', ') + ` (ms; sum ${round(Object.values(dispatch.cpuMsPerMail).reduce((a, b) => a + b, 0), 2)})`, `ceiling: ${Object.entries(dispatch.ceilingCpuMsPerMail).map(([k, v]) => `${k} ${v}`).join(', ')} ms`],
  [`Paced at ${dispatch.pacedMailsPerSecond} mails/s`, `ACK → SMTP p50 ${dispatch.p50AckToSmtpMs} ms, p99 ${dispatch.p99AckToSmtpMs} ms`, `peak RSS ${Object.entries(dispatch.peakRssMb).map(([k, v]) => `${k} ${v} MB`).join(', ')}`],
  [`Each stage alone, ${stages.results} results: intake (MLLP, 8 senders)`, `${stages.intake.resultsPerSecond} results/s`, `${stages.intake.cpuMsPerResult} ms CPU per result, Redis ${stages.intake.redisCpuMsPerResult} ms, PostgreSQL ${stages.intake.postgresCpuMsPerResult} ms`],
  ['  router (on the filled intake queue)', `${stages.router.resultsPerSecond} results/s`, `${stages.router.cpuMsPerResult} ms CPU per result, Redis ${stages.router.redisCpuMsPerResult} ms, PostgreSQL ${stages.router.postgresCpuMsPerResult} ms`],
  ['  dispatcher (on the queued deliveries)', `${stages.dispatcher.mailsPerSecond} mails/s`, `${stages.dispatcher.cpuMsPerMail} ms CPU per mail, Redis ${stages.dispatcher.redisCpuMsPerMail} ms, PostgreSQL ${stages.dispatcher.postgresCpuMsPerMail} ms, smtp-sink ${stages.dispatcher.sinkCpuMsPerMail} ms`],
  [`Storage per result (${stages.results} results, 40 KB PDF, 2 mails)`, `PostgreSQL ${stages.storage.postgresBytesPerResult} bytes`, `Redis at the fullest ${stages.storage.redisPeakBytesPerResult} bytes (largest value ${stages.storage.largestRedisValueBytes} bytes), once sent ${stages.storage.redisBytesPerResultAfter} bytes`],
  [`Dispatcher with ${dispatch.backlogJobs} jobs waiting`, `peak RSS ${dispatch.backlogDispatcherRssMb} MB`, ''],
  ['Composing mails (CI-SIS ORU, 40 KB PDF, practitioner + patient)', `${compose.cpuMsPerMail} ms CPU per mail`, `${compose.mails} mails of ${Math.round(compose.mailBytes / 1024)} KB`],
  [`Result search, ${search.results} results and ${search.deliveries} recipients (${search.loadSeconds} s to load)`, `p50 ${search.p50Ms} ms, p95 ${search.p95Ms} ms, max ${search.maxMs} ms`, `slowest kind p95 ${Math.max(...Object.values(search.kinds).map((k) => k.p95Ms))} ms; ${search.bytesPerResult} bytes per result (${search.searchIndexBytesPerResult} for the search indexes)`],
  [`Console on ${ui.results} results (${ui.lastDayResults} in the last day), headless Chromium`, `overview p95 ${ui.signInToOverview.p95Ms} ms (sign-in), search page p95 ${ui.searchPage.p95Ms} ms`, `overview API p95 ${ui.overviewApi.p95Ms} ms uncached; JS ${round(ui.js.appJsGzipBytes / 1024, 1)} KB gzipped (+ CSS ${round(ui.js.appCssGzipBytes / 1024, 1)} KB); load average ${ui.load.start[0]}`],
  ['Directory lookup by RPPS, one at a time', `p50 ${directory.lookupP50Ms} ms, p99 ${directory.lookupP99Ms} ms`, `${directory.lookups} lookups`],
];
await settleRedis();
const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ')).join('\n'));
const out = path.resolve(import.meta.dirname, 'results/latest.json');
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: { cpus: (await import('node:os')).cpus().length, ...machine }, intake, receipts, directory, compose, stages, dispatch, search, console: ui,
  // The fields issue #6 names, at the top level.
  mailsPerSecond: dispatch.mailsPerSecond, ceilingMailsPerSecond: dispatch.ceilingMailsPerSecond, ratio: dispatch.ratio,
  p99AckToSmtpMs: dispatch.p99AckToSmtpMs, peakRssMb: { ...dispatch.peakRssMb, dispatcherWithBacklog: dispatch.backlogDispatcherRssMb },
}, null, 2) + '\n');
console.log(`written ${out}`);
