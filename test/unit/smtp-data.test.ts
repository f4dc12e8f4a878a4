import fc from 'fast-check';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { describe, expect, it } from 'vitest';
import { nativeEndOfData, nativeTransparency, nodemailerDataStream, smtpTransparency, useNativeSmtpTransparency } from '../../services/dispatcher/src/smtp-data.ts';

const DataStream = (await nodemailerDataStream())!;
// nodemailer's own escaping and end of data, kept before anything replaces them, as the reference.
/* eslint-disable @typescript-eslint/unbound-method -- called with .call on a DataStream below */
const original = DataStream.prototype._transform;
const originalFlush = DataStream.prototype._flush;
/* eslint-enable @typescript-eslint/unbound-method */

/** What a DataStream pushes for these chunks and then its end, each push apart. */
function pushes(transform: typeof original, flush: typeof originalFlush, chunks: Buffer[]): Buffer[] {
  const stream = new DataStream();
  const out: Buffer[] = [];
  stream.push = (b: Buffer) => (out.push(b), true);
  for (const c of chunks) transform.call(stream, c, 'binary', () => undefined);
  flush.call(stream, () => undefined);
  return out;
}
/** What nodemailer's DataStream writes for these chunks, in order, with the end of data (CRLF.CRLF). */
const reference = (chunks: Buffer[]) => Buffer.concat(pushes(original, originalFlush, chunks));

function ours(chunks: Buffer[]): Buffer {
  let last: number | false = false;
  const out = chunks.map((c) => {
    const o = c.length ? smtpTransparency(c, last) : c;
    if (c.length) last = c[c.length - 1]!;
    return o;
  });
  return Buffer.concat(out);
}

// Bytes that matter to SMTP transparency, and others, cut into chunks at random places.
const message = fc.array(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x41, 0x20), { maxLength: 300 }).chain((bytes) =>
  fc.array(fc.nat({ max: bytes.length }), { maxLength: 6 }).map((cuts) => {
    const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
    return at.slice(1).map((end, i) => Buffer.from(bytes.slice(at[i], end)));
  }));

describe('SMTP transparency (dot-stuffing, CRLF) done natively', () => {
  it('nodemailer still has the DataStream this replaces', () => {
    expect(DataStream).toBeDefined();
    expect(original.name).toBe('_transform');
  });

  it('gives byte for byte what nodemailer gives, for any bytes cut into any chunks', () => {
    fc.assert(fc.property(message, (chunks) => {
      expect(ours(chunks).equals(Buffer.concat(pushes(original, (done) => done(), chunks)))).toBe(true);
      expect(Buffer.concat(pushes(nativeTransparency, nativeEndOfData, chunks)).equals(reference(chunks))).toBe(true);
    }), { numRuns: 3000 });
  });

  it('writes the last chunk and the end of data in one push (one socket write)', () => {
    const native = pushes(nativeTransparency, nativeEndOfData, [Buffer.from('Subject: a\r\n\r\n'), Buffer.from('QUJD\r\n')]);
    expect(native.map((b) => b.toString())).toEqual(['Subject: a\r\n\r\n', 'QUJD\r\n.\r\n']);
    expect(pushes(nativeTransparency, nativeEndOfData, [Buffer.from('no newline')]).map(String)).toEqual(['no newline\r\n.\r\n']);
  });

  it('escapes the cases RFC 5321 names and leaves a clean message untouched', () => {
    expect(ours([Buffer.from('.a\r\n.b\nc\rd\r\r\n')]).toString()).toBe('..a\r\n..b\r\nc\r\nd\r\n\r\n');
    expect(ours([Buffer.from('a\r'), Buffer.from('.b')]).toString()).toBe('a\r\n..b');
    const clean = Buffer.from('Subject: x\r\n\r\nQUJD\r\nREVG\r\n');
    expect(smtpTransparency(clean, false)).toBe(clean); // no copy at all
  });

  it('sends through nodemailer to an SMTP server that reads back the message as written', async () => {
    expect(await useNativeSmtpTransparency()).toBe(true);
    const { prototype } = DataStream;
    expect([prototype._transform.name, prototype._flush.name]).toEqual([nativeTransparency.name, nativeEndOfData.name]);
    const received: Buffer[] = [];
    const server = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'],
      onData(stream, _s, cb) {
        const parts: Buffer[] = [];
        stream.on('data', (b: Buffer) => parts.push(b));
        stream.on('end', () => (received.push(Buffer.concat(parts)), cb()));
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.server.address() as { port: number }).port;
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true, pool: true });
    try {
      const raw = `Subject: dots\r\n\r\n.first\r\n..second\n.\nlast.\r\n${'QUJD'.repeat(5000)}\r\n`;
      // A Message-ID given beside a raw message (as the dispatcher does) changes nothing in what is sent.
      await transport.sendMail({ raw, messageId: '<m-1@chu-demo.mssante.test>', envelope: { from: 'a@chu-demo.mssante.test', to: ['b@cabinet-demo.mssante.test'] } });
      expect(received[0]!.toString()).toBe(raw.replace(/\r?\n/g, '\r\n'));
    } finally {
      transport.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
