import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { buildAck, decodeHl7, Er7Message, frame, MllpClient, MllpDecoder, readHeader } from '@mssgw/hl7';
import type { StatusEventV1 } from '@mssgw/feedback';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

/** The producer's side: an MLLP endpoint that takes ZAM acknowledgements and answers AA. */
async function producerEndpoint() {
  const received: Er7Message[] = [];
  const server = net.createServer((socket) => {
    const d = new MllpDecoder(1 << 20);
    socket.on('data', (chunk: Buffer) => {
      for (const e of d.push(chunk)) {
        if (e.type !== 'message') continue;
        const msg = new Er7Message(decodeHl7(e.payload).text);
        received.push(msg);
        socket.write(frame(buildAck(readHeader(msg), 'AA')));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { received, port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('feedback to the producer: ZAM acknowledgements, Kafka status events, read receipts, timeouts', () => {
  const t = tag();
  let gateway: Gateway;
  let config: GatewayConfig;
  let producer: Awaited<ReturnType<typeof producerEndpoint>>;
  const kafka = new Kafka({ clientId: 'mssgw-test', brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
  const ok = { ...DOCTORS[0]!, address: `fb-${t}@cabinet-demo.mssante.test` };
  const unknown = { ...DOCTORS[1]!, address: `unknown-fb-${t}@cabinet-demo.mssante.test` };
  const silent = { ...DOCTORS[2]!, address: `silent-${t}@cabinet-demo.mssante.test` };
  const outside = `dr.x-${t}@gmail.com`;
  const controlId = `FB-${t}`;
  let resultId = '';

  beforeAll(async () => {
    producer = await producerEndpoint();
    config = testConfig('feedback', (c) => {
      c.kafka.enabled = true;
      c.feedback.zamEndpoints = [{ source: 'lab', host: '127.0.0.1', port: producer.port }];
      c.receipts.confirmationTimeoutMs = 3_000;
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [config.kafka.intakeTopics[0]!, config.kafka.deadLetterTopic, config.kafka.statusTopic].map((topic) => ({ topic })) });
    await admin.disconnect();
    gateway = await startGateway(config);
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    expect((await c.send(makeCisisResult({ controlId, patient: PATIENTS[1]!, doctors: [ok, unknown, silent], extraAddresses: [outside], readReceipt: true }))).code).toBe('AA');
    await c.close();
    resultId = (await gateway.ctx.status.resultsByControlId(controlId))[0]!;
  });
  afterAll(async () => {
    await gateway?.stop();
    await producer?.close();
  });

  const stateOf = async (address: string) => (await gateway.ctx.status.getResult(resultId))?.deliveries.find((d) => d.recipient === address);

  it('sends ZAM^Z02 to the producer: Y for the delivered recipient, N with an ERR for the bounced and the refused ones', async () => {
    await waitFor('both DSNs', async () => {
      await gateway.receipts!.sweep();
      return (await stateOf(ok.address))?.state === 'delivered' && (await stateOf(unknown.address))?.state === 'failed';
    });
    await gateway.feedback!.drain();
    const z02 = await waitFor('three ZAM^Z02', () => Promise.resolve(producer.received.filter((m) => Er7Message.raw(m.first('MSH'), 9) === 'ZAM^Z02^ZAM_Z01').length >= 3 ? producer.received : undefined));
    const byRecipient = new Map(z02.map((m) => [m.get(m.all('OBX')[1], 5, 4), m]));
    const good = byRecipient.get(ok.address)!;
    expect(good.get(good.first('OBX'), 3)).toBe('ACK_RECEPTION_MSS');
    expect([good.get(good.first('OBX'), 5), Er7Message.raw(good.first('OBX'), 4)]).toEqual(['Y', controlId]);
    expect(Er7Message.raw(good.all('OBX')[1], 4)).toBe(ok.rpps);
    expect([good.get(good.first('MSH'), 5), good.get(good.first('MSH'), 6)]).toEqual(['SIL-DEMO', 'CHU-DEMO']);
    const bad = byRecipient.get(unknown.address)!;
    expect(bad.get(bad.first('OBX'), 5)).toBe('N');
    expect(bad.get(bad.first('ERR'), 3)).toBe('207');
    expect(bad.get(bad.first('ERR'), 8)).toBe('5.1.1');
    // A recipient the router refused never receives the result: the producer hears it as a negative reception.
    const refused = byRecipient.get(outside)!;
    expect(refused.get(refused.first('OBX'), 5)).toBe('N');
    expect(refused.get(refused.first('ERR'), 8)).toBe('not-whitelisted');
  });

  it('records a read receipt (MDN) as displayed and sends ZAM^Z03', async () => {
    const delivered = (await stateOf(ok.address))!;
    const boundary = `mdn-${t}`;
    const mdn = [
      `From: ${ok.address}`, `To: ${config.mailboxes[0]!.address}`, `Subject: Lu : ${controlId}`, `Message-ID: <mdn-${t}@cabinet-demo.mssante.test>`,
      `In-Reply-To: ${delivered.messageId}`, 'MIME-Version: 1.0', `Content-Type: multipart/report; report-type=disposition-notification; boundary="${boundary}"`, '',
      `--${boundary}`, 'Content-Type: text/plain; charset=utf-8', '', 'Votre message a été affiché.', '',
      `--${boundary}`, 'Content-Type: message/disposition-notification', '',
      'Reporting-UA: cabinet-demo; logiciel-medecin', `Original-Recipient: rfc822;${ok.address}`, `Final-Recipient: rfc822;${ok.address}`,
      `Original-Message-ID: ${delivered.messageId}`, 'Disposition: manual-action/MDN-sent-manually; displayed', '', `--${boundary}--`, '',
    ].join('\r\n');
    await nodemailer.createTransport({ host: '127.0.0.1', port: 10025, ignoreTLS: true }).sendMail({
      envelope: { from: ok.address, to: config.mailboxes[0]!.address }, raw: mdn,
    });
    await waitFor('displayed', async () => {
      await gateway.receipts!.sweep();
      return (await stateOf(ok.address))?.state === 'displayed';
    });
    const { metrics } = await import('@mssgw/telemetry');
    expect((await metrics.dsnToMdn.get()).values.find((v) => v.metricName === 'mssgw_dsn_to_mdn_seconds_count')?.value).toBeGreaterThanOrEqual(1);
    expect((await metrics.imapReaderLag.get()).values.find((v) => v.metricName === 'mssgw_imap_reader_lag_seconds_count')?.value).toBeGreaterThanOrEqual(1);
    await gateway.feedback!.drain();
    const z03 = await waitFor('ZAM^Z03', () => Promise.resolve(producer.received.find((m) => Er7Message.raw(m.first('MSH'), 9) === 'ZAM^Z03^ZAM_Z01')));
    expect([z03.get(z03.first('OBX'), 3), z03.get(z03.first('OBX'), 5), z03.get(z03.all('OBX')[1], 3)]).toEqual(['ACK_LECTURE_MSS', 'Y', 'LECTEUR_MSS']);
  });

  it('turns a recipient the operator never reports on into unconfirmed after the timeout', async () => {
    const d = await waitFor('unconfirmed', async () => {
      const s = await stateOf(silent.address);
      return s?.state === 'unconfirmed' ? s : undefined;
    }, 20_000);
    expect(d.reason).toBe('no-final-dsn');
    const history = (await gateway.ctx.status.history(d.deliveryId)).filter((h) => h.applied);
    expect(history.map((h) => h.state)).toEqual(['queued', 'submitted', 'unconfirmed']);
    // Timed from the SMTP acceptance: not before the configured 3 s.
    expect(history[2]!.at - history[1]!.at).toBeGreaterThanOrEqual(3_000);
  });

  it('publishes every state change of every recipient on the status topic', async () => {
    await gateway.feedback!.drain();
    const consumer = kafka.consumer({ groupId: `status-${t}` });
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.statusTopic, fromBeginning: true });
    const events: StatusEventV1[] = [];
    void consumer.run({ eachMessage: ({ message }) => Promise.resolve(void events.push(JSON.parse(message.value!.toString()) as StatusEventV1)) });
    await waitFor('the status events', () => Promise.resolve(events.filter((e) => e.final).length >= 3), 20_000);
    await consumer.disconnect();
    const seq = (a: string) => events.filter((e) => e.recipient === a).map((e) => e.state);
    expect(seq(ok.address)).toEqual(['queued', 'submitted', 'delivered', 'displayed']);
    expect(seq(unknown.address)).toEqual(['queued', 'submitted', 'failed']);
    expect(seq(silent.address)).toEqual(['queued', 'submitted', 'unconfirmed']);
    expect(events.filter((e) => e.recipient === outside)).toMatchObject([{ state: 'refused', final: true, reason: 'not-whitelisted' }]);
    expect(events.find((e) => e.state === 'failed')).toMatchObject({ schema: 'mssgw.status.v1', controlId, final: true, dsnStatus: '5.1.1', previousState: 'submitted' });
  });
});
