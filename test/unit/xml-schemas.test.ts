import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMetadata, readCdaHeader } from '@mssgw/mssante';
import { DOCTORS, makeCda, makePdf, PATIENTS } from '../support/samples.ts';

const SCHEMAS = path.resolve(import.meta.dirname, '../schemas');

/** xmllint against an XSD; the document on standard input. */
function validate(xsd: string, xml: string | Buffer): { ok: boolean; errors: string } {
  const r = spawnSync('xmllint', ['--noout', '--schema', path.join(SCHEMAS, xsd), '-'], { input: xml, encoding: 'utf8' });
  return { ok: r.status === 0, errors: r.stderr.split('\n').filter((l) => l && !l.includes('Skipping import') && !l.endsWith('validates')).join('\n') };
}

describe('generated XML against the schemas it carries (test/schemas) (xmllint)', () => {
  const cda = makeCda({ patient: PATIENTS[0]!, author: DOCTORS[0]!, code: '11502-2', title: "CR d'examens biologiques", documentId: 'DOC-X', effectiveTime: '20261126093000', pdf: makePdf(['Compte rendu']) });

  it('produces METADATA.XML that is a valid ebRS 3.0 SubmitObjectsRequest, for an initial send and a replacement', () => {
    for (const action of [undefined, 'C' as const, 'D' as const]) {
      const xml = buildMetadata({
        patient: { ins: PATIENTS[0]!.ins, oid: '1.2.250.1.213.1.4.10' }, documents: [{ cda, header: readCdaHeader(cda) }],
        senderName: 'CHU Demo & Cie <Labo>', senderAddress: 'labo-noreply@chu-demo.mssante.test', sourceOid: '1.2.250.1.999.1.1',
        submissionSetUid: '2.25.42', submissionTime: new Date('2026-11-26T09:30:00Z'), ...(action ? { action } : {}),
        defaults: { facilityType: { code: 'SA01', displayName: 'Etablissement public de santé', codingScheme: '1.2.250.1.71.4.2.4' }, practiceSetting: { code: 'ETABLISSEMENT', displayName: 'Etablissement de santé', codingScheme: '1.2.250.1.213.1.1.4.9' } },
      });
      const v = validate('ebrim/ebRS/lcm.xsd', xml);
      expect(v.errors).toBe('');
      expect(v.ok).toBe(true);
    }
  });

  it('builds test CDA documents that the ANS CDA schema accepts (the fixtures the gateway is tested with)', () => {
    const v = validate('cda/CDA_extended.xsd', cda);
    expect(v.errors).toBe('');
    expect(v.ok).toBe(true);
  });

  it('notices an invalid document (the check can fail)', () => {
    const v = validate('ebrim/ebRS/lcm.xsd', '<SubmitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"><Bogus/></SubmitObjectsRequest>');
    expect(v.ok).toBe(false);
  });
});
