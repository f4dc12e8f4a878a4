import { demoConfig } from '@mssgw/config';
import { contentHashOf, parseResult } from '@mssgw/hl7';
import { buildEml, documentSettings, planResult, renderMail, type RenderedMail } from '@mssgw/mssante';
import type { QueuedResult } from '@mssgw/hl7';
import { resultIdOf } from '@mssgw/queue';
import { policyForSource } from '@mssgw/routing';
import { DOCTORS, makeCisisResult, PATIENTS } from '../test/support/samples.ts';
import { round } from './stats.ts';

export interface ComposeBench {
  results: number;
  mails: number;
  pdfBytes: number;
  cpuMsPerMail: number;
  mailBytes: number;
}

/** The practitioner's mail of a CI-SIS ORU, rendered as the router renders it. */
export async function renderSampleMail(hl7: Buffer): Promise<{ mailId: string; messageId: string; resultId: string; from: string; rendered: RenderedMail }> {
  const config = demoConfig('/nonexistent');
  config.environment = 'test';
  const mailbox = config.mailboxes[0]!;
  const parsed = parseResult(hl7);
  const result: QueuedResult = { ...parsed, documents: parsed.documents.map(({ content: _c, ...d }) => d) };
  const resultId = resultIdOf({ source: 'lab', sendingFacility: result.sendingFacility, controlId: result.controlId, contentSha256: contentHashOf(hl7) });
  const plan = await planResult({
    resultId, result, receivedAt: Date.now(), documents: parsed.documents.map((d) => ({ ref: d, content: d.content })),
    policy: policyForSource(config, 'lab', { allowsDomain: (d, forPatient) => (d === 'patient.mssante.fr' ? forPatient : config.mssante.testDomains.includes(d)) }),
    mailbox: { address: mailbox.address }, productReference: 'BENCH', settings: documentSettings(config.mssante.documents), limits: config.routing,
    versionOf: () => Promise.resolve(1),
  });
  const spec = plan.mails[0]!;
  return { mailId: spec.mailId, messageId: spec.messageId, resultId, from: mailbox.address, rendered: renderMail(spec, plan.content!.contents) };
}

/**
 * The router's and dispatcher's message work for a CI-SIS ORU carrying a CDA with a 40 KB PDF for one practitioner
 * and the patient: routing, the CDA header, the IHE_XDM.ZIP, the mails, and each mail's MIME (what the dispatcher
 * serialises), measured in CPU time of this process (no I/O in the loop).
 */
export async function benchCompose(results = 2_000): Promise<ComposeBench> {
  const config = demoConfig('/nonexistent');
  config.environment = 'test';
  const mailbox = config.mailboxes[0]!;
  const messages = Array.from({ length: 50 }, (_, i) =>
    parseResult(Buffer.from(makeCisisResult({ controlId: `CB-${i}`, patient: PATIENTS[0]!, doctors: [DOCTORS[0]!], toPatient: true, pdfBytes: 40 * 1024 }), 'latin1')));
  const policy = policyForSource(config, 'lab', { allowsDomain: (d, forPatient) => (d === 'patient.mssante.fr' ? forPatient : config.mssante.testDomains.includes(d)) });
  const settings = documentSettings(config.mssante.documents);
  let mails = 0;
  let mailBytes = 0;
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const parsed = messages[i % messages.length]!;
      const result: QueuedResult = { ...parsed, documents: parsed.documents.map(({ content: _c, ...d }) => d) };
      const plan = await planResult({
        resultId: resultIdOf({ source: 'lab', sendingFacility: result.sendingFacility, controlId: result.controlId, contentSha256: String(i % messages.length) }), result, receivedAt: 1_795_700_000_000, documents: parsed.documents.map((d) => ({ ref: d, content: d.content })),
        policy, mailbox: { address: mailbox.address }, productReference: 'BENCH', settings, limits: config.routing, versionOf: () => Promise.resolve(1),
      });
      for (const spec of plan.mails) {
        const eml = buildEml(spec, plan.content!.contents);
        mails++;
        mailBytes = eml.length;
      }
    }
  };
  await run(200); // warm-up
  mails = 0;
  const cpu = process.cpuUsage();
  await run(results);
  const used = process.cpuUsage(cpu);
  return { results, mails, pdfBytes: 40 * 1024, cpuMsPerMail: round((used.user + used.system) / 1000 / mails, 3), mailBytes };
}
