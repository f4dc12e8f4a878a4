export { createLogger, type Logger } from './logger.ts';
export { registry, metrics, referenceData } from './metrics.ts';
