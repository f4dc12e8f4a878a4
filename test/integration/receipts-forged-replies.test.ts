import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSecret, type GatewayConfig } from '@mssgw/config';
import { createMailboxTransport } from '@mssgw/dispatcher';
import { MllpClient } from '@mssgw/hl7';
import { mailboxTls } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mssgwFor, tag, testConfig, waitFor } from '../support/env.ts';

const CRLF = '\r\n';
/** The operator's injection port (plain SMTP): mail from anyone in the MSSanté space, as their operator relays it. */
const inject = nodemailer.createTransport({ host: '127.0.0.1', port: 10025, ignoreTLS: true });
const send = (from: string, to: string, raw: string) => inject.sendMail({ envelope: { from, to }, raw });

/** A DSN as a co-recipient would forge it: every field the operator's own would carry, Reporting-MTA included. */
function forgedDsn(o: { to: string; envelopeId?: string; recipient: string; messageId: string; action: string; status: string; t: string }): string {
  return [
    'From: Mail Delivery System <MAILER-DAEMON@operator.test>', `To: ${o.to}`, 'Subject: Successful Mail Delivery Report',
    `Message-ID: <forged-${o.t}-${Math.random().toString(36).slice(2)}@mail.operator.test>`, 'Auto-Submitted: auto-replied', 'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="FB"', '',
    '--FB', 'Content-Type: text/plain; charset=us-ascii', '', 'This is the mail system at host mail.operator.test.', '',
    '--FB', 'Content-Type: message/delivery-status', '',
    'Reporting-MTA: dns; mail.operator.test', ...(o.envelopeId ? [`Original-Envelope-Id: ${o.envelopeId}`] : []), '',
    `Final-Recipient: rfc822; ${o.recipient}`, `Original-Recipient: rfc822;${o.recipient}`, `Action: ${o.action}`, `Status: ${o.status}`, '',
    '--FB', 'Content-Type: text/rfc822-headers', '', `Message-ID: ${o.messageId}`, `Subject: x`, '',
    '--FB--', '',
  ].join(CRLF);
}

function mdn(o: { from: string; to: string; finalRecipient: string; messageId: string; t: string }): string {
  return [
    `From: ${o.from}`, `To: ${o.to}`, 'Subject: Lu', `Message-ID: <mdn-${o.t}-${Math.random().toString(36).slice(2)}@cabinet-demo.mssante.test>`,
    `In-Reply-To: ${o.messageId}`, 'MIME-Version: 1.0', 'Content-Type: multipart/report; report-type=disposition-notification; boundary="MB"', '',
    '--MB', 'Content-Type: text/plain; charset=utf-8', '', 'Votre message a été affiché.', '',
    '--MB', 'Content-Type: message/disposition-notification', '',
    'Reporting-UA: cabinet-demo; logiciel-medecin', `Final-Recipient: rfc822;${o.finalRecipient}`, `Original-Message-ID: ${o.messageId}`,
    'Disposition: manual-action/MDN-sent-manually; displayed', '', '--MB--', '',
  ].join(CRLF);
}

/** Every mail of a mailbox's INBOX, read over IMAP (Dovecot) with the test mailbox's certificate. */
async function inbox(config: GatewayConfig, address: string): Promise<Buffer[]> {
  const mailbox = config.mailboxes[0]!;
  const client = new ImapFlow({
    host: config.operator.imapHost, port: config.operator.imapPort, secure: false, doSTARTTLS: true,
    auth: { user: address, pass: readSecret(mailbox.imapPassword) }, tls: mailboxTls(config, mailbox), logger: false,
  });
  await client.connect();
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const out: Buffer[] = [];
      if (client.mailbox && client.mailbox.exists > 0) for await (const m of client.fetch('1:*', { source: true })) if (m.source) out.push(m.source);
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

const counter = async (c: { get(): Promise<{ values: { labels: Record<string, string | number>; value: number }[] }> }, labels: Record<string, string>) =>
  (await c.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);

describe('receipts a co-recipient forges, and replies, on the sandbox operator', () => {
  const t = tag();
  const co = { ...DOCTORS[0]!, address: `co-${t}@cabinet-demo.mssante.test` };
  // Held by the operator: no DSN ever comes, so only a forged one could move it.
  const victim = { ...DOCTORS[1]!, address: `silent-victim-${t}@cabinet-demo.mssante.test` };
  const patient = PATIENTS[0]!;
  const patientAddress = `${patient.ins}@patient.mssante.fr`;
  const secretariat = `secretariat-${t}@chu-demo.mssante.test`;
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'mssgw-replies-')), 'gateway.log');
  const config = testConfig('forged', (c) => {
    c.logLevel = 'info';
    c.mailboxes[0]!.forwardRepliesTo = secretariat;
  });
  const mailbox = config.mailboxes[0]!.address;
  let gateway: Gateway;
  let resultId = '';
  const delivery = async (address: string) => (await gateway.ctx.status.getResult(resultId))!.deliveries.find((d) => d.recipient === address)!;

  beforeAll(async () => {
    process.env['MSSGW_LOG_FILE'] = logFile;
    gateway = await startGateway(config);
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    expect((await c.send(makeCisisResult({ controlId: `FORGED-${t}`, patient, doctors: [co, victim], toPatient: true, readReceipt: true }))).code).toBe('AA');
    await c.close();
    resultId = (await gateway.ctx.status.resultsByControlId(`FORGED-${t}`))[0]!;
    // The operator's own DSNs settle the co-recipient and the patient; the victim's mail is held, submitted.
    await waitFor('the operator\'s DSNs', async () => {
      await gateway.receipts!.sweep();
      const r = await gateway.ctx.status.getResult(resultId);
      const s = (a: string) => r?.deliveries.find((d) => d.recipient === a)?.state;
      return s(co.address) === 'delivered' && s(patientAddress) === 'delivered' && s(victim.address) === 'submitted';
    }, 60_000, 500);
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    delete process.env['MSSGW_LOG_FILE'];
  });

  it('applies the operator\'s own DSNs by their random envelope id', async () => {
    const d = await delivery(co.address);
    expect(d.envelopeId).toMatch(/^[0-9a-f]{32}$/);
    expect((await gateway.ctx.status.history(d.deliveryId)).map((h) => [h.state, h.applied, h.source])).toContainEqual(['delivered', true, 'dsn']);
  });

  it('records a co-recipient\'s forged DSNs and MDNs as forged, and changes nothing', async () => {
    const v = await delivery(victim.address);
    const own = await delivery(co.address);
    expect(v.messageId).toBe(own.messageId); // one mail to the professionals: the co-recipient sees its Message-ID
    const before = await counter(metrics.receiptsForged, { mailbox });
    // A DSN with the ENVID of the old scheme (the delivery id, which a co-recipient can compute), null sender.
    await send('', mailbox, forgedDsn({ to: mailbox, envelopeId: v.deliveryId, recipient: victim.address, messageId: v.messageId!, action: 'delivered', status: '2.0.0', t }));
    // No ENVID at all: the Message-ID fallback, which holds only for a DSN the operator wrote.
    await send('', mailbox, forgedDsn({ to: mailbox, recipient: victim.address, messageId: v.messageId!, action: 'failed', status: '5.1.1', t }));
    // A guessed envelope id: no delivery has it, and the Message-ID fallback does not hold for a mail from outside.
    await send('', mailbox, forgedDsn({ to: mailbox, envelopeId: 'a'.repeat(32), recipient: victim.address, messageId: v.messageId!, action: 'failed', status: '5.1.1', t }));
    // The victim's real envelope id, reporting on the co-recipient: the report must be about the envelope's address.
    await send('', mailbox, forgedDsn({ to: mailbox, envelopeId: v.envelopeId!, recipient: co.address, messageId: v.messageId!, action: 'failed', status: '5.1.1', t }));
    // An MDN from the co-recipient's own address about the victim, and one whose From claims the victim.
    await send(co.address, mailbox, mdn({ from: co.address, to: mailbox, finalRecipient: victim.address, messageId: v.messageId!, t }));
    await send(co.address, mailbox, mdn({ from: victim.address, to: mailbox, finalRecipient: victim.address, messageId: v.messageId!, t }));
    // And the co-recipient's own read receipt, which holds.
    await send(co.address, mailbox, mdn({ from: co.address, to: mailbox, finalRecipient: co.address, messageId: own.messageId!, t }));

    await waitFor('every receipt read', async () => {
      await gateway.receipts!.sweep();
      return (await delivery(co.address)).state === 'displayed' && (await counter(metrics.receiptsForged, { mailbox })) - before >= 6;
    }, 60_000, 500);
    expect((await delivery(victim.address)).state).toBe('submitted');
    const forged = (await gateway.ctx.status.history(v.deliveryId)).filter((h) => h.detail?.startsWith('forged: '));
    expect(forged.map((h) => [h.source, h.state, h.applied, h.detail!.split(';')[0]]).sort()).toEqual([
      ['dsn', 'delivered', false, 'forged: envelope-unknown'],
      ['dsn', 'failed', false, 'forged: envelope-recipient'],
      ['dsn', 'failed', false, 'forged: envelope-unknown'],
      ['dsn', 'failed', false, 'forged: not-from-operator'],
      ['mdn', 'displayed', false, 'forged: mdn-sender'],
      ['mdn', 'displayed', false, 'forged: mdn-sender'],
    ]);
    const by = async (kind: string, reason: string) => counter(metrics.receiptsForged, { mailbox, kind, reason });
    expect([await by('dsn', 'envelope-unknown'), await by('dsn', 'envelope-recipient'), await by('dsn', 'not-from-operator'), await by('mdn', 'mdn-sender')]).toEqual([2, 1, 1, 2]);
    expect((await gateway.ctx.status.history(own.deliveryId)).filter((h) => h.detail?.startsWith('forged: '))).toEqual([]);
  }, 90_000);

  it('records a patient\'s reply in the timeline of the delivery it answers, counts it, and forwards a copy to the human mailbox', async () => {
    const p = await delivery(patientAddress);
    const subject = `Question sur mon résultat ${t}`;
    const text = `Bonjour, que veut dire la ligne 3 ? ${t}`;
    const reply = [
      `From: ${patientAddress}`, `To: ${mailbox}`, `Subject: =?UTF-8?B?${Buffer.from(subject).toString('base64')}?=`,
      `Date: ${new Date().toUTCString()}`, `Message-ID: <reply-${t}@patient.mssante.fr>`, `In-Reply-To: ${p.messageId}`, `References: ${p.messageId}`,
      'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text, '',
    ].join(CRLF);
    const stranger = `inconnu-${t}@cabinet-demo.mssante.test`;
    const lost = [`From: ${stranger}`, `To: ${mailbox}`, `Subject: Sans rapport ${t}`, `Message-ID: <lost-${t}@cabinet-demo.mssante.test>`, '', 'Bonjour.', ''].join(CRLF);
    const before = await counter(metrics.replies, { mailbox, matched: 'in-reply-to' });
    await send(patientAddress, mailbox, reply);
    await send(stranger, mailbox, lost);

    const replies = await waitFor('both replies recorded', async () => {
      await gateway.receipts!.sweep();
      const r = await gateway.ctx.status.listReplies({ mailbox });
      return r.length >= 2 ? r : undefined;
    }, 60_000, 500);
    const answered = replies.find((r) => r.from === patientAddress)!;
    expect(answered).toMatchObject({ matchedBy: 'in-reply-to', resultId, deliveryId: p.deliveryId, subject, auto: false, forwardTo: secretariat });
    expect((await gateway.ctx.status.replies.body(answered.id))!.toString('utf8')).toContain(text);
    // In the patient's timeline by id only; its state is what it was.
    const notes = (await gateway.ctx.status.history(p.deliveryId)).filter((h) => h.source === 'reply');
    expect(notes).toMatchObject([{ state: 'delivered', applied: false, detail: `reply ${answered.id}` }]);
    expect((await delivery(patientAddress)).state).toBe('delivered');
    expect(await counter(metrics.replies, { mailbox, matched: 'in-reply-to' })).toBe(before + 1);
    // The one that matches nothing is kept and listed.
    const unmatched = await gateway.ctx.status.listReplies({ mailbox, unmatched: true });
    expect(unmatched.map((r) => [r.from, r.matchedBy])).toEqual([[stranger, 'none']]);
    expect(await counter(metrics.replies, { mailbox, matched: 'none' })).toBeGreaterThanOrEqual(1);

    // The secretariat's mailbox receives the copy, the patient's mail attached whole.
    const copy = await waitFor('the forwarded copy', async () => {
      await gateway.receipts!.forwardReplies();
      return (await inbox(config, secretariat)).find((m) => new RegExp(`^X-MSSGW-Reply-Id: ${answered.id}\\r?$`, 'im').test(m.toString('latin1')));
    }, 60_000, 1000);
    const parsed = await simpleParser(copy);
    expect(parsed.from?.value[0]?.address).toBe(mailbox);
    expect(parsed.headers.get('auto-submitted')).toBe('auto-forwarded');
    expect(parsed.subject).toBe(`Réponse reçue : ${subject}`);
    expect(parsed.text).toContain(`FORGED-${t}`);
    const attached = parsed.attachments.find((a) => a.contentType === 'message/rfc822')!;
    expect(attached.content.toString('utf8')).toContain(`<reply-${t}@patient.mssante.fr>`);
    expect(attached.content.toString('utf8')).toContain(text);
    expect((await gateway.ctx.status.replies.get(answered.id))?.forwardedAt).toBeGreaterThan(0);
    expect(await counter(metrics.repliesForwarded, { mailbox, outcome: 'sent' })).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('never writes a reply\'s sender, subject or text, nor a forged receipt\'s addresses, to the log', () => {
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('reply recorded');
    expect(log).toContain('receipt not believed');
    for (const secret of [`Question sur mon`, `que veut dire`, `Sans rapport ${t}`, `inconnu-${t}`, patient.ins, victim.address, co.address]) expect(log, secret).not.toContain(secret);
  });
});

/** A reply from someone no result was sent to, as the operator delivers it, once the receipts reader recorded it. */
async function unmatchedReply(receipts: Gateway, to: string, t: string) {
  await send(`inconnu-${t}@cabinet-demo.mssante.test`, to, [`From: inconnu-${t}@cabinet-demo.mssante.test`, `To: ${to}`, 'Subject: x', '', 'x', ''].join(CRLF));
  const [r] = await waitFor('the reply recorded', async () => {
    await receipts.receipts!.sweep();
    const list = await receipts.ctx.status.listReplies({ mailbox: to });
    return list.length ? list : undefined;
  }, 60_000, 500);
  return r!;
}

describe('a reply whose copy the operator refuses, on the sandbox operator', () => {
  it('keeps a reply whose copy the operator refuses, counts the failure, and reads on', async () => {
    const t = tag();
    // The sandbox operator refuses recipients named reject* at RCPT (550).
    const own = testConfig('refused', (c) => (c.mailboxes[0]!.forwardRepliesTo = `reject-${t}@chu-demo.mssante.test`));
    const to = own.mailboxes[0]!.address;
    const receipts = await startGateway(own, ['receipts']);
    try {
      const r = await unmatchedReply(receipts, to, t);
      await waitFor('the refusal counted', async () => {
        await receipts.receipts!.forwardReplies();
        return (await counter(metrics.repliesForwarded, { mailbox: to, outcome: 'failed' })) >= 1;
      }, 30_000, 500);
      expect(await receipts.ctx.status.replies.get(r.id)).toMatchObject({ forwardTo: `reject-${t}@chu-demo.mssante.test`, matchedBy: 'none' });
      expect((await receipts.ctx.status.replies.get(r.id))?.forwardedAt).toBeUndefined();
      // Refused for good: not tried again by this process, and nothing else waits behind it.
      await receipts.receipts!.forwardReplies();
      expect(await counter(metrics.repliesForwarded, { mailbox: to, outcome: 'failed' })).toBe(1);
      // Listed from the command line (mssgw replies), without its sender or subject unless --json, and audited.
      const mssgw = mssgwFor(own);
      const listed = mssgw('replies', '--unmatched', '--mailbox', to);
      expect(listed.stdout, listed.stderr).toMatch(new RegExp(`^ *${r.id}  \\S+  ${to.replace(/[.]/g, '\\.')}  none  -  -  copy pending$`, 'm'));
      expect(listed.stdout).toContain('1 reply, newest first');
      expect(listed.stdout).not.toContain(`inconnu-${t}`);
      expect((JSON.parse(mssgw('replies', '--json').stdout) as { from: string }[])[0]!.from).toBe(`inconnu-${t}@cabinet-demo.mssante.test`);
      const audit = JSON.parse(mssgw('audit', '--json', '--limit', '5').stdout) as { route: string; ids: string[] }[];
      expect(audit.filter((e) => e.route === 'mssgw replies').map((e) => e.ids)).toContainEqual([`reply:${r.id}`]);
    } finally {
      await receipts.stop();
    }
  }, 120_000);
});

describe('a forwardRepliesTo outside the MSSanté liste blanche', () => {
  it('sends no copy there, keeps the reply pending and says so in a gauge', async () => {
    const t = tag();
    const own = testConfig('outside', (c) => (c.mailboxes[0]!.forwardRepliesTo = `secretariat-${t}@gmail.example`));
    const to = own.mailboxes[0]!.address;
    const receipts = await startGateway(own, ['receipts']);
    try {
      const r = await unmatchedReply(receipts, to, t);
      await waitFor('the copy held back', async () => {
        await receipts.receipts!.forwardReplies();
        return (await counter(metrics.repliesForwardingBlocked, { mailbox: to })) === 1;
      }, 30_000, 500);
      // Nothing reached the operator: no copy sent, none failed there; the reply is kept, still pending.
      expect(await counter(metrics.repliesForwarded, { mailbox: to, outcome: 'sent' })).toBe(0);
      expect(await counter(metrics.repliesForwarded, { mailbox: to, outcome: 'failed' })).toBe(0);
      expect((await receipts.ctx.status.replies.get(r.id))?.forwardedAt).toBeUndefined();
      expect((await receipts.ctx.status.replies.pendingForwards(to, 20, [])).map((p) => p.id)).toEqual([r.id]);
    } finally {
      await receipts.stop();
    }
  }, 120_000);
});

describe("the operator's own DSN without an ENVID, on the sandbox operator", () => {
  it('is applied by its Message-ID and recipient: the operator wrote it', async () => {
    const t = tag();
    const own = testConfig('legacy');
    const mailbox = own.mailboxes[0]!;
    // Unknown to the operator: it takes the mail, then bounces it itself.
    const recipient = `unknown-legacy-${t}@cabinet-demo.mssante.test`;
    const messageId = `<r-legacy-${t}-ps@chu-demo.mssante.test>`;
    const receipts = await startGateway(own, ['receipts']);
    const transport = createMailboxTransport(own, mailbox);
    try {
      await receipts.ctx.status.createDelivery({ deliveryId: `d-legacy-${t}`, resultId: `r-legacy-${t}`, recipient, kind: 'professional', state: 'queued', messageId, mailbox: mailbox.address });
      await receipts.ctx.status.transition(`d-legacy-${t}`, 'submitted', 'dispatcher');
      // Sent without DSN parameters (no ENVID), as a mail of an MTA that dropped them would come back.
      await transport.sendMail({ from: mailbox.address, to: recipient, subject: 'x', text: 'x', messageId });
      const d = await waitFor('the bounce applied', async () => {
        await receipts.receipts!.sweep();
        const x = await receipts.ctx.status.getDelivery(`d-legacy-${t}`);
        return x?.state === 'failed' ? x : undefined;
      }, 60_000, 500);
      expect(d.dsnStatus).toBe('5.1.1');
      expect((await receipts.ctx.status.history(d.deliveryId)).filter((h) => h.detail?.startsWith('forged: '))).toEqual([]);
    } finally {
      transport.close();
      await receipts.stop();
    }
  }, 120_000);
});
