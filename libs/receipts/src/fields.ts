/** One RFC 822-style header block of a report part, field names lower-cased; repeated fields keep their first value. */
export type FieldBlock = Map<string, string>;

/** Longest field value kept: a Diagnostic-Code of a few lines fits; continuation lines past it are dropped. */
const MAX_FIELD_CHARS = 4096;

/**
 * Splits the body of a message/delivery-status or message/disposition-notification part into header blocks:
 * unfolds continuation lines, tolerates odd whitespace and CRLF/LF, and starts a new per-recipient block at each
 * Final-Recipient even when the blank line between blocks is missing.
 */
export function parseFieldBlocks(text: string): FieldBlock[] {
  text = decodeEmbeddedBase64(text);
  const blocks: FieldBlock[] = [];
  let current: FieldBlock = new Map();
  let last: string | undefined;
  const flush = () => {
    if (current.size) blocks.push(current);
    current = new Map();
    last = undefined;
  };
  for (const rawLine of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (rawLine.trim() === '') {
      flush();
      continue;
    }
    if (/^[ \t]/.test(rawLine) && last) {
      // Bounded, or each continuation line would copy the whole value again (quadratic on a flood of them).
      const value = current.get(last) ?? '';
      if (value.length < MAX_FIELD_CHARS) current.set(last, `${value} ${rawLine.trim()}`.trim().slice(0, MAX_FIELD_CHARS));
      continue;
    }
    const m = /^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$/.exec(rawLine);
    if (!m) continue;
    const name = m[1]!.toLowerCase();
    // A second recipient field in the same block means the blank line before a new recipient is missing.
    if ((name === 'final-recipient' || name === 'original-recipient') && current.has(name)) flush();
    if (!current.has(name)) current.set(name, m[2]!.trim().slice(0, MAX_FIELD_CHARS));
    last = name;
  }
  flush();
  return blocks;
}

/** "rfc822; <a@b>" → "a@b"; leaves other address types as written. */
export function addressOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const v = value.includes(';') ? value.slice(value.indexOf(';') + 1) : value;
  const clean = v.trim().replace(/^<|>$/g, '').trim();
  return clean ? clean : undefined;
}

/** "smtp; 550 5.1.1 ..." → "550 5.1.1 ..." */
export const typedValue = (value: string | undefined): string | undefined =>
  value === undefined ? undefined : (value.includes(';') ? value.slice(value.indexOf(';') + 1) : value).trim() || undefined;

const B64_LINE = /^[A-Za-z0-9+/]{16,}={0,2}$/;

/**
 * Some MTAs base64-encode the per-recipient fields inside the report part while the part itself says nothing
 * (a stray Content-Transfer-Encoding line among the fields). A run of base64 lines that decodes to fields is
 * replaced by what it says.
 */
function decodeEmbeddedBase64(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    let j = i;
    while (j < lines.length && B64_LINE.test(lines[j]!.trim())) j++;
    if (j > i) {
      const decoded = Buffer.from(lines.slice(i, j).join(''), 'base64').toString('utf8');
      if (/^[A-Za-z-]+\s*:/m.test(decoded) && !CONTROL.test(decoded)) out.push('', decoded.replace(/\r\n?/g, '\n'));
      else out.push(lines.slice(i, j).join('\n'));
      i = j;
    } else out.push(lines[i++]!);
  }
  return out.join('\n');
}

/** Control characters other than tab and line breaks: decoded bytes that are not text. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f]/;
