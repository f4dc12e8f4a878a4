import { spawn } from 'node:child_process';
import { demoConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { connectRedis } from '@mssgw/queue';
import { connectPostgres } from '@mssgw/store';
import { DOCTORS, makeCisisResult, PATIENTS } from '../test/support/samples.ts';
import { cpuSecondsOf, redisServerPid, startGatewayProcess, type GatewayProcess } from './process.ts';
import { postgresCpuSeconds } from './postgres-cpu.ts';
import { round } from './stats.ts';

const SINK_PORT = 12526;
const MLLP_PORT = 12578;

export interface StageFigures {
  results: number;
  /** Each stage run alone on what the stage before left queued: its own rate and CPU, with Redis's and the sink's. */
  intake: { resultsPerSecond: number; cpuMsPerResult: number; redisCpuMsPerResult: number; postgresCpuMsPerResult: number };
  router: { resultsPerSecond: number; cpuMsPerResult: number; redisCpuMsPerResult: number; postgresCpuMsPerResult: number };
  dispatcher: { mailsPerSecond: number; cpuMsPerMail: number; redisCpuMsPerMail: number; postgresCpuMsPerMail: number; sinkCpuMsPerMail: number };
  /**
   * What a result costs in storage (40 KB PDF, one practitioner and the patient): PostgreSQL's bytes per result once
   * every mail is sent (tables, TOAST and indexes of the schema), Redis's at the fullest (the routing jobs waiting,
   * then the delivery jobs) and once every mail is sent (what is left).
   */
  storage: { postgresBytesPerResult: number; redisPeakBytesPerResult: number; redisBytesPerResultAfter: number; largestRedisValueBytes: number };
}

const metricTotal = async (port: number, name: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
};

/**
 * The end-to-end figure says what the machine does with all stages competing for its cores; this one says what each
 * stage costs. The intake is filled over MLLP with the router stopped, then the router runs alone on that queue, then
 * the dispatcher alone on the deliveries, each timed and measured in CPU from /proc (Redis and the sink included).
 */
export async function benchStages(results: number): Promise<StageFigures> {
  const tag = Date.now().toString(36);
  const sink = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${SINK_PORT}`, '1000'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const redisPid = redisServerPid();
  const env = {
    MSSGW_ENVIRONMENT: 'test', MSSGW_REDIS_PREFIX: `bench-s${tag}`, MSSGW_POSTGRES_SCHEMA: `bench_s${tag}`,
    MSSGW_MLLP_LISTENERS: JSON.stringify([{ source: 'lab', host: '127.0.0.1', port: MLLP_PORT, maxMessageBytes: 33554432, idleTimeoutMs: 300000 }]),
    MSSGW_OPERATOR_SMTP_HOST: '127.0.0.1', MSSGW_OPERATOR_SMTP_PORT: String(SINK_PORT), MSSGW_OPERATOR_INSECURE_PLAINTEXT: 'true',
    MSSGW_OPERATOR_MAX_CONNECTIONS: '4',
  };
  const messages = Array.from({ length: results }, (_, i) =>
    Buffer.from(makeCisisResult({ controlId: `S-${tag}-${i}`, patient: PATIENTS[i % 3]!, doctors: [DOCTORS[i % 3]!], toPatient: true, pdfBytes: 40 * 1024 })));
  let current: GatewayProcess | undefined;
  /** Runs one stage until `done` holds, and returns its wall time and the CPU it, Redis and the sink used. */
  const stage = async (service: string, port: number, readyPort: number, run: () => Promise<void>) => {
    current = await startGatewayProcess([service], { ...env, MSSGW_HTTP_PORT: String(port) }, readyPort);
    const [own, redis, pg, smtp, t0] = [current.cpuSeconds(), cpuSecondsOf(redisPid), postgresCpuSeconds(), cpuSecondsOf(sink.pid!), performance.now()];
    await run();
    const figures = {
      seconds: (performance.now() - t0) / 1000,
      cpu: current.cpuSeconds() - own, redis: cpuSecondsOf(redisPid) - redis, postgres: postgresCpuSeconds() - pg, sink: cpuSecondsOf(sink.pid!) - smtp,
    };
    await current.stop();
    current = undefined;
    return figures;
  };
  const until = async (port: number, metric: string, n: number) => {
    while ((await metricTotal(port, metric)) < n) await new Promise((r) => setTimeout(r, 50));
  };
  try {
    const intake = await stage('intake', 18094, MLLP_PORT, async () => {
      const clients = await Promise.all(Array.from({ length: 8 }, async () => {
        const c = new MllpClient({ host: '127.0.0.1', port: MLLP_PORT });
        await c.connect();
        return c;
      }));
      let next = 0;
      await Promise.all(clients.map(async (c) => {
        for (let i = next++; i < results; i = next++) {
          const ack = await c.send(messages[i]!);
          if (ack.code !== 'AA') throw new Error(`unexpected ${ack.code}: ${ack.text}`);
        }
      }));
      await Promise.all(clients.map((c) => c.close()));
    });
    const afterIntake = await redisBytes(env.MSSGW_REDIS_PREFIX);
    const router = await stage('router', 18095, 18095, () => until(18095, 'mssgw_mails_queued_total', 2 * results));
    const afterRouter = await redisBytes(env.MSSGW_REDIS_PREFIX);
    const dispatcher = await stage('dispatcher', 18096, 18096, () => until(18096, 'mssgw_mails_sent_total', 2 * results));
    const after = await redisBytes(env.MSSGW_REDIS_PREFIX);
    const postgresBytes = await schemaBytes(env.MSSGW_POSTGRES_SCHEMA);
    const per = (x: number, n: number) => round((x * 1000) / n, 2);
    return {
      results,
      intake: { resultsPerSecond: round(results / intake.seconds, 0), cpuMsPerResult: per(intake.cpu, results), redisCpuMsPerResult: per(intake.redis, results), postgresCpuMsPerResult: per(intake.postgres, results) },
      router: { resultsPerSecond: round(results / router.seconds, 0), cpuMsPerResult: per(router.cpu, results), redisCpuMsPerResult: per(router.redis, results), postgresCpuMsPerResult: per(router.postgres, results) },
      dispatcher: {
        mailsPerSecond: round((2 * results) / dispatcher.seconds, 0), cpuMsPerMail: per(dispatcher.cpu, 2 * results),
        redisCpuMsPerMail: per(dispatcher.redis, 2 * results), postgresCpuMsPerMail: per(dispatcher.postgres, 2 * results), sinkCpuMsPerMail: per(dispatcher.sink, 2 * results),
      },
      storage: {
        postgresBytesPerResult: round(postgresBytes / results, 0),
        redisPeakBytesPerResult: round(Math.max(afterIntake.total, afterRouter.total) / results, 0),
        redisBytesPerResultAfter: round(after.total / results, 0),
        largestRedisValueBytes: Math.max(afterIntake.largest, afterRouter.largest, after.largest),
      },
    };
  } finally {
    await current?.stop().catch(() => undefined);
    sink.kill();
  }
}

/** Redis memory (MEMORY USAGE, the value and its key's overhead) of every key under a prefix, and the largest one. */
async function redisBytes(prefix: string): Promise<{ total: number; largest: number }> {
  const redis = connectRedis('redis://127.0.0.1:16379');
  try {
    let total = 0;
    let largest = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      const sizes = await Promise.all(keys.map((k) => redis.memory('USAGE', k, 'SAMPLES', '0')));
      for (const n of sizes) {
        total += n ?? 0;
        largest = Math.max(largest, n ?? 0);
      }
    } while (cursor !== '0');
    return { total, largest };
  } finally {
    await redis.quit();
  }
}

/** Bytes of a schema's tables, their TOAST and their indexes. */
async function schemaBytes(schema: string): Promise<number> {
  const pool = connectPostgres({ ...demoConfig().postgres, schema });
  try {
    const res = await pool.query<{ bytes: string }>(
      `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint as bytes from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relkind = 'r'`,
      [schema],
    );
    return Number(res.rows[0]!.bytes);
  } finally {
    await pool.end();
  }
}
