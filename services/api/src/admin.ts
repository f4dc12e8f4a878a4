import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createApiKey, listApiKeys, queryAudit, revokeApiKey, ROLES, type ApiKey, type AuditEvent, type Role } from '@mssgw/auth';
import type { ServiceContext } from '@mssgw/runtime';
import { instantOf, unknownParameters } from './search.ts';

/** Admin routes: the audit trail (GET /api/v1/audit) and API keys (GET, POST /api/v1/keys, DELETE /api/v1/keys/:id). */
export const AUDIT_PARAMETERS = ['actor', 'outcome', 'id', 'route', 'from', 'to', 'limit', 'cursor'] as const;

const auditQuerySchema = {
  type: 'object',
  properties: {
    actor: { type: 'string', minLength: 1, maxLength: 300, description: 'an API key id or an OIDC subject' },
    outcome: { type: 'string', enum: ['allowed', 'refused'] },
    id: { type: 'string', minLength: 1, maxLength: 100, description: 'events naming this result, delivery, mail or key id' },
    route: { type: 'string', minLength: 1, maxLength: 200, description: 'a route pattern, e.g. /api/v1/results/:id' },
    from: { type: 'string', maxLength: 40 },
    to: { type: 'string', maxLength: 40 },
    limit: { type: 'integer', minimum: 1, maximum: 500 },
    cursor: { type: 'string', maxLength: 100 },
  },
} as const;
type AuditParams = { actor?: string; outcome?: 'allowed' | 'refused'; id?: string; route?: string; from?: string; to?: string; limit?: number; cursor?: string };

export const auditEventSchema = {
  type: 'object',
  required: ['id', 'at', 'actorKind', 'method', 'route', 'status', 'outcome', 'ids', 'filters', 'client', 'requestId'],
  properties: {
    id: { type: 'string' },
    at: { type: 'integer', description: 'Unix time in ms' },
    actorKind: { type: 'string', enum: ['key', 'oidc', 'none'] },
    actor: { type: 'string', description: "the API key's id or the OIDC subject; absent without a credential" },
    role: { type: 'string' },
    method: { type: 'string' },
    route: { type: 'string' },
    status: { type: 'integer' },
    outcome: { type: 'string', enum: ['allowed', 'refused'] },
    reason: { type: 'string' },
    ids: { type: 'array', items: { type: 'string' } },
    filters: { type: 'array', items: { type: 'string' }, description: "a search's filter names (never their values)" },
    client: { type: 'string' },
    requestId: { type: 'string' },
  },
} as const;

export const apiKeySchema = {
  type: 'object',
  required: ['keyId', 'name', 'role', 'createdAt', 'createdBy'],
  properties: {
    keyId: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: ROLES },
    createdAt: { type: 'integer' },
    createdBy: { type: 'string' },
    revokedAt: { type: 'integer' },
    lastUsedAt: { type: 'integer' },
    key: { type: 'string', description: 'the key itself: in the answer to its creation only' },
  },
} as const;

const ms = (d: Date | null) => (d ? d.getTime() : undefined);
export const describeKey = (k: ApiKey) => ({ ...k, createdAt: k.createdAt.getTime(), revokedAt: ms(k.revokedAt), lastUsedAt: ms(k.lastUsedAt) });
const describeEvent = (e: AuditEvent) => ({ ...e, at: e.at.getTime(), actor: e.actor ?? undefined, role: e.role ?? undefined, reason: e.reason ?? undefined });

const bad = (reply: FastifyReply, reason: string) => reply.code(400).send({ error: 'bad-request', reason });
const keyId = { type: 'object', properties: { id: { type: 'string', pattern: '^k-[0-9a-f]{24}$' } }, required: ['id'] } as const;
/** Who did it, as the key records its creator: `key:<id>` or `oidc:<subject>`. */
const who = (req: FastifyRequest) => `${req.access?.caller?.kind ?? 'none'}:${req.access?.caller?.id ?? '-'}`;

export function adminRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const admin = { role: 'admin' as const };

  app.get('/api/v1/audit', {
    config: admin,
    schema: { querystring: auditQuerySchema },
    preValidation: async (req, reply) => {
      const unknown = unknownParameters(req.url, AUDIT_PARAMETERS);
      if (unknown.length) return bad(reply, `unknown parameter ${unknown[0]!.slice(0, 40)}`);
    },
  }, async (req, reply) => {
    const q = req.query as AuditParams;
    const from = q.from === undefined ? undefined : instantOf(q.from, false);
    const to = q.to === undefined ? undefined : instantOf(q.to, true);
    if ((q.from !== undefined && !from) || (q.to !== undefined && !to)) return bad(reply, 'from and to must be ISO 8601 dates or date-times with their zone');
    req.audit.filters = Object.keys(q);
    try {
      const page = await queryAudit(ctx.pg, {
        limit: q.limit ?? 100,
        ...(q.actor !== undefined ? { actor: q.actor } : {}),
        ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
        ...(q.id !== undefined ? { id: q.id } : {}),
        ...(q.route !== undefined ? { route: q.route } : {}),
        ...(from ? { from: new Date(from) } : {}),
        ...(to ? { to: new Date(to) } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      });
      return { events: page.events.map(describeEvent), ...(page.next ? { next: page.next } : {}) };
    } catch (err) {
      if (err instanceof RangeError) return bad(reply, 'cursor is not one this API gave');
      throw err;
    }
  });

  app.get('/api/v1/keys', { config: admin }, async (req) => {
    const keys = await listApiKeys(ctx.pg);
    req.audit.ids = keys.map((k) => k.keyId);
    return { keys: keys.map(describeKey) };
  });

  app.post('/api/v1/keys', {
    config: admin,
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'role'],
        properties: { name: { type: 'string', minLength: 1, maxLength: 100 }, role: { type: 'string', enum: ROLES } },
      },
    },
  }, async (req, reply) => {
    const body = req.body as { name: string; role: Role };
    const { key, apiKey } = await createApiKey(ctx.pg, { name: body.name, role: body.role, createdBy: who(req) });
    req.audit.ids = [apiKey.keyId];
    return reply.code(201).send({ ...describeKey(apiKey), key });
  });

  app.delete('/api/v1/keys/:id', { config: admin, schema: { params: keyId } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    req.audit.ids = [id];
    if (!(await revokeApiKey(ctx.pg, id))) return reply.code(404).send({ error: 'not-found', reason: `no active key ${id}` });
    return reply.code(204).send();
  });
}
