import { DirectoryStore, importExtraction } from '@mssgw/directory';
import { connectRedis, type RedisEndpoint } from '@mssgw/queue';

/**
 * Child process of the router for the scheduled directory refresh: a 535k-row import briefly needs a few hundred
 * MB, which the router itself must not carry. It gets its task over IPC and answers with the report or the error.
 */
interface Task {
  redis: RedisEndpoint;
  prefix: string;
  location: string;
  minRatio: number;
  /** CA certificates trusted for an https location besides Node's store (directory.extraction.caFile). */
  caFile?: string | undefined;
}

process.once('message', (task: Task) => {
  const redis = connectRedis(task.redis);
  importExtraction(new DirectoryStore(redis, task.prefix), task.location, { minRatio: task.minRatio, caFile: task.caFile })
    // The report carries the rejected rows counted by reason with their first line numbers; their details stay here.
    .then(({ rejections: _details, ...report }) => process.send!({ ok: true, report }))
    .catch((err: Error) => process.send!({ ok: false, error: `${err.name}: ${err.message}` }))
    .finally(() => void redis.quit().finally(() => process.disconnect()));
});
