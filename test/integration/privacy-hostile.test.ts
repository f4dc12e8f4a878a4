// No personal data in any log line or dead-letter header, whatever the input (#22). Bad input carrying a known patient
// (name, INS, postal address) and practitioner address goes through every door of the gateway: MLLP (broken frames,
// invalid segments, oversized frames, stray bytes), Kafka (broken JSON, bad envelopes, bad HL7), IMAP (replies, DSNs,
// MDNs and broken MIME injected through the sandbox operator) and the HTTP API (bad queries, unknown ids, with and
// without credentials). Then every line of the gateway's log (debug level) and every header of the Kafka dead-letter
// topic is searched for those values.
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { frame } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { apiClient } from '../support/api.ts';
import { DOCTORS, makeCisisResult, type SamplePatient } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';
import { folderCounts } from '../support/imap.ts';

const t = tag();
const T = t.toUpperCase();
/** A NIR-shaped INS of 13 digits and its key (97 - n mod 97), unique to this run. */
const ins = (() => {
  const n = `2770475${String(randomInt(100_000, 999_999))}`;
  return `${n}${String(97 - Number(BigInt(n) % 97n)).padStart(2, '0')}`;
})();
const patient: SamplePatient = { ins, family: `PIIFAM${T}`, given: `PIIGIV${T}`, birthDate: '19770417', sex: 'F' };
const street = `RUE DES SECRETS ${T}`;
const doctor = { ...DOCTORS[0]!, family: `PIIDOC${T}`, address: `pii-doc-${t}@cabinet-demo.mssante.test` };
/** Values put where the parser quotes what it refuses (MSH-9, MSH-12, a MetaDMPMSS flag's value), in the ACK only. */
const quoted = { family: `QUOTFAM${T}`, ins: `1${ins.slice(1)}` };
const quotedInputs = (hl7: string) => [
  hl7.replace('ORU^R01^ORU_R01', `${quoted.family}^R01^ORU_R01`),
  hl7.replace('|P|2.5|', `|P|${quoted.ins}|`),
  hl7.replace(/(MASQUE_PS\^[^|]*\|\|)N/, `$1${quoted.family}`),
];
/** What must never be found, compared without case. */
const SECRETS = [patient.family, patient.given, patient.ins, street, doctor.address, doctor.family, `${patient.ins}@patient.mssante.fr`];

/** The PID carries the patient's address (PID-11) besides the name and the INS. */
const withAddress = (hl7: string) =>
  hl7.split('\r').map((s) => {
    if (!s.startsWith('PID|')) return s;
    const f = s.split('|');
    while (f.length < 12) f.push('');
    f[11] = `12 ${street}^^PARIS^^75011^FRA^H`;
    return f.join('|');
  }).join('\r');
const result = (controlId: string) => withAddress(makeCisisResult({ controlId, patient, doctors: [doctor], toPatient: true }));

/** Sends bytes on a connection of its own and collects what comes back for a while (an ACK, or nothing). */
function exchange(port: number, chunks: (string | Buffer)[], waitMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      for (const c of chunks) s.write(c);
    });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    const done = () => (s.destroy(), resolve(got));
    s.on('close', done);
    setTimeout(done, waitMs);
  });
}

const inboxCount = async (config: GatewayConfig) => (await folderCounts(config, ['INBOX']))['INBOX']!;

describe('personal data in hostile input stays out of logs and dead-letter headers', () => {
  const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'mssgw-pii-')), 'gateway.log');
  const config = testConfig('pii', (c) => {
    c.logLevel = 'debug';
    c.kafka.enabled = true;
    // Small enough that a frame of a few hundred KB is refused as too large.
    c.mllp.listeners[0]!.maxMessageBytes = 256 * 1024;
  });
  const kafka = new Kafka({ clientId: 'mssgw-test', brokers: config.kafka.brokers, logLevel: logLevel.NOTHING });
  const topic = config.kafka.intakeTopics[0]!;
  const deadHeaders: Record<string, string>[] = [];
  let gateway: Gateway;
  const logLines = () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean);

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }, { topic: config.kafka.deadLetterTopic, numPartitions: 1 }, { topic: config.kafka.statusTopic }] });
    await admin.disconnect();
    process.env['MSSGW_LOG_FILE'] = logFile;
    gateway = await startGateway(config);
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    delete process.env['MSSGW_LOG_FILE'];
  });

  it('MLLP: broken frames, invalid segments, a frame too large, stray bytes, a frame cut off', async () => {
    const port = gateway.intake!.listeners[0]!.port;
    const good = result(`PII-M0-${t}`);
    const acks: string[] = [];
    // Refused by content: OBX-11 contradicts ORC-1; a segment name that is not one; a field with a bad date; no MSH at all.
    acks.push(await exchange(port, [frame(good.replace('||||||F|\rPRT', '||||||D|\rPRT').replace(`PII-M0-${t}`, `PII-M1-${t}`))]));
    acks.push(await exchange(port, [frame(good.replace(`PII-M0-${t}`, `PII-M2-${t}`).replace('\rPV1|', `\rP!D|${patient.family}^${patient.given}|${ins}|\rPV1|`))]));
    acks.push(await exchange(port, [frame(good.replace(`PII-M0-${t}`, `PII-M3-${t}`).replace(`|${patient.birthDate}|`, `|${patient.family}${ins}|`))]));
    acks.push(await exchange(port, [frame(`${patient.family}^${patient.given}|${ins}|12 ${street}\r`)]));
    // An MSH whose encoding characters and version are broken, and one naming an unknown charset.
    acks.push(await exchange(port, [frame(`MSH${patient.family}|${ins}|${street}\rPID|||${ins}\r`)]));
    acks.push(await exchange(port, [frame(good.replace(`PII-M0-${t}`, `PII-M4-${t}`).replace('UNICODE UTF-8', `X-${patient.family}`))]));
    // Bytes that are not UTF-8 in a result that says it is.
    acks.push(await exchange(port, [frame(Buffer.concat([Buffer.from(good.replace(`PII-M0-${t}`, `PII-M5-${t}`).slice(0, 400), 'utf8'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(`${patient.family}\r`)]))]));
    // Too large: refused with AR TOO_LARGE.
    acks.push(await exchange(port, [frame(`${good.replace(`PII-M0-${t}`, `PII-M6-${t}`)}NTE|1||${`${patient.family} ${ins} ${street} `.repeat(8000)}\r`)], 4000));
    for (const q of quotedInputs(good)) await exchange(port, [frame(q)], 500);
    // Stray bytes between frames, then a frame cut off by the peer.
    acks.push(await exchange(port, [`${patient.family} ${ins}\r\n`, '\x0b', good.slice(0, 600)], 500));
    const codes = acks.map((a) => /MSA\|(A[AER])\|/.exec(a)?.[1] ?? '-');
    // Refused: the contradiction, no MSH, broken delimiters, the cut UTF-8 result, the frame too large. (An unknown
    // segment or a bad birth date is tolerated; the cut-off frame gets no answer.)
    expect(codes).toEqual(['AE', 'AA', 'AA', 'AR', 'AR', codes[5], 'AE', 'AR', '-']);
    // Nothing the peer is answered echoes what it sent about the patient.
    for (const s of SECRETS) expect(acks.join('\n').toLowerCase(), s).not.toContain(s.toLowerCase());
  });

  it('Kafka: broken JSON, bad envelopes, an unknown source, bad HL7; each dead-lettered', async () => {
    const producer = kafka.producer();
    await producer.connect();
    const hl7 = result(`PII-K0-${t}`);
    const records = [
      // V8's JSON errors quote the input around the fault.
      `{"schema": "mssgw.result.v1", "source": "lab", "hl7": ${patient.family}^${patient.given} ${ins}"}`,
      `{"schema":"mssgw.result.v1","source":"lab","hl7":"MSH|^~\\\\&|SIL|CHU|||||ORU^R01|1|P|2.5\\rPID|||${ins}||${patient.family}^${patient.given}||||||12 ${street}`,
      JSON.stringify({ schema: 'mssgw.result.v1', source: patient.family, hl7 }),
      JSON.stringify({ schema: 'mssgw.result.v1', source: 'lab', hl7, patient: { name: patient.family, ins, address: street } }),
      JSON.stringify({ schema: `mssgw.${patient.family}.v9`, source: 'lab', hl7: Number(ins) }),
      JSON.stringify({ schema: 'mssgw.result.v1', source: 'lab', hl7: hl7.replace('||||||F|\rPRT', '||||||D|\rPRT') }),
      `${patient.family} ${patient.given}, INS ${ins}, 12 ${street}`,
      hl7.replace(`PII-K0-${t}`, `PII-K1-${t}`).replace('\rPV1|', `\rP!D|${patient.family}|${ins}\rPV1|`),
      ...quotedInputs(hl7),
    ];
    await producer.send({ topic, messages: records.map((value, i) => ({ key: `k${i}`, value })) });
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor('every record consumed', async () => {
        const [o] = await admin.fetchOffsets({ groupId: config.kafka.groupId, topics: [topic] });
        return Number(o!.partitions[0]!.offset) === records.length;
      }, 90_000);
    } finally {
      await admin.disconnect();
    }
    const dlq = kafka.consumer({ groupId: `pii-dlq-${t}` });
    await dlq.connect();
    await dlq.subscribe({ topic: config.kafka.deadLetterTopic, fromBeginning: true });
    void dlq.run({
      eachMessage: ({ message }) => Promise.resolve(void deadHeaders.push(Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])))),
    });
    try {
      await waitFor('a dead letter per bad record', () => Promise.resolve(deadHeaders.length >= records.length - 1), 60_000);
    } finally {
      await dlq.disconnect();
    }
    const headers = JSON.stringify(deadHeaders).toLowerCase();
    for (const s of SECRETS) expect(headers, `dead-letter headers: ${s}`).not.toContain(s.toLowerCase());
  }, 180_000);

  it('IMAP: a patient reply, DSNs and an MDN naming the patient, an attachment named after the patient, broken MIME', async () => {
    const mailbox = config.mailboxes[0]!.address;
    const inject = nodemailer.createTransport({ host: '127.0.0.1', port: 10025, ignoreTLS: true });
    const CRLF = '\r\n';
    const mail = (from: string, lines: string[]) => inject.sendMail({ envelope: { from, to: mailbox }, raw: Buffer.from(lines.join(CRLF), 'utf8') });
    const patientAddress = `${ins}@patient.mssante.fr`;
    const b = `b-${t}`;
    await mail(patientAddress, [
      `From: "${patient.given} ${patient.family}" <${patientAddress}>`, `To: ${mailbox}`, `Subject: Re: résultats de ${patient.family} ${patient.given}`,
      `Message-ID: <${patient.family}.${ins}@patient.mssante.fr>`, `In-Reply-To: <unknown-${ins}@chu-demo.mssante.test>`, 'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8', '', `Bonjour, je suis ${patient.given} ${patient.family}, INS ${ins}, j'habite 12 ${street}.`, '',
    ]);
    await mail('mailer-daemon@mx.hostile.test', [
      'From: Mail Delivery System <MAILER-DAEMON@mx.hostile.test>', `To: ${mailbox}`, `Subject: Undelivered Mail: ${patient.family} ${patient.given}`,
      `Message-ID: <dsn-${t}@mx.hostile.test>`, 'MIME-Version: 1.0', `Content-Type: multipart/report; report-type=delivery-status; boundary="${b}"`, '',
      `--${b}`, 'Content-Type: text/plain', '', `Your message to ${doctor.address} about ${patient.family} (INS ${ins}) could not be delivered.`, '',
      `--${b}`, 'Content-Type: message/delivery-status', '', `Reporting-MTA: dns; mx.hostile.test`, `Original-Envelope-Id: ${patient.family}-${ins}`, '',
      `Final-Recipient: rfc822; ${doctor.address}`, `Original-Recipient: rfc822;${patientAddress}`, 'Action: failed', 'Status: 5.1.1',
      `Diagnostic-Code: smtp; 550 5.1.1 <${doctor.address}>: ${patient.family} ${street} unknown`, '',
      `--${b}`, 'Content-Type: text/rfc822-headers', '', `Subject: Résultats ${patient.family} ${patient.given}`, `To: ${patientAddress}`, `Message-ID: <r-${t}-${ins}@chu-demo.mssante.test>`, '',
      `--${b}--`, '',
    ]);
    await mail(doctor.address, [
      `From: ${doctor.address}`, `To: ${mailbox}`, `Subject: Lu : ${patient.family} ${patient.given}`, `Message-ID: <mdn-${t}@cabinet-demo.mssante.test>`,
      'MIME-Version: 1.0', `Content-Type: multipart/report; report-type=disposition-notification; boundary="${b}"`, '',
      `--${b}`, 'Content-Type: text/plain; charset=utf-8', '', `Le message concernant ${patient.family} a été affiché.`, '',
      `--${b}`, 'Content-Type: message/disposition-notification', '', 'Reporting-UA: cabinet; logiciel', `Final-Recipient: rfc822;${doctor.address}`,
      `Original-Message-ID: <${patient.family}-${ins}@chu-demo.mssante.test>`, `Disposition: manual-action/MDN-sent-manually; ${patient.family}`, '', `--${b}--`, '',
    ]);
    // The attachment named <date>_<type>_<NOM>_<prénom>.pdf, as LIS export them.
    await mail(doctor.address, [
      `From: "Dr ${doctor.family}" <${doctor.address}>`, `To: ${mailbox}`, `Subject: ${patient.family}`, `Message-ID: <att-${t}@cabinet-demo.mssante.test>`,
      'MIME-Version: 1.0', `Content-Type: multipart/mixed; boundary="${b}"`, '',
      `--${b}`, 'Content-Type: text/plain; charset=utf-8', '', `Ci-joint le compte rendu de ${patient.family}.`, '',
      `--${b}`, `Content-Type: application/pdf; name="20261206_CR_${patient.family}_${patient.given}.pdf"`,
      `Content-Disposition: attachment; filename="20261206_CR_${patient.family}_${patient.given}.pdf"`, 'Content-Transfer-Encoding: base64', '',
      Buffer.from(`%PDF-1.4 ${patient.family} ${ins}`).toString('base64'), '', `--${b}--`, '',
    ]);
    // Broken MIME: a multipart without its boundary, an encoded-word that does not decode, headers naming the patient.
    await mail('someone@mx.hostile.test', [
      `From: =?utf-8?B?${Buffer.from(`${patient.family} ${patient.given}`).toString('base64')}?= <x@mx.hostile.test>`, `To: ${mailbox}`,
      `Subject: =?x-unknown?Q?${patient.family}_${ins}?=`, `X-Patient: ${patient.family} ${ins} ${street}`, `Message-ID: <${ins}@@broken>`,
      'MIME-Version: 1.0', 'Content-Type: multipart/report; report-type=delivery-status', '', `--nowhere`, `Final-Recipient: rfc822;${patient.family}@`, `${street}`, '',
    ]);
    await waitFor('every injected mail read and moved', async () => {
      await gateway.receipts!.sweep();
      return (await inboxCount(config)) === 0;
    }, 90_000, 1000);
  }, 180_000);

  it('the API: no credential, a bad one, a viewer, an operator; bad queries and unknown ids naming the patient', async () => {
    const base = `http://127.0.0.1:${gateway.api!.port}`;
    const viewer = await apiClient(gateway.ctx.pg, 'viewer');
    const operator = await apiClient(gateway.ctx.pg, 'operator');
    const q = encodeURIComponent;
    const urls = [
      `/api/v1/results?name=${q(patient.family)}`, `/api/v1/results?patient=${ins}`, `/api/v1/results?recipient=${q(doctor.address)}`,
      `/api/v1/results?controlId=${q(patient.family)}&limit=${q(patient.given)}`, `/api/v1/results?state=${q(patient.family)}`,
      `/api/v1/results?since=${q(street)}`, `/api/v1/results?documentId=${ins}&cursor=${q(`${patient.family}:${ins}`)}`,
      `/api/v1/results/${q(patient.family)}`, `/api/v1/results/r-${ins}`, `/api/v1/mails/${q(`${ins}-pat`)}`, `/api/v1/deliveries/${q(doctor.address)}`,
      `/api/v1/deliveries/d-${ins}`, `/api/v1/${q(patient.family)}/${ins}`, `/api/v1/patients/${ins}/close`, `/api/v1/replies?mailbox=${q(doctor.address)}`,
      `/api/v1/dead-letters/${q(patient.family)}/replay`, `/api/v1/audit?actor=${q(patient.family)}&id=${ins}`,
    ];
    const callers: ((url: string, init?: RequestInit) => Promise<Response>)[] = [
      (url, init) => fetch(url, init),
      (url, init) => fetch(url, { ...init, headers: { authorization: `Bearer ${patient.family}.${ins}`, 'x-api-key': `mssgw.k-${ins}.${patient.given}` } }),
      (url, init) => viewer.fetch(url, init),
      (url, init) => operator.fetch(url, init),
    ];
    const bodies: string[] = [];
    const statuses = new Set<number>();
    for (const call of callers) {
      for (const u of urls) {
        for (const method of ['GET', 'POST']) {
          const res = await call(`${base}${u}`, method === 'POST' ? { method, headers: { 'content-type': 'application/json' }, body: `{"mailbox": "${patient.family}", "ins": ${ins}` } : { method });
          statuses.add(res.status);
          const body = await res.text();
          if (res.status >= 400) bodies.push(body);
        }
      }
    }
    expect([...statuses]).toEqual(expect.arrayContaining([401, 403, 404]));
    // A viewer sees identities masked: the replies and DSNs the hostile mails left, the results the bad input made.
    const mailbox = q(config.mailboxes[0]!.address);
    for (const u of [`/api/v1/replies?mailbox=${mailbox}`, `/api/v1/replies?unmatched=true`, '/api/v1/results?limit=50']) {
      const res = await viewer.fetch(`${base}${u}`);
      expect(res.status, u).toBe(200);
      const text = await res.text();
      // The patient's reply, the mail with the attachment, the broken one: listed, masked.
      if (u.includes('mailbox=')) expect((JSON.parse(text) as { replies: unknown[] }).replies.length, text).toBeGreaterThanOrEqual(2);
      bodies.push(text);
    }
    // The answers to bad requests name the rule, never the value sent.
    const echoed = bodies.join('\n').toLowerCase();
    for (const s of SECRETS) expect(echoed, `4xx/5xx bodies: ${s}`).not.toContain(s.toLowerCase());
  }, 120_000);

  it('logs none of it, at debug level', async () => {
    await gateway.stop();
    gateway = undefined as unknown as Gateway;
    const lines = logLines();
    expect(lines.length).toBeGreaterThan(20);
    // The bad input was seen and logged, by reason and id.
    expect(lines.join('\n')).toMatch(/PII-M1-/);
    const leaks = lines.flatMap((line) => SECRETS.filter((s) => line.toLowerCase().includes(s.toLowerCase())).map((s) => `${s} in ${line.slice(0, 400)}`));
    expect(leaks).toEqual([]);
  });

  // A refusal's text may quote the refused value back to its producer in the ACK (MSH-12, MSH-9, a flag, ORC-1,
  // OBX-11, an ED encoding); what is logged and put in the dead-letter headers is loggableReason's: the reason code
  // and where, never the value.
  it('keeps a value quoted in a refusal reason out of the log and the dead-letter headers', () => {
    const found = [...logLines(), JSON.stringify(deadHeaders)].filter((l) => [quoted.family, quoted.ins].some((q) => l.includes(q)));
    expect(found).toEqual([]);
  });
});
