import { randomUUID } from 'node:crypto';
import { hl7Timestamp } from './ack.ts';

/** The result a business acknowledgement answers: its MSH-10 and who sent it (MSH-3/4). */
export interface ZamOriginal {
  controlId: string;
  sendingApplication: string;
  sendingFacility: string;
}

export interface ZamInput {
  /** Z02: MSSanté reception (from the DSN); Z03: MSSanté read (from the MDN). */
  event: 'Z02' | 'Z03';
  original: ZamOriginal;
  recipient: { id?: string; address: string };
  /** false: the recipient did not get it (failed DSN) or could not integrate it (MDN error); an ERR says why. */
  success: boolean;
  errorText?: string;
  gatewayApplication?: string;
  gatewayFacility?: string;
  at?: Date;
}

const esc = (s: string) => s.replace(/\\/g, '\\E\\').replace(/\|/g, '\\F\\').replace(/\^/g, '\\S\\').replace(/&/g, '\\T\\').replace(/~/g, '\\R\\').replace(/[\r\n]+/g, ' ');

/**
 * An HL7 v2.6 ZAM^Z02 / ZAM^Z03 business acknowledgement of the ANS volet (§4 of the reference): OBX-1 names the
 * acknowledged result by its control id, OBX-2 the MSSanté recipient (X.400 address).
 */
export function buildZam(z: ZamInput): string {
  const at = hl7Timestamp(z.at);
  const [ackCode, ackLabel, whoCode, whoLabel] = z.event === 'Z02'
    ? ['ACK_RECEPTION_MSS', 'Accusé de réception MSSanté', 'DESTINATAIRE_MSS', 'Destinataire MSSanté']
    : ['ACK_LECTURE_MSS', 'Accusé de lecture', 'LECTEUR_MSS', 'Lecteur du courriel MSSanté'];
  const segs = [
    ['MSH', '^~\\&', z.gatewayApplication ?? 'MSSGW', z.gatewayFacility ?? '', esc(z.original.sendingApplication), esc(z.original.sendingFacility), at, '',
      `ZAM^${z.event}^ZAM_Z01`, randomUUID().replace(/-/g, '').slice(0, 20), 'P', '2.6', '', '', '', '', 'FRA', 'UNICODE UTF-8', '', '', '2.1^CISIS_CDA_HL7_V2'].join('|'),
    `EVN||${at}`,
    `OBX|1|CWE|${ackCode}^${ackLabel}^AckMetierZAM|${esc(z.original.controlId)}|${z.success ? 'Y' : 'N'}^^expandedYes-NoIndicator||||||F|`,
    `OBX|2|XTN|${whoCode}^${whoLabel}^AckMetierZAM|${esc(z.recipient.id ?? '')}|^^X.400^${esc(z.recipient.address)}||||||F|`,
  ];
  if (!z.success) segs.push(`ERR|||207^Application error^messageErrorCondition|E||||${esc(z.errorText ?? 'not delivered')}`);
  return segs.join('\r') + '\r';
}
