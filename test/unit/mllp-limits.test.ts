// The MLLP listener's limits (docs/operations.md, "MLLP limits"), in process against an intake that answers when told:
// each limit is reached, counted, and lets go when what it waits for drains. test/integration/mllp-flood.test.ts
// floods the real intake in a process of its own and measures its memory.
import net from 'node:net';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { mllpLimitsOf, type MllpLimitsConfig, type MllpListenerConfig } from '@mssgw/config';
import { frame, MllpDecoder } from '@mssgw/hl7';
import { registry } from '@mssgw/telemetry';
import { startMllpListener, type MllpLimit, type MllpListener } from '../../services/intake/src/mllp-listener.ts';
import type { IntakeOutcome, ResultIntake } from '../../services/intake/src/pipeline.ts';
import { waitFor } from '../support/env.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MLLP decoder bounds', () => {
  it('stops after maxFrames frames and says how much it read; the rest pushed later gives the same frames', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 4 }), (bodies, chunk, max) => {
        const clean = bodies.map((b) => Buffer.from(b.map((x) => (x === 0x0b || x === 0x1c ? 0x41 : x))));
        const wire = Buffer.concat(clean.map((b) => frame(b)));
        const d = new MllpDecoder(1 << 20);
        const out: Buffer[] = [];
        for (let pos = 0; pos < wire.length; pos += chunk) {
          let part = wire.subarray(pos, pos + chunk);
          for (;;) {
            const events = d.push(part, max);
            expect(events.filter((e) => e.type !== 'garbage').length).toBeLessThanOrEqual(max);
            for (const e of events) if (e.type === 'message') out.push(Buffer.from(e.payload));
            if (d.consumed === part.length) break;
            part = part.subarray(d.consumed);
          }
        }
        expect(out).toEqual(clean);
      }),
      { numRuns: 300 },
    );
  });

  it('holds a frame trickled one byte per read in about its own size, not an object per byte', () => {
    const d = new MllpDecoder(1 << 20);
    d.push(Buffer.from([0x0b]));
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage();
    // 200,000 reads of one byte: views kept per read would be ~100 bytes each, 20 MB in all.
    for (let i = 0; i < 200_000; i++) d.push(Buffer.from([0x41]));
    gc();
    const after = process.memoryUsage();
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(d.buffered).toBe(200_000);
    expect(grown).toBeLessThan(6 * 1024 * 1024);
    const [end] = d.push(Buffer.from([0x1c, 0x0d]));
    expect(end).toMatchObject({ type: 'message' });
    expect(end?.type === 'message' && end.payload.equals(Buffer.alloc(200_000, 0x41))).toBe(true);
  });

  it('holds nothing for an oversized frame it is dropping', () => {
    const d = new MllpDecoder(1000);
    d.push(Buffer.concat([Buffer.from([0x0b]), Buffer.alloc(5000, 0x41)]));
    expect(d.inFrame).toBe(true);
    expect(d.buffered).toBe(0);
  });
});

/** An intake that answers AA (MSA-2: the frame's first bytes) once `release` is called, or at once when open. */
class GatedIntake {
  open = true;
  calls = 0;
  throwNext = false;
  private waiters: (() => void)[] = [];
  async accept(bytes: Buffer): Promise<IntakeOutcome> {
    this.calls++;
    if (this.throwNext) {
      this.throwNext = false;
      throw new Error('intake failure');
    }
    if (!this.open) await new Promise<void>((r) => this.waiters.push(r));
    return { code: 'AA', ack: `MSH|^~\\&|GW|GW|||20260101||ACK|1|P|2.5\rMSA|AA|${bytes.subarray(0, 12).toString('latin1')}\r`, controlId: '' };
  }
  release(): void {
    this.open = true;
    for (const w of this.waiters.splice(0)) w();
  }
}

/** The listener's log lines, as parsed JSON. */
function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return m?.value ?? 0;
}

/** A raw connection from a given loopback address, collecting the ACKs it reads (MSA-2 of each). */
async function connect(port: number, localAddress = '127.0.0.1') {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  const acks: string[] = [];
  const decoder = new MllpDecoder(1 << 20);
  let closedAt: number | undefined;
  socket.on('data', (d: Buffer) => decoder.push(d).forEach((e) => e.type === 'message' && acks.push(/MSA\|AA\|([^\r]*)/.exec(e.payload.toString('latin1'))?.[1] ?? '?')));
  socket.on('error', () => {});
  socket.on('close', () => (closedAt = performance.now()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, acks, closed: () => closedAt };
}

/** Whether the server closed the connection: the next read ends or fails within the wait. */
const closedWithin = (c: Awaited<ReturnType<typeof connect>>, ms: number) => waitFor('connection closed', () => Promise.resolve(c.closed() !== undefined), ms, 10).then(() => true, () => false);

describe('MLLP listener limits', () => {
  let listener: MllpListener | undefined;
  const sockets: net.Socket[] = [];
  let n = 0;
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await listener?.close();
    listener = undefined;
  });

  async function start(limits: Partial<MllpLimitsConfig>, intake = new GatedIntake(), options: Partial<MllpListenerConfig> = {}) {
    const source = `limits-${n++}`;
    const config: MllpListenerConfig = { source, host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20, idleTimeoutMs: 60_000, ...options };
    config.limits = { ...mllpLimitsOf(config), ...limits };
    const { log, lines } = captureLog();
    listener = await startMllpListener(config, intake as unknown as ResultIntake, log);
    const port = listener.port;
    const open = async (localAddress?: string) => {
      const c = await connect(port, localAddress);
      sockets.push(c.socket);
      return c;
    };
    const count = (limit: MllpLimit) => metric('mssgw_mllp_limit_total', { source, limit });
    const buffered = () => metric('mssgw_mllp_buffered_bytes', { source });
    return { intake, lines, open, count, buffered, source };
  }

  it('closes connections past the per-peer limit at once, and counts and logs them; other peers still connect', async () => {
    const l = await start({ maxConnectionsPerPeer: 3 });
    const mine = await Promise.all(Array.from({ length: 5 }, () => l.open('127.0.0.2')));
    const closed = await Promise.all(mine.map((c) => closedWithin(c, 1_000)));
    expect(closed.filter(Boolean)).toHaveLength(2);
    expect(await l.count('connections-per-peer')).toBe(2);
    const other = await l.open('127.0.0.3');
    expect(await closedWithin(other, 300)).toBe(false);
    expect(await metric('mssgw_mllp_connections', { source: l.source })).toBe(4);
    const line = l.lines.find((x) => x['limit'] === 'connections-per-peer');
    expect(line).toMatchObject({ level: 40, remote: '127.0.0.2', max: 3 });
    // The refused connections free nothing they did not hold: a closed one lets the next one in.
    mine.find((c, i) => !closed[i])!.socket.destroy();
    await waitFor('a slot freed', async () => (await metric('mssgw_mllp_connections', { source: l.source })) === 3, 2_000, 10);
    expect(await closedWithin(await l.open('127.0.0.2'), 300)).toBe(false);
  });

  it('closes connections past the listener limit, whatever their addresses', async () => {
    const l = await start({ maxConnections: 4 });
    const all = [];
    for (const a of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7']) all.push(await l.open(a));
    const closed = await Promise.all(all.map((c) => closedWithin(c, 1_000)));
    expect(closed).toEqual([false, false, false, false, true, true]);
    expect(await l.count('connections')).toBe(2);
    expect(l.lines.find((x) => x['limit'] === 'connections')).toMatchObject({ remote: '127.0.0.6', max: 4 });
  });

  it('closes a connection whose frame does not end in time, however its bytes trickle in', async () => {
    const l = await start({ frameTimeoutMs: 600 }, new GatedIntake(), { idleTimeoutMs: 60_000 });
    const c = await l.open();
    const started = performance.now();
    c.socket.write(Buffer.from([0x0b]));
    const trickle = setInterval(() => !c.socket.destroyed && c.socket.write('A'), 50);
    try {
      expect(await closedWithin(c, 3_000)).toBe(true);
    } finally {
      clearInterval(trickle);
    }
    expect(c.closed()! - started).toBeGreaterThan(550);
    expect(c.closed()! - started).toBeLessThan(1_500);
    expect(await l.count('frame-timeout')).toBe(1);
  });

  it('lets a frame that ends in time through, and times the next frame from its own start', async () => {
    const l = await start({ frameTimeoutMs: 600 });
    const c = await l.open();
    for (let i = 0; i < 3; i++) {
      // Each frame takes 400 ms: three of them outlast one deadline but none its own.
      c.socket.write(Buffer.from([0x0b]));
      await sleep(200);
      c.socket.write(`MSH|F${i}`);
      await sleep(200);
      c.socket.write(Buffer.from([0x1c, 0x0d]));
      await waitFor(`ACK ${i}`, () => Promise.resolve(c.acks.length > i), 2_000, 10);
    }
    expect(c.acks).toEqual(['MSH|F0', 'MSH|F1', 'MSH|F2']);
    expect(c.closed()).toBeUndefined();
    expect(await l.count('frame-timeout')).toBe(0);
  });

  it('closes an idle connection even when stray bytes trickle in between frames; frames keep it open', async () => {
    const l = await start({}, new GatedIntake(), { idleTimeoutMs: 500 });
    const busy = await l.open();
    const stray = await l.open();
    const started = performance.now();
    const trickle = setInterval(() => !stray.socket.destroyed && stray.socket.write('x'), 50);
    const frames = setInterval(() => !busy.socket.destroyed && busy.socket.write(frame('MSH|busy')), 150);
    try {
      expect(await closedWithin(stray, 3_000)).toBe(true);
      expect(stray.closed()! - started).toBeLessThan(1_500);
      await sleep(800);
      expect(busy.closed()).toBeUndefined();
    } finally {
      clearInterval(trickle);
      clearInterval(frames);
    }
    expect(await l.count('idle-timeout')).toBe(1);
    // One warning for the stray bytes, not one per byte.
    expect(l.lines.filter((x) => x['msg'] === 'bytes outside MLLP framing ignored').length).toBeLessThanOrEqual(1);
  });

  it('stops reading a connection with too many frames awaiting their ACK, then answers every frame in order', async () => {
    const intake = new GatedIntake();
    intake.open = false;
    const l = await start({ maxPendingFrames: 4 }, intake);
    const c = await l.open();
    // 200 frames of 2 KB in one write: one read of the listener would hold dozens of them.
    const frames = Array.from({ length: 200 }, (_, i) => frame(`MSH|${String(i).padStart(8, '0')}|${'x'.repeat(2048)}`));
    c.socket.write(Buffer.concat(frames));
    await waitFor('paused', async () => (await l.count('pending-frames')) > 0, 2_000, 10);
    await sleep(200);
    // Four frames held, plus at most the frame in progress in the last read.
    expect(await l.buffered()).toBeLessThanOrEqual(5 * 2100);
    expect(intake.calls).toBe(1);
    intake.release();
    await waitFor('every ACK', () => Promise.resolve(c.acks.length === 200), 10_000, 10);
    expect(c.acks).toEqual(Array.from({ length: 200 }, (_, i) => `MSH|${String(i).padStart(8, '0')}`));
    expect(await l.buffered()).toBe(0);
  });

  it('stops reading a connection that holds too many bytes until its frames are answered', async () => {
    const intake = new GatedIntake();
    intake.open = false;
    const l = await start({ maxPendingFrames: 1000, maxConnectionBytes: 100_000 }, intake);
    const c = await l.open();
    c.socket.write(Buffer.concat(Array.from({ length: 40 }, (_, i) => frame(`MSH|${String(i).padStart(8, '0')}|${'y'.repeat(30_000)}`))));
    await waitFor('paused', async () => (await l.count('connection-bytes')) > 0, 2_000, 10);
    await sleep(200);
    // The limit, plus at most one read (64 KiB) past it.
    expect(await l.buffered()).toBeLessThanOrEqual(100_000 + 65_536 + 30_100);
    intake.release();
    await waitFor('every ACK', () => Promise.resolve(c.acks.length === 40), 10_000, 10);
    expect(await l.buffered()).toBe(0);
  });

  it('bounds what all connections hold together, and a small-frame sender is still answered while big frames hang', async () => {
    const l = await start({ maxBufferedBytes: 200_000, frameTimeoutMs: 1_500 }, new GatedIntake(), { maxMessageBytes: 100_000 });
    const good = await l.open('127.0.0.9');
    // Five peers each start a frame of 90 KB and never end it: 450 KB if nothing held them back.
    const hogs = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'].map((a) => l.open(a)));
    for (const h of hogs) {
      h.socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.alloc(90_000, 0x48)]));
      await sleep(30);
    }
    await waitFor('paused', async () => (await l.count('listener-bytes')) > 0, 2_000, 10);
    const peak = await l.buffered();
    expect(peak).toBeGreaterThanOrEqual(200_000);
    // The limit, plus at most one read of each connection past it.
    expect(peak).toBeLessThanOrEqual(200_000 + 5 * 65_536);
    for (let i = 0; i < 5; i++) {
      const sent = performance.now();
      good.socket.write(frame(`MSH|GOOD-${i}`));
      await waitFor(`good ACK ${i}`, () => Promise.resolve(good.acks.length > i), 1_000, 5);
      expect(performance.now() - sent).toBeLessThan(500);
    }
    expect(good.acks).toEqual(['MSH|GOOD-0', 'MSH|GOOD-1', 'MSH|GOOD-2', 'MSH|GOOD-3', 'MSH|GOOD-4']);
    // The hogs meet their frame deadline; what they held is released.
    expect((await Promise.all(hogs.map((h) => closedWithin(h, 3_000)))).every(Boolean)).toBe(true);
    await waitFor('released', async () => (await l.buffered()) === 0, 2_000, 10);
    expect(await l.count('frame-timeout')).toBe(5);
  });

  it('closes a connection whose frame the intake could not answer, and keeps serving the others', async () => {
    const intake = new GatedIntake();
    const l = await start({}, intake);
    const a = await l.open();
    const b = await l.open();
    intake.throwNext = true;
    a.socket.write(frame('MSH|boom'));
    expect(await closedWithin(a, 2_000)).toBe(true);
    b.socket.write(frame('MSH|fine'));
    await waitFor('ACK', () => Promise.resolve(b.acks.length === 1), 2_000, 10);
    expect(l.lines.find((x) => x['level'] === 50)).toMatchObject({ msg: 'MLLP frame could not be answered; connection closed' });
    // No log line carries frame content.
    expect(JSON.stringify(l.lines)).not.toContain('boom');
  });
});
