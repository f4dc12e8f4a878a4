/**
 * Mail that anyone in the MSSanté space can send to an applicative mailbox to slow down or stop the receipts reader:
 * floods that make backtracking regular expressions quadratic, deep or wide MIME trees, oversized parts, broken MIME.
 * Every mail is built in memory; none carries personal data.
 */

export interface HostileMail {
  name: string;
  mail: Buffer;
}

const CRLF = '\r\n';
const MB = 1024 * 1024;

/** A bounce-looking envelope (so that text inference runs on the body) around a body of the caller's. */
function bounce(body: string, o: { contentType?: string; headers?: string[]; from?: string } = {}): Buffer {
  const { contentType = 'text/plain; charset=us-ascii', headers: extraHeaders = [], from = 'Mail Delivery System <MAILER-DAEMON@mx.hostile.test>' } = o;
  return Buffer.from([
    `From: ${from}`, 'To: noreply@chu-demo.mssante.test',
    'Subject: Undelivered Mail Returned to Sender', `Message-ID: <hostile-${Math.random().toString(36).slice(2)}@mx.hostile.test>`,
    'MIME-Version: 1.0', `Content-Type: ${contentType}`, ...extraHeaders, '', body, '',
  ].join(CRLF), 'latin1');
}

/** `unit` repeated to about `bytes`, on one line unless the unit holds line breaks. */
const flood = (unit: string, bytes: number) => unit.repeat(Math.ceil(bytes / unit.length));

/** A multipart/report DSN around one delivery-status body of the caller's. */
function dsnAround(status: string): Buffer {
  return Buffer.from([
    'From: MAILER-DAEMON@mx.hostile.test', 'To: noreply@chu-demo.mssante.test', 'Subject: Delivery Status Notification', 'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="HB"', '',
    '--HB', 'Content-Type: text/plain', '', 'Delivery report.', '',
    '--HB', 'Content-Type: message/delivery-status', '', status, '', '--HB--', '',
  ].join(CRLF), 'latin1');
}

/** `depth` message/rfc822 attachments, each holding the next, a multipart/report DSN at the bottom. */
function nestedRfc822(depth: number): Buffer {
  let inner = dsnAround(['Reporting-MTA: dns; mx.hostile.test', '', 'Final-Recipient: rfc822; nobody@hostile.test', 'Action: failed', 'Status: 5.1.1'].join(CRLF)).toString('latin1');
  for (let i = 0; i < depth; i++) {
    const b = `N${i}`;
    inner = [
      'From: MAILER-DAEMON@mx.hostile.test', 'To: noreply@chu-demo.mssante.test', 'Subject: Fwd: Undelivered Mail', 'MIME-Version: 1.0',
      `Content-Type: multipart/mixed; boundary="${b}"`, '',
      `--${b}`, 'Content-Type: message/rfc822', '', inner, `--${b}--`, '',
    ].join(CRLF);
  }
  return Buffer.from(inner, 'latin1');
}

/** `n` tiny text parts in one multipart/mixed. */
function manyParts(n: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push('--P', 'Content-Type: text/plain', '', 'x');
  return bounce([...parts, '--P--'].join(CRLF), { contentType: 'multipart/mixed; boundary="P"' });
}

/** A DSN whose returned original carries a base64 attachment of `bytes`. */
function bigAttachment(bytes: number): Buffer {
  const b64 = Buffer.alloc(bytes, 0x5a).toString('base64').replace(/.{76}/g, `$&${CRLF}`);
  const dsn = dsnAround(['Reporting-MTA: dns; mx.hostile.test', '', 'Final-Recipient: rfc822; nobody@hostile.test', 'Action: failed', 'Status: 5.1.1'].join(CRLF));
  const attachment = ['--HB', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="big.bin"', '', b64, '--HB--'].join(CRLF);
  return Buffer.from(dsn.toString('latin1').replace('--HB--', () => attachment), 'latin1');
}

/**
 * The hostile corpus. `bytes` sizes the floods (1 MB by default); the attachment is 10 MB whatever `bytes` says.
 */
export function hostileCorpus(bytes = MB): HostileMail[] {
  const line = (unit: string) => flood(unit, bytes);
  return [
    { name: 'brace-flood', mail: bounce(line('{ ')) },
    { name: 'quote-flood', mail: bounce(`{${line('"')}`) },
    { name: 'json-like-flood', mail: bounce(line('{"notificationType" ')) },
    { name: 'letters-one-line', mail: bounce(line('a')) },
    { name: 'address-like-flood', mail: bounce(line('a.b-c_d+e')) },
    { name: 'angle-bracket-html', mail: bounce(`<html><body>${line('<')}</body></html>`, { contentType: 'text/html; charset=us-ascii' }) },
    { name: 'blank-line-flood', mail: bounce(line(CRLF)) },
    { name: 'whitespace-one-line', mail: bounce(`x${line(' \t')}y`) },
    { name: 'phrase-flood-one-line', mail: bounce(line('delivery to not been delivered unable to deliver ')) },
    { name: 'code-like-flood', mail: bounce(line('5.5.5 550 ')) },
    { name: 'dsn-report-1mb-continuations', mail: dsnAround(['Reporting-MTA: dns; mx.hostile.test', '', 'Final-Recipient: rfc822; nobody@hostile.test', 'Action: failed', 'Status: 5.1.1', `Diagnostic-Code: smtp; 550${line(`${CRLF} x`)}`].join(CRLF)) },
    { name: 'dsn-report-1mb-recipients', mail: dsnAround(['Reporting-MTA: dns; mx.hostile.test', '', line(`Final-Recipient: rfc822; r@hostile.test${CRLF}Action: failed${CRLF}Status: 5.1.1${CRLF}${CRLF}`)].join(CRLF)) },
    { name: 'dsn-report-1mb-one-field', mail: dsnAround(['Reporting-MTA: dns; mx.hostile.test', '', 'Final-Recipient: rfc822; nobody@hostile.test', 'Action: failed', `Status: 5.1.1 ${line('5.')}`].join(CRLF)) },
    { name: 'dsn-report-1mb-base64', mail: dsnAround(['Reporting-MTA: dns; mx.hostile.test', '', line(`QWN0aW9uOiBmYWlsZWQK${CRLF}`)].join(CRLF)) },
    { name: 'rfc822-nested-deep', mail: nestedRfc822(200) },
    { name: 'mime-parts-many', mail: manyParts(Math.max(1000, Math.floor(bytes / 40))) },
    { name: 'attachment-10mb', mail: bigAttachment(10 * MB) },
    { name: 'invalid-mime-no-headers', mail: Buffer.from(`${line('\x00\xff garbage ')}${CRLF}`, 'latin1') },
    { name: 'multipart-no-boundary', mail: bounce(line(`--${CRLF}`), { contentType: 'multipart/report; report-type=delivery-status' }) },
    { name: 'multipart-unterminated', mail: bounce(['--U', 'Content-Type: message/delivery-status', '', line('Final-Recipient: rfc822; x@y ')].join(CRLF), { contentType: 'multipart/report; report-type=delivery-status; boundary="U"' }) },
    { name: 'header-1mb', mail: Buffer.from(['From: MAILER-DAEMON@mx.hostile.test', `Subject: Undelivered ${line('x ')}`, '', 'body', ''].join(CRLF), 'latin1') },
    { name: 'from-noreply-flood', mail: bounce('x', { from: `"${flood('noreply ', bytes / 2)}" <mailer-daemon@mx.hostile.test>` }) },
    { name: 'address-list-flood', mail: bounce('x', { headers: [`Cc: ${flood('a@b.hostile.test, ', bytes / 2)}x@b.hostile.test`] }) },
    { name: 'encoded-words-flood', mail: bounce('x', { headers: [`X-Notice: ${flood('=?UTF-8?B?w6k=?= ', bytes / 2)}`] }) },
    { name: 'header-continuations-flood', mail: bounce('x', { headers: [`X-Notice: x${flood(`${CRLF} x`, bytes / 2)}`] }) },
    { name: 'html-unclosed-tags', mail: bounce(line('<a '), { contentType: 'text/html; charset=us-ascii' }) },
    { name: 'dash-line-one-line', mail: bounce(line('-')) },
    { name: 'multipart-nested-deep', mail: bounce(Array.from({ length: 500 }, (_, i) => `--M${i}${CRLF}Content-Type: multipart/mixed; boundary="M${i + 1}"${CRLF}`).join(CRLF), { contentType: 'multipart/mixed; boundary="M0"' }) },
  ];
}

/** A well-formed Postfix-style DSN for one of our deliveries (ENVID = its envelope id). */
export function wellFormedDsn(o: { to: string; envelopeId: string; recipient: string; action: 'delivered' | 'failed'; status: string }): Buffer {
  return Buffer.from([
    'From: Mail Delivery System <MAILER-DAEMON@operator.test>', `To: ${o.to}`, 'Subject: Delivery Status Notification',
    `Message-ID: <dsn-${o.envelopeId}@operator.test>`, 'Auto-Submitted: auto-replied', 'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="WB"', '',
    '--WB', 'Content-Type: text/plain; charset=us-ascii', '', 'Delivery report.', '',
    '--WB', 'Content-Type: message/delivery-status', '',
    'Reporting-MTA: dns; operator.test', `Original-Envelope-Id: ${o.envelopeId}`, '',
    `Final-Recipient: rfc822; ${o.recipient}`, `Action: ${o.action}`, `Status: ${o.status}`, `Diagnostic-Code: smtp; ${o.status.startsWith('2') ? '250 2.0.0 Ok' : `550 ${o.status} unknown`}`, '',
    '--WB--', '',
  ].join(CRLF), 'latin1');
}
