import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHl7, Er7Message, frame, MllpClient, MllpDecoder, parseAck } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { CORPORA } from '../conformance/hl7-corpus.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { testConfig, waitFor } from '../support/env.ts';

/** Every message of the HL7v2 corpora the project carries, as bytes. */
const CORPUS = readdirSync(CORPORA)
  .filter((d) => d.startsWith('hl7v2-'))
  .flatMap((d) => readdirSync(path.join(CORPORA, d)).filter((f) => f.endsWith('.hl7')).map((f) => readFileSync(path.join(CORPORA, d, f))));

/** The damage the field does to messages, each applied to the bytes as Latin-1 text (a byte per character). */
const damage = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), times: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('encoding' as const), chars: fc.array(fc.constantFrom(...'|^~\\&#*AZ09 \t'), { minLength: 1, maxLength: 5 }).map((a) => a.join('')) }),
  fc.record({ kind: fc.constant('newlines' as const), seps: fc.array(fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\r\r'), { minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant('bytes' as const), at: fc.nat(), bytes: fc.uint8Array({ min: 0x80, max: 0xff, minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('huge' as const), at: fc.nat(), size: fc.integer({ min: 64 * 1024, max: 384 * 1024 }), ch: fc.constantFrom('A', '^', '~', '\\', '&', 'é', '=') }),
);
type Damage = typeof damage extends fc.Arbitrary<infer T> ? T : never;

function apply(bytes: Buffer, d: Damage): Buffer {
  const s = bytes.toString('latin1');
  const at = 'at' in d ? d.at % Math.max(1, s.length) : 0;
  switch (d.kind) {
    case 'truncate':
      return Buffer.from(s.slice(0, at), 'latin1');
    case 'duplicate': {
      const segs = s.split(/\r\n|\r|\n/);
      const i = at % segs.length;
      return Buffer.from([...segs.slice(0, i + 1), ...Array<string>(d.times).fill(segs[i]!), ...segs.slice(i + 1)].join('\r'), 'latin1');
    }
    case 'encoding': {
      // MSH-1 and MSH-2, the delimiters every other field is read with.
      const msh = Math.max(0, s.indexOf('MSH')) + 3;
      return Buffer.from(s.slice(0, msh) + d.chars + s.slice(msh + d.chars.length), 'latin1');
    }
    case 'newlines': {
      let n = 0;
      return Buffer.from(s.replace(/\r\n|\r|\n/g, () => d.seps[n++ % d.seps.length]!), 'latin1');
    }
    case 'bytes':
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(d.bytes), bytes.subarray(at)]);
    case 'huge':
      return Buffer.from(`${s.slice(0, at)}|${d.ch.repeat(d.size)}${s.slice(at)}`, 'latin1');
  }
}

/** What one ACK says: MSA-1, and each ERR's severity (ERR-4; empty in the v2.3 / 2.4 layout, which has only ERR-1). */
function readAck(payload: Buffer): { code: string; severities: string[] } {
  const msg = new Er7Message(decodeHl7(payload).text);
  return { code: msg.get(msg.first('MSA'), 1), severities: msg.all('ERR').map((e) => msg.get(e, 4)) };
}

describe('MLLP listener under damaged input (real Redis)', () => {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await startGateway(testConfig('listenerprop'), ['intake']);
  });
  afterAll(async () => {
    if (!gateway) return;
    // What the runs queued (huge fields among it) does not outlive the test.
    const redis = gateway.ctx.redis;
    const keys: string[] = [];
    for await (const batch of redis.scanStream({ match: `${gateway.ctx.config.redis.prefix}:*`, count: 500 })) keys.push(...(batch as string[]));
    for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
    await gateway.stop();
  });

  it('answers every frame, in order, on one connection, whatever the damage and the TCP chunking', async () => {
    const port = gateway.intake!.listeners[0]!.port;
    let n = 0;
    const message = fc.tuple(fc.nat(), fc.nat({ max: 5 }), fc.uint8Array({ maxLength: 20 })).map(([at, kind, junk]) => {
      const base = Buffer.from(makeCisisResult({ controlId: `LP-${n++}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }));
      const i = at % base.length;
      // Never put framing bytes inside a frame: those would be a different message, not a damaged one.
      const clean = Buffer.from(junk).map((x) => (x === 0x0b || x === 0x1c ? 0x20 : x));
      if (kind === 0) return base;
      if (kind === 1) return base.subarray(0, i);
      if (kind === 2) return Buffer.concat([base.subarray(0, i), clean, base.subarray(i)]);
      if (kind === 3) return Buffer.concat([base.subarray(0, i), base.subarray(i + 50)]);
      return Buffer.from(clean.length ? clean : [0x41]);
    });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 700 }), async (messages, chunk) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        await new Promise((r) => socket.once('connect', r));
        const decoder = new MllpDecoder(1 << 20);
        const acks: string[] = [];
        socket.on('data', (d: Buffer) => decoder.push(d).forEach((e) => e.type === 'message' && acks.push(parseAck(e.payload).code)));
        const wire = Buffer.concat(messages.map((m) => frame(m)));
        for (let pos = 0; pos < wire.length; pos += chunk) socket.write(wire.subarray(pos, pos + chunk));
        await waitFor(`${messages.length} answers`, () => Promise.resolve(acks.length >= messages.length), 15_000, 20);
        socket.destroy();
        expect(acks).toHaveLength(messages.length);
        for (const code of acks) expect(['AA', 'AE', 'AR']).toContain(code);
      }),
      { numRuns: 40 },
    );
  }, 120_000);

  it('answers every damaged corpus message with AA, AE or AR, an ERR segment unless AA-clean, in bounded time, and stays up', async () => {
    const port = gateway.intake!.listeners[0]!.port;
    // Framing bytes inside a message would make it two frames, not a damaged one.
    for (const m of CORPUS) expect(m.includes(0x0b) || m.includes(0x1c)).toBe(false);
    expect(CORPUS.length).toBeGreaterThanOrEqual(40);
    const damaged = fc
      .tuple(fc.nat({ max: CORPUS.length - 1 }), fc.array(damage, { minLength: 1, maxLength: 3 }))
      .map(([i, edits]) => edits.reduce<Buffer>((b, d) => apply(b, d), CORPUS[i]!));
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(damaged, { minLength: 1, maxLength: 3 }), async (messages) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        await new Promise((r) => socket.once('connect', r));
        const decoder = new MllpDecoder(1 << 20);
        const acks: { code: string; severities: string[] }[] = [];
        socket.on('data', (d: Buffer) => decoder.push(d).forEach((e) => e.type === 'message' && acks.push(readAck(e.payload))));
        const started = performance.now();
        socket.write(Buffer.concat(messages.map((m) => frame(m))));
        // A few hundred kilobytes each at most: each answer within seconds, not at the idle timeout.
        await waitFor(`${messages.length} answers`, () => Promise.resolve(acks.length >= messages.length), 10_000, 10);
        expect(performance.now() - started).toBeLessThan(10_000);
        socket.destroy();
        expect(acks).toHaveLength(messages.length);
        for (const { code, severities } of acks) {
          expect(['AA', 'AE', 'AR']).toContain(code);
          // A refusal says why; an AA carries ERR only as warnings (the v2.3 / 2.4 layout has no severity to check).
          if (code !== 'AA') expect(severities.length).toBeGreaterThan(0);
          if (code !== 'AA' && severities[0]) expect(severities[0]).toBe('E');
          if (code === 'AA') for (const s of severities) expect(['', 'W']).toContain(s);
          const key = code === 'AA' && severities.length ? 'AA+W' : code;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }),
      { numRuns: 40 },
    );
    // The damage reached both outcomes: some messages survive it, others are refused.
    expect(seen.get('AE') ?? seen.get('AR')).toBeGreaterThan(0);
    expect(seen.get('AA') ?? seen.get('AA+W')).toBeGreaterThan(0);
    // Still listening: a well-formed result on a new connection is taken.
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 10_000 });
    await client.connect();
    const ack = await client.send(makeCisisResult({ controlId: `LP-END-${Date.now()}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }));
    await client.close();
    expect([ack.code, ack.raw.includes('\rERR|')]).toEqual(['AA', false]);
  }, 180_000);
});
