import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoDefaults } from '@mssgw/config';
import { StatusStore } from '@mssgw/status';
import { connectPostgres, migrate, ResultStore, sha256Of, type Pool, type ReceivedResult } from '@mssgw/store';
import { tag } from '../support/env.ts';

describe('recipient state machine (real PostgreSQL)', () => {
  let pool: Pool;
  let store: StatusStore;
  // A schema of its own: the ids below are short and would meet another run's.
  beforeAll(async () => {
    pool = connectPostgres({ ...demoDefaults().postgres, schema: `test_status_${tag()}` });
    await migrate(pool);
    store = new StatusStore(pool);
  });
  afterAll(async () => pool.end());
  const base = { resultId: 'r-1', recipient: 'a@b.mssante.test', kind: 'professional' as const, messageId: '<m1@x>' };

  it('creates a recipient once, whatever the retries', async () => {
    expect(await store.createDelivery({ ...base, deliveryId: 'd-1', state: 'queued' })).toBe(true);
    expect(await store.createDelivery({ ...base, deliveryId: 'd-1', state: 'refused', reason: 'x' })).toBe(false);
    expect((await store.getDelivery('d-1'))!.state).toBe('queued');
  });

  it('creates the recipients of a result at once, each once', async () => {
    const list = ['m-1', 'm-2', 'm-3'].map((id) => ({ ...base, deliveryId: id, recipient: `${id}@b.mssante.test`, state: 'queued' as const, detail: 'directory' }));
    expect((await store.createDeliveries(list)).sort()).toEqual(['m-1', 'm-2', 'm-3']);
    expect(await store.createDeliveries([...list, { ...base, deliveryId: 'm-4', state: 'queued' }])).toEqual(['m-4']);
    expect((await store.history('m-2')).map((h) => [h.state, h.applied, h.detail])).toEqual([['queued', true, 'directory']]);
    expect((await store.getDelivery('m-3'))!.recipient).toBe('m-3@b.mssante.test');
  });

  it('moves forward only, keeping late and out-of-order receipts in the history', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-2', state: 'queued' });
    expect((await store.transition('d-2', 'submitted', 'dispatcher')).applied).toBe(true);
    expect((await store.transition('d-2', 'displayed', 'mdn')).applied).toBe(true); // an MDN may overtake its DSN
    expect(await store.transition('d-2', 'delivered', 'dsn')).toEqual({ applied: false, previous: 'displayed' });
    expect((await store.getDelivery('d-2'))!.state).toBe('displayed');
    expect((await store.history('d-2')).map((h) => [h.state, h.applied])).toEqual([
      ['queued', true], ['submitted', true], ['displayed', true], ['delivered', false],
    ]);
    expect((await store.transition('d-2', 'queued', 'dispatcher')).applied).toBe(false);
  });

  it('turns a recipient without a final DSN into unconfirmed, timed from submission, not reset by a delay', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-3', state: 'queued' });
    await store.createDelivery({ ...base, deliveryId: 'd-4', state: 'queued' });
    await store.transition('d-3', 'submitted', 'dispatcher', {}, 1_000);
    await store.transition('d-3', 'delayed', 'dsn', {}, 50_000);
    await store.transition('d-4', 'submitted', 'dispatcher', {}, 90_000);
    expect(await store.expireUnconfirmed(60_000, 100_000)).toEqual(['d-3']);
    expect((await store.getDelivery('d-3'))!.state).toBe('unconfirmed');
    expect((await store.getDelivery('d-4'))!.state).toBe('submitted');
    // A late DSN is still recorded and reconciles the outcome.
    expect((await store.transition('d-3', 'delivered', 'dsn')).applied).toBe(true);
  });

  it('tells each applied change once through the outbox, and again when a claim was not acknowledged in time', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-o', state: 'queued' });
    await store.transition('d-o', 'submitted', 'dispatcher');
    await store.transition('d-o', 'queued', 'dispatcher'); // refused by the lifecycle: not in the outbox
    const first = await store.readEvents('feedback', 'c1', 100, 1);
    expect(first.filter((e) => e.deliveryId === 'd-o').map((e) => [e.previous, e.state])).toEqual([['', 'queued'], ['queued', 'submitted']]);
    // Claimed by c1 and not acknowledged: nobody else gets them until the claim is older than claimIdleMs.
    expect((await store.readEvents('feedback', 'c2', 100, 1)).filter((e) => e.deliveryId === 'd-o')).toEqual([]);
    const reclaimed = await store.readEvents('feedback', 'c2', 100, 1, 0);
    expect(reclaimed.filter((e) => e.deliveryId === 'd-o').map((e) => e.id)).toEqual(first.filter((e) => e.deliveryId === 'd-o').map((e) => e.id));
    await store.ackEvents('feedback', reclaimed.map((e) => e.id));
    expect((await store.readEvents('feedback', 'c3', 100, 1, 0)).filter((e) => e.deliveryId === 'd-o')).toEqual([]);
  });

  it('numbers the versions of a document set in the order the producer sent them, whatever the routing order, the same on a retry', async () => {
    const results = new ResultStore(pool);
    const make = (n: string, action: string, setKey: string | undefined): ReceivedResult => {
      const hl7 = Buffer.from(`MSH|^~\\&|LAB|FAC|GW|GW|20260101||ORU^R01|V-${n}|P|2.5\r`);
      return {
        resultId: `r-v${n}`, source: 'lab', transport: 'mllp', sendingApplication: 'LAB', sendingFacility: 'FAC', controlId: `V-${n}`,
        contentSha256: sha256Of(hl7), hl7, messageType: 'ORU^R01', action, documentCode: 'X', receivedAt: Date.now(), ackReception: false, ackRead: false,
        ...(setKey ? { setKey } : {}),
      };
    };
    // Received in this order: the first send, an unrelated result, a correction, a result of another set, a deletion.
    await results.record([make('1', 'initial', 'LAB.ORD1'), make('2', 'initial', undefined), make('3', 'replace', 'LAB.ORD1'), make('4', 'initial', 'LAB.ORD2')]);
    await results.record([make('5', 'delete', 'LAB.ORD1')]);
    // Routed in another order: each still gets the number of its place in the producer's order.
    expect(await store.versionInSet('r-v3')).toBe(2);
    expect(await store.versionInSet('r-v1')).toBe(1);
    expect(await store.versionInSet('r-v3')).toBe(2);
    expect(await store.versionInSet('r-v4')).toBe(1);
    // A deletion names the current version without taking a new one; a result without a set is version 1.
    expect(await store.versionInSet('r-v5')).toBe(2);
    expect(await store.versionInSet('r-v2')).toBe(1);
    expect(await store.claimDocumentVersion('doc|1|initial', 'r-a')).toBe('r-a');
    expect(await store.claimDocumentVersion('doc|1|initial', 'r-b')).toBe('r-a');
  });

  it('finds a recipient by the random envelope id its DSNs name, and notes what changes nothing in its history', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-env', state: 'queued' });
    const d = (await store.getDelivery('d-env'))!;
    expect(d.envelopeId).toMatch(/^[0-9a-f]{32}$/);
    expect((await store.deliveryForEnvelope(d.envelopeId!))?.deliveryId).toBe('d-env');
    expect(await store.deliveryForEnvelope('d-env')).toBeUndefined();
    expect(await store.note('d-env', { state: 'delivered', source: 'dsn', detail: 'forged: envelope-unknown; delivered 2.0.0' })).toBe(true);
    expect(await store.note('d-none', { state: 'delivered', source: 'dsn', detail: 'x' })).toBe(false);
    expect((await store.getDelivery('d-env'))!.state).toBe('queued');
    expect((await store.history('d-env')).map((h) => [h.state, h.applied, h.source, h.detail])).toEqual([
      ['queued', true, 'router', undefined], ['delivered', false, 'dsn', 'forged: envelope-unknown; delivered 2.0.0'],
    ]);
  });

  it('matches replies by In-Reply-To, References, then the sender; keeps each once, with its body; lists those that match nothing', async () => {
    const mailbox = 'noreply@chu.mssante.test';
    await store.createDeliveries([
      { ...base, deliveryId: 'd-r1', resultId: 'r-r', recipient: 'Doc@c.mssante.test', messageId: '<r-r-ps@chu>', mailbox, state: 'queued' },
      { ...base, deliveryId: 'd-r2', resultId: 'r-r', recipient: 'other@c.mssante.test', messageId: '<r-r-ps@chu>', mailbox, state: 'queued' },
    ]);
    const mail = (n: string) => Buffer.from(`From: x\r\nSubject: ${n}\r\n\r\nbody ${n}\r\n`);
    const thread = await store.replies.record({ mailbox, source: mail('1'), from: 'doc@c.mssante.test', subject: 'Re: 1', inReplyTo: '<R-R-PS@chu>', references: [], auto: false, forwardTo: 'secretariat@chu.mssante.test' });
    expect(thread).toMatchObject({ created: true, matchedBy: 'in-reply-to', resultId: 'r-r', deliveryId: 'd-r1', forwardPending: true });
    // The same mail again (read twice after a crash): one reply, still to forward.
    expect(await store.replies.record({ mailbox, source: mail('1'), from: 'doc@c.mssante.test', inReplyTo: '<r-r-ps@chu>', references: [], auto: false, forwardTo: 'secretariat@chu.mssante.test' }))
      .toMatchObject({ id: thread.id, created: false, forwardPending: true });
    // Twice at once (two copies in one batch): one reply.
    const twice = await Promise.all([0, 1].map(() => store.replies.record({ mailbox, source: mail('5'), references: [], auto: true })));
    expect(new Set(twice.map((r) => r.id)).size).toBe(1);
    expect(twice.filter((r) => r.created)).toHaveLength(1);
    // Someone the result was not sent to, in the thread: the result, no recipient.
    expect(await store.replies.record({ mailbox, source: mail('2'), from: 'stranger@c.mssante.test', references: ['<nothing@x>', '<r-r-ps@chu>'], auto: false }))
      .toMatchObject({ matchedBy: 'references', resultId: 'r-r' });
    expect(await store.replies.record({ mailbox, source: mail('3'), from: 'other@c.mssante.test', references: [], auto: false }))
      .toMatchObject({ matchedBy: 'sender', resultId: 'r-r', deliveryId: 'd-r2' });
    const lost = await store.replies.record({ mailbox, source: mail('4'), from: 'nobody@c.mssante.test', subject: 'Question', references: ['<unknown@x>'], auto: false });
    expect(lost).toMatchObject({ matchedBy: 'none', created: true, forwardPending: false });
    expect(lost.resultId).toBeUndefined();

    // The recipient's history names the reply by id only.
    expect((await store.history('d-r1')).filter((h) => h.source === 'reply')).toMatchObject([{ state: 'queued', applied: false, detail: `reply ${thread.id}` }]);
    expect((await store.getDelivery('d-r1'))!.state).toBe('queued');
    const unmatched = await store.listReplies({ unmatched: true, mailbox });
    expect(unmatched.map((r) => [r.id, r.from, r.subject, r.matchedBy])).toEqual([[lost.id, 'nobody@c.mssante.test', 'Question', 'none'], [twice[0]!.id, undefined, undefined, 'none']]);
    const all = await store.listReplies({ mailbox });
    expect(all).toHaveLength(5);
    expect((await store.listReplies({ resultId: 'r-r' })).length).toBe(3);
    const page = await store.listReplies({ mailbox, limit: 2 });
    expect(page.map((r) => r.id)).toEqual(all.slice(0, 2).map((r) => r.id));
    expect((await store.listReplies({ mailbox, before: page[1]!.id })).map((r) => r.id)).toEqual(all.slice(2).map((r) => r.id));
    expect((await store.replies.body(thread.id))!.toString()).toContain('body 1');
    expect((await store.replies.pendingForwards(mailbox)).map((r) => r.id)).toEqual([thread.id]);
    await store.replies.markForwarded(thread.id);
    expect(await store.replies.pendingForwards(mailbox)).toEqual([]);
    expect((await store.replies.get(thread.id))?.forwardedAt).toBeGreaterThan(0);

    // Retention: the replies received before the limit go, their bodies emptied; the newer ones stay whole.
    const old = await store.replies.record({ mailbox, source: mail('old'), references: [], auto: false, receivedAt: Date.now() - 10 * 86_400_000 });
    expect(await store.replies.prune(Date.now() - 86_400_000)).toEqual({ replies: 1, bodies: 1 });
    expect(await store.replies.get(old.id)).toBeUndefined();
    expect((await store.listReplies({ mailbox })).length).toBe(5);
    expect((await store.replies.body(thread.id))!.toString()).toContain('body 1');
  });

  it('finds a recipient from the Message-ID and address an MDN names', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-5', state: 'queued', messageId: '<M5@X>', recipient: 'B@c.mssante.test' });
    expect(await store.deliveryForMessage('<m5@x>', 'b@C.mssante.test')).toBe('d-5');
  });
});
