import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { ApiAccessConfig } from '@mssgw/config';
import { looksLikeApiKey, OidcVerifier, recordAudit, roleAllows, verifyApiKey, type Role } from '@mssgw/auth';
import { redisKeys } from '@mssgw/queue';
import type { ServiceContext } from '@mssgw/runtime';

/** Who is calling: an API key (its id) or an OIDC subject, with the role it has (none: a token without a role of ours). */
export interface Caller {
  kind: 'key' | 'oidc';
  id: string;
  role: Role | undefined;
}

type Check = { caller: Caller; refused?: undefined } | { refused: { status: 401 | 503; reason: string }; caller?: undefined };

declare module 'fastify' {
  interface FastifyRequest {
    access?: Check;
    /** What the audit trail records of this request: the ids read or acted on, a search's filter names, why it was refused. */
    audit: { ids: string[]; filters: string[]; reason?: string };
  }
  interface FastifyContextConfig {
    /** The least role that may use the route; a route without one is open (/healthz, /metrics). */
    role?: Role;
    /** false: not written to the audit trail when allowed (no patient data: the schemas). Refusals always are. */
    audit?: boolean;
  }
}

/** Refusals the caller is told, each with its status: a fixed text (never an internal message). */
export const refuse = (req: FastifyRequest, reply: FastifyReply, status: 401 | 403, reason: string) => {
  req.audit.reason = reason;
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="mssgw"');
  return reply.code(status).send({ error: status === 401 ? 'unauthorized' : 'forbidden', reason });
};

/** The credential of a request: `Authorization: Bearer <API key or OIDC token>`, or `X-API-Key: <API key>`. */
export function credentialOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer[ ]+(\S{1,8192})\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const key = req.headers['x-api-key'];
  return typeof key === 'string' ? key.trim() : undefined;
}

/** Whether a Host header is one the configuration names (a name alone matches it on any port). */
export function hostAllowed(host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  if (!host) return false;
  const h = host.toLowerCase();
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d+$/, '');
  return allowed.some((a) => a.toLowerCase() === h || a.toLowerCase() === name);
}

/**
 * The API's gate, in the order fastify runs it for each request to a protected route: the Host check, the
 * credential (onRequest), the per-caller rate limit (its route hook, after), then the role (preParsing, before the
 * body is read or the parameters validated); every answer of a protected route (read, action, refusal) is written
 * to the audit trail before it leaves (onSend). A trail that cannot be written withholds the answer (503).
 */
export async function installAccess(app: FastifyInstance, ctx: ServiceContext, access: ApiAccessConfig): Promise<void> {
  const oidc = access.oidc ? new OidcVerifier(access.oidc) : undefined;
  app.decorateRequest('audit', null as unknown as FastifyRequest['audit']);
  const isProtected = (req: FastifyRequest) => req.routeOptions.config.role !== undefined || req.is404;

  const check = async (req: FastifyRequest): Promise<Check> => {
    const credential = credentialOf(req);
    if (credential === undefined) return { refused: { status: 401, reason: 'no credential: send Authorization: Bearer <API key or OIDC access token>' } };
    if (!credential) return { refused: { status: 401, reason: 'malformed Authorization header: expected Bearer <token>' } };
    try {
      if (looksLikeApiKey(credential)) {
        const key = await verifyApiKey(ctx.pg, credential);
        if ('refused' in key) return { refused: { status: 401, reason: key.refused } };
        return { caller: { kind: 'key', id: key.keyId, role: key.role } };
      }
      if (!oidc) return { refused: { status: 401, reason: 'not an API key, and this API takes no OIDC token (api.oidc)' } };
      const token = await oidc.verify(credential);
      if ('unavailable' in token) return { refused: { status: 503, reason: token.unavailable } };
      if ('refused' in token) return { refused: { status: 401, reason: token.refused } };
      return { caller: { kind: 'oidc', id: token.subject, role: token.role } };
    } catch (err) {
      ctx.log.error({ requestId: req.id, err: (err as Error).message }, 'credential check failed');
      return { refused: { status: 503, reason: 'credentials cannot be checked now' } };
    }
  };

  app.addHook('onRequest', async (req, reply) => {
    if (!isProtected(req)) return;
    req.audit = { ids: [], filters: [] };
    if (!hostAllowed(req.headers.host, access.allowedHosts)) {
      return reply.code(421).send({ error: 'misdirected', reason: 'this server does not answer for that host' });
    }
    req.access = await check(req);
  });

  // Counted per caller, in Redis, so that every api replica shares one count; a caller without a valid credential
  // is counted by its address. Redis out of reach lets requests through rather than refusing everyone.
  await app.register(rateLimit, {
    // Every route; /healthz and /metrics opt out (config.rateLimit false).
    global: true,
    max: access.rateLimit.max,
    timeWindow: access.rateLimit.windowMs,
    redis: ctx.redis,
    nameSpace: redisKeys(ctx.config.redis.prefix).apiRate,
    skipOnError: true,
    keyGenerator: (req) => (req.access?.caller ? `${req.access.caller.kind}:${req.access.caller.id}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, c) => Object.assign(new Error(`too many requests: retry in ${c.after}`), { statusCode: 429, code: 'MSSGW_RATE_LIMITED' }),
  });

  app.addHook('preParsing', async (req, reply) => {
    if (!isProtected(req) || !req.access) return;
    if (req.access.refused) {
      const { status, reason } = req.access.refused;
      if (status === 503) return reply.code(503).send({ error: 'unavailable', reason });
      return refuse(req, reply, status, reason);
    }
    const need = req.routeOptions.config.role ?? 'viewer';
    const have = req.access.caller?.role;
    if (!have) return refuse(req, reply, 403, 'the token has no role of this API');
    if (!roleAllows(have, need)) return refuse(req, reply, 403, `this needs the ${need} role`);
  });

  app.addHook('onSend', async (req, reply, payload) => {
    // An unknown route reads nothing: its refusals are not written either (a scanner's paths are not rate-limited).
    if (!isProtected(req) || !req.access || !req.audit || req.is404) return payload;
    const status = reply.statusCode;
    if (status === 421 || status === 429) return payload; // before any identity is known, or a flood: not written row by row
    const caller = req.access.caller;
    // Credentials that could not be checked (the store or the IdP out of reach): nothing shown, nobody identified.
    if (!caller && status === 503) return payload;
    const refused = status === 401 || status === 403 || !caller;
    if (!refused && req.routeOptions.config.audit === false) return payload;
    if (refused) ctx.log.info({ requestId: req.id, status, route: req.routeOptions.url, actor: caller?.id ?? null, reason: req.audit.reason ?? req.access.refused?.reason }, 'API request refused');
    try {
      await recordAudit(ctx.pg, {
        actorKind: caller?.kind ?? 'none',
        actor: caller?.id ?? null,
        role: caller?.role ?? null,
        method: req.method,
        route: req.routeOptions.url ?? 'unknown',
        status,
        outcome: refused ? 'refused' : 'allowed',
        reason: req.audit.reason ?? null,
        ids: req.audit.ids,
        filters: req.audit.filters,
        client: req.ip,
        requestId: String(req.id),
      });
      return payload;
    } catch (err) {
      ctx.log.error({ requestId: req.id, err: (err as Error).message }, 'audit trail not written; answer withheld');
      reply.code(503).header('content-type', 'application/json; charset=utf-8');
      return JSON.stringify({ error: 'unavailable', reason: `the audit trail cannot be written, so nothing is shown (request ${req.id})` });
    }
  });
}
