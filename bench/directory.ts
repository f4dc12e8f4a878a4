import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DirectoryStore, generateExtraction, generatedRpps } from '@mssgw/directory';
import { connectRedis } from '@mssgw/queue';
import { percentile, round } from './stats.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface DirectoryBench {
  rows: number;
  mailboxes: number;
  rejected: number;
  importSeconds: number;
  importPeakRssMb: number;
  lookups: number;
  lookupP50Ms: number;
  lookupP99Ms: number;
}

/**
 * The directory at the size of the real extraction: a generated file of `rows` rows imported by `mssgw directory
 * import` in its own process (wall time, peak RSS), then practitioner lookups one after another (latency).
 */
export async function benchDirectory(rows = 535_000, lookups = 20_000): Promise<DirectoryBench> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mssgw-bench-directory-'));
  const file = path.join(dir, 'Extraction_Correspondance_MSSante_bench.txt');
  const prefix = `bench-directory-${Date.now()}`;
  try {
    const out = createWriteStream(file);
    await generateExtraction(out, { rows, invalidEvery: 50_000 });
    await new Promise((resolve) => out.end(resolve));

    const started = Date.now();
    // GNU time gives the child's peak RSS without sampling.
    const r = spawnSync('/usr/bin/time', ['-f', 'peak-rss-kb %M', path.join(ROOT, 'node_modules/.bin/node'), path.join(ROOT, 'services/gateway/bin/mssgw.ts'), 'directory', 'import', file, '--json'], {
      encoding: 'utf8', env: { ...process.env, MSSGW_REDIS_PREFIX: prefix, MSSGW_LOG_LEVEL: 'warn' }, maxBuffer: 64 << 20,
    });
    const importSeconds = (Date.now() - started) / 1000;
    if (r.status !== 0) throw new Error(`directory import failed: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as { rows: number; mailboxes: number; rejected: number };
    const peakKb = Number(/peak-rss-kb (\d+)/.exec(r.stderr)?.[1] ?? 0);

    const redis = connectRedis('redis://127.0.0.1:16379');
    const store = new DirectoryStore(redis, prefix);
    const latencies: number[] = [];
    const practitioners = Math.floor(rows * 0.75);
    let misses = 0;
    for (let i = 0; i < lookups; i++) {
      const id = generatedRpps(1 + ((i * 7919) % practitioners));
      const t = process.hrtime.bigint();
      const found = await store.findPractitioner(id, 'RPPS');
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (!found.length) misses++;
    }
    // Only the practitioners of the few malformed rows may be missing.
    if (misses > lookups / 1000) throw new Error(`${misses} of ${lookups} generated practitioners not found`);
    await redis.unlink(`${prefix}:{dir}:current`, `${prefix}:{dir}:info`, ...(await redis.keys(`${prefix}:{dir}:g:*`)));
    await redis.quit();
    return {
      rows: report.rows, mailboxes: report.mailboxes, rejected: report.rejected, importSeconds: round(importSeconds), importPeakRssMb: Math.round(peakKb / 1024),
      lookups, lookupP50Ms: round(percentile(latencies, 50), 3), lookupP99Ms: round(percentile(latencies, 99), 3),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
