import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, migrate, MessageBodies, ResultStore, sha256Of, type Pool } from '@mssgw/store';
import { testConfig } from '../support/env.ts';

const part = (text: string) => {
  const content = Buffer.from(text);
  return { sha256: sha256Of(content), mediaType: 'message/rfc822-part', content };
};

describe('bodies in the message store (real PostgreSQL)', () => {
  const config = testConfig('bodies');
  let pool: Pool;
  beforeAll(async () => {
    pool = connectPostgres(config.postgres);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool.end();
  });

  const delivery = async (deliveryId: string, mailId: string, resultId = 'r-mails') => {
    await pool.query(
      `insert into deliveries (delivery_id, result_id, recipient, kind, state, mail_id, message_id, mailbox, updated_at)
       values ($1, $2, 'dr@x.mssante.test', 'professional', 'queued', $3, '<m@x>', 'noreply@lab.mssante.test', now())`,
      [deliveryId, resultId, mailId],
    );
  };

  it('gives back each mail as its head followed by the attachments part its result\'s mails share, stored once', async () => {
    const writer = new MessageBodies(pool);
    const reader = new MessageBodies(pool);
    const attachments = part('\r\n--b\r\nContent-Type: application/pdf\r\n\r\nJVBERi0=\r\n--b--\r\n');
    await writer.putMails('r-mails', [
      { mailId: 'm-ps', head: Buffer.from('Subject: ps\r\n\r\n--b\r\ntext ps'), attachments },
      { mailId: 'm-pat', head: Buffer.from('Subject: pat\r\n\r\n--b\r\ntext pat'), attachments },
      { mailId: 'm-whole', head: Buffer.from('Subject: whole\r\n\r\nbody') },
    ]);
    await Promise.all([delivery('d-ps', 'm-ps'), delivery('d-pat', 'm-pat'), delivery('d-whole', 'm-whole')]);
    const ps = (await reader.outbound('d-ps'))!;
    expect(ps).toMatchObject({ state: 'queued', recipient: 'dr@x.mssante.test', mailbox: 'noreply@lab.mssante.test', messageId: '<m@x>' });
    // The DSN envelope id is random, not derived from anything a co-recipient sees.
    expect(ps.envelopeId).toMatch(/^[0-9a-f]{32}$/);
    expect(ps.envelopeId).not.toBe((await reader.outbound('d-pat'))!.envelopeId);
    expect((await reader.message(ps))!.toString()).toBe(`Subject: ps\r\n\r\n--b\r\ntext ps${attachments.content.toString()}`);
    // The part is read once for the mails that share it: the second mail is whole even once the body is gone.
    await pool.query('update bodies set content = null where sha256 = $1', [Buffer.from(attachments.sha256, 'hex')]);
    expect((await reader.message((await reader.outbound('d-pat'))!))!.toString()).toBe(`Subject: pat\r\n\r\n--b\r\ntext pat${attachments.content.toString()}`);
    expect((await reader.message((await reader.outbound('d-whole'))!))!.toString()).toBe('Subject: whole\r\n\r\nbody');
    // One copy of the shared part, held by the result.
    const held = await pool.query<{ n: number }>(`select count(*)::int as n from result_bodies where result_id = 'r-mails'`);
    expect(held.rows[0]!.n).toBe(1);
  });

  it('says a part is missing rather than sending half a mail, and a mail recorded twice keeps its first form', async () => {
    const bodies = new MessageBodies(pool);
    const gone = part('gone');
    await bodies.putMails('r-late', [{ mailId: 'm-late', head: Buffer.from('Subject: late\r\n\r\n'), attachments: gone }]);
    await pool.query('update bodies set content = null where sha256 = $1', [Buffer.from(gone.sha256, 'hex')]);
    await delivery('d-late', 'm-late', 'r-late');
    expect(await bodies.message((await bodies.outbound('d-late'))!)).toBeUndefined();
    // Written again (a routing retried), the body comes back; the head stays the first one.
    await bodies.putMails('r-late', [{ mailId: 'm-late', head: Buffer.from('Subject: other\r\n\r\n'), attachments: gone }]);
    expect((await new MessageBodies(pool).message((await bodies.outbound('d-late'))!))!.toString()).toBe('Subject: late\r\n\r\ngone');
    expect(await bodies.outbound('d-never')).toBeUndefined();
  });

  it('keeps a result\'s documents and normalized form for the router, and says when it is routed already', async () => {
    const results = new ResultStore(pool);
    const doc = { sha256: sha256Of(Buffer.from('%PDF-1.4 x')), mediaType: 'application/pdf', content: Buffer.from('%PDF-1.4 x') };
    const hl7 = Buffer.from('MSH|^~\\&|LAB|FAC|GW|GW|20260101||ORU^R01|C1|P|2.5\r');
    await results.record([{
      resultId: 'r-doc', source: 'lab', transport: 'mllp', sendingApplication: 'LAB', sendingFacility: 'FAC', controlId: 'C1',
      contentSha256: sha256Of(hl7), hl7, messageType: 'ORU^R01', action: 'initial', documentCode: 'X', receivedAt: Date.now(),
      ackReception: false, ackRead: false, documents: [doc], normalized: { controlId: 'C1', documents: [{ sha256: doc.sha256 }] },
    }]);
    const bodies = new MessageBodies(pool);
    const stored = (await bodies.forRouting('r-doc'))!;
    expect(stored.settled).toBe(false);
    expect(stored.normalized).toEqual({ controlId: 'C1', documents: [{ sha256: doc.sha256 }] });
    expect(stored.documents.get(doc.sha256)!.toString()).toBe('%PDF-1.4 x');
    await pool.query(`update results set routed_at = now() where result_id = 'r-doc'`);
    expect((await bodies.forRouting('r-doc'))!.settled).toBe(true);
    expect(await bodies.forRouting('r-unknown')).toBeUndefined();
  });
});
