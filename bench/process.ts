import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DEMO_CONFIG_FILE } from '@mssgw/config';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface GatewayProcess {
  pid: number;
  /** Peak resident memory of the process so far (VmHWM), in MB. */
  peakRssMb(): number;
  /** CPU time the process has used so far (user + system), in seconds. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks, 100/s on Linux). */
export function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of this process's children that have ended and been waited for (a `spawnSync` among them). */
export function waitedChildrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** The pid of the sandbox process whose command line satisfies `is` (the Redis or the Kafka broker of the sandbox). */
function sandboxPid(what: string, is: (cmdline: string) => boolean): number {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (is(readFileSync(`/proc/${p}/cmdline`, 'utf8'))) return Number(p);
    } catch {
      // the process ended meanwhile
    }
  }
  throw new Error(`the sandbox ${what} is not running`);
}

export const redisServerPid = () => sandboxPid('Redis (port 16379)', (c) => c.startsWith('redis-server') && c.includes(':16379'));
export const kafkaBrokerPid = () => sandboxPid('Kafka broker', (c) => c.startsWith('java') && c.includes('kafka.Kafka'));

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

/** Runs `mssgw start <services>` as its own process, as a deployment would: the demo's configuration file, then environment variables. */
export async function startGatewayProcess(services: string[], env: Record<string, string>, readyPort: number): Promise<GatewayProcess> {
  // The launcher a deployment runs, with its V8 flags (MSSGW_NODE_FLAGS, inherited, replaces them), and the V8
  // old-space cap the Dockerfile and the chart set for the gateway (docs/design.md, "One thread per process").
  const child: ChildProcess = spawn(path.join(ROOT, 'services/gateway/bin/mssgw'), ['start', ...services], {
    env: { ...process.env, MSSGW_CONFIG: DEMO_CONFIG_FILE, MSSGW_LOG_LEVEL: 'warn', NODE_OPTIONS: process.env['MSSGW_BENCH_NODE_OPTIONS'] ?? '--max-old-space-size=256', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 30_000;
  while (!(await portOpen(readyPort))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway process did not open port ${readyPort}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    pid,
    cpuSeconds: () => cpuSecondsOf(pid),
    peakRssMb: () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
