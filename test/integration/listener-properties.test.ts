import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, MllpDecoder, parseAck } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { testConfig, waitFor } from '../support/env.ts';

describe('MLLP listener under damaged input (real Redis)', () => {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await startGateway(testConfig('listenerprop'), ['intake']);
  });
  afterAll(async () => gateway?.stop());

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
});
