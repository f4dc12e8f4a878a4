import { describe, expect, it } from 'vitest';
import { canEnter, dispatchRefusal, DISPATCH_REFUSALS } from '@mssgw/lifecycle';
import { parseOppositionFile, parseOppositionSubject } from '@mssgw/routing';

/** The opposition file's format (issue #25) and the pure decision taken before sending (issues #22, #25). */
describe('opposition file', () => {
  const now = Date.parse('2026-12-01T10:00:00Z');

  it('reads a file of the old format as it did: one id per line, an opposition to mails to the patient', () => {
    const r = parseOppositionFile('# comment\n279035121518989\r\nIPP123  # trailing comment\n\n', now);
    expect(r.entries).toEqual([
      { idType: 'any', patientId: '279035121518989', direction: 'patient', opposedAt: now },
      { idType: 'any', patientId: 'IPP123', direction: 'patient', opposedAt: now },
    ]);
    expect(r).toMatchObject({ legacy: 2, rejected: [] });
  });

  it('reads the new columns: INS or IPP@facility, a direction, a date; rejects bad lines by number only', () => {
    const r = parseOppositionFile([
      'INS:180126511000157 professionals 2026-11-30',
      'IPP:0042@CHU-X;both',
      'ipp:0042',
      'INS:180126511000157 sideways',
      'INS:180126511000157 patient not-a-date',
      'a b c d',
    ].join('\n'), now);
    expect(r.entries).toEqual([
      { idType: 'ins', patientId: '180126511000157', direction: 'professionals', opposedAt: Date.parse('2026-11-30') },
      { idType: 'ipp', patientId: '0042', facility: 'CHU-X', direction: 'patient', opposedAt: now },
      { idType: 'ipp', patientId: '0042', facility: 'CHU-X', direction: 'professionals', opposedAt: now },
    ]);
    expect(r.rejected).toEqual([
      { line: 3, reason: 'identifier' }, { line: 4, reason: 'direction' }, { line: 5, reason: 'date' }, { line: 6, reason: 'columns' },
    ]);
    expect(parseOppositionSubject('IPP:12@')).toBeUndefined();
    expect(parseOppositionSubject('INS:')).toBeUndefined();
  });
});

describe('checks before sending', () => {
  it('refuses by the opposition of the recipient\'s direction first, then by the liste blanche; else sends', () => {
    expect(dispatchRefusal({ kind: 'professional', domainAllowed: true, oppositions: ['patient'] })).toBeUndefined();
    expect(dispatchRefusal({ kind: 'organisation', domainAllowed: true, oppositions: ['professionals'] })?.fields.reason).toBe('professionals-opposition');
    expect(dispatchRefusal({ kind: 'patient', domainAllowed: true, oppositions: ['patient', 'professionals'] })?.fields.reason).toBe('patient-opposition');
    expect(dispatchRefusal({ kind: 'professional', domainAllowed: false, oppositions: [] })).toMatchObject({ state: 'refused', source: 'dispatcher', fields: { reason: 'not-whitelisted' } });
    for (const r of DISPATCH_REFUSALS) expect(typeof r).toBe('string');
    // Allowed from queued (dispatch) and dead-lettered (replay) only.
    expect(canEnter('queued', 'refused') && canEnter('dead-lettered', 'refused')).toBe(true);
    expect(canEnter('submitted', 'refused')).toBe(false);
  });
});
