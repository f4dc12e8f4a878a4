export { afterIssuedWrites, connectOrderedRedis, connectRedis, redisOptions, type Redis, type RedisEndpoint } from './connection.ts';
export { QUEUES, stableId, resultIdOf } from './names.ts';
export { DocumentStore, ExpiringStore, MailStore } from './documents.ts';
export { IntakeJob, MailSpec, DeliveryJob, type DocumentRef, type QueuedResult } from './jobs.ts';
export { existing, RedisScript } from './script.ts';
