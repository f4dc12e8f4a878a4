import { readFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { apiAccessOf } from '@mssgw/config';
import { maskAddress, maskDelivery, maskName, maskResult, maskResultsPage, maskText, pruneAudit } from '@mssgw/auth';
import { listDeadLetters, replayDeadLetters } from '@mssgw/dispatcher';
import { QUEUES } from '@mssgw/queue';
import { bullConnection, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { metrics, registry } from '@mssgw/telemetry';
import { searchResults, SearchTimeoutError } from '@mssgw/store';
import { installAccess, refuse } from './access.ts';
import { adminRoutes, apiKeySchema, auditEventSchema } from './admin.ts';
import { deliverySchema, errorSchema, mailSchema, resultSchema, resultsPageSchema, resultSummarySchema } from './schemas.ts';
import { oppositionRoutes } from './oppositions.ts';
import { closePatientConversation, CloseRefused } from './patient.ts';
import { parseSearch, resultsQuerySchema, unknownParameters, type ResultsQuery } from './search.ts';

export { credentialOf, hostAllowed, type Caller } from './access.ts';
export { closePatientConversation, CloseRefused, FIN_SUBJECT, INS_PATTERN, type ClosedConversation } from './patient.ts';
export { OVERVIEW_QUERIES } from './overview.ts';

export interface ApiService extends RunningService {
  app: FastifyInstance;
  port: number;
  /** https when api.tls is set and this process serves the API. */
  scheme: 'http' | 'https';
}

export interface HttpOptions {
  /** Serve the API's routes (the api service); else only /healthz and /metrics. Default: true. */
  routes?: boolean;
  port?: number;
}

/** Filters a viewer may not search by: they find a patient or a practitioner, whose identity a viewer does not see. */
const IDENTITY_FILTERS = ['patient', 'name', 'recipient'] as const;
const HOUR = 3_600_000;

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
 * The HTTP face of the gateway. Every process serves /healthz and /metrics; the api service also serves the status of
 * results and their recipients (/api/v1/results/:id, /api/v1/results?controlId=, the search, /api/v1/deliveries/:id),
 * the dead-letter actions and the admin routes, each behind an API key or an OIDC token with its role (access.ts).
 */
export async function startApi(ctx: ServiceContext, options: HttpOptions = {}): Promise<ApiService> {
  const routes = options.routes ?? true;
  const access = apiAccessOf(ctx.config);
  const tls = routes ? access.tls : undefined;
  const https = tls
    ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), ...(tls.clientCaFile ? { ca: readFileSync(tls.clientCaFile), requestCert: true, rejectUnauthorized: true } : {}), minVersion: 'TLSv1.2' as const }
    : undefined;
  const trustProxy = access.trustProxy.length ? access.trustProxy : false;
  const app = (https ? Fastify({ logger: false, trustProxy, https }) : Fastify({ logger: false, trustProxy })) as unknown as FastifyInstance;
  const collect = queueDepthCollector(ctx);
  const open = { config: { rateLimit: false as const } };

  app.get('/healthz', open, async (_req, reply) => {
    try {
      await ctx.redis.ping();
      return { status: 'ok' };
    } catch (err) {
      // The driver's message (an address, a port) stays in the log: /healthz is open to anyone who reaches the port.
      ctx.log.warn({ err: (err as Error).message }, 'health check: Redis does not answer');
      return reply.code(503).send({ status: 'unavailable', reason: 'redis does not answer' });
    }
  });

  app.get('/metrics', open, async (_req, reply) => {
    await collect().catch((err: Error) => ctx.log.warn({ err: err.message }, 'queue depth collection failed'));
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  let pruning: NodeJS.Timeout | undefined;
  if (routes) {
    await installAccess(app, ctx, access);
    apiRoutes(app, ctx);
    oppositionRoutes(app, ctx);
    adminRoutes(app, ctx);
    (await import('./console.ts')).consoleRoutes(app, ctx); // the operator console at / (issue #24, docs/console.md)
    // The audit trail's retention: at start, then hourly (every api replica may; a prune finds little after another).
    const prune = () =>
      pruneAudit(ctx.pg, new Date(Date.now() - access.auditRetentionDays * 86_400_000)).then(
        (n) => n && ctx.log.info({ events: n, retentionDays: access.auditRetentionDays }, 'audit trail pruned'),
        (err: Error) => ctx.log.warn({ err: err.message }, 'audit trail prune failed'),
      );
    void prune();
    pruning = setInterval(() => void prune(), HOUR).unref();
  }

  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not-found', reason: 'no such route' }));
  app.setErrorHandler((err: { statusCode?: number; message: string; validation?: unknown; code?: string }, req, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    // A validation error names the parameter and the rule, never the value; the rate limit's says when to retry.
    if (code === 400 && err.validation) return reply.code(400).send({ error: 'bad-request', reason: err.message });
    if (code === 429 && err.code === 'MSSGW_RATE_LIMITED') return reply.code(429).send({ error: 'rate-limited', reason: err.message });
    // Any other 4xx (a body too large or not JSON, a media type...) by its status alone: the parser's text stays here.
    if (code < 500) return reply.code(code).send({ error: CLIENT_ERRORS[code] ?? 'bad-request', reason: `request refused (HTTP ${code})` });
    // What failed inside (a store's message, a stack) stays in the log, under the request's id; the caller gets the id.
    ctx.log.error({ requestId: req.id, err: err.message }, 'API error');
    return reply.code(500).send({ error: 'internal', reason: `internal error (request ${req.id}); the gateway's log has the cause` });
  });

  await app.listen({ host: ctx.config.http.host, port: options.port ?? ctx.config.http.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : ctx.config.http.port;
  const scheme = https ? 'https' : 'http';
  ctx.log.info({ host: ctx.config.http.host, port, scheme, api: routes, oidc: Boolean(access.oidc), allowedHosts: access.allowedHosts }, routes ? 'HTTP API ready' : 'HTTP health and metrics ready');
  return {
    name: 'api',
    app,
    port,
    scheme,
    async stop() {
      clearInterval(pruning);
      await app.close();
      await collect.close();
    },
  };
}

const CLIENT_ERRORS: Record<number, string> = { 404: 'not-found', 405: 'method-not-allowed', 406: 'not-acceptable', 413: 'too-large', 415: 'unsupported-media-type' };

const viewer = (req: FastifyRequest) => req.access?.caller?.role === 'viewer';

/** The status of results and recipients (viewer: identities masked), and the dead-letter actions (operator). */
function apiRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const reader = { role: 'viewer' as const };
  app.get('/api/v1/schema', { config: { ...reader, audit: false } }, () => ({
    result: resultSchema, resultSummary: resultSummarySchema, mail: mailSchema, delivery: deliverySchema, error: errorSchema,
    auditEvent: auditEventSchema, apiKey: apiKeySchema,
  }));

  app.get('/api/v1/results/:id', { config: reader, schema: { params: idParam, response: { 200: resultSchema, 404: errorSchema } } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    req.audit.ids = [id];
    const result = await ctx.status.getResult(id);
    if (!result) return reply.code(404).send({ error: 'not-found', reason: `no result ${id}` });
    req.audit.ids.push(...result.deliveries.map((d) => d.deliveryId));
    return viewer(req) ? maskResult(result as unknown as Record<string, unknown>) : result;
  });

  app.get(
    '/api/v1/results',
    {
      config: reader,
      schema: { querystring: resultsQuerySchema, response: { 200: resultsPageSchema, 400: errorSchema, 403: errorSchema, 503: errorSchema } },
      // Before the schema, which drops what it does not know: a misspelt filter would silently widen the search.
      preValidation: async (req, reply) => {
        const unknown = unknownParameters(req.url);
        if (unknown.length) return reply.code(400).send({ error: 'bad-request', reason: `unknown parameter ${unknown[0]!.slice(0, 40)}` });
      },
    },
    async (req, reply) => {
      const q = req.query as ResultsQuery;
      // The filters' names, never their values (an INS, a name, an address): what the audit trail keeps of a search.
      req.audit.filters = Object.keys(q);
      const identity = IDENTITY_FILTERS.filter((f) => q[f] !== undefined);
      if (viewer(req) && identity.length) return refuse(req, reply, 403, `searching by ${identity.join(', ')} needs the operator role`);
      let page: { results: { resultId: string }[]; next?: string };
      if (q.controlId !== undefined || q.documentId !== undefined) {
        if (Object.keys(q).length > 1) return reply.code(400).send({ error: 'bad-request', reason: 'controlId or documentId is looked up alone' });
        const ids = q.controlId ? await ctx.status.resultsByControlId(q.controlId) : await ctx.status.resultsByDocumentId(q.documentId!);
        page = { results: (await Promise.all(ids.map((id) => ctx.status.getResult(id)))).filter((r) => r !== undefined && r !== null) };
      } else {
        const search = parseSearch(q);
        if ('refused' in search) return reply.code(400).send({ error: 'bad-request', reason: search.refused });
        try {
          page = await searchResults(ctx.pg, search);
        } catch (err) {
          if (err instanceof SearchTimeoutError) return reply.code(503).send({ error: 'timeout', reason: 'the search took too long: add a filter or narrow the dates' });
          throw err;
        }
      }
      req.audit.ids = page.results.map((r) => r.resultId);
      return viewer(req) ? maskResultsPage(page as unknown as { results: Record<string, unknown>[] }) : page;
    },
  );

  // A mail: one of a result's mails (professionals or patient), with the state of each of its recipients.
  app.get(
    '/api/v1/mails/:id',
    {
      config: reader,
      schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^r-[0-9a-f]{24}-(ps|pat)$' } }, required: ['id'] }, response: { 200: mailSchema, 404: errorSchema } },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      req.audit.ids = [id];
      const result = await ctx.status.getResult(id.replace(/-(ps|pat)$/, ''));
      const deliveries = result?.deliveries.filter((d) => d.mailId === id) ?? [];
      if (!result || deliveries.length === 0) return reply.code(404).send({ error: 'not-found', reason: `no mail ${id}` });
      req.audit.ids.push(result.resultId, ...deliveries.map((d) => d.deliveryId));
      const mail = { mailId: id, resultId: result.resultId, messageId: deliveries[0]!.messageId, deliveries };
      return viewer(req) ? maskResult(mail as unknown as Record<string, unknown>) : mail;
    },
  );

  app.get('/api/v1/deliveries/:id', { config: reader, schema: { params: idParam, response: { 200: deliverySchema, 404: errorSchema } } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    req.audit.ids = [id];
    const delivery = await ctx.status.getDelivery(id);
    if (!delivery) return reply.code(404).send({ error: 'not-found', reason: `no delivery ${id}` });
    req.audit.ids.push(delivery.resultId);
    const full = { ...delivery, history: await ctx.status.history(id) };
    return viewer(req) ? maskDelivery(full as unknown as Record<string, unknown>) : full;
  });

  // Dead letters: the deliveries that exhausted their retries (mssgw dlq list), and their replay (mssgw dlq replay).
  app.get('/api/v1/dead-letters', { config: reader }, async (req) => {
    const dead = await listDeadLetters(ctx);
    req.audit.ids = dead.map((d) => d.deliveryId);
    return { deadLetters: viewer(req) ? dead.map((d) => ({ ...d, reason: maskText(d.reason) })) : dead };
  });

  app.post('/api/v1/dead-letters/:id/replay', { config: { role: 'operator' }, schema: { params: idParam } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    req.audit.ids = [id];
    const report = { refused: [] as { deliveryId: string; reason: string; detail: string }[] };
    const replayed = await replayDeadLetters(ctx, { deliveryId: id }, report);
    // Checked again first (issue #22): a recipient whose domain left the liste blanche is refused, not replayed.
    const refused = report.refused[0];
    if (refused) {
      req.audit.reason = `refused: ${refused.reason}`;
      return reply.code(409).send({ error: 'refused', reason: `${refused.reason}: ${refused.detail}` });
    }
    if (replayed.length === 0) return reply.code(404).send({ error: 'not-found', reason: `no dead-lettered delivery ${id}` });
    return { replayed };
  });

  // Ends a patient's conversation with a sending mailbox: the one [FIN] message (issue #25, docs/message.md).
  app.post(
    '/api/v1/patients/:ins/close',
    {
      config: { role: 'operator' },
      schema: {
        params: { type: 'object', properties: { ins: { type: 'string', pattern: '^[0-9][0-9ABab][0-9]{13}$' } }, required: ['ins'] },
        body: { type: 'object', properties: { mailbox: { type: 'string', minLength: 3, maxLength: 254 } }, required: ['mailbox'], additionalProperties: false },
      },
    },
    async (req, reply) => {
      const { ins } = req.params as { ins: string };
      const { mailbox } = req.body as { mailbox: string };
      const caller = req.access?.caller;
      try {
        const closed = await closePatientConversation(ctx, { ins, mailbox, by: caller ? `${caller.kind}:${caller.id}` : 'api' });
        // Ids only: the INS is in the path, which the audit trail keeps as its pattern.
        req.audit.ids = [closed.closingId, closed.deliveryId];
        return reply.code(closed.state === 'failed' ? 502 : 200).send(closed);
      } catch (err) {
        if (!(err instanceof CloseRefused)) throw err;
        req.audit.reason = err.code;
        if (err.code === 'patient-opposition') return reply.code(409).send({ error: 'refused', reason: err.message });
        return reply.code(400).send({ error: 'bad-request', reason: err.message });
      }
    },
  );

  // The replies that reached the sending mailboxes (issue #25): newest first; a viewer sees senders and subjects masked.
  app.get(
    '/api/v1/replies',
    {
      config: reader,
      schema: {
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            mailbox: { type: 'string', maxLength: 254 }, unmatched: { type: 'boolean' },
            resultId: { type: 'string', pattern: '^[a-z]-[0-9a-f]{24}$' }, deliveryId: { type: 'string', pattern: '^[a-z]-[0-9a-f]{24}$' },
            limit: { type: 'integer', minimum: 1, maximum: 500 }, before: { type: 'string', pattern: '^[0-9]{1,18}$' },
          },
        },
      },
      preValidation: async (req, reply) => {
        const known = new Set(['mailbox', 'unmatched', 'resultId', 'deliveryId', 'limit', 'before']);
        const unknown = [...new URL(req.url, 'http://x').searchParams.keys()].filter((k) => !known.has(k));
        if (unknown.length) return reply.code(400).send({ error: 'bad-request', reason: `unknown parameter ${unknown[0]!.slice(0, 40)}` });
      },
    },
    async (req) => {
      const q = req.query as { mailbox?: string; unmatched?: boolean; resultId?: string; deliveryId?: string; limit?: number; before?: string };
      req.audit.filters = Object.keys(q);
      const replies = await ctx.status.listReplies(q);
      req.audit.ids = replies.flatMap((r) => [`reply:${r.id}`, ...(r.deliveryId ? [r.deliveryId] : []), ...(r.resultId ? [r.resultId] : [])]);
      const next = replies.length === (q.limit ?? 50) ? replies[replies.length - 1]!.id : undefined;
      const shown = viewer(req)
        ? replies.map((r) => ({
          ...r,
          ...(r.from ? { from: maskAddress(r.from) } : {}),
          ...(r.subject ? { subject: maskName(r.subject) } : {}),
          ...(r.forwardTo ? { forwardTo: maskAddress(r.forwardTo) } : {}),
        }))
        : replies;
      return { replies: shown, ...(next ? { next } : {}) };
    },
  );
}
