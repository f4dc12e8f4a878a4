import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frame, Hl7Error, MllpDecoder, parseResult } from '@mssgw/hl7';
import { DOCTORS, makeCisisResult, makeRawLabResult, PATIENTS } from '../support/samples.ts';

const seeds = [
  Buffer.from(makeCisisResult({ controlId: 'P1', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!], toPatient: true })),
  Buffer.from(makeCisisResult({ controlId: 'P2', patient: PATIENTS[1]!, doctors: [DOCTORS[2]!], message: 'MDM', kind: 'imaging', action: 'replace' })),
  Buffer.from(makeRawLabResult({ controlId: 'P3', patient: PATIENTS[2]!, ordering: DOCTORS[0]! }), 'latin1'),
];

/** A seed message damaged in one of the ways the field damages them. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.nat({ max: 400 }) }),
        fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 40 }) }),
        fc.record({ kind: fc.constant('delimiter' as const), at: fc.nat(), ch: fc.constantFrom(...'|^~\\&\r\n\x0b\x1c') }),
        fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      ),
      { minLength: 1, maxLength: 6 },
    ),
  )
  .map(([seed, edits]) => {
    let b = Buffer.from(seed);
    for (const e of edits) {
      const at = e.at % Math.max(1, b.length);
      if (e.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.len)]);
      else if (e.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(e.bytes), b.subarray(at)]);
      else if (e.kind === 'delimiter') b = Buffer.concat([b.subarray(0, at), Buffer.from(e.ch, 'latin1'), b.subarray(at + 1)]);
      else b = b.subarray(0, at);
    }
    return b;
  });

/** Parsing either gives a result (with at most a bounded list of warnings) or an Hl7Error with its reason code; nothing else escapes. */
const parsesOrRefuses = (bytes: Buffer) => {
  try {
    expect(parseResult(bytes).warnings.length).toBeLessThanOrEqual(20);
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
    expect(['AE', 'AR']).toContain(err.ackCode);
    expect(err.code).toMatch(/^\d{3}$/);
    expect(err.reasonCode).toMatch(/^[A-Z0-9_]+$/);
  }
};

describe('parser under random and damaged input', () => {
  it('answers every damaged message with a result or an HL7 error', () => {
    fc.assert(fc.property(mutated, parsesOrRefuses), { numRuns: 1500 });
  });

  it('answers random bytes and random pipe-and-hat text the same way', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => parsesOrRefuses(Buffer.from(b))), { numRuns: 500 });
    const er7ish = fc.stringMatching(/^MSH\|\^~\\&(\|[A-Za-z0-9^~&\\ .]{0,12}){0,25}(\r(PID|OBX|ORC|OBR|PRT|NTE|TXA)(\|[A-Za-z0-9^~&\\ .]{0,12}){0,14}){0,12}$/);
    fc.assert(fc.property(er7ish, (s) => parsesOrRefuses(Buffer.from(s))), { numRuns: 1000 });
  });
});

describe('MLLP decoder under any chunking', () => {
  it('gives back exactly the frames sent, however TCP splits them', () => {
    const payload = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b.map((x) => (x === 0x0b || x === 0x1c ? 0x41 : x))));
    fc.assert(
      fc.property(fc.array(payload, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }), (messages, cuts) => {
        const wire = Buffer.concat(messages.map((m) => frame(m)));
        const d = new MllpDecoder(1024);
        const out: Buffer[] = [];
        let pos = 0;
        for (let i = 0; pos < wire.length; i++) {
          const size = cuts[i % cuts.length]!;
          for (const e of d.push(wire.subarray(pos, pos + size))) if (e.type === 'message') out.push(e.payload);
          pos += size;
        }
        expect(out.map((b) => b.toString('hex'))).toEqual(messages.map((m) => m.toString('hex')));
      }),
      { numRuns: 500 },
    );
  });
});
