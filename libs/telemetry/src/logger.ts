import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Health data never reaches a log line: these paths are censored wherever they appear. The code logs control ids,
 * message ids, job ids and reasons; the redaction is the safety net when an object slips through.
 */
const REDACT = [
  'patient', '*.patient', 'ins', '*.ins', 'name', '*.name', 'birthDate', '*.birthDate', 'address', '*.address',
  'recipient', '*.recipient', 'to', '*.to', 'subject', '*.subject', 'body', '*.body', 'content', '*.content',
  'hl7', '*.hl7', 'raw', '*.raw', 'text', '*.text', 'password', '*.password', 'key', '*.key',
];

export function createLogger(name: string, level = process.env['MSSGW_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: name } });
}

/** A mail address reduced to what may be logged: its domain. */
export const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();
