import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { mailOrigin, parseDisposition, parseFieldBlocks, parseReceipt } from '@mssgw/receipts';
import { fromOperator } from '@mssgw/receipts-service';

const CORPORA = path.resolve(import.meta.dirname, '../corpora');
const corpus = (p: string) => readFileSync(path.join(CORPORA, p));
const address = (v: string) => v.replace(/^rfc822;/i, '').trim().replace(/^<|>$/g, '').toLowerCase();
// The expected answers note where an id was found, e.g. "(In-Reply-To) id".
const msgId = (v: string | undefined) => (v ?? '').replace(/^\([^)]*\)\s*/, '').trim().replace(/^<|>$/g, '');

describe('receipts', () => {
  it('splits per-recipient blocks even without the blank line, unfolding continuation lines', () => {
    const blocks = parseFieldBlocks('Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@x\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550\r\n  user unknown\r\nFinal-Recipient: rfc822; b@x\r\nAction: delivered\r\nStatus: 2.0.0\r\n');
    expect(blocks).toHaveLength(3);
    expect(blocks[1]!.get('diagnostic-code')).toBe('smtp; 550 user unknown');
    expect(blocks[2]!.get('final-recipient')).toBe('rfc822; b@x');
  });

  it('reads the CI-SIS integration error form of an MDN disposition', () => {
    expect(parseDisposition('automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant de patient inconnu')).toEqual({
      actionMode: 'automatic-action', sendingMode: 'MDN-sent-automatically', type: 'processed',
      modifier: 'Error: 902^Identifiant de patient inconnu', error: { code: '902', label: 'Identifiant de patient inconnu' },
    });
  });

  it('reads the corpus DSN and MDN samples with the values their expected answers give', async () => {
    const rows = readFileSync(path.join(CORPORA, 'dsn-mdn-misc/expected.tsv'), 'utf8').trim().split('\n');
    const header = rows.shift()!.split('\t');
    const col = (r: string[], name: string) => r[header.indexOf(name)] ?? '';
    let checked = 0;
    for (const line of rows) {
      const r = line.split('\t');
      const file = col(r, 'file');
      const receipt = await parseReceipt(corpus(`dsn-mdn-misc/${file}`));
      if (col(r, 'kind') === 'mdn') {
        expect(receipt.kind, file).toBe('mdn');
        if (receipt.kind === 'mdn') {
          expect(receipt.disposition.type, file).toBe(col(r, 'disposition').split(';').pop()!.trim().split('/')[0]);
          if (col(r, 'original_message_id')) expect(msgId(receipt.originalMessageId), file).toBe(msgId(col(r, 'original_message_id')));
        }
        checked++;
      } else if (col(r, 'kind') === 'dsn' && col(r, 'recipient')) {
        expect(receipt.kind, file).toBe('dsn');
        if (receipt.kind === 'dsn') {
          const mine = receipt.recipients.find((x) => x.recipient === address(col(r, 'recipient')));
          expect(mine, `${file} ${col(r, 'recipient')}`).toBeDefined();
          // A status the report did not carry (inferred from its diagnostic) is absent from the literal answers.
          expect([mine!.action, mine!.statusInferred ? '' : mine!.status], file).toEqual([col(r, 'action'), col(r, 'status')]);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('reads an RFC 6533 global DSN (UTF-8 addresses in message/global-delivery-status)', async () => {
    const mail = [
      'From: MAILER-DAEMON@mx.example', 'To: labo-noreply@chu-demo.mssante.test', 'Subject: Undelivered Mail', 'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="B"', '',
      '--B', 'Content-Type: text/plain; charset=utf-8', '', 'failed', '',
      '--B', 'Content-Type: message/global-delivery-status', '',
      'Reporting-MTA: dns; mx.example', 'Original-Envelope-Id: d-0123456789abcdef01234567', '',
      'Final-Recipient: utf-8; zoé.médecin@cabinet-demo.mssante.test', 'Action: failed', 'Status: 5.1.1', 'Diagnostic-Code: smtp; 550 5.1.1 unknown', '',
      '--B--', '',
    ].join('\r\n');
    const r = await parseReceipt(Buffer.from(mail, 'utf8'));
    expect(r).toMatchObject({ kind: 'dsn', envelopeId: 'd-0123456789abcdef01234567', recipients: [{ recipient: 'zoé.médecin@cabinet-demo.mssante.test', action: 'failed', status: '5.1.1' }] });
  });

  it('never takes an auto-reply or an ordinary mail for a receipt', async () => {
    const dir = path.join(CORPORA, 'bounces-sisimai/negatives');
    const files = readdirSync(dir);
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) {
      expect((await parseReceipt(readFileSync(path.join(dir, f)))).kind, f).toBe('other');
    }
    const plain = 'From: a@x\r\nTo: b@y\r\nSubject: merci\r\nMessage-ID: <1@x>\r\n\r\nMerci docteur.\r\n';
    expect(await parseReceipt(plain)).toEqual({
      kind: 'other', reason: 'not-a-receipt', messageId: '<1@x>', reply: { subject: 'merci', references: [] }, origin: { from: 'a@x', smtpHops: 0, received: 0 },
    });
  });

  it('reads what a reply says of its thread: In-Reply-To, References, Subject (decoded), Date', async () => {
    const reply = [
      'Return-Path: <279035121518989@patient.mssante.fr>',
      'Received: from mx.patient.test (mx.patient.test [10.0.0.1])', '\tby mail.operator.test (Postfix) with ESMTP id 1', '\tfor <labo-noreply@chu-demo.mssante.test>',
      'Received: from client (unknown [10.0.0.2]) by mx.patient.test', 'From: "Jean Dupont" <279035121518989@Patient.MSSante.fr>',
      'To: labo-noreply@chu-demo.mssante.test', 'Subject: =?UTF-8?Q?Re=C2=A0:_R=C3=A9sultat?=', 'Date: Sun, 06 Dec 2026 22:00:00 +0000',
      'Message-ID: <reply-1@patient.test>', 'In-Reply-To: <r-0123-pat@chu-demo.mssante.test>',
      'References: <older@x.test>', ' <r-0123-pat@chu-demo.mssante.test>', '', 'Bonjour, que veut dire ce résultat ?', '',
    ].join('\r\n');
    const r = await parseReceipt(reply);
    expect(r).toMatchObject({
      kind: 'other', reason: 'not-a-receipt',
      reply: { subject: 'Re\u00a0: Résultat', date: Date.parse('2026-12-06T22:00:00Z'), inReplyTo: '<r-0123-pat@chu-demo.mssante.test>', references: ['<older@x.test>', '<r-0123-pat@chu-demo.mssante.test>'] },
      origin: { returnPath: '279035121518989@patient.mssante.fr', from: '279035121518989@patient.mssante.fr', smtpHops: 2, received: 2 },
    });
  });

  it("tells a DSN the operator wrote (no hop over SMTP, null sender) from one received over SMTP", async () => {
    const own = await parseReceipt(readFileSync(path.join(import.meta.dirname, '../fixtures/receipts/postfix-failure-dsn.eml')));
    const header = readFileSync(path.join(import.meta.dirname, '../fixtures/receipts/postfix-failure-dsn.eml'), 'latin1');
    expect(own.origin).toEqual({ returnPath: '', from: 'mailer-daemon@operator.test', smtpHops: 0, received: 1 });
    const injected = `Received: from attacker.test (attacker.test [10.9.9.9])\r\n\tby mail.operator.test (Postfix) with ESMTP id 2\r\n${header}`;
    expect((await parseReceipt(injected)).origin).toMatchObject({ smtpHops: 1 });
    // Fields the sender wrote come after the operator's: the first Return-Path and From count.
    const spoofed = mailOrigin(Buffer.from('Return-Path: <a@x.test>\r\nReturn-Path: <>\r\nFrom: b@y.test\r\nFrom: <c@z.test>\r\n\r\nx'), 4096);
    expect(spoofed).toEqual({ returnPath: 'a@x.test', from: 'b@y.test', smtpHops: 0, received: 0 });
    expect(mailOrigin(Buffer.from('Return-Path: <MAILER-DAEMON>\r\nReceived: by mail.operator.test (Postfix, from userid 0)\r\n\r\n'), 4096))
      .toEqual({ returnPath: '', smtpHops: 0, received: 1 });
  });

  it("takes a DSN for the operator's own only with a null sender, a trusted Reporting-MTA and no hop over SMTP", () => {
    const config = { operator: { tlsServerName: 'mail.operator.test' } } as GatewayConfig;
    const own = { returnPath: '', smtpHops: 0, received: 1 };
    expect(fromOperator(config, own, 'mail.operator.test')).toBe(true);
    expect(fromOperator(config, own, 'MAIL.operator.test ')).toBe(true);
    expect(fromOperator(config, own, 'mx.elsewhere.test')).toBe(false);
    expect(fromOperator(config, own, undefined)).toBe(false);
    expect(fromOperator(config, { ...own, smtpHops: 1 }, 'mail.operator.test')).toBe(false);
    expect(fromOperator(config, { ...own, received: 0 }, 'mail.operator.test')).toBe(false);
    expect(fromOperator(config, { ...own, returnPath: 'someone@x.test' }, 'mail.operator.test')).toBe(false);
    expect(fromOperator(config, { smtpHops: 0, received: 1 }, 'mail.operator.test')).toBe(false);
    expect(fromOperator(config, undefined, 'mail.operator.test')).toBe(false);
    const listed = { operator: { tlsServerName: 'smtp.operator.example', reportingMtas: ['mta1.operator.example'] } } as GatewayConfig;
    expect(fromOperator(listed, own, 'mta1.operator.example')).toBe(true);
    expect(fromOperator(listed, own, 'smtp.operator.example')).toBe(false);
  });
});
