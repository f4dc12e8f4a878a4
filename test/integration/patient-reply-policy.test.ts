import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mailboxFiles, tag, testConfig, waitFor } from '../support/env.ts';

/** The patient's mail of a result, as the sandbox operator stored it (found by its Message-ID). */
async function patientMail(gateway: Gateway, controlId: string): Promise<string> {
  const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
  await c.connect();
  expect((await c.send(makeCisisResult({ controlId, patient: PATIENTS[1]!, doctors: [DOCTORS[0]!], toPatient: true }))).code).toBe('AA');
  await c.close();
  const delivery = await waitFor('the patient\'s mail submitted', async () => {
    const [id] = await gateway.ctx.status.resultsByControlId(controlId);
    const d = id ? (await gateway.ctx.status.getResult(id))?.deliveries.find((x) => x.kind === 'patient') : undefined;
    return d?.state === 'submitted' || d?.state === 'delivered' ? d : undefined;
  });
  return waitFor('the mail in the patient\'s mailbox', () => Promise.resolve(
    mailboxFiles(`${PATIENTS[1]!.ins}@patient.mssante.fr`).map((b) => b.toString('latin1')).find((m) => m.includes(delivery.messageId!)),
  ));
}

const headerOf = (mail: string, name: string) => new RegExp(`^${name}: *(.*)$`, 'im').exec(mail.slice(0, mail.indexOf('\r\n\r\n')))?.[1];

describe('a sending mailbox\'s patient-reply policy, on the sandbox operator', () => {
  let gateway: Gateway | undefined;
  afterEach(async () => {
    await gateway?.stop();
    gateway = undefined;
  });
  const start = async (replyTo: string) => {
    const config: GatewayConfig = testConfig('reply-policy', (c) => {
      c.mailboxes = [{ ...c.mailboxes[0]!, patientReplies: { replyTo } }];
    });
    gateway = await startGateway(config, ['intake', 'router', 'dispatcher']);
  };

  it('sets the staffed mailbox as Reply-To and leaves the conversation open when it is in the MSSanté space', async () => {
    await start('secretariat-labo@chu-demo.mssante.test');
    const mail = await patientMail(gateway!, `RP-OPEN-${tag()}`);
    expect(headerOf(mail, 'Reply-To')).toMatch(/secretariat-labo@chu-demo\.mssante\.test/);
    expect(headerOf(mail, 'X-MSS-MES')).toBeUndefined();
  });

  it('closes the conversation instead when the reply-to address is outside the liste blanche', async () => {
    await start('accueil@hopital-hors-liste.example');
    const mail = await patientMail(gateway!, `RP-OUT-${tag()}`);
    expect(headerOf(mail, 'Reply-To')).toBeUndefined();
    expect(headerOf(mail, 'X-MSS-MES')).toBe('FIN');
  });
});
