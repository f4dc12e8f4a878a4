import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatusStore } from '@mssgw/status';
import { FINAL_STATES } from '@mssgw/lifecycle';
import { connectPostgres, migrate, MessageBodies, OppositionStore, pruneRecords, ResultStore, sha256Of, type Pool } from '@mssgw/store';
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
    expect(stored.oppositions).toEqual([]);
    await pool.query(`update results set routed_at = now() where result_id = 'r-doc'`);
    expect((await bodies.forRouting('r-doc'))!.settled).toBe(true);
    expect(await bodies.forRouting('r-unknown')).toBeUndefined();
  });

  it('records what routing decided in one statement, all of it once: mails, queued and refused recipients, documents, routed mark', async () => {
    const results = new ResultStore(pool);
    const hl7 = Buffer.from('MSH|^~\\&|LAB|FAC|GW|GW|20260101||ORU^R01|C2|P|2.5\r');
    const acknowledgedAt = Date.now() - 5000;
    await results.record([{
      resultId: 'r-route', source: 'lab', transport: 'mllp', sendingApplication: 'LAB', sendingFacility: 'FAC', controlId: 'C2',
      contentSha256: sha256Of(hl7), hl7, messageType: 'ORU^R01', action: 'initial', documentCode: 'X', receivedAt: Date.now(),
      ackReception: false, ackRead: false, documents: [], patientIns: '255069999999934', normalized: { controlId: 'C2', patient: { ipp: 'IPP-7' } },
    }]);
    // The patient's oppositions come with the result (by INS, or by IPP of the sending facility; another facility's IPP is someone else).
    await new OppositionStore(pool).add([
      { idType: 'ins', patientId: '255069999999934', direction: 'patient', opposedAt: Date.UTC(2026, 0, 2) },
      { idType: 'ipp', patientId: 'IPP-7', facility: 'fac', direction: 'professionals', opposedAt: Date.UTC(2026, 0, 3) },
      { idType: 'ipp', patientId: 'IPP-7', facility: 'OTHER', direction: 'patient', opposedAt: Date.UTC(2026, 0, 4) },
    ], 'cli');
    const bodies = new MessageBodies(pool);
    expect((await bodies.forRouting('r-route'))!.oppositions).toEqual([
      { direction: 'patient', opposedAt: Date.UTC(2026, 0, 2) }, { direction: 'professionals', opposedAt: Date.UTC(2026, 0, 3) },
    ]);
    const status = new StatusStore(pool);
    const attachments = part('\r\n--b\r\nshared\r\n--b--\r\n');
    const record = {
      resultId: 'r-route',
      mails: [{ mailId: 'm-r1', head: Buffer.from('Subject: r1\r\n\r\n'), attachments }],
      documentIds: ['1.2.250.1^doc-7'],
      deliveries: [
        { deliveryId: 'd-r1', resultId: 'r-route', recipient: 'dr@x.mssante.test', kind: 'professional' as const, state: 'queued' as const, mailId: 'm-r1', messageId: '<r1@x>', mailbox: 'noreply@lab.mssante.test', detail: 'directory' },
        { deliveryId: 'd-r2', resultId: 'r-route', recipient: 'dr@elsewhere.test', kind: 'professional' as const, state: 'refused' as const, reason: 'not-whitelisted', detail: 'elsewhere.test is not in the liste blanche' },
      ],
      acknowledgedAt,
    };
    expect((await status.recordRouting(record)).sort()).toEqual(['d-r1', 'd-r2']);
    expect((await bodies.message((await bodies.outbound('d-r1'))!))!.toString()).toBe(`Subject: r1\r\n\r\n${attachments.content.toString()}`);
    expect(await status.resultsByDocumentId('1.2.250.1^doc-7')).toEqual(['r-route']);
    const result = (await status.getResult('r-route'))!;
    expect(result.routedAt).toBeGreaterThan(0);
    expect(result.acknowledgedAt).toBe(acknowledgedAt);
    expect(result.deliveries.map((d) => [d.deliveryId, d.state, d.reason ?? null])).toEqual([['d-r2', 'refused', 'not-whitelisted'], ['d-r1', 'queued', null]]);
    // The first event says how the recipient was chosen, or why it was refused (the reason's code).
    expect((await status.history('d-r1')).map((e) => [e.state, e.detail])).toEqual([['queued', 'directory']]);
    expect((await status.history('d-r2')).map((e) => [e.state, e.detail])).toEqual([['refused', 'not-whitelisted']]);
    // A routing job retried: nothing recorded twice, no second event, no second outbox entry.
    expect(await status.recordRouting(record)).toEqual([]);
    expect((await status.history('d-r1')).length).toBe(1);
    const outbox = await pool.query<{ n: number }>(`select count(*)::int as n from status_outbox where delivery_id in ('d-r1', 'd-r2')`);
    expect(outbox.rows[0]!.n).toBe(2);
    // A result whose every recipient is refused has no mail: the statement holds without one.
    expect(await status.recordRouting({ ...record, resultId: 'r-route', mails: [], deliveries: [{ ...record.deliveries[1]!, deliveryId: 'd-r3' }] })).toEqual(['d-r3']);
  });

  it('empties a conversation\'s closing mail, then prunes its record (no result row), once final and past each retention, not before', async () => {
    const status = new StatusStore(pool);
    const bodies = new MessageBodies(pool);
    const old = Date.now() - 40 * 86_400_000;
    for (const [id, state] of [['c-0000000000000000000000a1', 'delivered'], ['c-0000000000000000000000a2', 'submitted']] as const) {
      await bodies.putMails(id, [{ mailId: `${id}-fin`, head: Buffer.from('Subject: [FIN]\r\n\r\nclose') }]);
      await status.createDelivery({ deliveryId: `d-${id}`, resultId: id, recipient: 'patient@patient.mssante.test', kind: 'patient', state, mailId: `${id}-fin`, messageId: `<${id}@x>`, mailbox: 'noreply@lab.mssante.test', updatedAt: old });
    }
    // Past the body retention first: the final closing's head (it names the patient's address) is emptied, its record kept.
    const heads = async () => (await pool.query<{ mail_id: string; kept: boolean }>(
      `select mail_id, head is not null as kept from mails where mail_id like 'c-0000000000000000000000a%' order by mail_id`)).rows.map((r) => [r.mail_id, r.kept]);
    await pruneRecords(pool, { olderThan: new Date(Date.now() - 90 * 86_400_000), bodiesOlderThan: new Date(Date.now() - 30 * 86_400_000), finalStates: FINAL_STATES });
    expect(await heads()).toEqual([['c-0000000000000000000000a1-fin', false], ['c-0000000000000000000000a2-fin', true]]);
    expect((await status.getDelivery('d-c-0000000000000000000000a1'))!.state).toBe('delivered');
    const options = { olderThan: new Date(Date.now() - 30 * 86_400_000), finalStates: FINAL_STATES };
    expect(await pruneRecords(pool, { ...options, dryRun: true })).toMatchObject({ results: 0, deliveries: 1, events: 1 });
    expect(await pruneRecords(pool, options)).toMatchObject({ results: 0, deliveries: 1, events: 1 });
    expect(await status.getDelivery('d-c-0000000000000000000000a1')).toBeUndefined();
    expect(await status.history('d-c-0000000000000000000000a1')).toEqual([]);
    expect((await pool.query(`select 1 from mails where mail_id = 'c-0000000000000000000000a1-fin'`)).rowCount).toBe(0);
    // Still waiting for its DSN: kept, however old.
    expect((await status.getDelivery('d-c-0000000000000000000000a2'))!.state).toBe('submitted');
  });
});
