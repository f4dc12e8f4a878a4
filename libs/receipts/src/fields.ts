/** One RFC 822-style header block of a report part, field names lower-cased; repeated fields keep their first value. */
export type FieldBlock = Map<string, string>;

/**
 * Splits the body of a message/delivery-status or message/disposition-notification part into header blocks:
 * unfolds continuation lines, tolerates odd whitespace and CRLF/LF, and starts a new per-recipient block at each
 * Final-Recipient even when the blank line between blocks is missing.
 */
export function parseFieldBlocks(text: string): FieldBlock[] {
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
      current.set(last, `${current.get(last) ?? ''} ${rawLine.trim()}`.trim());
      continue;
    }
    const m = /^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$/.exec(rawLine);
    if (!m) continue;
    const name = m[1]!.toLowerCase();
    if (name === 'final-recipient' && current.has('final-recipient')) flush();
    else if (name === 'original-recipient' && current.has('final-recipient') && current.has('action')) flush();
    if (!current.has(name)) current.set(name, m[2]!.trim());
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
