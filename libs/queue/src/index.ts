export { afterIssuedWrites, connectOrderedRedis, connectRedis, redisOptions, type Redis, type RedisEndpoint, type RedisTls } from './connection.ts';
export { QUEUES, stableId, resultIdOf, redisKeys } from './names.ts';
export { IntakeJob, DeliveryJob } from './jobs.ts';
export { existing, RedisScript } from './script.ts';
