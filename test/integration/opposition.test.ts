import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAudit } from '@mssgw/auth';
import { startDispatcher } from '@mssgw/dispatcher';
import { MllpClient } from '@mssgw/hl7';
import { retriesExhausted } from '@mssgw/lifecycle';
import { QUEUES, redisKeys } from '@mssgw/queue';
import { bullConnection, type RunningService } from '@mssgw/runtime';
import { OppositionStore } from '@mssgw/store';
import { registry } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { apiClient, type ApiClient } from '../support/api.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';

const WHITELIST = path.resolve(import.meta.dirname, '../fixtures/whitelist/listeblanchemssante.xml');

/**
 * The patient's opposition in both directions (issue #25) and the checks again at dispatch and replay (issues #22,
 * #25), on the sandbox: oppositions imported from a file of the old and the new format and recorded in PostgreSQL,
 * applied by the router, checked again by the dispatcher just before SMTP (an opposition recorded after routing, a
 * domain that left the liste blanche) and by the replay of a dead letter; then the [FIN] message that closes a
 * patient's conversation, delivered by the sandbox operator, and the replies route of the API.
 */
describe('opposition in both directions, checks at dispatch and replay, closing a conversation', () => {
  const t = tag();
  let gateway: Gateway;
  let client: MllpClient;
  let dispatcher: RunningService | undefined;
  let operator: ApiClient;
  let viewer: ApiClient;
  let base: string;
  let store: OppositionStore;
  const ipp = (controlId: string) => `IPP${controlId}`;

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mssgw-opposition-'));
    const file = path.join(dir, 'opposition.txt');
    const whitelist = path.join(dir, 'listeblanchemssante.xml');
    await copyFile(WHITELIST, whitelist);
    await writeFile(file, [
      '# the old format: one INS or IPP per line, an opposition to mails to the patient',
      PATIENTS[1]!.ins,
      '# the new one: ID [DIRECTION [DATE]]',
      `INS:${PATIENTS[2]!.ins} professionals 2026-11-30`,
      `IPP:${ipp(`OP-${t}-I`)}@CHU-DEMO;both`,
      'INS:123 patient 2026-11-30 extra',
      `IPP:${ipp(`OP-${t}-I`)}@CHU-DEMO sideways`,
      '',
    ].join('\n'));
    gateway = await startGateway(testConfig('opposition', (c) => {
      c.mssante.testDomains = [];
      c.mssante.whitelist.location = whitelist;
      c.routing.patientOpposition = { file, refreshIntervalMs: 1_000 };
    }), ['api', 'router', 'intake']);
    store = new OppositionStore(gateway.ctx.pg);
    operator = await apiClient(gateway.ctx.pg, 'operator');
    viewer = await apiClient(gateway.ctx.pg, 'viewer');
    base = `http://127.0.0.1:${gateway.api!.port}`;
    client = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await dispatcher?.stop();
    await gateway?.stop();
  });

  const mailbox = () => gateway.ctx.config.mailboxes[0]!.address;
  const send = async (controlId: string, patient: (typeof PATIENTS)[number], doctors: (typeof DOCTORS)[number][], expected: number) => {
    const ack = await client.send(makeCisisResult({ controlId, patient, doctors, toPatient: true }));
    expect(ack.code).toBe('AA');
    const [resultId] = await gateway.ctx.status.resultsByControlId(controlId);
    const result = await waitFor('every recipient recorded', async () => {
      const r = await gateway.ctx.status.getResult(resultId!, { withDeliveries: true });
      return r && r.deliveries.length === expected ? r : undefined;
    });
    return new Map(result.deliveries.map((d) => [d.kind === 'patient' ? 'patient' : d.recipient, d]));
  };

  it('imports the opposition file, old format and new, into the message store; its bad lines are skipped', async () => {
    const list = await store.list();
    const seen = list.map((o) => [o.idType, o.patientId, o.facility, o.direction, o.origin]);
    expect(seen).toEqual(expect.arrayContaining([
      ['any', PATIENTS[1]!.ins, '', 'patient', 'file'],
      ['ins', PATIENTS[2]!.ins, '', 'professionals', 'file'],
      ['ipp', ipp(`OP-${t}-I`), 'CHU-DEMO', 'patient', 'file'],
      ['ipp', ipp(`OP-${t}-I`), 'CHU-DEMO', 'professionals', 'file'],
    ]));
    expect(list).toHaveLength(4);
    expect(new Date(list.find((o) => o.idType === 'ins')!.opposedAt).toISOString()).toBe('2026-11-30T00:00:00.000Z');
    expect(await registry.metrics()).toMatch(/mssgw_reference_data_entries\{data="patient-opposition"\} 4/);
  });

  it('refuses the practitioners\' mails of a patient opposed to professionals with its reason, and still writes to the patient', async () => {
    const d = await send(`OP-${t}-P`, PATIENTS[2]!, [DOCTORS[0]!, DOCTORS[2]!], 3);
    for (const doctor of [DOCTORS[0]!, DOCTORS[2]!]) {
      expect(d.get(doctor.address!)).toMatchObject({ state: 'refused', reason: 'professionals-opposition', detail: 'the patient opposes mails to professionals (since 2026-11-30)' });
    }
    expect(d.get('patient')).toMatchObject({ state: 'queued' });
    // The old format still refuses the patient's own mail, and only it.
    const old = await send(`OP-${t}-O`, PATIENTS[1]!, [DOCTORS[0]!], 2);
    expect(old.get('patient')).toMatchObject({ state: 'refused', reason: 'patient-opposition' });
    expect(old.get(DOCTORS[0]!.address!)).toMatchObject({ state: 'queued' });
    // An IPP opposes with its facility, in both directions.
    const both = await send(`OP-${t}-I`, PATIENTS[0]!, [DOCTORS[1]!], 2);
    expect(both.get('patient')).toMatchObject({ state: 'refused', reason: 'patient-opposition' });
    expect(both.get(DOCTORS[1]!.address!)).toMatchObject({ state: 'refused', reason: 'professionals-opposition' });
    expect(await registry.metrics()).toMatch(/mssgw_recipients_refused_total\{reason="professionals-opposition"\} [3-9]/);
  });

  it('checks again at dispatch: an opposition recorded after routing, a domain that left the liste blanche; and at replay', async () => {
    const opposed = await send(`OP-${t}-D`, PATIENTS[0]!, [DOCTORS[0]!, DOCTORS[2]!], 3);
    const unlisted = await send(`OP-${t}-W`, PATIENTS[0]!, [DOCTORS[0]!, DOCTORS[2]!], 3);
    const dead = await send(`OP-${t}-R`, PATIENTS[0]!, [DOCTORS[1]!], 2);
    for (const d of [...opposed.values(), ...unlisted.values(), ...dead.values()]) expect(d.state).toBe('queued');

    // After routing: the patient of the first result opposes mails to professionals (its IPP at CHU-DEMO) ...
    const added = await store.add([{ idType: 'ipp', patientId: ipp(`OP-${t}-D`), facility: 'chu-demo', direction: 'professionals', opposedAt: Date.now() }], 'cli');
    expect(added).toHaveLength(1);
    // ... the third result's recipient exhausted its retries (as the dispatcher records it) ...
    const deadOne = dead.get(DOCTORS[1]!.address!)!;
    await gateway.ctx.status.apply(deadOne.deliveryId, retriesExhausted('451 4.4.1 try again later'));
    const dlq = new Queue(QUEUES.deadLetter, bullConnection(gateway.ctx.config));
    await dlq.add('dead-letter', { deliveryId: deadOne.deliveryId, resultId: deadOne.resultId, mailbox: mailbox(), queue: QUEUES.send(mailbox()), reason: '451 4.4.1', failedAt: Date.now() }, { jobId: deadOne.deliveryId });
    await dlq.close();
    // ... and cabinet-demo.mssante.test left the liste blanche (what the router's refresh saves in Redis).
    const key = redisKeys(gateway.ctx.config.redis.prefix).whitelist;
    const list = JSON.parse((await gateway.ctx.redis.get(key))!) as { domains: Record<string, string> };
    delete list.domains['cabinet-demo.mssante.test'];
    await gateway.ctx.redis.set(key, JSON.stringify(list));

    dispatcher = await startDispatcher(gateway.ctx);
    const settled = async (d: { deliveryId: string }) =>
      waitFor(`delivery ${d.deliveryId} settled`, async () => {
        const x = await gateway.ctx.status.getDelivery(d.deliveryId);
        return x && x.state !== 'queued' ? x : undefined;
      }, 60_000);
    for (const doctor of [DOCTORS[0]!, DOCTORS[2]!]) {
      expect(await settled(opposed.get(doctor.address!)!)).toMatchObject({ state: 'refused', reason: 'professionals-opposition' });
    }
    expect((await settled(opposed.get('patient')!)).state).not.toBe('refused');
    expect(await settled(unlisted.get(DOCTORS[0]!.address!)!)).toMatchObject({ state: 'refused', reason: 'not-whitelisted' });
    const listed = await settled(unlisted.get(DOCTORS[2]!.address!)!);
    expect(listed.state).not.toBe('refused');
    const history = await gateway.ctx.status.history(unlisted.get(DOCTORS[0]!.address!)!.deliveryId);
    expect(history.at(-1)).toMatchObject({ state: 'refused', source: 'dispatcher', applied: true });

    // Never sent: the mail the other recipient got never reached the refused one.
    await waitFor('the listed recipient\'s copy in its mailbox', () => Promise.resolve(mailboxFiles(DOCTORS[2]!.address!).some((m) => m.includes(listed.messageId!))), 60_000);
    expect(mailboxFiles(DOCTORS[0]!.address!).some((m) => m.includes(listed.messageId!))).toBe(false);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/mssgw_dispatch_refused_total\{reason="professionals-opposition"\} 2/);
    // The second test's practitioner at cabinet-demo, still queued, is refused too.
    expect(metrics).toMatch(/mssgw_dispatch_refused_total\{reason="not-whitelisted"\} 2/);

    // The replay of a dead letter whose domain left the list: refused with that reason, not put back on its queue.
    const replay = await operator.fetch(`${base}/api/v1/dead-letters/${deadOne.deliveryId}/replay`, { method: 'POST' });
    expect(replay.status).toBe(409);
    expect(await replay.json()).toMatchObject({ error: 'refused', reason: expect.stringMatching(/^not-whitelisted: /) as unknown });
    expect(await gateway.ctx.status.getDelivery(deadOne.deliveryId)).toMatchObject({ state: 'refused', reason: 'not-whitelisted' });
    const deadLetters = await operator.json<{ deadLetters: { deliveryId: string }[] }>(`${base}/api/v1/dead-letters`);
    expect(deadLetters.body.deadLetters.map((x) => x.deliveryId)).not.toContain(deadOne.deliveryId);
    const audit = await queryAudit(gateway.ctx.pg, { id: deadOne.deliveryId, limit: 10 });
    expect(audit.events[0]).toMatchObject({ route: '/api/v1/dead-letters/:id/replay', status: 409, reason: 'refused: not-whitelisted' });
  });

  it('closes a patient\'s conversation: the sandbox operator delivers a mail whose subject is exactly [FIN] to the patient', async () => {
    const res = await operator.fetch(`${base}/api/v1/patients/${PATIENTS[0]!.ins}/close`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mailbox: mailbox() }),
    });
    expect(res.status).toBe(200);
    const closed = (await res.json()) as { closingId: string; deliveryId: string; messageId: string; state: string };
    expect(closed).toMatchObject({ state: 'submitted', closingId: expect.stringMatching(/^c-[0-9a-f]{24}$/) as unknown });
    const address = `${PATIENTS[0]!.ins}@patient.mssante.fr`;
    const mail = await waitFor('the [FIN] mail in the patient\'s mailbox', () => Promise.resolve(mailboxFiles(address).find((m) => m.includes(closed.messageId))), 60_000);
    const head = mail.toString('utf8').split(/\r?\n\r?\n/)[0]!;
    expect(head).toMatch(/^Subject: \[FIN\]$/m);
    expect(head).toMatch(/^X-MSS-MES: FIN$/im); // header names are case-insensitive (nodemailer writes X-Mss-Mes)
    // In the patient's timeline: a recipient record of kind patient, with its history.
    expect(await gateway.ctx.status.getDelivery(closed.deliveryId)).toMatchObject({ kind: 'patient', recipient: address, resultId: closed.closingId, state: expect.stringMatching(/^(submitted|delivered)$/) as unknown });
    expect((await gateway.ctx.status.history(closed.deliveryId)).map((e) => e.state).slice(0, 2)).toEqual(['queued', 'submitted']);
    expect((await queryAudit(gateway.ctx.pg, { id: closed.deliveryId, limit: 5 })).events[0]).toMatchObject({ route: '/api/v1/patients/:ins/close', outcome: 'allowed' });
    // A viewer may not; a patient opposed to mails to the patient is not written to.
    expect((await viewer.fetch(`${base}/api/v1/patients/${PATIENTS[0]!.ins}/close`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mailbox: mailbox() }) })).status).toBe(403);
    const opposed = await operator.fetch(`${base}/api/v1/patients/${PATIENTS[1]!.ins}/close`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mailbox: mailbox() }) });
    expect(opposed.status).toBe(409);
    const unknown = await operator.fetch(`${base}/api/v1/patients/${PATIENTS[0]!.ins}/close`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mailbox: 'nobody@chu-demo.mssante.test' }) });
    expect(unknown.status).toBe(400);
  });

  it('manages oppositions through the API, for an operator only, audited by row id', async () => {
    const json = { 'content-type': 'application/json' };
    const created = await operator.fetch(`${base}/api/v1/oppositions`, { method: 'POST', headers: json, body: JSON.stringify({ patient: `IPP:X-${t}@CHU-DEMO`, direction: 'both', date: '2026-12-01' }) });
    expect(created.status).toBe(201);
    const { added } = (await created.json()) as { added: { id: string; direction: string; origin: string; facility: string }[] };
    expect(added.map((o) => [o.direction, o.origin, o.facility])).toEqual([['patient', 'api', 'CHU-DEMO'], ['professionals', 'api', 'CHU-DEMO']]);
    const listed = await operator.json<{ oppositions: { id: string }[] }>(`${base}/api/v1/oppositions?patient=${encodeURIComponent(`IPP:X-${t}@chu-demo`)}`);
    expect(listed.body.oppositions.map((o) => o.id)).toEqual(added.map((o) => o.id));
    expect((await operator.fetch(`${base}/api/v1/oppositions`, { method: 'POST', headers: json, body: JSON.stringify({ patient: `X-${t}`, direction: 'patient' }) })).status).toBe(400);
    expect((await viewer.fetch(`${base}/api/v1/oppositions`)).status).toBe(403);
    expect((await operator.fetch(`${base}/api/v1/oppositions/${added[0]!.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await operator.fetch(`${base}/api/v1/oppositions/${added[0]!.id}`, { method: 'DELETE' })).status).toBe(404);
    const audit = await queryAudit(gateway.ctx.pg, { id: `opposition:${added[1]!.id}`, limit: 10 });
    expect(audit.events.map((e) => e.route)).toEqual(expect.arrayContaining(['/api/v1/oppositions']));
    expect(JSON.stringify(audit.events)).not.toContain(`X-${t}`);
  });

  it('lists the replies: an operator in full, a viewer masked, each read in the audit trail', async () => {
    const recorded = await gateway.ctx.status.replies.record({
      mailbox: mailbox(), source: Buffer.from(`From: dominique@example.org\r\nSubject: Question sur mes resultats\r\nMessage-ID: <r-${t}@example.org>\r\n\r\nBonjour\r\n`),
      from: 'dominique.pat-trois@example.org', subject: 'Question sur mes resultats', references: [], auto: false,
    });
    const full = await operator.json<{ replies: { id: string; from?: string; subject?: string; matchedBy: string }[] }>(`${base}/api/v1/replies?mailbox=${encodeURIComponent(mailbox())}`);
    expect(full.status).toBe(200);
    expect(full.body.replies.find((r) => r.id === recorded.id)).toMatchObject({ from: 'dominique.pat-trois@example.org', subject: 'Question sur mes resultats', matchedBy: 'none' });
    const masked = await viewer.json<{ replies: { id: string; from?: string; subject?: string }[] }>(`${base}/api/v1/replies?unmatched=true`);
    expect(masked.body.replies.find((r) => r.id === recorded.id)).toMatchObject({ from: 'd***@example.org', subject: 'Q***' });
    expect(JSON.stringify(masked.body)).not.toContain('pat-trois');
    expect((await operator.fetch(`${base}/api/v1/replies?sender=x`)).status).toBe(400);
    const audit = await queryAudit(gateway.ctx.pg, { id: `reply:${recorded.id}`, limit: 10 });
    expect(audit.events.map((e) => [e.route, e.role])).toEqual(expect.arrayContaining([['/api/v1/replies', 'operator'], ['/api/v1/replies', 'viewer']]));
  });
});
