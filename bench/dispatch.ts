import { spawn, spawnSync } from 'node:child_process';
import { Queue } from 'bullmq';
import { demoConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { connectRedis, QUEUES } from '@mssgw/queue';
import { StatusStore } from '@mssgw/status';
import { connectPostgres, MessageBodies, sha256Of } from '@mssgw/store';
import { DOCTORS, makeCisisResult, PATIENTS } from '../test/support/samples.ts';
import { renderSampleMail } from './compose.ts';
import { cpuSecondsOf, redisServerPid, startGatewayProcess, waitedChildrenCpuSeconds, type GatewayProcess } from './process.ts';
import { postgresCpuSeconds } from './postgres-cpu.ts';
import { percentile, round } from './stats.ts';

const SINK_PORT = 12525;
const MLLP_PORT = 12577;
const PORTS = { intake: 18091, router: 18092, dispatcher: 18093 };
const CONNECTIONS = 4;
const REDIS = 'redis://127.0.0.1:16379';

export interface DispatchFigures {
  connections: number;
  mailBytes: number;
  results: number;
  mails: number;
  mailsPerSecond: number;
  ceilingMailsPerSecond: number;
  ratio: number;
  /**
   * CPU per mail of every process while the gateway sends as fast as it can: the three gateway processes, Redis,
   * PostgreSQL (all its processes), smtp-sink and the benchmark's MLLP senders. Their sum against 2,000 ms per second of two cores says how far the
   * machine can go.
   */
  cpuMsPerMail: Record<string, number>;
  /** The same for the ceiling: smtp-source and smtp-sink. */
  ceilingCpuMsPerMail: Record<string, number>;
  pacedMailsPerSecond: number;
  p50AckToSmtpMs: number;
  p99AckToSmtpMs: number;
  peakRssMb: Record<string, number>;
  backlogJobs: number;
  backlogDispatcherRssMb: number;
}

const progress = (what: string) => console.error(`[bench dispatch] ${what}`);

const sentTotal = async (port: number): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...text.matchAll(/^mssgw_mails_sent_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
};

/**
 * End to end on one machine: CI-SIS ORUs (a CDA with a 40 KB PDF, one practitioner and the patient: two mails each)
 * over MLLP into intake, router and dispatcher running as three processes, to Postfix's smtp-sink; beside it,
 * Postfix's smtp-source sending mails of the same size over the same number of connections to the same sink (the
 * machine's SMTP ceiling). Then a paced run for the ACK → SMTP latency, and a dispatcher facing a large backlog.
 */
export async function benchDispatch(opts: {
  results: number; pacedMailsPerSecond: number; pacedSeconds: number; backlog: number;
  /** Size of smtp-source's mails: that of the gateway's mails here (the PDF twice: in the CDA of the XDM archive and beside it). */
  mailBytes: number;
}): Promise<DispatchFigures> {
  const tag = Date.now().toString(36);
  const sink = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${SINK_PORT}`, '1000'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const processes: Record<string, GatewayProcess> = {};
  const redis = connectRedis(REDIS);
  try {
    // Each result carries its own document (the gateway would not send the same document and version twice); built
    // before the clock starts so that the senders are not the bottleneck.
    const pacedResults = Math.round((opts.pacedMailsPerSecond / 2) * opts.pacedSeconds);
    const messages = Array.from({ length: opts.results + pacedResults }, (_, i) =>
      Buffer.from(makeCisisResult({ controlId: `D-${tag}-${i}`, patient: PATIENTS[i % 3]!, doctors: [DOCTORS[i % 3]!], toPatient: true, pdfBytes: 40 * 1024 })));
    const message = (i: number) => messages[i]!;

    // The machine's ceiling: smtp-source, mails of the same size, same connections, same sink.
    const n = Math.max(2_000, opts.results * 2);
    const redisPid = redisServerPid();
    const c0 = performance.now();
    const ceilingCpu0 = { source: waitedChildrenCpuSeconds(), sink: cpuSecondsOf(sink.pid!) };
    progress('ceiling: smtp-source');
    const src = spawnSync('smtp-source', ['-l', String(opts.mailBytes), '-m', String(n), '-s', String(CONNECTIONS), '-f', 'bench@chu-demo.mssante.test', '-t', 'sink@cabinet-demo.mssante.test', `127.0.0.1:${SINK_PORT}`], { timeout: 120_000 });
    if (src.status !== 0) throw new Error(`smtp-source failed: ${src.stderr.toString()}`);
    const ceilingMailsPerSecond = n / ((performance.now() - c0) / 1000);
    const ceilingCpuMsPerMail = {
      source: round(((waitedChildrenCpuSeconds() - ceilingCpu0.source) * 1000) / n, 2),
      sink: round(((cpuSecondsOf(sink.pid!) - ceilingCpu0.sink) * 1000) / n, 2),
    };

    const env = {
      MSSGW_ENVIRONMENT: 'test',
      MSSGW_REDIS_PREFIX: `bench-d${tag}`,
      MSSGW_POSTGRES_SCHEMA: `bench_d${tag}`,
      MSSGW_MLLP_LISTENERS: JSON.stringify([{ source: 'lab', host: '127.0.0.1', port: MLLP_PORT, maxMessageBytes: 33554432, idleTimeoutMs: 300000 }]),
      MSSGW_OPERATOR_SMTP_HOST: '127.0.0.1',
      MSSGW_OPERATOR_SMTP_PORT: String(SINK_PORT),
      MSSGW_OPERATOR_INSECURE_PLAINTEXT: 'true',
      MSSGW_OPERATOR_MAX_CONNECTIONS: String(CONNECTIONS),
    };
    for (const [service, port] of Object.entries(PORTS)) {
      processes[service] = await startGatewayProcess([service], { ...env, MSSGW_HTTP_PORT: String(port) }, service === 'intake' ? MLLP_PORT : port);
    }
    const clients = await Promise.all(Array.from({ length: 8 }, async () => {
      const c = new MllpClient({ host: '127.0.0.1', port: MLLP_PORT });
      await c.connect();
      return c;
    }));

    // Throughput: 8 senders as fast as the ACKs come, until every mail is accepted by the sink.
    let seq = 0;
    const cpuNow = (): Record<string, number> => {
      const own = process.cpuUsage();
      return {
        ...Object.fromEntries(Object.entries(processes).map(([name, p]) => [name, p.cpuSeconds()])),
        redis: cpuSecondsOf(redisPid), postgres: postgresCpuSeconds(), sink: cpuSecondsOf(sink.pid!), senders: (own.user + own.system) / 1e6,
      };
    };
    const cpu0 = cpuNow();
    const t0 = performance.now();
    await Promise.all(clients.map(async (c) => {
      for (let i = seq++; i < opts.results; i = seq++) {
        const ack = await c.send(message(i));
        if (ack.code !== 'AA') throw new Error(`unexpected ${ack.code}: ${ack.text}`);
      }
    }));
    const mails = opts.results * 2;
    while ((await sentTotal(PORTS.dispatcher)) < mails) await new Promise((r) => setTimeout(r, 100));
    const mailsPerSecond = mails / ((performance.now() - t0) / 1000);
    const cpu1 = cpuNow();
    const cpuMsPerMail = Object.fromEntries(Object.keys(cpu0).map((k) => [k, round(((cpu1[k]! - cpu0[k]!) * 1000) / mails, 2)]));
    progress(`CPU per mail: ${JSON.stringify(cpuMsPerMail)}; ceiling: ${JSON.stringify(ceilingCpuMsPerMail)}`);

    progress(`throughput: ${round(mailsPerSecond, 0)} mails/s`);
    // Latency at a steady rate below the ceiling: ACK (recorded by intake) → SMTP acceptance (recorded by the dispatcher).
    const p0 = performance.now();
    const pending: Promise<unknown>[] = [];
    for (let k = 0; k < pacedResults; k++) {
      const due = p0 + (k * 2000) / opts.pacedMailsPerSecond;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      pending.push(clients[k % clients.length]!.send(message(opts.results + k)));
    }
    await Promise.all(pending);
    while ((await sentTotal(PORTS.dispatcher)) < mails + pacedResults * 2) await new Promise((r) => setTimeout(r, 100));
    const pacedMailsPerSecond = (pacedResults * 2) / ((performance.now() - p0) / 1000);
    progress(`paced: ${round(pacedMailsPerSecond, 0)} mails/s`);
    const pool = connectPostgres({ ...demoConfig().postgres, schema: env.MSSGW_POSTGRES_SCHEMA });
    const status = new StatusStore(pool);
    const latencies: number[] = [];
    for (let k = 0; k < pacedResults; k++) {
      const [id] = await status.resultsByControlId(`D-${tag}-${opts.results + k}`);
      const r = id ? await status.getResult(id, { withDeliveries: true }) : undefined;
      for (const d of r?.deliveries ?? []) if (d.submittedAt && r?.acknowledgedAt) latencies.push(d.submittedAt - r.acknowledgedAt);
    }
    await pool.end();
    await Promise.all(clients.map((c) => c.close()));
    const peakRssMb = Object.fromEntries(Object.entries(processes).map(([s, p]) => [s, round(p.peakRssMb(), 0)]));
    const cpuSeconds = Object.fromEntries(Object.entries(processes).map(([s, p]) => [s, round(p.cpuSeconds(), 1)]));
    progress(`CPU seconds per process: ${JSON.stringify(cpuSeconds)}`);
    progress(`latency measured on ${latencies.length} mails; stopping the gateway`);
    for (const [name, p] of Object.entries(processes)) {
      await p.stop();
      progress(`${name} stopped`);
    }

    // A large backlog: the dispatcher's memory must not grow with it (jobs stay in Redis, documents are shared).
    let backlogDispatcherRssMb = 0;
    if (opts.backlog > 0) {
      const config = demoConfig();
      const queue = new Queue(QUEUES.send(config.mailboxes[0]!.address), { connection: { url: REDIS, maxRetriesPerRequest: null }, prefix: `bench-b${tag}` });
      // One mail, rendered once, shared by the deliveries of the backlog (as the router does for a result's recipients),
      // and a record per delivery in the message store, which the jobs name.
      const mail = await renderSampleMail(message(0));
      const backlogPool = connectPostgres({ ...demoConfig().postgres, schema: env.MSSGW_POSTGRES_SCHEMA });
      const { attachments, head } = mail.rendered;
      await new MessageBodies(backlogPool).putMails(mail.resultId, [{ mailId: mail.mailId, head, attachments: { sha256: sha256Of(attachments), mediaType: 'message/rfc822-part', content: attachments } }]);
      await backlogPool.query(
        `insert into deliveries (delivery_id, result_id, recipient, kind, state, mail_id, message_id, mailbox, updated_at)
         select 'd-b' || i, $1, 'b' || i || '@cabinet-demo.mssante.test', 'professional', 'queued', $2, $3, $4, now()
         from generate_series(0, $5::int - 1) as i`,
        [mail.resultId, mail.mailId, mail.messageId, mail.from, opts.backlog],
      );
      await backlogPool.end();
      for (let i = 0; i < opts.backlog; i += 5_000) {
        await queue.addBulk(Array.from({ length: Math.min(5_000, opts.backlog - i) }, (_, j) => ({
          name: 'deliver',
          data: { deliveryId: `d-b${i + j}`, resultId: mail.resultId },
          opts: { jobId: `d-b${i + j}`, removeOnComplete: true, attempts: 3 },
        })));
      }
      const d = await startGatewayProcess(['dispatcher'], { ...env, MSSGW_REDIS_PREFIX: `bench-b${tag}`, MSSGW_HTTP_PORT: String(PORTS.dispatcher) }, PORTS.dispatcher);
      await new Promise((r) => setTimeout(r, 20_000));
      backlogDispatcherRssMb = round(d.peakRssMb(), 0);
      await d.stop();
      await queue.obliterate({ force: true, count: 10_000 });
      await queue.close();
    }
    return {
      connections: CONNECTIONS, mailBytes: opts.mailBytes, results: opts.results, mails,
      mailsPerSecond: round(mailsPerSecond, 0), ceilingMailsPerSecond: round(ceilingMailsPerSecond, 0), ratio: round(mailsPerSecond / ceilingMailsPerSecond, 2),
      cpuMsPerMail, ceilingCpuMsPerMail,
      pacedMailsPerSecond: round(pacedMailsPerSecond, 0), p50AckToSmtpMs: round(percentile(latencies, 50), 0), p99AckToSmtpMs: round(percentile(latencies, 99), 0),
      peakRssMb, backlogJobs: opts.backlog, backlogDispatcherRssMb,
    };
  } finally {
    for (const p of Object.values(processes)) await p.stop().catch(() => undefined);
    sink.kill();
    await redis.quit();
  }
}
