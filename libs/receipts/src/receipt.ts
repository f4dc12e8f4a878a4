import { simpleParser, type ParsedMail } from 'mailparser';
import { addressOf, parseFieldBlocks, typedValue } from './fields.ts';
import { fastReport } from './fast.ts';
import { inferBounce } from './inferred.ts';
import { checkStructure, DEFAULT_RECEIPT_LIMITS, MAX_RECIPIENTS, MESSAGE_ID_FIELD, UnreadableMail, type ReceiptLimits } from './limits.ts';
import { mailOrigin, type MailOrigin } from './origin.ts';

export interface DsnRecipient {
  recipient: string;
  originalRecipient?: string;
  action: string;
  status: string;
  /** The report had no Status field: the status was read from the diagnostic or the action. */
  statusInferred?: boolean;
  diagnosticCode?: string;
  remoteMta?: string;
}

export interface Disposition {
  actionMode: string;
  sendingMode: string;
  /** displayed, processed, deleted, dispatched, denied, failed */
  type: string;
  modifier?: string;
  /** CI-SIS "processed/Error: code^label". */
  error?: { code: string; label: string };
}

/** What a mail that is no receipt says about the conversation it belongs to (a reply, an auto-reply). */
export interface ReplyFields {
  /** Its Subject, decoded (personal data: stored, never logged). */
  subject?: string;
  /** Its Date, in ms. */
  date?: number;
  inReplyTo?: string;
  /** Message-IDs of its References field, oldest first (at most 50). */
  references: string[];
}

/**
 * What one mail says. `origin` (set by parseReceipt) tells where the mail came from: the receipts reader believes a
 * receipt only as far as its origin allows (docs/message.md, Receipts).
 */
export type Receipt = (
  | {
      kind: 'dsn';
      envelopeId?: string;
      reportingMta?: string;
      originalMessageId?: string;
      recipients: DsnRecipient[];
      /** true when read from free text rather than a machine-readable report. */
      inferred: boolean;
      /** For an inferred bounce, the reason category read from the text. */
      reason?: string;
    }
  | {
      kind: 'mdn';
      originalMessageId?: string;
      finalRecipient?: string;
      originalRecipient?: string;
      disposition: Disposition;
    }
  | { kind: 'other'; reason: 'auto-reply' | 'not-a-receipt'; messageId?: string; reply?: ReplyFields }
) & { origin?: MailOrigin };

/** The first `max` bytes of a part, as text: a report or returned headers say what matters at their start. */
const partText = (content: Buffer, max: number) => content.toString('utf8', 0, Math.min(content.length, max));

/** A value read from the mail, dropped when longer than any we could have sent (RFC 5322 and 3461 bounds). */
const within = (value: string | undefined, max: number) => (value !== undefined && value.length <= max ? value : undefined);
const MESSAGE_ID_CHARS = 998;
const ENVID_CHARS = 100;
const ADDRESS_CHARS = 320;

/** Message-ID of the original mail, from the returned headers (text/rfc822-headers or message/rfc822). */
function returnedMessageId(mail: ParsedMail, maxTextBytes: number): string | undefined {
  for (const a of mail.attachments) {
    if (a.contentType === 'text/rfc822-headers' || a.contentType === 'message/rfc822' || a.contentType === 'message/global-headers') {
      const m = MESSAGE_ID_FIELD.exec(partText(a.content, maxTextBytes));
      if (m) return m[1];
    }
  }
  return undefined;
}

function statusFrom(diagnostic: string | undefined, action: string): string {
  const enhanced = diagnostic ? /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(diagnostic) : null;
  if (enhanced) return enhanced[1]!;
  const reply = diagnostic ? /\b([245])\d\d\b/.exec(diagnostic) : null;
  if (reply) return `${reply[1]}.0.0`;
  return action === 'delivered' || action === 'relayed' || action === 'expanded' ? '2.0.0' : action === 'delayed' ? '4.0.0' : '5.0.0';
}

export function parseDisposition(value: string): Disposition {
  // "automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant de patient inconnu"
  const [modes = '', rest = ''] = value.split(';', 2).map((s) => s.trim());
  const [actionMode = '', sendingMode = ''] = modes.split('/').map((s) => s.trim());
  const slash = rest.indexOf('/');
  const type = (slash < 0 ? rest : rest.slice(0, slash)).trim().toLowerCase();
  const modifier = slash < 0 ? undefined : rest.slice(slash + 1).trim();
  const err = modifier ? /^error\s*:\s*([^^]*)\^?([^|]*)/i.exec(modifier) : null;
  return {
    actionMode, sendingMode, type,
    ...(modifier ? { modifier } : {}),
    ...(err ? { error: { code: err[1]!.trim(), label: err[2]!.trim() } } : {}),
  };
}

const isRecipient = (b: Map<string, string>) => b.has('final-recipient') || b.has('original-recipient');

/** A DSN from the fields of its report part(s). */
function dsnFrom(reportTexts: string[], originalMessageId: string | undefined): Extract<Receipt, { kind: 'dsn' }> {
  const blocks = reportTexts.flatMap((t) => parseFieldBlocks(t));
  const perMessage = blocks.find((b) => !isRecipient(b) && (b.has('reporting-mta') || b.has('original-envelope-id'))) ?? new Map<string, string>();
  const recipients: DsnRecipient[] = blocks.filter(isRecipient).slice(0, MAX_RECIPIENTS).map((b) => {
    const diagnostic = typedValue(b.get('diagnostic-code'));
    const original = within(addressOf(b.get('original-recipient')), ADDRESS_CHARS);
    const remote = typedValue(b.get('remote-mta'));
    const action = (b.get('action') ?? '').slice(0, 32).toLowerCase();
    const literal = (b.get('status') ?? '').slice(0, 32).split(/\s/)[0] ?? '';
    return {
      recipient: (within(addressOf(b.get('final-recipient')), ADDRESS_CHARS) ?? original ?? '').toLowerCase(),
      ...(original ? { originalRecipient: original.toLowerCase() } : {}),
      action,
      // Status is required by RFC 3464; when a sender omits it, the diagnostic or the action tells the class.
      status: literal || statusFrom(diagnostic, action),
      ...(literal ? {} : { statusInferred: true }),
      ...(diagnostic ? { diagnosticCode: diagnostic } : {}),
      ...(remote ? { remoteMta: remote } : {}),
    };
  });
  const envelopeId = within(perMessage.get('original-envelope-id')?.trim(), ENVID_CHARS);
  const reportingMta = typedValue(perMessage.get('reporting-mta'));
  return {
    kind: 'dsn',
    ...(envelopeId ? { envelopeId } : {}),
    ...(reportingMta ? { reportingMta } : {}),
    ...(originalMessageId ? { originalMessageId } : {}),
    recipients,
    inferred: false,
  };
}

/** An MDN from the fields of its report part. */
function mdnFrom(reportText: string, inReplyTo: string | undefined): Extract<Receipt, { kind: 'mdn' }> {
  const fields = new Map(parseFieldBlocks(reportText).flatMap((b) => [...b]));
  const originalMessageId = within(fields.get('original-message-id')?.trim() || inReplyTo, MESSAGE_ID_CHARS);
  const finalRecipient = within(addressOf(fields.get('final-recipient')), ADDRESS_CHARS)?.toLowerCase();
  const originalRecipient = within(addressOf(fields.get('original-recipient')), ADDRESS_CHARS)?.toLowerCase();
  return {
    kind: 'mdn',
    ...(originalMessageId ? { originalMessageId } : {}),
    ...(finalRecipient ? { finalRecipient } : {}),
    ...(originalRecipient ? { originalRecipient } : {}),
    disposition: parseDisposition(fields.get('disposition') ?? ''),
  };
}

/**
 * Reads one mail from an applicative mailbox and says what it is, in time and memory linear in its size. A mail past
 * one of the limits, or that the MIME parser cannot read, throws an UnreadableMail naming why.
 */
export async function parseReceipt(source: Buffer | string, limits: Partial<ReceiptLimits> = {}): Promise<Receipt> {
  const raw = typeof source === 'string' ? Buffer.from(source, 'utf8') : source;
  const all = { ...DEFAULT_RECEIPT_LIMITS, ...limits };
  const receipt = await read(raw, all, 0);
  // The mail's own origin, also for a report found inside an attached message: the mail is what reached us.
  return { ...receipt, origin: mailOrigin(raw, all.maxTextBytes) };
}

const SUBJECT_CHARS = 998;
const REFERENCES = 50;

/** The threading fields of a mail that is no receipt, each bounded. */
function replyFields(mail: ParsedMail): ReplyFields {
  const ids = (v: string | string[] | undefined) => (Array.isArray(v) ? v : typeof v === 'string' ? v.split(/\s+/) : []);
  const references = ids(mail.references).map((r) => r.trim()).filter((r) => /^<[^<>\s]{1,994}>$/.test(r)).slice(-REFERENCES);
  const inReplyTo = typeof mail.inReplyTo === 'string' ? /<[^<>\s]{1,994}>/.exec(mail.inReplyTo)?.[0] : undefined;
  const subject = typeof mail.subject === 'string' ? mail.subject.slice(0, SUBJECT_CHARS) : undefined;
  const date = mail.date instanceof Date && Number.isFinite(mail.date.getTime()) ? mail.date.getTime() : undefined;
  return { references, ...(inReplyTo ? { inReplyTo } : {}), ...(subject !== undefined ? { subject } : {}), ...(date !== undefined ? { date } : {}) };
}

/** `depth`: how many attached messages deep this one is; each is parsed again, so the depth bounds the work. */
async function read(raw: Buffer, limits: ReceiptLimits, depth: number): Promise<Receipt> {
  checkStructure(raw, limits, depth);
  const max = limits.maxTextBytes;
  const fast = fastReport(raw, max);
  if (fast?.reportType === 'disposition-notification') return mdnFrom(fast.reports.join('\n\n'), fast.inReplyTo);
  if (fast) {
    const dsn = dsnFrom(fast.reports, fast.returnedMessageId);
    if (dsn.recipients.length > 0) return dsn; // a report without recipient blocks needs the text: full parser
  }
  let mail: ParsedMail;
  try {
    mail = await simpleParser(raw, { keepDeliveryStatus: true, skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  } catch {
    // The parser's own limits (header size, child nodes) or broken MIME; its message may quote the mail.
    throw new UnreadableMail('unreadable');
  }
  const dsnParts = mail.attachments.filter((a) => a.contentType === 'message/delivery-status' || a.contentType === 'message/global-delivery-status');
  if (dsnParts.length) {
    // Some MTAs send two report parts (one of them prose): the fields of all of them count.
    const dsn = dsnFrom(dsnParts.map((p) => partText(p.content, max)), within(returnedMessageId(mail, max), MESSAGE_ID_CHARS));
    // A report part with no recipient block (seen from Google): what the text says is all there is.
    const fromText = dsn.recipients.length === 0 ? inferBounce(mail, max) : undefined;
    return fromText ? { ...dsn, recipients: fromText.recipients, inferred: true } : dsn;
  }
  const mdnPart = mail.attachments.find((a) => a.contentType === 'message/disposition-notification');
  if (mdnPart) return mdnFrom(partText(mdnPart.content, max), typeof mail.inReplyTo === 'string' ? mail.inReplyTo : undefined);
  // A bounce forwarded as an attachment (message/rfc822 holding the multipart/report).
  for (const a of mail.attachments.filter((x) => x.contentType === 'message/rfc822')) {
    if (!/^content-type:[ \t]*multipart\/report/im.test(a.content.toString('latin1', 0, Math.min(a.content.length, max)))) continue;
    const inner = await read(a.content, limits, depth + 1);
    if (inner.kind !== 'other') return inner;
  }
  const inferred = inferBounce(mail, max);
  if (inferred) {
    const originalMessageId = within(returnedMessageId(mail, max), MESSAGE_ID_CHARS);
    return { kind: 'dsn', recipients: inferred.recipients, inferred: true, reason: inferred.reason, ...(originalMessageId ? { originalMessageId } : {}) };
  }
  const autoSubmitted = mail.headers.get('auto-submitted');
  const auto = typeof autoSubmitted === 'string' && autoSubmitted.toLowerCase() !== 'no';
  const messageId = within(mail.messageId, MESSAGE_ID_CHARS);
  return { kind: 'other', reason: auto ? 'auto-reply' : 'not-a-receipt', ...(messageId ? { messageId } : {}), reply: replyFields(mail) };
}
