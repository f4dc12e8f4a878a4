export { afterIssuedWrites, connectOrderedRedis, connectRedis, redisOptions, type Redis, type RedisEndpoint } from './connection.ts';
export { QUEUES, stableId, resultIdOf } from './names.ts';
export { IntakeJob, MailSpec, DeliveryJob, QueuedResult, type DocumentRef } from './jobs.ts';
export { existing, RedisScript } from './script.ts';
