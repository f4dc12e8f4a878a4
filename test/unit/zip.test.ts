import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { constants, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildZip } from '../../libs/mssante/src/zip.ts';
import { unzip } from '../support/xdm-rules.ts';

describe('ZIP writer (IHE_XDM.ZIP)', () => {
  const entries = [
    { name: 'README.TXT', content: Buffer.from('Lisez-moi\r\n'.repeat(50), 'utf8') },
    { name: 'IHE_XDM/SUBSET01/DOC0001.XML', content: Buffer.from(`<ClinicalDocument>${'<x>é€Œ</x>'.repeat(2000)}</ClinicalDocument>`, 'utf8') },
    { name: 'IHE_XDM/SUBSET01/RANDOM.BIN', content: randomBytes(5000) }, // does not compress: stored
    { name: 'VIDE.TXT', content: Buffer.alloc(0) },
  ];
  const at = new Date(2026, 10, 26, 14, 37, 58);
  const zip = buildZip(entries, at);

  it('reads back entry for entry, in order, with the same bytes', async () => {
    const read = await unzip(zip);
    expect([...read.keys()]).toEqual(entries.map((e) => e.name));
    for (const e of entries) expect(read.get(e.name)!.equals(e.content)).toBe(true);
  });

  it('passes Info-ZIP\'s integrity test (CRC-32 of every entry) and lists deflated and stored entries with their date', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-zip-'));
    const file = path.join(dir, 'IHE_XDM.ZIP');
    writeFileSync(file, zip);
    expect(execFileSync('unzip', ['-t', file]).toString()).toMatch(/No errors detected/);
    const listing = execFileSync('zipinfo', ['-T', file]).toString();
    expect(listing).toMatch(/defN 20261126\.143758 README\.TXT/);
    expect(listing).toMatch(/stor 20261126\.143758 IHE_XDM\/SUBSET01\/RANDOM\.BIN/);
  });

  it('entropy-codes only a CDA that is mostly Base64 (an embedded PDF), and keeps full deflate for XML', async () => {
    const pdf = randomBytes(60_000).toString('base64').replace(/.{76}/g, '$&\n');
    const withPdf = Buffer.from(`<ClinicalDocument><nonXMLBody><text mediaType="application/pdf" representation="B64">${pdf}</text></nonXMLBody></ClinicalDocument>`);
    const structured = Buffer.from(`<ClinicalDocument>${Array.from({ length: 1500 }, (_, i) => `<observation><code code="${1000 + i}-${i % 9}"/><value value="${(i * 7.3).toFixed(1)}" unit="mmol/L"/></observation>`).join('')}</ClinicalDocument>`);
    const archive = buildZip([{ name: 'PDF.XML', content: withPdf }, { name: 'N3.XML', content: structured }], at);
    // Compressed size: 4 bytes at offset 18 of the entry's local header, which sits right before its name.
    const compressed = (name: string) => archive.readUInt32LE(archive.indexOf(name) - 30 + 18);
    expect(compressed('PDF.XML')).toBe(deflateRawSync(withPdf, { strategy: constants.Z_HUFFMAN_ONLY }).length);
    expect(compressed('PDF.XML')).toBeLessThan(deflateRawSync(withPdf).length * 1.05);
    expect(compressed('N3.XML')).toBe(deflateRawSync(structured).length);
    const read = await unzip(archive);
    expect(read.get('PDF.XML')!.equals(withPdf) && read.get('N3.XML')!.equals(structured)).toBe(true);
  });

  it('fails the integrity test when a byte of an entry is changed', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-zip-'));
    const file = path.join(dir, 'BROKEN.ZIP');
    const broken = Buffer.from(zip);
    const at = broken.indexOf('IHE_XDM/SUBSET01/RANDOM.BIN') + 'IHE_XDM/SUBSET01/RANDOM.BIN'.length + 100;
    broken[at] = broken[at]! ^ 0xff;
    writeFileSync(file, broken);
    let output = '';
    try {
      execFileSync('unzip', ['-t', file], { stdio: 'pipe' });
    } catch (err) {
      output = String((err as { stdout?: Buffer }).stdout ?? '');
    }
    expect(output).toMatch(/RANDOM\.BIN\s+bad CRC/);
  });
});
