import { randomUUID } from 'node:crypto';
import { ErrorCondition, Hl7Error, Reason, REASON_TABLE, type ErrorConditionName, type ErrorLocation, type Hl7Warning, type ReasonName } from './errors.ts';

export type AckCode = 'AA' | 'AE' | 'AR';

/** What an ACK answers: the header of the message received, as far as it could be read. */
export interface AckTarget {
  controlId: string;
  event: string;
  version: string;
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
}

const EMPTY_TARGET: AckTarget = {
  controlId: '', event: '', version: '2.5', sendingApplication: '', sendingFacility: '', receivingApplication: 'MSSGW', receivingFacility: '',
};

export const hl7Timestamp = (d = new Date()): string => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);

/** Escapes the delimiters in free text put back into an ACK. */
const esc = (s: string) => s.replace(/\\/g, '\\E\\').replace(/\|/g, '\\F\\').replace(/\^/g, '\\S\\').replace(/&/g, '\\T\\').replace(/~/g, '\\R\\').replace(/[\r\n]+/g, ' ');

/** Most ERR segments an ACK carries: a hostile message with thousands of bad OBX gets a bounded answer. */
export const MAX_ERR_SEGMENTS = 10;
/** ERR-8 stays readable and bounded whatever the message quoted. */
const MAX_ERR_TEXT = 300;

interface ErrEntry {
  condition: ErrorConditionName;
  severity: 'E' | 'W';
  text: string;
  location: ErrorLocation | undefined;
  reason: ReasonName | undefined;
}

/** One ERR segment: the v2.5+ layout (ERR-2 location, ERR-3 condition, ERR-4 severity, ERR-5 reason, ERR-8 text), or ERR-1 for v2.3 / 2.4. */
function errSegment(e: ErrEntry, version: string): string {
  const cond = ErrorCondition[e.condition];
  const loc = e.location;
  if (/^2\.[34]/.test(version)) {
    const where1 = loc ? [loc.segment, loc.sequence ?? '', loc.field ?? ''].join('^') : '';
    return ['ERR', `${where1}^${cond.code}&${esc(cond.text)}&HL70357`].join('|');
  }
  const where = loc ? [loc.segment, loc.sequence ?? '', loc.field ?? '', loc.component ?? ''].join('^').replace(/\^+$/, '') : '';
  const reason = e.reason ? `${Reason[e.reason].code}^${esc(Reason[e.reason].rule)}^${REASON_TABLE}` : '';
  return ['ERR', '', where, `${cond.code}^${esc(cond.text)}^HL70357`, e.severity, reason, '', '', esc(e.text.slice(0, MAX_ERR_TEXT))].join('|');
}

/**
 * An HL7 ACK in ER7, answering a message with AA, AE or AR. An error is an ERR segment of severity E; each warning
 * (a result taken although something in it was ignored or mapped) one of severity W, also on an AA. ERR carries the
 * table 0357 code, the location (segment, sequence, field, component), the gateway's reason code and the readable
 * text, in the v2.5+ layout, or the v2.3/2.4 one (ERR-1, which has no severity: MSA-1 tells them apart).
 */
export function buildAck(target: Partial<AckTarget> | undefined, code: AckCode, error?: Hl7Error | Error, warnings: readonly Hl7Warning[] = []): string {
  const t = { ...EMPTY_TARGET, ...target };
  const version = /^2\.[3-9]/.test(t.version) ? t.version : '2.5';
  const segs = [
    ['MSH', '^~\\&', t.receivingApplication || 'MSSGW', t.receivingFacility, t.sendingApplication, t.sendingFacility, hl7Timestamp(), '',
      `ACK^${t.event}^ACK`, randomUUID().replace(/-/g, '').slice(0, 20), 'P', version, '', '', '', '', '', 'UNICODE UTF-8'].join('|'),
    ['MSA', code, esc(t.controlId), error ? esc(error.message.slice(0, 80)) : ''].join('|'),
  ];
  const entries: ErrEntry[] = [];
  if (error) {
    const h = error instanceof Hl7Error ? error : new Hl7Error('applicationError', error.message);
    entries.push({ condition: h.condition, severity: 'E', text: h.message, location: h.location, reason: h.reason });
  }
  for (const w of warnings) entries.push({ condition: Reason[w.reason].condition, severity: 'W', text: w.message, location: w.location, reason: w.reason });
  for (const e of entries.slice(0, MAX_ERR_SEGMENTS)) segs.push(errSegment(e, version));
  return segs.join('\r') + '\r';
}
