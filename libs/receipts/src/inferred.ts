import type { ParsedMail } from 'mailparser';
import type { DsnRecipient } from './receipt.ts';

/** What a bounce without a machine-readable report says, read from its text; the result is marked inferred. */
export interface InferredBounce {
  recipients: DsnRecipient[];
  /** Reason category from the text (user-unknown, mailbox-full, expired, rejected, ...). */
  reason: string;
}

const BOUNCE_SENDER = /mailer-daemon|post_?master|mail delivery (subsystem|system)|maildelivery|bounce|no-?reply.*(notification|postmaster)/i;
const BOUNCE_SUBJECT = /undeliver|undelivered|returned mail|delivery (status notification|failure|notification|has failed)|failure notice|non[- ]?remis|non distribu|mail delivery failed|could not be delivered|delivery problem|mail system error|rejected|delayed mail|warning: message|returned to sender|nondeliverable|delivery report|message not delivered|error sending|échec|niet afgeleverd|unzustellbar|fallo en la entrega|メールエラー|配信エラー|送信エラー/i;
const AUTO_REPLY = /auto-?repl|out of (the )?office|absent|vacation|congé|abwesen/i;

const ADDRESS = /<?([A-Za-z0-9._%+'=-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?/g;
const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;
const REPLY = /(?:^|[\s:(<"'=-])([45][0-5]\d)(?:[\s:-]|$)/m;

/** Categories and the status they stand for when the text carries no code. */
const CATEGORIES: [RegExp, string, string][] = [
  [/(will (continue to )?(try|retry)|will be retried|warning message only|\(delay(ed)?\)|still (being )?tr(y|ied)|has been delayed|not (yet )?been delivered.*(retry|try)|delivery (is )?delayed|temporar(il)?y (deferred|unavailable|failure|rejected)|try again later|is being retried|deferred)/i, 'delayed', '4.0.0'],
  [/(successfully delivered|delivery (to .* )?succeeded|"eventType"\s*:\s*"Delivery"|was delivered to)/i, 'delivered', '2.0.0'],
  [/(mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?(storage|quota)|insufficient (disk )?space|mailbox size limit)/i, 'mailbox-full', '5.2.2'],
  [/(user unknown|unknown user|no such (user|mailbox|recipient|address)|does not exist|doesn't exist|not a valid (mailbox|user|recipient)|invalid (recipient|mailbox|address)|unknown (recipient|address|local part)|recipient (address )?rejected|mailbox (unavailable|not found)|no mailbox|user not found|address not found|account (is )?(disabled|inactive|suspended|expired)|unrouteable address|mailbox disabled)/i, 'user-unknown', '5.1.1'],
  [/(host (or domain )?(not found|unknown)|domain (not found|does not exist)|no (mx|dns|such domain)|name service error|unrouteable (domain|mail domain))/i, 'host-unknown', '5.1.2'],
  [/(too (large|big)|size (limit|exceeds)|exceeds (the )?(maximum|size))/i, 'message-too-big', '5.3.4'],
  [/(spam|blacklist|block(ed|list)|reputation|policy|rejected|refused|denied|not (allowed|permitted|authorized))/i, 'rejected', '5.7.1'],
  [/(expired|retry time(out)? (exceeded|reached)|gave up|giving up|could not be delivered (with)?in|too many retries|unable to deliver .* after)/i, 'expired', '5.4.7'],
];

/** Amazon SES notifications (JSON in the body): bounces and deliveries, with their own recipient fields. */
function sesNotification(text: string): InferredBounce | undefined {
  const json = /\{[\s\S]*"notificationType"[\s\S]*\}/.exec(text)?.[0];
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

/** The part of the text that speaks about the failure: up to the returned message, if it is inlined. */
function noticeText(mail: ParsedMail): string {
  const text = mail.text ?? (typeof mail.html === 'string' ? mail.html.replace(/<[^>]+>/g, ' ') : '');
  const cut = text.search(/^(-{2,}|_{2,})?\s*(original message|returned message|message header follows|this is a copy of|the original message|headers of the original|below this line is a copy|---+ ?(original|returned|forwarded))/im);
  return cut > 0 ? text.slice(0, cut) : text;
}

/** Reads a bounce that carries no message/delivery-status part; undefined when the mail is not a bounce. */
/** A header as text, whether mailparser gave it as a string or as a parsed address. */
function header(mail: ParsedMail, name: string): string {
  const v = mail.headers.get(name);
  if (typeof v === 'string') return v;
  return v && typeof v === 'object' && 'text' in v && typeof v.text === 'string' ? v.text : '';
}

export function inferBounce(mail: ParsedMail): InferredBounce | undefined {
  const ses = sesNotification(mail.text ?? '');
  if (ses) return ses;
  const from = mail.from?.value.map((v) => `${v.name ?? ''} ${v.address ?? ''}`).join(' ') ?? '';
  const subject = mail.subject ?? '';
  const returnPath = header(mail, 'return-path');
  const failedHeader = mail.headers.get('x-failed-recipients');
  const looksBounce = BOUNCE_SENDER.test(from) || BOUNCE_SUBJECT.test(subject) || failedHeader !== undefined;
  const autoReply = AUTO_REPLY.test(subject) || /auto-replied/i.test(header(mail, 'auto-submitted'));
  if (!looksBounce || (autoReply && !BOUNCE_SENDER.test(from)) || (returnPath && !/<>|^$/.test(returnPath.trim()) && !BOUNCE_SENDER.test(from) && !failedHeader && !BOUNCE_SUBJECT.test(subject))) {
    return undefined;
  }
  const text = noticeText(mail);
  const own = new Set([...(mail.from?.value ?? []), ...(mail.to && !Array.isArray(mail.to) ? mail.to.value : [])].map((v) => (v.address ?? '').toLowerCase()));
  const listed = typeof failedHeader === 'string' ? failedHeader.split(',').map((a) => a.trim().toLowerCase()).filter(Boolean) : [];
  const found = [...text.matchAll(ADDRESS)].map((m) => m[1]!.toLowerCase()).filter((a) => !own.has(a) && !/^(postmaster|mailer-daemon|abuse)@/.test(a));
  const addresses = [...new Set(listed.length ? listed : found)];

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
