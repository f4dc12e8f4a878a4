/**
 * A plain PDF (1.4, Helvetica, A4) from lines of text: how a text-only report (HL7 TX/FT or structured values)
 * becomes the PDF a practitioner's software files and the CDA N1 wraps. Long lines wrap; pages follow as needed.
 */

// WinAnsiEncoding beyond Latin-1: the characters French reports use.
const WIN_ANSI: Record<string, number> = { '€': 0x80, '‚': 0x82, '„': 0x84, '…': 0x85, 'Œ': 0x8c, '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '–': 0x96, '—': 0x97, 'œ': 0x9c, 'Ÿ': 0x9f };

function winAnsi(s: string): Buffer {
  const out = Buffer.alloc(s.length);
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out[n++] = WIN_ANSI[ch] ?? (c < 256 && (c >= 0x20 || c === 0x09) ? c : 0x3f);
  }
  return out.subarray(0, n);
}

const escapePdf = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(/[()\\]/g, '\\$&'), 'latin1');

const LINES_PER_PAGE = 50;
const CHARS_PER_LINE = 92;

function wrap(line: string): string[] {
  const out: string[] = [];
  let rest = line.replace(/\t/g, '    ');
  while (rest.length > CHARS_PER_LINE) {
    const cut = rest.lastIndexOf(' ', CHARS_PER_LINE);
    const at = cut > CHARS_PER_LINE / 2 ? cut : CHARS_PER_LINE;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).trimStart();
  }
  out.push(rest);
  return out;
}

/** The same pseudo-random bytes for the same size (xorshift32): deterministic test documents. */
function incompressibleBytes(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `padTo` pads the file with an unreferenced binary stream to about that many bytes (benchmarks and size-limit tests). */
export function renderTextPdf(lines: string[], padTo = 0): Buffer {
  const wrapped = lines.flatMap(wrap);
  const pages: string[][] = [];
  for (let i = 0; i < Math.max(1, wrapped.length); i += LINES_PER_PAGE) pages.push(wrapped.slice(i, i + LINES_PER_PAGE));
  // Objects: 1 catalog, 2 pages, 3 font, then a page and its content stream per page.
  const objects: Buffer[] = [];
  const kids = pages.map((_, i) => `${4 + i * 2} 0 R`).join(' ');
  objects.push(Buffer.from('<< /Type /Catalog /Pages 2 0 R >>', 'latin1'));
  objects.push(Buffer.from(`<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`, 'latin1'));
  objects.push(Buffer.from('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>', 'latin1'));
  for (const [i, page] of pages.entries()) {
    const content = Buffer.concat(page.map((l, j) => Buffer.concat([
      Buffer.from(`BT /F1 10 Tf 48 ${790 - j * 15} Td (`, 'latin1'), escapePdf(winAnsi(l)), Buffer.from(') Tj ET\n', 'latin1'),
    ])));
    objects.push(Buffer.from(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents ${5 + i * 2} 0 R /Resources << /Font << /F1 3 0 R >> >> >>`, 'latin1'));
    objects.push(Buffer.concat([Buffer.from(`<< /Length ${content.length} >>\nstream\n`, 'latin1'), content, Buffer.from('endstream', 'latin1')]));
  }
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let length = parts[0]!.length;
  const offsets: number[] = [];
  for (const [i, o] of objects.entries()) {
    offsets.push(length);
    const b = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, 'latin1'), o, Buffer.from('\nendobj\n', 'latin1')]);
    parts.push(b);
    length += b.length;
  }
  let count = objects.length;
  if (padTo > length + 400) {
    // Filler as a real PDF's bulk is: compressed image or font streams, bytes that do not compress any further.
    const filler = incompressibleBytes(padTo - length - 400);
    const b = Buffer.concat([Buffer.from(`${++count} 0 obj\n<< /Length ${filler.length} >>\nstream\n`, 'latin1'), filler, Buffer.from('\nendstream\nendobj\n', 'latin1')]);
    offsets.push(length);
    parts.push(b);
    length += b.length;
  }
  const xref = [`xref\n0 ${count + 1}\n0000000000 65535 f \n`, ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)].join('');
  parts.push(Buffer.from(`${xref}trailer\n<< /Size ${count + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(parts);
}
