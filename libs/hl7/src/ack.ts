import { randomUUID } from 'node:crypto';
import { ErrorCondition, Hl7Error } from './errors.ts';

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

/**
 * An HL7 ACK in ER7, answering a message with AA, AE or AR. Errors carry an ERR segment: table 0357 code,
 * location (segment, sequence, field, component) and the readable text, in the v2.5+ layout (ERR-2/3/4/8) or the
 * v2.3/2.4 one (ERR-1).
 */
export function buildAck(target: Partial<AckTarget> | undefined, code: AckCode, error?: Hl7Error | Error): string {
  const t = { ...EMPTY_TARGET, ...target };
  const version = /^2\.[3-9]/.test(t.version) ? t.version : '2.5';
  const segs = [
    ['MSH', '^~\\&', t.receivingApplication || 'MSSGW', t.receivingFacility, t.sendingApplication, t.sendingFacility, hl7Timestamp(), '',
      `ACK^${t.event}^ACK`, randomUUID().replace(/-/g, '').slice(0, 20), 'P', version, '', '', '', '', '', 'UNICODE UTF-8'].join('|'),
    ['MSA', code, esc(t.controlId), error ? esc(error.message).slice(0, 80) : ''].join('|'),
  ];
  if (error) {
    const h = error instanceof Hl7Error ? error : new Hl7Error('applicationError', error.message);
    const cond = ErrorCondition[h.condition];
    const loc = h.location;
    const where = loc ? [loc.segment, loc.sequence ?? '', loc.field ?? '', loc.component ?? ''].join('^').replace(/\^+$/, '') : '';
    if (/^2\.[34]/.test(version)) {
      const where1 = loc ? [loc.segment, loc.sequence ?? '', loc.field ?? ''].join('^') : '';
      segs.push(['ERR', `${where1}^${cond.code}&${esc(cond.text)}&HL70357`].join('|'));
    } else {
      segs.push(['ERR', '', where, `${cond.code}^${esc(cond.text)}^HL70357`, 'E', '', '', '', esc(h.message)].join('|'));
    }
  }
  return segs.join('\r') + '\r';
}
