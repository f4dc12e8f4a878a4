export { createLogger, type Logger } from './logger.ts';
export { registry, metrics, referenceData } from './metrics.ts';
export { ERRORS, ERROR_FAMILIES, codeOf, type ErrorCode, type ErrorEntry, type ErrorFamily } from './errors.ts';
