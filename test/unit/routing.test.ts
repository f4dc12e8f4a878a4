import { describe, expect, it } from 'vitest';
import type { DirectoryMailbox, PractitionerDirectory } from '@mssgw/directory';
import { DirectoryUnavailableError, practitionerKeys } from '@mssgw/directory';
import { parseResult } from '@mssgw/hl7';
import type { QueuedResult } from '@mssgw/hl7';
import { route, type RoutingDecision, type RoutingPolicy } from '@mssgw/routing';
import { DOCTORS, makeCisisResult, makeRawLabResult, PATIENTS, type CisisOptions, type SamplePatient } from '../support/samples.ts';

const ALLOWED = new Set(['cabinet-demo.mssante.test', 'chu-demo.mssante.test']);
const policy: RoutingPolicy = {
  environment: 'test',
  allowsDomain: (d, forPatient) => (d === 'patient.mssante.fr' ? forPatient : ALLOWED.has(d)),
};

/** A directory held in memory, filed under the same keys as the Redis one. */
function directoryOf(mailboxes: DirectoryMailbox[]): PractitionerDirectory & { asked: number } {
  return {
    asked: 0,
    findPractitioner(id, idType) {
      this.asked++;
      const keys = practitionerKeys(id, idType);
      return Promise.resolve(mailboxes.filter((m) => keys.includes(`p:${m.practitionerNationalId}`)));
    },
  };
}

const read = (text: string): QueuedResult => {
  const r = parseResult(Buffer.from(text, 'latin1'));
  return { ...r, documents: r.documents.map(({ content: _c, ...d }) => d) };
};
const cisis = (o: Partial<CisisOptions> & { patient?: SamplePatient }) =>
  read(makeCisisResult({ controlId: 'RT', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!], ...o }));
const raw = (o: Partial<Parameters<typeof makeRawLabResult>[0]> = {}) =>
  read(makeRawLabResult({ controlId: 'RW', patient: PATIENTS[0]!, ordering: DOCTORS[0]!, copies: [DOCTORS[1]!], ...o }));
const reasons = (r: RoutingDecision) => r.refusals.map((x) => x.reason);

const per = (n: number, address: string, extra: Partial<DirectoryMailbox> = {}): DirectoryMailbox => ({
  address, type: 'PER', practitionerNationalId: DOCTORS[n]!.rpps, ...extra,
});

describe('routing: CI-SIS results', () => {
  it('sends to its PRT RCT practitioners and to the patient at <INS>@patient.mssante.fr', async () => {
    const r = await route(cisis({ toPatient: true, replyTo: 'secretariat@chu-demo.mssante.test' }), policy);
    expect(r.recipients.map((x) => [x.kind, x.address])).toEqual([
      ['professional', DOCTORS[0]!.address],
      ['patient', `${PATIENTS[0]!.ins}@patient.mssante.fr`],
    ]);
    expect(r.refusals).toEqual([]);
    expect(r.replyTo).toBe('secretariat@chu-demo.mssante.test');
    expect(r.resultType).toBe('lab');
  });

  it('never addresses a domain outside the liste blanche', async () => {
    const r = await route(cisis({ extraAddresses: ['dr.x@gmail.com'] }), policy);
    expect(r.recipients.map((x) => x.address)).toEqual([DOCTORS[0]!.address]);
    expect(r.refusals).toMatchObject([{ reason: 'not-whitelisted', address: 'dr.x@gmail.com' }]);
  });

  it('keeps patient.mssante.fr for patients: a professional named there is refused', async () => {
    const r = await route(cisis({ toPatient: true, extraAddresses: ['someone.else@patient.mssante.fr'] }), { ...policy, environment: 'demo' });
    expect(reasons(r)).toEqual(['patient-address-mismatch']);
  });

  it('writes to a patient only from a qualified INS', async () => {
    expect(reasons(await route(cisis({ toPatient: true, patient: { ...PATIENTS[0]!, reliability: 'PROV' } }), policy))).toEqual(['ins-not-qualified']);
  });

  it('refuses the INS test range in production, accepts it in test and demo', async () => {
    const result = cisis({ toPatient: true });
    expect(reasons(await route(result, { ...policy, environment: 'production' }))).toEqual(['test-ins-in-production']);
    expect(reasons(await route(result, { ...policy, environment: 'demo' }))).toEqual([]);
  });

  it('refuses a patient address that is not built from the INS of PID-3', async () => {
    const text = makeCisisResult({ controlId: 'RT', patient: PATIENTS[0]!, doctors: [], toPatient: true }).replace(`^^X.400^${PATIENTS[0]!.ins}@`, '^^X.400^123456789012345@');
    expect(reasons(await route(read(text), policy))).toEqual(['patient-address-mismatch']);
  });

  it('keeps the patient out when the producer made the document invisible to the patient', async () => {
    const text = makeCisisResult({ controlId: 'RT', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }) // INVISIBLE_PATIENT=Y, DESTMSSANTEPAT=N
      + `PRT||UC||RCT^Result Copies To^participation|||||||||||^^X.400^${PATIENTS[0]!.ins}@patient.mssante.fr\r`;
    const r = await route(read(text), policy);
    expect(reasons(r)).toEqual(['invisible-to-patient']);
    expect(r.recipients).toHaveLength(1);
  });

  it('respects the patient opposition list, by INS or IPP', async () => {
    const r = await route(cisis({ toPatient: true }), { ...policy, opposes: (p) => p.ins?.value === PATIENTS[0]!.ins });
    expect(reasons(r)).toEqual(['patient-opposition']);
    expect(r.recipients.map((x) => x.kind)).toEqual(['professional']);
  });

  it('follows the MetaDMPMSS flags for professionals: MASQUE_PS, DESTMSSANTEPS', async () => {
    const result = cisis({});
    expect(reasons(await route({ ...result, flags: { ...result.flags, MASQUE_PS: true } }, policy))).toEqual(['masked-to-professionals']);
    expect(reasons(await route({ ...result, flags: { ...result.flags, DESTMSSANTEPS: false } }, policy))).toEqual(['not-requested-by-producer']);
  });

  it('writes to the patient the producer asked for (DESTMSSANTEPAT) even without a PRT, from the INS; refuses without one', async () => {
    const result = cisis({});
    const asked = { ...result, flags: { ...result.flags, DESTMSSANTEPAT: true, INVISIBLE_PATIENT: false } };
    expect((await route(asked, policy)).recipients.map((x) => [x.address, x.origin])).toContainEqual([`${PATIENTS[0]!.ins}@patient.mssante.fr`, 'PID-3']);
    const { ins: _ins, ...noIns } = asked.patient;
    expect(reasons(await route({ ...asked, patient: noIns }, policy))).toEqual(['ins-missing']);
  });

  it('refuses a PRT-15 that is not an e-mail address', async () => {
    expect(reasons(await route(cisis({ extraAddresses: ['secretariat at chu-demo'] }), policy))).toEqual(['invalid-address']);
  });

  it('never lists the same recipient twice', async () => {
    const r = await route(cisis({ doctors: [DOCTORS[0]!, { ...DOCTORS[1]!, address: DOCTORS[0]!.address!.toUpperCase() }] }), policy);
    expect(r.recipients).toHaveLength(1);
  });

  it('records a PRT RCT the source is configured not to serve, with a reason', async () => {
    const r = await route(cisis({}), { ...policy, roles: { lab: ['ordering'] } });
    expect(r.recipients).toEqual([]);
    expect(r.refusals.filter((x) => x.origin === 'PRT').map((x) => x.reason)).toEqual(['role-not-served']);
  });

  it('resolves a PRT RCT that carries an RPPS but no address through the directory', async () => {
    const text = makeCisisResult({ controlId: 'RT', patient: PATIENTS[0]!, doctors: [{ ...DOCTORS[1]!, address: undefined }] });
    const r = await route(read(text), { ...policy, directory: directoryOf([per(1, 'bruno@cabinet-demo.mssante.test')]) });
    expect(r.recipients.map((x) => [x.address, x.origin])).toEqual([['bruno@cabinet-demo.mssante.test', 'PRT']]);
  });
});

describe('routing: raw results through the directory', () => {
  it('explains practitioners that have no MSSanté mailbox', async () => {
    const r = await route(raw(), { ...policy, directory: directoryOf([]) });
    expect(r.recipients).toEqual([]);
    expect(r.refusals.map((x) => [x.reason, x.origin, x.id])).toEqual([
      ['no-mailbox', 'ORC-12', DOCTORS[0]!.rpps],
      ['no-mailbox', 'OBR-28', DOCTORS[1]!.rpps],
    ]);
  });

  it('sends to the ordering provider and the copies, with the choice explained', async () => {
    const directory = directoryOf([per(0, 'alice@cabinet-demo.mssante.test'), per(1, 'bruno@cabinet-demo.mssante.test')]);
    const r = await route(raw(), { ...policy, directory });
    expect(r.recipients.map((x) => [x.address, x.origin, x.choice])).toEqual([
      ['alice@cabinet-demo.mssante.test', 'ORC-12', 'only PER mailbox in the directory'],
      ['bruno@cabinet-demo.mssante.test', 'OBR-28', 'only PER mailbox in the directory'],
    ]);
  });

  it('chooses among several mailboxes: preferred rank, then the sending site, then PER before ORG', async () => {
    const both = [per(0, 'a-org@chu-demo.mssante.test', { type: 'ORG' }), per(0, 'a-per@cabinet-demo.mssante.test', { structureId: '1750000002' })];
    const one = (list: DirectoryMailbox[], site: string[] = []) =>
      route(raw({ copies: [] }), { ...policy, directory: directoryOf(list), siteStructureIds: site }).then((r) => r.recipients[0]!);
    expect(await one(both)).toMatchObject({ address: 'a-per@cabinet-demo.mssante.test', choice: 'PER mailbox chosen among 2: PER before ORG' });
    const atSite = [per(0, 'a-site@chu-demo.mssante.test', { structureId: '1750000001' }), ...both];
    expect(await one(atSite, ['750000001'])).toMatchObject({ address: 'a-site@chu-demo.mssante.test', choice: 'PER mailbox chosen among 3: attached to structure 1750000001, the sending site' });
    const ranked = [per(0, 'a-pref@chu-demo.mssante.test', { type: 'ORG', rank: 1 }), ...atSite];
    expect(await one(ranked, ['750000001'])).toMatchObject({ address: 'a-pref@chu-demo.mssante.test', kind: 'organisation', choice: 'ORG mailbox chosen among 4: preferred mailbox (rank 1)' });
  });

  it('skips directory mailboxes outside the liste blanche, and says so when none is left', async () => {
    const directory = directoryOf([per(0, 'alice@elsewhere.example'), per(0, 'alice@cabinet-demo.mssante.test')]);
    const r = await route(raw({ copies: [] }), { ...policy, directory });
    expect(r.recipients.map((x) => x.address)).toEqual(['alice@cabinet-demo.mssante.test']);
    const none = await route(raw({ copies: [] }), { ...policy, directory: directoryOf([per(0, 'alice@elsewhere.example')]) });
    expect(reasons(none)).toEqual(['not-whitelisted']);
  });

  it('falls back to the source default organisational mailbox when a practitioner has none', async () => {
    const r = await route(raw(), { ...policy, directory: directoryOf([per(0, 'alice@cabinet-demo.mssante.test')]), defaultMailbox: 'secretariat-labo@chu-demo.mssante.test' });
    expect(r.recipients.map((x) => [x.address, x.kind])).toEqual([
      ['alice@cabinet-demo.mssante.test', 'professional'],
      ['secretariat-labo@chu-demo.mssante.test', 'organisation'],
    ]);
    expect(r.recipients[1]!.choice).toMatch(/no directory mailbox for RPPS 810000000002: sent to the source's default mailbox/);
    expect(r.refusals).toEqual([]);
  });

  it('never duplicates a recipient: ordering and copy with one mailbox, or two practitioners defaulting', async () => {
    const r = await route(raw({ copies: [DOCTORS[0]!] }), { ...policy, directory: directoryOf([per(0, 'alice@cabinet-demo.mssante.test')]) });
    expect(r.recipients).toHaveLength(1);
    const d = await route(raw(), { ...policy, directory: directoryOf([]), defaultMailbox: 'secretariat-labo@chu-demo.mssante.test' });
    expect(d.recipients.map((x) => x.address)).toEqual(['secretariat-labo@chu-demo.mssante.test']);
  });

  it('serves the reading physician and the patient only when the source is configured to', async () => {
    const directory = directoryOf([per(0, 'alice@cabinet-demo.mssante.test'), per(2, 'chloe@chu-demo.mssante.test')]);
    const result = raw({ copies: [], interpreter: DOCTORS[2]! });
    const plain = await route(result, { ...policy, directory });
    expect(plain.recipients.map((x) => x.address)).toEqual(['alice@cabinet-demo.mssante.test']);
    const wide = await route(result, { ...policy, directory, resultType: 'lab', roles: { lab: ['ordering', 'interpreter', 'patient'] } });
    expect(wide.recipients.map((x) => [x.address, x.origin])).toEqual([
      ['alice@cabinet-demo.mssante.test', 'ORC-12'],
      ['chloe@chu-demo.mssante.test', 'OBR-32'],
      [`${PATIENTS[0]!.ins}@patient.mssante.fr`, 'PID-3'],
    ]);
  });

  it('does not write to a patient whose INS is missing or unqualified, even when configured', async () => {
    const roles = { lab: ['ordering' as const, 'patient' as const] };
    const unqualified = await route(raw({ patient: { ...PATIENTS[0]!, reliability: 'PROV' } }), { ...policy, resultType: 'lab', roles, directory: directoryOf([]) });
    expect(reasons(unqualified)).toContain('ins-not-qualified');
  });

  it('lets a directory outage fail the routing (to be retried), not refuse the recipient', async () => {
    const down: PractitionerDirectory = { findPractitioner: () => Promise.reject(new DirectoryUnavailableError('circuit open')) };
    await expect(route(raw(), { ...policy, directory: down })).rejects.toThrow(DirectoryUnavailableError);
  });
});
