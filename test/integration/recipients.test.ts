import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryStore } from '@mssgw/directory';
import { MllpClient } from '@mssgw/hl7';
import { registry } from '@mssgw/telemetry';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, makeRawLabResult, PATIENTS, type SamplePractitioner } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/directory/Extraction_Correspondance_MSSante_202611260400.txt');
const WHITELIST = path.resolve(import.meta.dirname, '../fixtures/whitelist/listeblanchemssante.xml');

/**
 * The router on the real sandbox with every piece of reference data of its own: the directory imported by the
 * scheduled job (in its child process) from the fixture extraction, the liste blanche from its XML, an opposition
 * list. A raw lab result names practitioners by RPPS only; each ends as a recipient or a recorded refusal.
 */
describe('recipients: directory, liste blanche and patient rules in the router', () => {
  let gateway: Gateway;
  let client: MllpClient;
  let fhir: Server;
  const t = tag();
  const outside: SamplePractitioner = { rpps: '810000000009', family: 'AILLEURS', given: 'Marc' };
  const stranger: SamplePractitioner = { rpps: '810000000077', family: 'INCONNU', given: 'Paul' };
  // Not in the extraction: the FHIR API knows the first, fails for the second.
  const onlyInFhir: SamplePractitioner = { rpps: '810101010101', family: 'FHIR', given: 'Fanny' };
  const fhirFails: SamplePractitioner = { rpps: '810000000066', family: 'PANNE', given: 'Paul' };

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mssgw-opposition-'));
    const opposition = path.join(dir, 'opposition.txt');
    await writeFile(opposition, `# patients who refused electronic sending\n${PATIENTS[1]!.ins}\n`);
    fhir = createServer((req, res) => {
      const id = new URL(req.url ?? '', 'http://x').searchParams.get('identifier') ?? '';
      if (id.endsWith(fhirFails.rpps)) return void res.writeHead(500).end();
      const telecom = [{ system: 'email', value: 'fanny.fhir@cabinet-demo.mssante.test', extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type', valueCoding: { code: 'MSSANTE' } }] }];
      res.end(JSON.stringify({ resourceType: 'Bundle', entry: id.endsWith(onlyInFhir.rpps) ? [{ resource: { resourceType: 'Practitioner', telecom } }] : [] }));
    });
    await new Promise<void>((r) => fhir.listen(0, '127.0.0.1', r));
    const secrets = path.join(dir, 'fhir-key');
    await writeFile(secrets, 'test-key');
    gateway = await startGateway(testConfig('recipients', (c) => {
      c.directory.fhir = {
        baseUrl: `http://127.0.0.1:${(fhir.address() as AddressInfo).port}/fhir/v2`, apiKey: { file: secrets },
        timeoutMs: 2_000, cacheTtlMs: 60_000, cacheSize: 1000, failureThreshold: 50, resetMs: 1_000,
      };
      c.routing.attempts = 2;
      c.routing.backoffMs = 100;
      c.routing.maxPatientMailBytes = 200 * 1024;
      c.mssante.testDomains = [];
      c.mssante.whitelist.location = WHITELIST;
      c.directory.extraction = { location: FIXTURE, refreshIntervalMs: 24 * 3600_000, minRatio: 0.5 };
      c.routing.sources['lab'] = { resultType: 'lab', roles: { lab: ['recipient', 'ordering', 'copy', 'patient'] }, siteStructureIds: ['999999999'] };
      c.routing.patientOpposition = { file: opposition, refreshIntervalMs: 1_000 };
    }), ['router', 'intake']);
    const directory = new DirectoryStore(gateway.ctx.redis, gateway.ctx.config.redis.prefix);
    await waitFor('the initial directory import', () => directory.info(), 30_000);
    client = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await gateway?.stop();
    fhir?.close();
  });

  const outcomes = async (controlId: string, expected: number, message?: string) => {
    const ack = await client.send(message ?? makeRawLabResult({ controlId, patient: controlId.endsWith('B') ? PATIENTS[1]! : { ...PATIENTS[0]!, reliability: 'PROV' }, ordering: DOCTORS[0]!, copies: [DOCTORS[1]!, outside, stranger] }));
    expect(ack.code).toBe('AA');
    const [resultId] = await gateway.ctx.status.resultsByControlId(controlId);
    const result = await waitFor('every recipient recorded', async () => {
      const r = await gateway.ctx.status.getResult(resultId!, { withDeliveries: true });
      return r && r.deliveries.length === expected ? r : undefined;
    });
    return new Map(result.deliveries.map((d) => [d.recipientId ?? d.recipient, d]));
  };

  it('resolves practitioners through the directory, explains each choice, and records every refusal with its reason', async () => {
    const d = await outcomes(`RC-${t}-A`, 5);
    // Alice has a mailbox at her practice and one at the CHU, the sending site: the CHU one is chosen.
    expect(d.get(DOCTORS[0]!.rpps)).toMatchObject({ state: 'queued', recipient: 'a.medecin-un@chu-demo.mssante.test', detail: 'PER mailbox chosen among 2: attached to structure 1999999999, the sending site' });
    expect(d.get(DOCTORS[1]!.rpps)).toMatchObject({ state: 'queued', recipient: 'bruno.medecin-deux@cabinet-demo.mssante.test', detail: 'only PER mailbox in the directory' });
    expect(d.get(outside.rpps)).toMatchObject({ state: 'refused', reason: 'not-whitelisted' });
    expect(d.get(stranger.rpps)).toMatchObject({ state: 'refused', reason: 'no-mailbox' });
    expect([...d.values()].find((x) => x.kind === 'patient')).toMatchObject({ state: 'refused', reason: 'ins-not-qualified' });
  });

  it('asks the FHIR API for a practitioner the extraction does not know', async () => {
    const d = await outcomes(`RC-${t}-F`, 2, makeRawLabResult({ controlId: `RC-${t}-F`, patient: { ...PATIENTS[0]!, reliability: 'PROV' }, ordering: onlyInFhir }));
    expect(d.get(onlyInFhir.rpps)).toMatchObject({ state: 'queued', recipient: 'fanny.fhir@cabinet-demo.mssante.test' });
  });

  it('gives a result whose routing failed on every attempt (directory unavailable) an outcome, not silence', async () => {
    const d = await outcomes(`RC-${t}-X`, 1, makeRawLabResult({ controlId: `RC-${t}-X`, patient: PATIENTS[0]!, ordering: fhirFails }));
    expect([...d.values()][0]).toMatchObject({ state: 'refused', reason: 'routing-failed', detail: expect.stringMatching(/HTTP 500/) as unknown });
  });

  it('refuses a patient mail above the patient size limit, and still sends the professionals\' one', async () => {
    const controlId = `RC-${t}-L`;
    const d = await outcomes(controlId, 2, makeCisisResult({ controlId, patient: PATIENTS[2]!, doctors: [DOCTORS[1]!], toPatient: true, pdfBytes: 300 * 1024 }));
    const byKind = new Map([...d.values()].map((x) => [x.kind, x]));
    expect(byKind.get('patient')).toMatchObject({ state: 'refused', reason: 'too-large', detail: expect.stringMatching(/^the mail would weigh about 0\.\d MB, above the 0\.2 MB limit for patients$/) as unknown });
    expect(byKind.get('professional')).toMatchObject({ state: 'queued', recipient: DOCTORS[1]!.address });
  });

  it('respects the patient opposition list, and counts refusals per reason in the metrics', async () => {
    const d = await outcomes(`RC-${t}-B`, 5);
    expect([...d.values()].find((x) => x.kind === 'patient')).toMatchObject({ state: 'refused', reason: 'patient-opposition' });
    const text = await registry.metrics();
    for (const reason of ['no-mailbox', 'not-whitelisted', 'ins-not-qualified', 'patient-opposition']) {
      expect(text).toMatch(new RegExp(`mssgw_recipients_refused_total\\{reason="${reason}"\\} [1-9]`));
    }
    expect(text).toMatch(/mssgw_reference_data_entries\{data="directory"\} 8/);
    expect(text).toMatch(/mssgw_reference_data_entries\{data="whitelist"\} 3/);
    expect(text).toMatch(/mssgw_reference_data_age_seconds\{data="whitelist"\} \d/);
    // No patient identifier, address or practitioner id in any label.
    expect(text).not.toContain(PATIENTS[1]!.ins);
    expect(text).not.toContain('medecin');
  });
});
