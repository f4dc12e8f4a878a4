// The result search without a server: the name key, the cursor, the statement's two shapes, and the API's reading of
// its query string (dates, refusals that name the parameter and never its value).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSearch, decodeCursor, encodeCursor, patientSearchKey, searchKey } from '@mssgw/store';
import { instantOf, parseSearch, unknownParameters } from '../../services/api/src/search.ts';

describe('the name key', () => {
  it('drops case, accents, ligatures and punctuation', () => {
    expect(searchKey('ESSAI-NOËL')).toBe('essai noel');
    expect(searchKey('Élodie')).toBe('elodie');
    expect(searchKey("  D'ALMEIDA--da  SILVA ")).toBe('d almeida da silva');
    expect(searchKey('ŒUVRARD Lætitia')).toBe('oeuvrard laetitia');
    expect(searchKey('Müller Strauß Øster Łukasz')).toBe('muller strauss oster lukasz');
    expect(searchKey('Ｍａｒｔｉｎ')).toBe('martin'); // full-width letters (NFKD)
    expect(searchKey('--')).toBe('');
    expect(patientSearchKey('ESSAI-NOËL', 'ÉLODIE')).toBe('essai noel elodie');
    expect(patientSearchKey('', '')).toBeNull();
    expect(patientSearchKey(undefined, undefined)).toBeNull();
  });

  it('is letters, digits and single spaces only (never a LIKE wildcard), and the same once applied twice', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
      const key = searchKey(s);
      expect(key).toMatch(/^(?:[\p{L}\p{N}]+(?: [\p{L}\p{N}]+)*)?$/u);
      expect(key).not.toMatch(/[%_\\]/);
      expect(searchKey(key)).toBe(key);
    }));
  });
});

describe('the cursor', () => {
  it('comes back as it went, and anything else is refused', () => {
    const c = { atMicros: '1795681800123456', id: '42' };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    for (const bad of ['', 'not a cursor!', Buffer.from('1795681800123456').toString('base64url'), Buffer.from("1.2'; drop table results").toString('base64url'), 'A'.repeat(65)]) {
      expect(decodeCursor(bad)).toBeUndefined();
    }
  });
});

describe('the statement', () => {
  it('reads the results newest first when no filter is on the recipients', () => {
    const { text, values } = buildSearch({ patientIns: '294082A10000142', name: 'Essai-Noël', source: 'lab', documentCode: '11502-2', from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', limit: 50 });
    expect(text).toMatch(/from results r\n/);
    expect(text).not.toMatch(/deliveries d join/);
    expect(text).toMatch(/order by r\.received_at desc, r\.id desc/);
    // The name is searched by its key; every value is a parameter, the page one row longer than asked.
    expect(values).toEqual(['294082A10000142', 'essai noel%', 'lab', '11502-2', '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', 51]);
    expect(Math.max(...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))).toBe(values.length);
  });

  it('reads the recipients in the same order, each result once, when a state or a recipient is asked', () => {
    const { text, values } = buildSearch({ recipient: 'Dr.X@Cabinet.MSSante.fr', state: 'failed', from: '2026-11-01T00:00:00Z', after: { atMicros: '1795681800123456', id: '7' }, limit: 10 });
    expect(text).toMatch(/from deliveries d join results r on r\.id = d\.result_row/);
    expect(text).toMatch(/select distinct on \(d\.received_at, d\.result_row\)/);
    expect(text).toMatch(/order by d\.received_at desc, d\.result_row desc/);
    // Both conditions on the same recipient; the dates and the cursor on its copy of the result's place.
    expect(text).toMatch(/lower\(d\.recipient\) = lower\(\$1\)\n\s+and d\.state = \$2/);
    expect(text).toMatch(/d\.received_at >= \$3::timestamptz/);
    expect(text).toMatch(/\(d\.received_at, d\.result_row\) < \(timestamptz 'epoch' \+ \$4::bigint \* interval '1 microsecond', \$5::bigint\)/);
    expect(values).toEqual(['Dr.X@Cabinet.MSSante.fr', 'failed', '2026-11-01T00:00:00Z', '1795681800123456', '7', 11]);
  });
});

describe('the query string', () => {
  it('takes a date alone as a UTC day that `to` includes, and a date-time only with its zone', () => {
    expect(instantOf('2026-11-26', false)).toBe('2026-11-26T00:00:00.000Z');
    expect(instantOf('2026-11-26', true)).toBe('2026-11-27T00:00:00.000Z');
    expect(instantOf('2026-12-31', true)).toBe('2027-01-01T00:00:00.000Z');
    expect(instantOf('2028-02-29', false)).toBe('2028-02-29T00:00:00.000Z');
    expect(instantOf('2026-11-26T10:30:00.123456+01:00', false)).toBe('2026-11-26T10:30:00.123456+01:00');
    expect(instantOf('2026-11-26T09:30Z', true)).toBe('2026-11-26T09:30Z');
    for (const bad of ['2026-02-29', '2026-13-01', '2026-11-31', '2026-11-26T09:30', '2026-11-26T24:00:00Z', '2026-11-26T09:60Z', '2026-11-26 09:30Z', '26/11/2026', 'yesterday', '2026-11-26T09:30:00+25:00']) {
      expect(instantOf(bad, false), bad).toBeUndefined();
    }
  });

  it('gives a search with its defaults, or a refusal that names the parameter and not its value', () => {
    expect(parseSearch({})).toEqual({ limit: 50 });
    expect(parseSearch({ patient: '294082A10000142', name: 'Noël', documentType: '11502-2', state: 'failed', from: '2026-11-26', to: '2026-11-26', limit: 10 })).toEqual({
      patientIns: '294082A10000142', name: 'Noël', documentCode: '11502-2', state: 'failed', from: '2026-11-26T00:00:00.000Z', to: '2026-11-27T00:00:00.000Z', limit: 10,
    });
    const refusals: [Parameters<typeof parseSearch>[0], RegExp][] = [
      [{ name: ' -- ' }, /^name must have a letter or a digit$/],
      [{ from: '2031-02-30' }, /^from must be an ISO 8601 date/],
      [{ to: '2031-05-04T08:15' }, /^to must be an ISO 8601 date/],
      [{ from: '2031-05-05', to: '2031-05-04' }, /^from must be before to$/],
      [{ from: '2031-05-04T10:00:00+01:00', to: '2031-05-04T09:00:00Z' }, /^from must be before to$/],
      [{ cursor: 'not-ours' }, /^cursor is not one this API gave$/],
    ];
    for (const [q, reason] of refusals) {
      const r = parseSearch(q);
      const refused = 'refused' in r ? r.refused : '';
      expect(refused, JSON.stringify(q)).toMatch(reason);
      for (const v of Object.values(q)) expect(refused).not.toContain(v);
    }
    // A name with letters is a search, whatever else it has (its key keeps only the letters).
    expect(parseSearch({ name: "'-- ÉLODIE" })).toEqual({ name: "'-- ÉLODIE", limit: 50 });
  });

  it('names the parameters it does not know', () => {
    expect(unknownParameters('/api/v1/results?patient=1&patien=2&limit=3&patien=4&x')).toEqual(['patien', 'x']);
    expect(unknownParameters('/api/v1/results')).toEqual([]);
  });
});
