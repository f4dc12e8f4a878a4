import { describe, expect, it } from 'vitest';
import { demoDefaults } from '@mssgw/config';
import { DEFAULT_RECEIPT_LIMITS, messageIdHash, parseReceipt, UnreadableMail, type QuarantineReason } from '@mssgw/receipts';
import { hostileCorpus, wellFormedDsn } from '../support/hostile-mail.ts';

const MB = 1024 * 1024;
/** Generous: the linear reader takes tens of milliseconds per MB; the quadratic one took minutes. */
const BOUND_MS = 2_000;

/** What each hostile mail must come out as: a kind of receipt, or the reason it is set aside. */
const EXPECTED: Record<string, 'dsn' | 'other' | QuarantineReason> = {
  'brace-flood': 'dsn', 'quote-flood': 'dsn', 'json-like-flood': 'dsn', 'letters-one-line': 'dsn', 'address-like-flood': 'dsn',
  'angle-bracket-html': 'dsn', 'blank-line-flood': 'dsn', 'whitespace-one-line': 'dsn', 'phrase-flood-one-line': 'dsn',
  'code-like-flood': 'dsn', 'dsn-report-1mb-continuations': 'dsn', 'dsn-report-1mb-recipients': 'dsn', 'dsn-report-1mb-one-field': 'dsn',
  'dsn-report-1mb-base64': 'dsn', 'rfc822-nested-deep': 'too-deep', 'mime-parts-many': 'too-many-parts', 'attachment-10mb': 'too-large',
  'invalid-mime-no-headers': 'invalid-mime', 'multipart-no-boundary': 'dsn', 'multipart-unterminated': 'dsn', 'header-1mb': 'unreadable',
  'from-noreply-flood': 'dsn', 'address-list-flood': 'dsn', 'encoded-words-flood': 'dsn', 'header-continuations-flood': 'unreadable',
  'html-unclosed-tags': 'dsn', 'dash-line-one-line': 'dsn', 'multipart-nested-deep': 'too-deep',
};

async function outcome(mail: Buffer, limits = {}): Promise<{ ms: number; got: string; recipients?: number }> {
  const t = performance.now();
  try {
    const r = await parseReceipt(mail, limits);
    return { ms: performance.now() - t, got: r.kind, ...(r.kind === 'dsn' ? { recipients: r.recipients.length } : {}) };
  } catch (err) {
    if (!(err instanceof UnreadableMail)) throw err;
    return { ms: performance.now() - t, got: err.reason };
  }
}

describe('receipts reader against hostile mail', () => {
  const corpus = hostileCorpus(MB);

  it('knows what every mail of the hostile corpus must come out as', () => {
    expect(corpus.map((h) => h.name).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  // The first case was quadratic in the old field parser (16 s for 1 MB); the others took minutes.
  it.each(corpus.map((h) => [h.name, h.mail] as const))('reads %s (1 MB of hostile text) within the bound, classified or set aside', async (name, mail) => {
    const r = await outcome(mail);
    expect(r.got).toBe(EXPECTED[name]);
    expect(r.ms).toBeLessThan(BOUND_MS);
    if (r.recipients !== undefined) expect(r.recipients).toBeLessThanOrEqual(100);
  });

  it('stays linear with the text cap lifted: the expressions themselves never backtrack over a flood', async () => {
    for (const h of corpus) {
      if (h.name === 'attachment-10mb') continue;
      const r = await outcome(h.mail, { maxTextBytes: 16 * MB });
      expect(r.ms, h.name).toBeLessThan(BOUND_MS);
    }
  });

  it('reads only the first maxTextBytes of the text', async () => {
    const notice = 'The following address failed: zoe.inconnue@cabinet-demo.mssante.test (user unknown)';
    const mail = Buffer.from(['From: MAILER-DAEMON@mx.test', 'Subject: Undelivered Mail', '', `${'x '.repeat(40_000)}`, notice, ''].join('\r\n'));
    const capped = await parseReceipt(mail, { maxTextBytes: 64 * 1024 });
    const wide = await parseReceipt(mail, { maxTextBytes: 128 * 1024 });
    expect(capped).toMatchObject({ kind: 'dsn', inferred: true, recipients: [{ recipient: '' }] });
    expect(wide).toMatchObject({ kind: 'dsn', inferred: true, reason: 'user-unknown', recipients: [{ recipient: 'zoe.inconnue@cabinet-demo.mssante.test', status: '5.1.1' }] });
  });

  it('holds each limit exactly: at the limit the mail is read, one past it is set aside', async () => {
    const dsn = wellFormedDsn({ to: 'noreply@chu-demo.mssante.test', envelopeId: 'd-0123456789abcdef01234567', recipient: 'a@cabinet-demo.mssante.test', action: 'delivered', status: '2.0.0' });
    // A DSN: the mail and its two parts; nested one level.
    expect((await outcome(dsn, { maxMimeParts: 3 })).got).toBe('dsn');
    expect((await outcome(dsn, { maxMimeParts: 2 })).got).toBe('too-many-parts');
    expect((await outcome(dsn, { maxNestingDepth: 1 })).got).toBe('dsn');
    expect((await outcome(dsn, { maxNestingDepth: 0 })).got).toBe('too-deep');
    expect((await outcome(dsn, { maxMailBytes: dsn.length })).got).toBe('dsn');
    expect((await outcome(dsn, { maxMailBytes: dsn.length - 1 })).got).toBe('too-large');
    // An encoded attached bounce is parsed again one level down: the depth bounds that work too.
    const wrapped = (inner: Buffer) => Buffer.from([
      'From: a@x.test', 'Subject: Fwd', 'MIME-Version: 1.0', 'Content-Type: multipart/report; report-type=delivery-status; boundary="W"', '',
      '--W', 'Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', '', inner.toString('base64').replace(/.{76}/g, '$&\r\n'), '--W--', '',
    ].join('\r\n'));
    let mail = dsn;
    for (let i = 0; i < 20; i++) mail = wrapped(mail);
    expect((await outcome(mail)).got).toBe('too-deep');
    expect((await outcome(wrapped(dsn))).got).toBe('dsn');
  });

  it('reads the well-formed DSN the reader gets every day', async () => {
    const r = await parseReceipt(wellFormedDsn({ to: 'noreply@chu-demo.mssante.test', envelopeId: 'd-0123456789abcdef01234567', recipient: 'a@cabinet-demo.mssante.test', action: 'failed', status: '5.1.1' }));
    expect(r).toMatchObject({ kind: 'dsn', envelopeId: 'd-0123456789abcdef01234567', recipients: [{ recipient: 'a@cabinet-demo.mssante.test', action: 'failed', status: '5.1.1' }] });
  });

  it('names a mail by a hash of its Message-ID, never the id itself', () => {
    const mail = Buffer.from('From: a@x.test\r\nMessage-ID:\r\n <secret-id@x.test>\r\n\r\nbody\r\n');
    const hash = messageIdHash(mail)!;
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    expect(messageIdHash(Buffer.from('Message-ID: <secret-id@x.test>\r\n\r\n'))).toBe(hash);
    expect(messageIdHash(Buffer.from('From: a@x.test\r\n\r\nMessage-ID: <in-the-body@x.test>\r\n'))).toBeUndefined();
  });

  it('has the same limits as the configuration defaults', () => {
    expect(demoDefaults().receipts).toMatchObject(DEFAULT_RECEIPT_LIMITS);
  });
});
