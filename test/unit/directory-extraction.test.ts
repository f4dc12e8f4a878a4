import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EXTRACTION_HEADER, ExtractionFormatError, LineSplitter, MAX_LINE_BYTES, isRejected, readExtraction, readHeader,
  type DirectoryMailbox, type RejectedRow,
} from '@mssgw/directory';

/** A PER row of the extraction's 31 columns. */
const perRow = (address: string, rpps: string) =>
  ['PER', address, '8', rpps, `8${rpps}`, '1', '1750000001', '', 'DR', 'MARTIN', 'Élodie', ...Array<string>(20).fill('')].join('|');

async function read(text: string | Buffer, chunks: number[] = []): Promise<(DirectoryMailbox | RejectedRow)[]> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of chunks) parts.push(bytes.subarray(at, (at += size)));
  parts.push(bytes.subarray(at));
  const out: (DirectoryMailbox | RejectedRow)[] = [];
  for await (const row of readExtraction(Readable.from(parts))) out.push(row);
  return out;
}

const summary = (rows: (DirectoryMailbox | RejectedRow)[]) =>
  rows.map((r) => (isRejected(r) ? `${r.line}:${r.reason}` : r.address));

describe('line splitter', () => {
  const split = (chunks: Buffer[], maxBytes?: number) => {
    const splitter = new LineSplitter(maxBytes);
    const lines: [number, string | undefined][] = [];
    const onLine = (text: string | undefined, line: number) => lines.push([line, text]);
    for (const c of chunks) splitter.push(c, onLine);
    splitter.end(onLine);
    return lines;
  };

  it('ends lines at LF, CRLF and a lone CR, mixed, whatever the chunking (CRLF or a UTF-8 character cut in two)', () => {
    const line = fc.stringMatching(/^[a-zA-Z0-9|éÉ€ ]{0,40}$/);
    const end = fc.constantFrom('\n', '\r\n', '\r');
    fc.assert(
      fc.property(fc.array(fc.tuple(line, end), { minLength: 1, maxLength: 20 }), fc.boolean(), fc.array(fc.nat(60), { maxLength: 10 }), (lines, endsWithEol, cuts) => {
        // A lone CR, then an empty line ended by LF, is written CRLF: one line end, not two.
        fc.pre(lines.every(([, e], i) => e !== '\r' || lines[i + 1]?.[0] !== '' || lines[i + 1]?.[1] !== '\n' || (i + 1 === lines.length - 1 && !endsWithEol)));
        const text = lines.map(([l, e], i) => (i < lines.length - 1 || endsWithEol ? l + e : l)).join('');
        const bytes = Buffer.from(text, 'utf8');
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...at].map((from, i) => bytes.subarray(from, at[i] ?? bytes.length));
        // A last line that is empty and unended is no line at all.
        const expected = lines.map(([l], i) => [i + 1, l] as [number, string]).filter(([, l], i) => i < lines.length - 1 || endsWithEol || l !== '');
        expect(split(chunks)).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('reports a line longer than its bound as undefined, without holding it, and goes on with the next', () => {
    const long = 'x'.repeat(100);
    const bytes = Buffer.from(`short\r\n${long}\r\nnext\n${long}`);
    // In 7-byte chunks the long line is only ever seen in pieces.
    const chunks = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7));
    expect(split(chunks, 50)).toEqual([[1, 'short'], [2, undefined], [3, 'next'], [4, undefined]]);
    expect(split([bytes], 50)).toEqual([[1, 'short'], [2, undefined], [3, 'next'], [4, undefined]]);
  });
});

describe('extraction parser', () => {
  it('reads the header through a UTF-8 BOM: the first column name is matched', async () => {
    // "Adresse BAL" first: a BOM left on it would hide the address column and refuse the file.
    const header = EXTRACTION_HEADER.split('|');
    [header[0], header[1]] = [header[1]!, header[0]!];
    const row = perRow('a@medecin.mssante.fr', '10000000001').split('|');
    [row[0], row[1]] = [row[1]!, row[0]!];
    expect(readHeader(`\uFEFF${header.join('|')}`).index).toMatchObject({ address: 0, type: 1 });
    const rows = await read(`\uFEFF${header.join('|')}\r\n${row.join('|')}\r\n`);
    expect(rows).toEqual([expect.objectContaining({ address: 'a@medecin.mssante.fr', type: 'PER', given: 'Élodie' })]);
  });

  it('takes a BOM cut across two chunks, and a BOM alone on a line before the header', async () => {
    const text = `\uFEFF${EXTRACTION_HEADER}\n${perRow('a@medecin.mssante.fr', '10000000001')}\n`;
    expect(summary(await read(text, [1, 1]))).toEqual(['a@medecin.mssante.fr']);
    expect(summary(await read(`\uFEFF\r\n${EXTRACTION_HEADER}\r\n${perRow('a@medecin.mssante.fr', '10000000001')}\r\n`))).toEqual(['a@medecin.mssante.fr']);
  });

  it('accepts a trailing | on the header, on the rows, on both or on some, and CRLF, LF and CR line ends mixed', async () => {
    const a = perRow('a@medecin.mssante.fr', '10000000001');
    const b = perRow('b@medecin.mssante.fr', '10000000002');
    const c = perRow('c@medecin.mssante.fr', '10000000003');
    for (const header of [EXTRACTION_HEADER, `${EXTRACTION_HEADER}|`]) {
      const rows = await read(`${header}\r\n${a}|\r\n${b}\n${c}|\r`);
      expect(summary(rows)).toEqual(['a@medecin.mssante.fr', 'b@medecin.mssante.fr', 'c@medecin.mssante.fr']);
      // The trailing | is not read as a value of the last column.
      expect(rows[0]).toMatchObject({ practitionerNationalId: '810000000001', family: 'MARTIN' });
    }
  });

  it('rejects a row with too few or too many fields with its line number, blank lines counted, and reads the others', async () => {
    const ok = (n: number) => perRow(`dr${n}@medecin.mssante.fr`, String(10_000_000_000 + n));
    const fields = ok(4).split('|');
    const lines = [
      `\uFEFF${EXTRACTION_HEADER}|`, // 1
      `${ok(1)}|`, // 2
      '', // 3
      `${fields.slice(0, 29).join('|')}|`, // 4: two short, even with its trailing |
      `${ok(5)}|extra|`, // 5: one too many
      `${ok(6)}||`, // 6: two trailing | are one empty column too many
      `${ok(7)}|`, // 7
      fields.slice(0, 30).join('|'), // 8: one short, no trailing |
    ];
    const rows = await read(lines.join('\r\n'));
    expect(summary(rows)).toEqual(['dr1@medecin.mssante.fr', '4:column-count', '5:column-count', '6:column-count', 'dr7@medecin.mssante.fr', '8:column-count']);
    expect((rows[1] as RejectedRow).detail).toBe('30 fields, expected 31 (or 31 and a trailing |)');
    expect((rows[2] as RejectedRow).detail).toBe('33 fields, expected 31 (or 31 and a trailing |)');
    // The detail never carries a value of the row.
    expect(rows.filter(isRejected).map((r) => r.detail).join(' ')).not.toMatch(/medecin|MARTIN|1000000/);
  });

  it('rejects a line longer than the bound by its number, refuses a file whose first line is, and an empty file', async () => {
    const rows = await read(`${EXTRACTION_HEADER}\n${'x'.repeat(MAX_LINE_BYTES + 1)}\n${perRow('a@medecin.mssante.fr', '10000000001')}\n`);
    expect(summary(rows)).toEqual(['2:line-length', 'a@medecin.mssante.fr']);
    await expect(read('x'.repeat(MAX_LINE_BYTES + 1))).rejects.toMatchObject({ name: 'ExtractionFormatError', code: 'header-length' });
    await expect(read('\uFEFF\r\n\r\n')).rejects.toMatchObject({ code: 'empty' });
    await expect(read('<html>maintenance</html>\n')).rejects.toThrow(ExtractionFormatError);
    await expect(read('<html>maintenance</html>\n')).rejects.toMatchObject({ code: 'missing-column' });
  });
});
