import type { ParsedMail } from 'mailparser';
import { MAX_RECIPIENTS } from './limits.ts';
import type { DsnRecipient } from './receipt.ts';

/** What a bounce without a machine-readable report says, read from its text; the result is marked inferred. */
export interface InferredBounce {
  recipients: DsnRecipient[];
  /** Reason category from the text (user-unknown, mailbox-full, expired, rejected, ...). */
  reason: string;
}

/*
 * Every expression here runs on text anyone can send: none may backtrack over an unbounded run (a `.*` between two
 * words is `.{0,200}`), and the text itself is cut to the limits' maxTextBytes, headers to HEADER_CHARS.
 */
const BOUNCE_SENDER = /mailer-daemon|post_?master|mail delivery (subsystem|system)|maildelivery|bounce|no-?reply.{0,200}(notification|postmaster)/i;
const BOUNCE_SUBJECT = /undeliver|undelivered|returned mail|delivery (status notification|failure|notification|has failed)|failure notice|non[- ]?remis|non distribu|mail delivery failed|could not be delivered|delivery problem|mail system error|rejected|delayed mail|warning: message|returned to sender|nondeliverable|delivery report|message not delivered|error sending|échec|niet afgeleverd|unzustellbar|fallo en la entrega|メールエラー|配信エラー|送信エラー/i;
const AUTO_REPLY = /auto-?repl|out of (the )?office|absent|vacation|congé|abwesen/i;

const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;
const REPLY = /(?:^|[\s:(<"'=-])([45][0-5]\d)(?:[\s:-]|$)/m;

/** Categories and the status they stand for when the text carries no code. */
const CATEGORIES: [RegExp, string, string][] = [
  [/(will (continue to )?(try|retry)|will be retried|warning message only|\(delay(ed)?\)|still (being )?tr(y|ied)|has been delayed|not (yet )?been delivered.{0,200}(retry|try)|delivery (is )?delayed|temporar(il)?y (deferred|unavailable|failure|rejected)|try again later|is being retried|deferred)/i, 'delayed', '4.0.0'],
  [/(successfully delivered|delivery (to .{0,200} )?succeeded|"eventType"\s*:\s*"Delivery"|was delivered to)/i, 'delivered', '2.0.0'],
  [/(mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?(storage|quota)|insufficient (disk )?space|mailbox size limit)/i, 'mailbox-full', '5.2.2'],
  [/(user unknown|unknown user|no such (user|mailbox|recipient|address)|does not exist|doesn't exist|not a valid (mailbox|user|recipient)|invalid (recipient|mailbox|address)|unknown (recipient|address|local part)|recipient (address )?rejected|mailbox (unavailable|not found)|no mailbox|user not found|address not found|account (is )?(disabled|inactive|suspended|expired)|unrouteable address|mailbox disabled)/i, 'user-unknown', '5.1.1'],
  [/(host (or domain )?(not found|unknown)|domain (not found|does not exist)|no (mx|dns|such domain)|name service error|unrouteable (domain|mail domain))/i, 'host-unknown', '5.1.2'],
  [/(too (large|big)|size (limit|exceeds)|exceeds (the )?(maximum|size))/i, 'message-too-big', '5.3.4'],
  [/(spam|blacklist|block(ed|list)|reputation|policy|rejected|refused|denied|not (allowed|permitted|authorized))/i, 'rejected', '5.7.1'],
  [/(expired|retry time(out)? (exceeded|reached)|gave up|giving up|could not be delivered (with)?in|too many retries|unable to deliver .{0,200} after)/i, 'expired', '5.4.7'],
];

/** Headers (From, Subject, ...) are read this far. */
const HEADER_CHARS = 1000;

/**
 * The JSON object around "notificationType": from the first '{' before its last mention to the last '}', as the
 * greedy `\{[\s\S]*"notificationType"[\s\S]*\}` would match, found with indexOf (that expression is cubic on a flood).
 */
function jsonAround(text: string): string | undefined {
  const close = text.lastIndexOf('}');
  const key = close < 0 ? -1 : text.lastIndexOf('"notificationType"', close);
  const open = text.indexOf('{');
  return key < 0 || open < 0 || open > key ? undefined : text.slice(open, close + 1);
}

/** Amazon SES notifications (JSON in the body): bounces and deliveries, with their own recipient fields. */
function sesNotification(text: string): InferredBounce | undefined {
  const json = jsonAround(text);
  if (!json) return undefined;
  try {
    const n = JSON.parse(json) as {
      notificationType?: string;
      bounce?: { bounceType?: string; bounceSubType?: string; bouncedRecipients?: { emailAddress: string; status?: string; action?: string; diagnosticCode?: string }[] };
      delivery?: { recipients?: string[]; smtpResponse?: string };
    };
    if (n.notificationType === 'Bounce' && n.bounce?.bouncedRecipients) {
      const permanent = n.bounce.bounceType === 'Permanent';
      return {
        reason: n.bounce.bounceSubType ?? 'undefined',
        recipients: n.bounce.bouncedRecipients.map((r) => ({
          recipient: r.emailAddress.toLowerCase(), action: r.action ?? (permanent ? 'failed' : 'delayed'),
          status: r.status ?? (permanent ? '5.0.0' : '4.0.0'), ...(r.diagnosticCode ? { diagnosticCode: r.diagnosticCode } : {}),
        })),
      };
    }
    if (n.notificationType === 'Delivery' && n.delivery?.recipients) {
      return { reason: 'delivered', recipients: n.delivery.recipients.map((r) => ({ recipient: r.toLowerCase(), action: 'delivered', status: '2.0.0', ...(n.delivery?.smtpResponse ? { diagnosticCode: n.delivery.smtpResponse } : {}) })) };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The mail's text, its first `max` characters; an HTML-only mail's without its tags. */
function mailText(mail: ParsedMail, max: number): string {
  // [^<>]: a run of '<' without '>' is scanned once, not once per '<'.
  return mail.text?.slice(0, max) ?? (typeof mail.html === 'string' ? mail.html.slice(0, max).replace(/<[^<>]*>/g, ' ') : '');
}

const RETURNED_START = /^(original message|returned message|message header follows|this is a copy of|the original message|headers of the original|below this line is a copy)/i;

/**
 * The part of the text that speaks about the failure: up to the returned message, if it is inlined. That starts at a
 * line naming it, maybe behind a run of dashes or underscores, or at the dash line and blank lines just before it.
 * Read line by line: the single expression this replaces crossed line breaks and was quadratic on blank lines.
 */
function noticeText(text: string): string {
  let runStart = -1; // the first of the blank lines (opened maybe by a dash line) just before this one
  for (let pos = 0; pos < text.length; ) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end).trim();
    const dashes = /^(?:-+|_+)/.exec(line)?.[0].length ?? 0;
    const after = line.slice(dashes);
    if (
      (dashes !== 1 && RETURNED_START.test(after.trimStart())) ||
      (line.startsWith('---') && /^ ?(original|returned|forwarded)/i.test(after))
    ) {
      const cut = runStart >= 0 ? runStart : pos;
      return cut > 0 ? text.slice(0, cut) : text;
    }
    if (dashes >= 2 && after === '') runStart = pos;
    else if (line !== '') runStart = -1;
    else if (runStart < 0) runStart = pos;
    pos = end + 1;
  }
  return text;
}

/**
 * Email addresses in the text, as `<?([A-Za-z0-9._%+'=-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?` would find them, read from
 * each '@' outwards, at most ADDRESS_SIDE characters each way: that expression was quadratic on a long run of letters.
 */
function addressesIn(text: string): string[] {
  const found: string[] = [];
  let from = 0; // matches do not overlap
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > from && at - start <= ADDRESS_SIDE && LOCAL[text.charCodeAt(start - 1)]) start--;
    if (start === at || at - start > ADDRESS_SIDE) continue;
    let end = at + 1;
    while (end < text.length && end - at <= ADDRESS_SIDE && DOMAIN[text.charCodeAt(end)]) end++;
    // The greedy domain backs off to its last '.' followed by two letters or more.
    let stop = -1;
    for (let dot = end - 1; dot > at + 1 && stop < 0; dot--) {
      if (text.charCodeAt(dot) !== 46) continue;
      let q = dot + 1;
      while (q < end && LETTER[text.charCodeAt(q)]) q++;
      if (q - dot > 2) stop = q;
    }
    if (stop < 0) continue;
    found.push(text.slice(start, stop));
    from = stop;
  }
  return found;
}

/** Beyond RFC 5321's 64-character local part and 255-character domain, with room for odd senders' ids. */
const ADDRESS_SIDE = 256;
const charTable = (re: RegExp) => Array.from({ length: 128 }, (_, c) => re.test(String.fromCharCode(c)));
const LOCAL = charTable(/[A-Za-z0-9._%+'=-]/);
const DOMAIN = charTable(/[A-Za-z0-9.-]/);
const LETTER = charTable(/[A-Za-z]/);

/** A header as text, whether mailparser gave it as a string or as a parsed address; its first HEADER_CHARS. */
function header(mail: ParsedMail, name: string): string {
  const v = mail.headers.get(name);
  if (typeof v === 'string') return v.slice(0, HEADER_CHARS);
  return v && typeof v === 'object' && 'text' in v && typeof v.text === 'string' ? v.text.slice(0, HEADER_CHARS) : '';
}

/**
 * Reads a bounce that carries no message/delivery-status part; undefined when the mail is not a bounce. Only the
 * first `maxTextBytes` characters of its text are read.
 */
export function inferBounce(mail: ParsedMail, maxTextBytes: number): InferredBounce | undefined {
  const full = mailText(mail, maxTextBytes);
  const ses = sesNotification(mail.text === undefined ? '' : full);
  if (ses) return ses;
  const from = (mail.from?.value.slice(0, 10).map((v) => `${v.name ?? ''} ${v.address ?? ''}`).join(' ') ?? '').slice(0, HEADER_CHARS);
  const subject = (mail.subject ?? '').slice(0, HEADER_CHARS);
  const returnPath = header(mail, 'return-path');
  const failedRaw = mail.headers.get('x-failed-recipients');
  const failedHeader = typeof failedRaw === 'string' ? failedRaw.slice(0, maxTextBytes) : failedRaw;
  const looksBounce = BOUNCE_SENDER.test(from) || BOUNCE_SUBJECT.test(subject) || failedHeader !== undefined;
  const autoReply = AUTO_REPLY.test(subject) || /auto-replied/i.test(header(mail, 'auto-submitted'));
  if (!looksBounce || (autoReply && !BOUNCE_SENDER.test(from)) || (returnPath && !/<>|^$/.test(returnPath.trim()) && !BOUNCE_SENDER.test(from) && !failedHeader && !BOUNCE_SUBJECT.test(subject))) {
    return undefined;
  }
  const text = noticeText(full);
  const own = new Set([...(mail.from?.value ?? []), ...(mail.to && !Array.isArray(mail.to) ? mail.to.value : [])].map((v) => (v.address ?? '').toLowerCase()));
  const listed = typeof failedHeader === 'string' ? failedHeader.split(',').map((a) => a.trim().toLowerCase()).filter(Boolean) : [];
  const found = addressesIn(text).map((a) => a.toLowerCase()).filter((a) => !own.has(a) && !/^(postmaster|mailer-daemon|abuse)@/.test(a));
  const addresses = [...new Set(listed.length ? listed : found)].slice(0, MAX_RECIPIENTS);

  const category = CATEGORIES.find(([re]) => re.test(text) || re.test(subject));
  const enhanced = ENHANCED.exec(text);
  const reply = REPLY.exec(text);
  // A code in the text says more than the words around it ("Deferred: ... 550 Host unknown" is a failure).
  const status = enhanced ? `${enhanced[1]}.${enhanced[2]}.${enhanced[3]}` : reply ? `${reply[1]![0]}.0.0` : (category?.[2] ?? '5.0.0');
  const warning = category?.[1] === 'delayed';
  const action = status.startsWith('2') ? 'delivered' : warning ? 'delayed' : 'failed';
  const diagnostic = text.split(/\r?\n/).map((l) => l.trim()).find((l) => ENHANCED.test(l) || REPLY.test(l) || (category && category[0].test(l)));
  return {
    reason: category?.[1] ?? 'undefined',
    recipients: (addresses.length ? addresses : ['']).map((recipient) => ({
      recipient, action, status, ...(diagnostic ? { diagnosticCode: diagnostic.slice(0, 300) } : {}),
    })),
  };
}
