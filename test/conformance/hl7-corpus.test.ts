import { describe, expect, it } from 'vitest';
import { checkHl7Corpus } from './hl7-corpus.ts';

describe('HL7v2 corpora (test/corpora/hl7v2-*) against their expected answers', () => {
  const reports = checkHl7Corpus();
  const by = (v: string) => reports.filter((r) => r.verdict === v).map((r) => r.file.split('/')[1]);

  it('reads every file with the expected values, or refuses it cleanly where the answers mark it invalid', () => {
    expect(reports.length).toBe(46);
    expect(reports.filter((r) => r.verdict === 'mismatch').map((r) => `${r.file}: ${r.problems.join('; ')}`)).toEqual([]);
    expect(reports.reduce((n, r) => n + r.compared, 0)).toBeGreaterThan(3600);
  });

  it('refuses the files whose document Base64 is invalid, and repairs the segment dcm4che broke at 4096 bytes', () => {
    // The report itself cut short or unpadded cannot be told from a truncated one: still refused.
    expect(by('rejected-invalid')).toEqual(['mdm-t02-crbio-v1.2.hl7', 'oru-crbio-v1.2.hl7', 'oru-teleradiologie-flux3-draft.hl7']);
    expect(by('repaired')).toEqual(['ORU_R01-PDF.hl7']);
    expect(by('not-a-result')).toEqual(['ack-oru-v2.1.hl7', 'zam-z01-reception-dmp.hl7', 'zam-z02-reception-mss.hl7', 'zam-z03-lecture-mss.hl7', 'MDM-T01-01.hl7']);
  });

  it('reads the ANS results whose only invalid Base64 is the optional mail body, with a warning at that OBX', () => {
    expect(by('warned')).toEqual(['oru-crbio-segur-init-n3-base64-full.hl7', 'oru-crbio-v2.1-del-n1-n3.hl7', 'oru-crbio-v2.1-init-n1-n3.hl7', 'oru-crbio-v2.1-rplc-n1-n3.hl7']);
    for (const r of reports.filter((x) => x.verdict === 'warned')) expect(r.warnings).toEqual(['CORPSMAIL_BASE64']);
  });

  it('takes the results whose report OBX is empty from their other OBX, and names the rule of each refusal by policy', () => {
    const warned = reports.filter((r) => r.warnings.includes('ED_EMPTY')).map((r) => r.file.split('/')[1]);
    expect(warned).toEqual(['MDM-T02-01.hl7', 'ORU-R01-01.hl7']);
    expect(reports.filter((r) => r.policy).map((r) => [r.file.split('/')[1], r.policy!.split(' ')[0]])).toEqual([
      ['mdm-t04-crimagerie-v2.0-del-n1.hl7', 'FLAG_COMBINATION'],
      ['mdm-t10-crimagerie-v2.0-rplc-n1.hl7', 'FLAG_COMBINATION'],
    ]);
  });

  it('checks the PDFs nested in the ANS CDA documents', () => {
    const full = reports.find((r) => r.file.endsWith('mdm-t02-crimagerie-v2.1-init-n1-base64-full.hl7'))!;
    expect(full.verdict).toBe('match');
    expect(full.compared).toBeGreaterThanOrEqual(12);
  });
});
