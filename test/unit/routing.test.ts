import { describe, expect, it } from 'vitest';
import { parseResult } from '@mssgw/hl7';
import type { QueuedResult } from '@mssgw/queue';
import { route, type RoutingPolicy } from '@mssgw/routing';
import { DOCTORS, makeCisisResult, makeRawLabResult, PATIENTS, type CisisOptions, type SamplePatient } from '../support/samples.ts';

const policy: RoutingPolicy = { environment: 'test', whitelistDomains: ['cabinet-demo.mssante.test', 'chu-demo.mssante.test', 'patient.mssante.fr'] };
const read = (text: string): QueuedResult => {
  const r = parseResult(Buffer.from(text, 'latin1'));
  return { ...r, documents: r.documents.map(({ content: _c, ...d }) => d) };
};
const cisis = (o: Partial<CisisOptions> & { patient?: SamplePatient }) =>
  read(makeCisisResult({ controlId: 'RT', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!], ...o }));
const reasons = (r: ReturnType<typeof route>) => r.refusals.map((x) => x.reason);

describe('routing', () => {
  it('sends a CI-SIS result to its PRT RCT practitioners and to the patient at <INS>@patient.mssante.fr', () => {
    const r = route(cisis({ toPatient: true, replyTo: 'secretariat@chu-demo.mssante.test' }), policy);
    expect(r.recipients.map((x) => [x.kind, x.address])).toEqual([
      ['professional', DOCTORS[0]!.address],
      ['patient', `${PATIENTS[0]!.ins}@patient.mssante.fr`],
    ]);
    expect(r.refusals).toEqual([]);
    expect(r.replyTo).toBe('secretariat@chu-demo.mssante.test');
  });

  it('never addresses a domain outside the liste blanche', () => {
    const r = route(cisis({ extraAddresses: ['dr.x@gmail.com'] }), policy);
    expect(r.recipients.map((x) => x.address)).toEqual([DOCTORS[0]!.address]);
    expect(r.refusals).toMatchObject([{ reason: 'not-whitelisted', address: 'dr.x@gmail.com' }]);
  });

  it('writes to a patient only from a qualified INS', () => {
    expect(reasons(route(cisis({ toPatient: true, patient: { ...PATIENTS[0]!, reliability: 'PROV' } }), policy))).toEqual(['ins-not-qualified']);
  });

  it('refuses the INS test range in production, accepts it in test and demo', () => {
    const result = cisis({ toPatient: true });
    expect(reasons(route(result, { ...policy, environment: 'production' }))).toEqual(['test-ins-in-production']);
    expect(reasons(route(result, { ...policy, environment: 'demo' }))).toEqual([]);
  });

  it('refuses a patient address that is not built from the INS of PID-3', () => {
    const text = makeCisisResult({ controlId: 'RT', patient: PATIENTS[0]!, doctors: [], toPatient: true }).replace(`^^X.400^${PATIENTS[0]!.ins}@`, '^^X.400^123456789012345@');
    expect(reasons(route(read(text), policy))).toEqual(['patient-address-mismatch']);
  });

  it('keeps the patient out when the producer made the document invisible to the patient', () => {
    const text = makeCisisResult({ controlId: 'RT', patient: PATIENTS[0]!, doctors: [DOCTORS[0]!] }) // INVISIBLE_PATIENT=Y, DESTMSSANTEPAT=N
      + `PRT||UC||RCT^Result Copies To^participation|||||||||||^^X.400^${PATIENTS[0]!.ins}@patient.mssante.fr\r`;
    const r = route(read(text), policy);
    expect(reasons(r)).toEqual(['invisible-to-patient']);
    expect(r.recipients).toHaveLength(1);
  });

  it('never lists the same recipient twice', () => {
    const r = route(cisis({ doctors: [DOCTORS[0]!, { ...DOCTORS[1]!, address: DOCTORS[0]!.address!.toUpperCase() }] }), policy);
    expect(r.recipients).toHaveLength(1);
  });

  it('explains raw-result practitioners that have no MSSanté address', () => {
    const r = route(read(makeRawLabResult({ controlId: 'RW', patient: PATIENTS[0]!, ordering: DOCTORS[0]!, copies: [DOCTORS[1]!] })), policy);
    expect(r.recipients).toEqual([]);
    expect(r.refusals.map((x) => [x.reason, x.origin, x.id])).toEqual([
      ['no-mailbox', 'ORC-12', DOCTORS[0]!.rpps],
      ['no-mailbox', 'OBR-28', DOCTORS[1]!.rpps],
    ]);
  });
});
