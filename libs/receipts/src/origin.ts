/**
 * Where a mail came from, as its top-level header block tells: what the receipts reader needs to decide whether a
 * receipt is believed. The fields the operator writes on the way in come first (its own Received, Dovecot's
 * Return-Path); anything the sender wrote comes after them. Only the first `maxBytes` bytes of the header are read.
 */
export interface MailOrigin {
  /**
   * The envelope sender as the operator recorded it (the first Return-Path), lower-cased: '' for the null sender
   * (`<>`, or `<MAILER-DAEMON>` as Dovecot writes it), undefined when the mail has none.
   */
  returnPath?: string;
  /** The address of the first From field, lower-cased. */
  from?: string;
  /**
   * How many Received fields say `from <host>`: each is a hop over SMTP. 0 means the mail was written inside the
   * operator that delivered it (its bounce daemon), never received from anyone.
   */
  smtpHops: number;
  /** How many Received fields there are. */
  received: number;
}

const ADDRESS_CHARS = 320;

/** The first `<addr>` of a field, else the field itself when it is a bare address; lower-cased. */
export function mailAddress(value: string): string | undefined {
  const angle = /<([^<>]{0,320})>/.exec(value);
  const raw = (angle ? angle[1]! : value).trim();
  if (angle && raw === '') return '';
  if (raw.length > ADDRESS_CHARS || /[\s,;"]/.test(raw)) return undefined;
  return raw.toLowerCase();
}

/** Reads the top-level header block of `source` (after a BOM or an mbox "From " line), at most `maxBytes` of it. */
export function mailOrigin(source: Buffer, maxBytes: number): MailOrigin {
  let text = source.toString('latin1', 0, Math.min(source.length, maxBytes));
  if (text.startsWith('\xef\xbb\xbf')) text = text.slice(3);
  if (text.startsWith('From ')) text = text.slice(text.indexOf('\n') + 1 || text.length);
  const origin: MailOrigin = { smtpHops: 0, received: 0 };
  let name = '';
  let value = '';
  const field = () => {
    if (name === 'received') {
      origin.received++;
      if (/^from\s/i.test(value)) origin.smtpHops++;
    } else if (name === 'return-path' && origin.returnPath === undefined) {
      const a = mailAddress(value);
      if (a !== undefined) origin.returnPath = a === '' || !a.includes('@') ? '' : a;
    } else if (name === 'from' && origin.from === undefined) {
      const a = mailAddress(value);
      if (a) origin.from = a;
    }
    name = value = '';
  };
  for (let pos = 0; pos < text.length; ) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end).replace(/\r$/, '');
    pos = end + 1;
    if (line === '') break; // the end of the header
    const c = line.charCodeAt(0);
    if (c === 32 || c === 9) {
      // A continuation: only the start of a field matters (a Received's "from", an address), so values stay short.
      if (name && value.length < 1024) value += ` ${line.trim()}`;
      continue;
    }
    field();
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    name = line.slice(0, colon).trim().toLowerCase();
    value = line.slice(colon + 1, colon + 1 + 1024).trim();
  }
  field();
  return origin;
}
