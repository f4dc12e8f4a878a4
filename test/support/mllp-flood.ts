// A hostile MLLP load on loopback, and the intake run as its own process to be measured under it
// (test/integration/mllp-flood.test.ts). Peers use distinct loopback addresses (127.0.0.x) so that the per-peer and
// per-listener connection limits can be told apart.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { GatewayConfig } from '@mssgw/config';
import { frame, MllpClient } from '@mssgw/hl7';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** A port free on loopback now (the process started next binds it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

export interface IntakeProcess {
  pid: number;
  /** Resident memory now (VmRSS) and its peak so far (VmHWM), in MiB. */
  rssMb(): number;
  peakRssMb(): number;
  /** GET on the process's HTTP port. */
  http(pathname: string): Promise<{ status: number; text: string }>;
  /** Its log lines so far (JSON lines on stdout). */
  log(): string;
  alive(): boolean;
  stop(): Promise<void>;
}

/**
 * `mssgw start intake` through the launcher a deployment runs, with the V8 heap cap of the image and the chart
 * (--max-old-space-size=256), configured by a file.
 */
export async function startIntakeProcess(config: GatewayConfig): Promise<IntakeProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-flood-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  // The log goes to a file: through a pipe, a test busy flooding would slow the process's own writes.
  const logFile = path.join(dir, 'intake.log');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MSSGW_') || k === 'MSSGW_SANDBOX'));
  const child = spawn(path.join(ROOT, 'services/gateway/bin/mssgw'), ['start', 'intake', '--config', file], {
    env: { ...env, NODE_OPTIONS: '--max-old-space-size=256', MSSGW_LOG_FILE: logFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const port = config.http.port;
  const http = async (pathname: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${pathname}`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, text: await res.text() };
  };
  // Ready once every listener shows in /metrics (they start last); a process that does not get there is not left behind.
  const ready = (text: string) => config.mllp.listeners.every((l) => text.includes(`mssgw_mllp_connections{source="${l.source}"}`));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the intake process ended: ${out}`);
    if (await http('/metrics').then((r) => ready(r.text), () => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the intake process did not start: ${out}`);
    }
    await sleep(100);
  }
  return {
    pid: child.pid!,
    rssMb: () => status('VmRSS'),
    peakRssMb: () => status('VmHWM'),
    http,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The value of one sample of a Prometheus text exposition (0 when absent). */
export function sample(exposition: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of exposition.split('\n')) {
    if (want.length === 0 && line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf('}'));
    if (want.every((w) => inside.split(',').includes(w))) return Number(line.slice(line.indexOf('}') + 1));
  }
  return 0;
}

export interface FloodOptions {
  port: number;
  /** How long the hostile peers keep at it. */
  seconds: number;
  /** Big frames each flooder sends at most (each of `bigFrameBytes`), never reading an ACK. */
  bigFrames: number;
  bigFrameBytes: number;
  flooders: number;
  /** Peers starting a frame with `slowBurstBytes`, then sending one byte every 100 ms; peers sending stray bytes between frames at that pace. */
  slowSenders: number;
  slowBurstBytes: number;
  strayTricklers: number;
  /** One peer sending `bulkFrames` copies of a valid result of a few MiB in one go, never reading an ACK. */
  bulkFrames: number;
  bulkMessage: string;
  /** Peers sending `tinyFrames` small frames in one go, never reading an ACK. */
  pipeliners: number;
  tinyFrames: number;
  /** Idle connections opened to fill the listener, over as many addresses as needed, at most `perAddress` each. */
  fillers: number;
  /** Connections opened from one address (over the per-peer limit). */
  samePeer: number;
  perAddress: number;
  /** A connection closed within this long of opening counts as closed at once. */
  closedAtOnceWithinMs: number;
  /** A string inside every hostile frame: no log line may carry it. */
  marker: string;
  /** The well-behaved sender: one valid result per call, sent in turn with ACKs awaited. */
  goodMessage: (i: number) => string;
}

export interface FloodReport {
  /** ACK latency of each result of the well-behaved sender, and its MSA-1. */
  goodLatenciesMs: number[];
  goodCodes: string[];
  /** How long after their first byte the slow senders and the stray tricklers were closed (undefined: never). */
  slowClosedAfterMs: (number | undefined)[];
  strayClosedAfterMs: (number | undefined)[];
  /** Connections closed by the listener within closedAtOnceWithinMs of opening. */
  closedAtOnce: number;
  bigFramesSent: number;
  /** Bytes the hostile peers got into the kernel towards the listener. */
  bytesSent: number;
}

/** A raw connection from a loopback address; unless `reads`, it never reads what it is sent. */
async function open(port: number, localAddress: string, reads = false) {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  let closedAt: number | undefined;
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closedAt = performance.now();
      resolve();
    }),
  );
  await Promise.race([new Promise((resolve) => socket.once('connect', resolve)), closed]);
  // Not reading: the listener's ACKs pile up in the kernel, as with a sender that never looks at them. (A reader
  // sees the listener close the connection; one that does not read sees it only when its next write fails.)
  if (reads) socket.resume();
  else socket.pause();
  return { socket, closed, closedAt: () => closedAt };
}

/** Writes and waits until the kernel took the bytes, the connection is gone, or the time is up. */
const write = (s: net.Socket, data: Buffer | string, until: number) =>
  Promise.race([
    new Promise<boolean>((resolve) => {
      if (s.destroyed) return resolve(false);
      s.write(data, (err) => resolve(!err));
    }),
    sleep(until - performance.now()).then(() => false),
  ]);

/**
 * The well-behaved sender and a peer sending large valid results in one go start first; a second later, every
 * other hostile peer at once, until `seconds` have passed.
 */
export async function flood(o: FloodOptions): Promise<FloodReport> {
  const until = performance.now() + o.seconds * 1000;
  const report: FloodReport = { goodLatenciesMs: [], goodCodes: [], slowClosedAfterMs: [], strayClosedAfterMs: [], closedAtOnce: 0, bigFramesSent: 0, bytesSent: 0 };
  const all: net.Socket[] = [];
  let address = 2;
  const peer = async (reads: boolean, localAddress: string) => {
    const c = await open(o.port, localAddress, reads);
    all.push(c.socket);
    return c;
  };

  // The well-behaved sender connects first, as a producer already connected when the flood starts.
  const good = new MllpClient({ host: '127.0.0.1', port: o.port, ackTimeoutMs: 60_000 });
  await good.connect();
  const goodLoop = (async () => {
    for (let i = 0; performance.now() < until; i++) {
      const sent = performance.now();
      const ack = await good.send(o.goodMessage(i));
      report.goodLatenciesMs.push(performance.now() - sent);
      report.goodCodes.push(ack.code);
      await sleep(100);
    }
  })();

  // Valid results of a few MiB, in one go, never reading an ACK: they take the intake's time to record, so they
  // pile up on their connection.
  const bulkAddress = `127.0.0.${address++}`;
  const bulk = (async () => {
    const c = await peer(false, bulkAddress);
    const message = frame(o.bulkMessage);
    for (let k = 0; k < o.bulkFrames && (await write(c.socket, message, until)); k++) report.bytesSent += message.length;
  })();
  await sleep(1_000);

  /** Sends `first`, then `next` every 100 ms until closed; records when it was closed after its first byte. */
  const paced = async (localAddress: string, first: Buffer, next: string, into: (number | undefined)[]) => {
    const c = await peer(true, localAddress);
    const started = performance.now();
    if (await write(c.socket, first, until)) report.bytesSent += first.length;
    while (!c.socket.destroyed && performance.now() < until) {
      await sleep(100);
      await write(c.socket, next, until);
    }
    if (c.socket.destroyed) await c.closed;
    into.push(c.closedAt() === undefined ? undefined : c.closedAt()! - started);
  };
  const [slowAddress, strayAddress, bigAddress, tinyAddress] = [address++, address++, address++, address++].map((a) => `127.0.0.${a}`) as [string, string, string, string];
  const bigFrame = frame(`MSH|^~\\&|FLOOD|${o.marker}|GW|GW|20260101||ORU^R01|BIG|P|2.5\rZZZ|${o.marker.padEnd(o.bigFrameBytes, 'Z')}`);
  // A slow sender starts its frame with a burst, then trickles: what it sent is held for as long as its frame lasts.
  const slowStart = Buffer.from(`\x0bMSH|^~\\&|${o.marker}|${'S'.repeat(o.slowBurstBytes)}`);
  const tiny = Buffer.concat(Array.from({ length: o.tinyFrames }, (_, i) => frame(`MSH|^~\\&|${o.marker}|${i}`)));
  const peers: Promise<unknown>[] = [
    bulk,
    ...Array.from({ length: o.slowSenders }, () => paced(slowAddress, slowStart, 'A', report.slowClosedAfterMs)),
    ...Array.from({ length: o.strayTricklers }, () => paced(strayAddress, Buffer.from('x'), 'x', report.strayClosedAfterMs)),
    // Each flooder connects again whenever it is closed, until it has sent its frames or the flood is over.
    ...Array.from({ length: o.flooders }, async (_, k) => {
      await sleep(k * 300);
      let sent = 0;
      while (sent < o.bigFrames && performance.now() < until) {
        const c = await peer(false, bigAddress);
        while (sent < o.bigFrames && !c.socket.destroyed) {
          // 1 MiB at a time, so that what was taken by the kernel is known, and the flooder's own memory stays flat.
          let at = 0;
          for (; at < bigFrame.length && (await write(c.socket, bigFrame.subarray(at, at + MiB), until)); at += MiB) report.bytesSent += Math.min(MiB, bigFrame.length - at);
          if (at < bigFrame.length) break;
          sent++;
          report.bigFramesSent++;
        }
        c.socket.destroy();
        await sleep(100);
      }
    }),
    ...Array.from({ length: o.pipeliners }, async () => {
      const c = await peer(false, tinyAddress);
      if (await write(c.socket, tiny, until)) report.bytesSent += tiny.length;
    }),
  ];
  await sleep(300);
  // Then the listener is filled: one address past its per-peer limit, then more addresses past its total.
  const extra = async (localAddress: string) => {
    const c = await peer(true, localAddress);
    // Well before the idle timeout would close it (the listener may take a while to accept under the flood).
    await sleep(o.closedAtOnceWithinMs);
    if (c.closedAt() !== undefined) report.closedAtOnce++;
  };
  const samePeer = `127.0.0.${address++}`;
  peers.push(...Array.from({ length: o.samePeer }, () => extra(samePeer)));
  for (let i = 0; i < o.fillers; i += o.perAddress) {
    const a = `127.0.0.${address++}`;
    peers.push(...Array.from({ length: Math.min(o.perAddress, o.fillers - i) }, () => extra(a)));
  }
  await Promise.all(peers);
  await goodLoop;
  await good.close();
  for (const s of all) s.destroy();
  return report;
}
