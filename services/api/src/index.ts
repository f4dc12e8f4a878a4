import { Queue } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import { QUEUES } from '@mssgw/queue';
import { bullConnection, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { metrics, registry } from '@mssgw/telemetry';
import { searchResults, SearchTimeoutError } from '@mssgw/store';
import { deliverySchema, errorSchema, mailSchema, resultSchema, resultsPageSchema, resultSummarySchema } from './schemas.ts';
import { parseSearch, resultsQuerySchema, unknownParameters, type ResultsQuery } from './search.ts';

export interface ApiService extends RunningService {
  app: FastifyInstance;
  port: number;
}

const STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;

/** Queue depths are read when Prometheus scrapes, so the gauge is never staler than the scrape. */
function queueDepthCollector(ctx: ServiceContext): { (): Promise<void>; close(): Promise<unknown> } {
  const names = [QUEUES.intake, QUEUES.deadLetter, ...ctx.config.mailboxes.map((m) => QUEUES.send(m.address))];
  const queues = names.map((n) => new Queue(n, bullConnection(ctx.config)));
  const collect = async () => {
    await Promise.all(
      queues.map(async (q) => {
        const counts = await q.getJobCounts(...STATES);
        for (const s of STATES) metrics.queueJobs.set({ queue: q.name, state: s }, counts[s] ?? 0);
      }),
    );
  };
  collect.close = () => Promise.all(queues.map((q) => q.close()));
  return collect;
}

const idParam = { type: 'object', properties: { id: { type: 'string', pattern: '^[a-z]-[0-9a-f]{24}$' } }, required: ['id'] } as const;

/**
 * The HTTP face of the gateway: /healthz, /metrics, and the status of results and their recipients
 * (/api/v1/results/:id, /api/v1/results?controlId=, the search /api/v1/results?patient=&state=..., /api/v1/deliveries/:id).
 */
export async function startApi(ctx: ServiceContext, portOverride?: number): Promise<ApiService> {
  const app = Fastify({ logger: false });
  const collect = queueDepthCollector(ctx);

  app.get('/healthz', async (_req, reply) => {
    try {
      await ctx.redis.ping();
      return { status: 'ok' };
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', reason: `redis: ${(err as Error).message}` });
    }
  });

  app.get('/metrics', async (_req, reply) => {
    await collect().catch((err: Error) => ctx.log.warn({ err: err.message }, 'queue depth collection failed'));
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  app.get('/api/v1/schema', () => ({ result: resultSchema, resultSummary: resultSummarySchema, mail: mailSchema, delivery: deliverySchema, error: errorSchema }));

  app.get('/api/v1/results/:id', { schema: { params: idParam, response: { 200: resultSchema, 404: errorSchema } } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const result = await ctx.status.getResult(id);
    return result ?? reply.code(404).send({ error: 'not-found', reason: `no result ${id}` });
  });

  app.get(
    '/api/v1/results',
    {
      schema: { querystring: resultsQuerySchema, response: { 200: resultsPageSchema, 400: errorSchema, 503: errorSchema } },
      // Before the schema, which drops what it does not know: a misspelt filter would silently widen the search.
      preValidation: async (req, reply) => {
        const unknown = unknownParameters(req.url);
        if (unknown.length) return reply.code(400).send({ error: 'bad-request', reason: `unknown parameter ${unknown[0]!.slice(0, 40)}` });
      },
    },
    async (req, reply) => {
      const q = req.query as ResultsQuery;
      if (q.controlId !== undefined || q.documentId !== undefined) {
        if (Object.keys(q).length > 1) return reply.code(400).send({ error: 'bad-request', reason: 'controlId or documentId is looked up alone' });
        const ids = q.controlId ? await ctx.status.resultsByControlId(q.controlId) : await ctx.status.resultsByDocumentId(q.documentId!);
        return { results: (await Promise.all(ids.map((id) => ctx.status.getResult(id)))).filter(Boolean) };
      }
      const search = parseSearch(q);
      if ('refused' in search) return reply.code(400).send({ error: 'bad-request', reason: search.refused });
      try {
        return await searchResults(ctx.pg, search);
      } catch (err) {
        if (err instanceof SearchTimeoutError) return reply.code(503).send({ error: 'timeout', reason: 'the search took too long: add a filter or narrow the dates' });
        throw err;
      }
    },
  );

  // A mail: one of a result's mails (professionals or patient), with the state of each of its recipients.
  app.get(
    '/api/v1/mails/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^r-[0-9a-f]{24}-(ps|pat)$' } }, required: ['id'] }, response: { 200: mailSchema, 404: errorSchema } } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const result = await ctx.status.getResult(id.replace(/-(ps|pat)$/, ''));
      const deliveries = result?.deliveries.filter((d) => d.mailId === id) ?? [];
      if (!result || deliveries.length === 0) return reply.code(404).send({ error: 'not-found', reason: `no mail ${id}` });
      return { mailId: id, resultId: result.resultId, messageId: deliveries[0]!.messageId, deliveries };
    },
  );

  app.get('/api/v1/deliveries/:id', { schema: { params: idParam, response: { 200: deliverySchema, 404: errorSchema } } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const delivery = await ctx.status.getDelivery(id);
    if (!delivery) return reply.code(404).send({ error: 'not-found', reason: `no delivery ${id}` });
    return { ...delivery, history: await ctx.status.history(id) };
  });

  app.setErrorHandler((err: { statusCode?: number; message: string }, req, reply) => {
    const code = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (code < 500) return reply.code(code).send({ error: 'bad-request', reason: err.message });
    // What failed inside (a store's message, a stack) stays in the log, under the request's id; the caller gets the id.
    ctx.log.error({ requestId: req.id, err: err.message }, 'API error');
    return reply.code(500).send({ error: 'internal', reason: `internal error (request ${req.id}); the gateway's log has the cause` });
  });

  await app.listen({ host: ctx.config.http.host, port: portOverride ?? ctx.config.http.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : ctx.config.http.port;
  ctx.log.info({ host: ctx.config.http.host, port }, 'HTTP API ready');
  return {
    name: 'api',
    app,
    port,
    async stop() {
      await app.close();
      await collect.close();
    },
  };
}
