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

/** JSON lines on stdout (what container platforms collect), or appended to MSSGW_LOG_FILE when set. */
export function createLogger(name: string, level = process.env['MSSGW_LOG_LEVEL'] ?? 'info'): Logger {
  const file = process.env['MSSGW_LOG_FILE'];
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: name } };
  return file ? pino(options, pino.destination({ dest: file, append: true, mkdir: true })) : pino(options);
}
