// Issue #23, "metrics and alerts right in a cluster": a real Prometheus of this test's own scrapes three gateway
// processes (as three pods would be), and the dashboard's backlog query and the alert rules are read on it.
//
// Every process exports the queue depths it reads from the one Redis at scrape time (services/api, /metrics), so
// three processes export three copies of one number: the dashboard and the rules read them with max, and the true
// backlog must show, not three times it. The rules are deploy/prometheus/alerts.yml with their `for:` shortened to
// 5 s (a copy in a temporary directory); the conditions made here must fire their alerts, and nothing else may fire.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { QUEUES } from '@mssgw/queue';
import { bullConnection } from '@mssgw/runtime';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/dashboards/mssgw.json'), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[];
};
/** The dashboard's own backlog query, as shipped. */
const BACKLOG = dashboard.panels.find((p) => p.title === 'Queue backlog')!.targets[0]!.expr;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

const stopped = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

interface Sample { metric: Record<string, string>; value: [number, string] }
interface Alert { labels: Record<string, string>; state: 'pending' | 'firing' }

describe('metrics and alerts of three gateway processes, on a Prometheus of the test\'s own', () => {
  const t = tag();
  const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-cluster-'));
  const processes: ChildProcess[] = [];
  let prometheus: ChildProcess | undefined;
  let promUrl = '';
  let config: GatewayConfig;
  let httpPorts: number[] = [];
  let sendQueue = '';
  const results = 16;
  const perResult = 5;
  const backlog = results * perResult;

  const query = async (expr: string, time?: number): Promise<Sample[]> => {
    const r = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}${time ? `&time=${time}` : ''}`)).json()) as {
      status: string; error?: string; data: { result: Sample[] };
    };
    if (r.status !== 'success') throw new Error(`${expr}: ${r.error}`);
    return r.data.result;
  };
  /** The send queue's backlog by the dashboard's query, and by the sum every process's copy would give. */
  const backlogs = async () => {
    const time = Date.now() / 1000 - 1;
    const total = (samples: Sample[]) => samples.filter((s) => s.metric['queue'] === sendQueue).reduce((n, s) => n + Number(s.value[1]), 0);
    const [shown, summed] = await Promise.all([query(BACKLOG, time), query(BACKLOG.replace(/^max by/, 'sum by'), time)]);
    return { shown: total(shown), summed: total(summed) };
  };
  const firing = async () => {
    const r = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: Alert[] } };
    return r.data.alerts.filter((a) => a.state === 'firing');
  };
  const firingNames = async () => [...new Set((await firing()).map((a) => a.labels['alertname']!))].sort();

  beforeAll(async () => {
    const [mllpPort, closedSmtpPort, promPort, ...http] = await Promise.all(Array.from({ length: 6 }, freePort));
    httpPorts = http;
    config = testConfig('cluster', (c) => {
      c.mllp.listeners = [{ ...c.mllp.listeners[0]!, port: mllpPort! }];
      // A paused mailbox tries again after 20 s, then 40 s, 60 s: its jobs stay queued, rarely one active.
      c.dispatcher.backoffMs = 20_000;
      c.dispatcher.maxBackoffMs = 60_000;
      c.dispatcher.concurrency = 1;
    });
    sendQueue = QUEUES.send(config.mailboxes[0]!.address);
    const configFile = path.join(dir, 'gateway.json');
    writeFileSync(configFile, JSON.stringify(config));

    // The shipped rules, every `for:` shortened; scraped every 2 s (a process slow to answer on a loaded machine is not
    // taken for a process down), evaluated every second.
    const rules = readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8').replace(/^(\s+)for: \S+$/gm, '$1for: 5s');
    writeFileSync(path.join(dir, 'alerts.yml'), rules);
    const targets = httpPorts.map((p) => `"127.0.0.1:${p}"`).join(', ');
    writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global: { scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 1s }',
      `rule_files: ["${path.join(dir, 'alerts.yml')}"]`,
      'scrape_configs:',
      '  - job_name: mssgw',
      `    static_configs: [{ targets: [${targets}] }]`,
      '',
    ].join('\n'));
    prometheus = spawn('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`,
    ], { stdio: 'ignore' });
    promUrl = `http://127.0.0.1:${promPort}`;

    // Three processes, as three pods: intake and router; the API; a dispatcher whose operator does not answer.
    const start = (services: string[], port: number, env: Record<string, string> = {}) => {
      const child = spawn(path.join(ROOT, 'node_modules/.bin/node'), [path.join(ROOT, 'services/gateway/bin/mssgw.ts'), 'start', ...services], {
        env: { ...process.env, MSSGW_CONFIG: configFile, MSSGW_LOG_LEVEL: 'warn', MSSGW_HTTP_PORT: String(port), ...env },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      processes.push(child);
    };
    start(['intake', 'router'], httpPorts[0]!);
    start(['api'], httpPorts[1]!);
    start(['dispatcher'], httpPorts[2]!, { MSSGW_OPERATOR_SMTP_PORT: String(closedSmtpPort) });
    await waitFor('Prometheus scraping the three processes', async () => {
      try {
        return (await query('up{job="mssgw"} == 1')).length === 3;
      } catch {
        return false; // Prometheus not listening yet
      }
    }, 60_000, 500);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(processes.map(stopped));
    if (prometheus) await stopped(prometheus);
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the true backlog on the dashboard\'s query, not three times it', async () => {
    // The results come over a few seconds, so that the backlog grows at about 5 mails/s (MssgwSendBacklogGrowing).
    const c = new MllpClient({ host: '127.0.0.1', port: config.mllp.listeners[0]!.port });
    await c.connect();
    for (let r = 0; r < results; r++) {
      const doctors = Array.from({ length: perResult }, (_, k) => ({ ...DOCTORS[k % 3]!, rpps: `8200000${r}${k}`, address: `cluster-${t}-${r}-${k}@cabinet-demo.mssante.test` }));
      expect((await c.send(makeCisisResult({ controlId: `CL-${t}-${r}`, patient: PATIENTS[r % 3]!, doctors }))).code).toBe('AA');
      await new Promise((res) => setTimeout(res, 1000));
    }
    await c.close();

    // What Redis holds: every delivery queued, none sent (the operator does not answer; the mailbox is paused).
    const q = new Queue(sendQueue, bullConnection(config));
    try {
      await waitFor('every delivery routed', async () => {
        const n = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        return Object.values(n).reduce((a, b) => a + b, 0) === backlog;
      }, 60_000, 500);
    } finally {
      await q.close();
    }
    const seen = await waitFor(`a backlog of ${backlog} on the dashboard`, async () => {
      const b = await backlogs();
      return b.shown === backlog && b.summed === 3 * backlog ? b : undefined;
    }, 60_000, 1000);
    expect(seen).toEqual({ shown: backlog, summed: 3 * backlog });
  }, 120_000);

  it('fires the alerts of the conditions made (a growing send queue, a paused mailbox, a routing failure, dead letters), and no other', async () => {
    const bull = bullConnection(config);
    // A result whose routing fails on its only attempt (a job the router cannot read).
    const intake = new Queue(QUEUES.intake, bull);
    await intake.add('result', { unreadable: true }, { jobId: `r-cluster-failed-${t}`, attempts: 1 });
    await intake.close();
    // Deliveries reaching the dead-letter queue.
    const dead = new Queue(QUEUES.deadLetter, bull);
    for (let i = 0; i < 3; i++) await dead.add('dead-letter', { deliveryId: `d-cluster-${t}-${i}`, reason: 'test' }, { jobId: `d-cluster-${t}-${i}` });
    await dead.close();

    const expected = ['MssgwDeadLetterGrowing', 'MssgwMailboxPaused', 'MssgwRoutingFailed', 'MssgwSendBacklogGrowing'];
    const names = await waitFor('the expected alerts firing', async () => {
      const n = await firingNames();
      return expected.every((a) => n.includes(a)) ? n : undefined;
    }, 90_000, 1000);
    expect(names).toEqual(expected);
    const alerts = await firing();
    expect(alerts.find((a) => a.labels['alertname'] === 'MssgwMailboxPaused')?.labels).toMatchObject({ mailbox: config.mailboxes[0]!.address, reason: 'unreachable' });
    expect(alerts.filter((a) => a.labels['alertname'] === 'MssgwSendBacklogGrowing').map((a) => a.labels['queue'])).toEqual([sendQueue]);
    // The growth is measured once, not once per process: 80 mails over about 16 s, a third of what a sum would say.
    const [growth] = await query('max by (queue) (sum without (state) (deriv(mssgw_queue_jobs{queue=~"send\\\\..*", state=~"waiting|prioritized|delayed"}[15m])))');
    const [summedGrowth] = await query('sum by (queue) (deriv(mssgw_queue_jobs{queue=~"send\\\\..*", state=~"waiting|prioritized|delayed"}[15m]))');
    expect(Number(summedGrowth!.value[1]) / Number(growth!.value[1])).toBeGreaterThan(2.5);
  }, 120_000);

  it('keeps the true backlog when a process is lost, and MssgwServiceDown names that one', async () => {
    await stopped(processes[1]!);
    const seen = await waitFor('the backlog read from the two processes left', async () => {
      const b = await backlogs();
      return b.shown === backlog && b.summed === 2 * backlog ? b : undefined;
    }, 60_000, 1000);
    expect(seen).toEqual({ shown: backlog, summed: 2 * backlog });
    const down = await waitFor('MssgwServiceDown', async () => {
      const a = (await firing()).filter((x) => x.labels['alertname'] === 'MssgwServiceDown');
      return a.length ? a : undefined;
    }, 60_000, 1000);
    expect(down.map((a) => a.labels['instance'])).toEqual([`127.0.0.1:${httpPorts[1]}`]);
    // Nothing else: the growth alert may have ended meanwhile (its 15 min slope flattens once the backlog stops growing).
    const names = await firingNames();
    expect(names.filter((n) => n !== 'MssgwSendBacklogGrowing')).toEqual(['MssgwDeadLetterGrowing', 'MssgwMailboxPaused', 'MssgwRoutingFailed', 'MssgwServiceDown']);
  }, 120_000);
});
