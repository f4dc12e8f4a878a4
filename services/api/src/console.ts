import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { apiAccessOf } from '@mssgw/config';
import { maskDelivery, maskIns, maskName } from '@mssgw/auth';
import { DELIVERY_STATES, isResendable } from '@mssgw/lifecycle';
import { DirectoryStore, practitionerKeys, structureKeys } from '@mssgw/directory';
import { QUEUES, redisKeys } from '@mssgw/queue';
import { domainAllowed, type LoadedWhitelist } from '@mssgw/whitelist';
import { bullConnection, readClusterHealth, type ClusterHealth, type ServiceContext } from '@mssgw/runtime';
import { registry } from '@mssgw/telemetry';
import { OVERVIEW_QUERIES } from './overview.ts';

/**
 * The operator console (issue #24, docs/console.md): its assets at / (built by services/console, no CDN), and the
 * routes it needs besides the API's own: its sign-in settings and the OIDC code exchange (open: no patient data),
 * who the caller is, the overview's counts, a result's HL7 facts with its recipients' timelines, and its documents
 * (an audited read, operator role: a document names the patient).
 */
const CONSOLE_DIR = path.resolve(import.meta.dirname, '../../console');
const DIST = path.join(CONSOLE_DIR, 'dist');
const ASSETS: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

/** Whether dist/ is missing a file, or older than a source (a checkout changed since the install built it). */
function stale(): boolean {
  const built = [path.join(DIST, 'app.js'), path.join(DIST, 'index.html')];
  if (!built.every((f) => existsSync(f))) return true;
  const at = Math.min(...built.map((f) => statSync(f).mtimeMs));
  const web = path.join(CONSOLE_DIR, 'web');
  return readdirSync(web).some((f) => statSync(path.join(web, f)).mtimeMs > at);
}

/** The console's files, built now if the install did not (a checkout without `npm install`'s prepare step), or if stale. */
function loadAssets(ctx: ServiceContext): Map<string, { body: Buffer; etag: string }> | undefined {
  if (stale()) {
    try {
      execFileSync(process.execPath, [path.join(CONSOLE_DIR, 'build.mjs')], { stdio: 'pipe', timeout: 120_000 });
      ctx.log.info({ dir: DIST }, 'operator console built');
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message.slice(0, 300) }, 'operator console not built');
      if (!existsSync(path.join(DIST, 'app.js'))) return undefined;
    }
  }
  const files = new Map<string, { body: Buffer; etag: string }>();
  for (const name of ['index.html', ...Object.keys(ASSETS)]) {
    const body = readFileSync(path.join(DIST, name));
    files.set(name, { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return files;
}

const HOUR = 3_600_000;
const OVERVIEW_TTL_MS = 3000;
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'prioritized'] as const;

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const resultParam = { type: 'object', properties: { id: { type: 'string', pattern: '^r-[0-9a-f]{24}$' } }, required: ['id'] } as const;

export function consoleRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const access = apiAccessOf(ctx.config);
  const assets = loadAssets(ctx);
  const open = { config: { rateLimit: false as const } };
  const csp = [
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'",
    'frame-src blob:', 'object-src blob:', "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
  ].join('; ');

  const serve = (name: string, type: string) => (req: FastifyRequest, reply: FastifyReply) => {
    const file = assets?.get(name);
    if (!file) return reply.code(404).send({ error: 'not-found', reason: 'the console is not built (npm install builds it)' });
    reply.header('etag', file.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (name === 'index.html') reply.header('content-security-policy', csp).header('referrer-policy', 'no-referrer');
    if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
    return reply.type(type).send(file.body);
  };
  app.get('/', open, serve('index.html', 'text/html; charset=utf-8'));
  for (const [name, type] of Object.entries(ASSETS)) app.get(`/console/${name}`, open, serve(name, type));

  // Sign-in settings: whether OIDC is offered, with the IdP's endpoints (read from its discovery document here, so
  // the browser needs no CORS from the IdP). No patient data, no credential needed.
  let discovery: Promise<{ authorization_endpoint: string; token_endpoint: string; end_session_endpoint?: string }> | undefined;
  const discover = () => {
    discovery ??= (async () => {
      const res = await fetch(`${access.oidc!.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`discovery answered ${res.status}`);
      const d = (await res.json()) as { authorization_endpoint?: string; token_endpoint?: string; end_session_endpoint?: string };
      if (!d.authorization_endpoint || !d.token_endpoint) throw new Error('discovery gave no authorization or token endpoint');
      return { authorization_endpoint: d.authorization_endpoint, token_endpoint: d.token_endpoint, ...(d.end_session_endpoint ? { end_session_endpoint: d.end_session_endpoint } : {}) };
    })();
    discovery.catch(() => (discovery = undefined));
    return discovery;
  };
  const clientId = access.console?.oidcClientId;
  const oidcOffered = Boolean(access.oidc && clientId);

  app.get('/console/settings', open, async (_req, reply) => {
    if (!oidcOffered) return { oidc: null };
    try {
      const d = await discover();
      const audience = access.oidc!.audience;
      return { oidc: { issuer: access.oidc!.issuer, clientId, scope: access.console?.oidcScope ?? 'openid', resource: Array.isArray(audience) ? audience[0] : audience, authorizationEndpoint: d.authorization_endpoint } };
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'console: the IdP discovery failed');
      return reply.code(503).send({ error: 'unavailable', reason: 'the identity provider does not answer' });
    }
  });

  // The authorization code exchange (PKCE, public client), made here for the browser: only ever to the configured
  // IdP's token endpoint, for the console's client id. The access token goes back to the page; nothing is kept.
  app.post('/console/token', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['code', 'codeVerifier', 'redirectUri'],
        properties: { code: { type: 'string', minLength: 1, maxLength: 2048 }, codeVerifier: { type: 'string', pattern: '^[A-Za-z0-9._~-]{43,128}$' }, redirectUri: { type: 'string', maxLength: 2048 } },
      },
    },
  }, async (req, reply) => {
    if (!oidcOffered) return reply.code(404).send({ error: 'not-found', reason: 'the console has no OIDC client (api.console.oidcClientId)' });
    const body = req.body as { code: string; codeVerifier: string; redirectUri: string };
    try {
      const d = await discover();
      const res = await fetch(d.token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: body.code, code_verifier: body.codeVerifier, redirect_uri: body.redirectUri, client_id: clientId! }),
        signal: AbortSignal.timeout(10_000),
      });
      const token = (await res.json()) as { access_token?: string; expires_in?: number; error?: string };
      if (!res.ok || !token.access_token) return reply.code(401).send({ error: 'unauthorized', reason: `the identity provider refused the code (${String(token.error ?? res.status).slice(0, 60)})` });
      return { accessToken: token.access_token, expiresIn: token.expires_in ?? null };
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'console: the code exchange failed');
      return reply.code(503).send({ error: 'unavailable', reason: 'the identity provider does not answer' });
    }
  });

  const viewer = (req: FastifyRequest) => req.access?.caller?.role === 'viewer';

  app.get('/api/v1/console/me', { config: { role: 'viewer', audit: false } }, (req) => {
    const c = req.access!.caller!;
    return { kind: c.kind, id: c.id, role: c.role };
  });

  // Overview: counts only (no identity), so not written to the audit trail.
  const queues = new Map<string, Queue>();
  const queueOf = (name: string) => {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = new Queue(name, bullConnection(ctx.config))));
    return q;
  };
  app.addHook('onClose', async () => {
    await Promise.all([...queues.values()].map((q) => q.close()));
  });

  // Every open console polls it: one computation serves all callers for OVERVIEW_TTL_MS (the counts scan the day).
  let overview: { at: number; answer: Promise<unknown> } | undefined;
  app.get('/api/v1/console/overview', { config: { role: 'viewer', audit: false } }, () => {
    if (!overview || Date.now() - overview.at > OVERVIEW_TTL_MS) {
      const answer = computeOverview();
      overview = { at: Date.now(), answer };
      answer.catch(() => (overview = undefined));
    }
    return overview.answer;
  });

  async function computeOverview() {
    const now = Date.now();
    const day = new Date(now - 24 * HOUR);
    const hour = new Date(now - HOUR);
    const timed = async <T>(f: () => Promise<T>) => {
      const t0 = performance.now();
      try {
        await f();
        return { ok: true, ms: Math.round((performance.now() - t0) * 10) / 10 };
      } catch {
        return { ok: false, ms: null };
      }
    };
    const cluster: { read: ClusterHealth | null } = { read: null };
    const count = <R extends object>(q: { text: string; params: (day: Date, hour: Date) => unknown[] }) => ctx.pg.query<R>(q.text, q.params(day, hour));
    const [states, received, bySourceState, failures, queueRows, redis, postgres] = await Promise.all([
      count<{ state: string; hour: string; day: string }>(OVERVIEW_QUERIES.states),
      count<{ source: string; at: Date; recent: boolean; count: string }>(OVERVIEW_QUERIES.received),
      count<{ source: string; state: string; count: string }>(OVERVIEW_QUERIES.sourceStates),
      count<{ state: string; reason: string | null; count: string }>(OVERVIEW_QUERIES.failures),
      Promise.all([QUEUES.intake, QUEUES.deadLetter, ...ctx.config.mailboxes.map((m) => QUEUES.send(m.address))].map(async (name) => {
        const q = queueOf(name);
        const counts = await q.getJobCounts(...QUEUE_STATES);
        const [oldest] = await q.getJobs(['waiting', 'prioritized'], 0, 0, true);
        return { queue: name, ...counts, oldestWaitingAt: oldest?.timestamp ?? null };
      })).catch(() => null),
      // The Redis ping is the read of every service instance's health beacon (one HGETALL, one MGET).
      timed(async () => (cluster.read = await readClusterHealth(ctx.redis, ctx.config.redis.prefix, now))),
      timed(() => ctx.pg.query('select 1')),
    ]);
    const bySource = new Map<string, { hour: number; day: number }>();
    const perHour = new Map<number, number>();
    for (const r of received.rows) {
      const n = Number(r.count);
      const s = bySource.get(r.source) ?? { hour: 0, day: 0 };
      s.day += n;
      if (r.recent) s.hour += n;
      bySource.set(r.source, s);
      perHour.set(r.at.getTime(), (perHour.get(r.at.getTime()) ?? 0) + n);
    }
    const gauge = async (name: string) => ((await registry.getSingleMetric(name)?.get())?.values ?? []).map((v) => ({ labels: v.labels, value: v.value }));
    return {
      at: now,
      states: states.rows.map((r) => ({ state: r.state, hour: Number(r.hour), day: Number(r.day) }))
        .sort((a, b) => DELIVERY_STATES.indexOf(a.state as never) - DELIVERY_STATES.indexOf(b.state as never)),
      received: [...bySource.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([source, n]) => ({ source, ...n })),
      sourceStates: bySourceState.rows.map((r) => ({ source: r.source, state: r.state, count: Number(r.count) })),
      failures: failures.rows.map((r) => ({ state: r.state, reason: r.reason ?? '', count: Number(r.count) })),
      throughput: [...perHour.entries()].sort(([a], [b]) => a - b).map(([at, count]) => ({ at, count })),
      queues: queueRows,
      health: {
        redis, postgres,
        // Every service instance, from its beacon (services' own health: MLLP, Kafka lag, IMAP, SMTP), live or gone;
        // null when Redis does not answer.
        ...(cluster.read ?? { instances: null, services: null, warnings: null }),
        // What this process sees: in a deployment of one pod per service, the api's own (empty unless it runs the
        // dispatcher). The routers' reference data come with their beacons.
        operatorRate: await gauge('mssgw_operator_rate_per_second'),
      },
    };
  }

  // A result as the console shows it: the HL7 facts the intake read, the version chain of its document, its
  // documents (what they are, not their bytes), every recipient with its history. Viewer: identities masked.
  app.get('/api/v1/console/results/:id', { config: { role: 'viewer' }, schema: { params: resultParam } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    req.audit.ids = [id];
    const result = await ctx.status.getResult(id);
    if (!result) return reply.code(404).send({ error: 'not-found', reason: `no result ${id}` });
    const [row, chain] = await Promise.all([
      ctx.pg.query<{ normalized: unknown; patient_ins: string | null; patient_family: string | null; patient_given: string | null; message_type: string }>(
        'select normalized, patient_ins, patient_family, patient_given, message_type from results where result_id = $1', [id],
      ),
      // The results of its document set in reception order, each with its version: its rank among the set's results
      // that are not deletions (a deletion names the current one), as the router numbers them (versionInSet).
      ctx.pg.query<{ result_id: string; version: number; action: string | null; received_at: Date | null }>(
        `select o.result_id, greatest(1, count(*) filter (where o.action <> 'delete') over (order by o.id))::int as version, o.action, o.received_at
         from results s join results o on o.set_key = s.set_key where s.result_id = $1 order by o.id`, [id],
      ),
    ]);
    const histories = await Promise.all(result.deliveries.map((d) => ctx.status.history(d.deliveryId)));
    req.audit.ids.push(...result.deliveries.map((d) => d.deliveryId));
    const n = obj(row.rows[0]?.normalized);
    const p = obj(n['patient']);
    const ins = str(obj(p['ins'])['value']) ?? row.rows[0]?.patient_ins ?? undefined;
    const family = str(p['family']) ?? row.rows[0]?.patient_family ?? undefined;
    const given = str(p['given']) ?? row.rows[0]?.patient_given ?? undefined;
    const masked = viewer(req);
    const patient = {
      ins: ins && masked ? maskIns(ins) : ins,
      insQualified: obj(p['ins'])['qualified'] === true,
      family: family && masked ? maskName(family) : family,
      given: given && masked ? maskName(given) : given,
      birthDate: masked ? undefined : str(p['birthDate']),
      sex: str(p['sex']),
      identityReliability: str(p['identityReliability']),
    };
    const documents = (Array.isArray(n['documents']) ? n['documents'] : []).map((d, index) => {
      const doc = obj(d);
      return { index, kind: str(doc['kind']), mediaType: str(doc['mediaType']), bytes: doc['bytes'], code: str(doc['code']), label: str(doc['label']) };
    });
    const deliveries = result.deliveries.map((d, i) => {
      const full = { ...d, history: histories[i] } as unknown as Record<string, unknown>;
      delete full['envelopeId'];
      return masked ? maskDelivery(full) : full;
    });
    return {
      resultId: id,
      source: result.source,
      transport: result.transport,
      receivedAt: result.receivedAt,
      acknowledgedAt: result.acknowledgedAt,
      routedAt: result.routedAt,
      duplicateOf: result.duplicateOf,
      hl7: {
        messageType: str(n['messageType']) ?? row.rows[0]?.message_type, event: str(n['event']), version: str(n['version']), profile: str(n['profile']),
        controlId: result.controlId, sendingApplication: result.sendingApplication, sendingFacility: result.sendingFacility,
        receivingApplication: str(n['receivingApplication']), receivingFacility: str(n['receivingFacility']), charset: str(n['charset']),
        action: result.action, orderControl: str(n['orderControl']), orderId: masked ? undefined : str(n['orderId']), urgent: n['urgent'] === true,
        documentCode: result.documentCode, documentLabel: str(n['documentLabel']), documentId: str(n['documentId']),
        ackReception: result.ackReception === '1', ackRead: result.ackRead === '1',
        flags: obj(n['flags']),
      },
      patient,
      documents,
      versions: chain.rows.map((c) => ({ resultId: c.result_id, version: c.version, action: c.action, receivedAt: c.received_at?.getTime() ?? null })),
      deliveries,
      bodiesPruned: row.rows[0] !== undefined && row.rows[0].normalized === null,
    };
  });

  // A document of a result, as received (the PDF, or the CDA with its PDF inside): an audited read, operator role.
  app.get('/api/v1/console/results/:id/documents/:index', {
    config: { role: 'operator' },
    schema: { params: { type: 'object', properties: { id: resultParam.properties.id, index: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['id', 'index'] } },
  }, async (req, reply) => {
    const { id, index } = req.params as { id: string; index: number };
    req.audit.ids = [id];
    const res = await ctx.pg.query<{ normalized: unknown }>('select normalized from results where result_id = $1', [id]);
    if (!res.rows[0]) return reply.code(404).send({ error: 'not-found', reason: `no result ${id}` });
    const docs = obj(res.rows[0].normalized)['documents'];
    const doc = obj(Array.isArray(docs) ? docs[index] : undefined);
    const sha = str(doc['sha256']);
    if (!sha || !/^[0-9a-f]{64}$/.test(sha)) return reply.code(404).send({ error: 'not-found', reason: `no document ${index} in result ${id}` });
    const body = await ctx.pg.query<{ content: Buffer | null; media_type: string }>('select content, media_type from bodies where sha256 = $1', [Buffer.from(sha, 'hex')]);
    const content = body.rows[0]?.content;
    if (!content) return reply.code(404).send({ error: 'not-found', reason: 'the document is no longer kept (postgres.bodyRetentionDays)' });
    const type = str(doc['mediaType']) ?? body.rows[0]!.media_type;
    const safe = /^(application\/pdf|text\/xml|application\/xml|text\/plain)$/.test(type) ? type : 'application/octet-stream';
    return reply.type(safe).header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').header('content-disposition', 'inline').send(content);
  });

  // The message as received (operator, an audited read): its segments one per line, long values (an embedded
  // document in base64) shortened to their size, the charset as the intake decoded it (MSH-18).
  app.get('/api/v1/console/results/:id/hl7', { config: { role: 'operator' }, schema: { params: resultParam } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    req.audit.ids = [id];
    const raw = await ctx.results.hl7Of(id);
    if (!raw) return reply.code(404).send({ error: 'not-found', reason: `no message kept for result ${id}` });
    // MSH-18 says how it is encoded: ISO 8859 (8859/1, 8859/15) as Latin-1, anything else as UTF-8.
    const msh18 = raw.subarray(0, raw.indexOf(0x0d) > 0 ? raw.indexOf(0x0d) : 500).toString('latin1').split('|')[17] ?? '';
    const text = raw.toString(/8859/.test(msh18) ? 'latin1' : 'utf8');
    const segments = text.split(/\r\n|\r|\n/).filter(Boolean).map((seg) => seg.replace(/[^|^~\\&]{201,}/g, (v) => `${v.slice(0, 40)}… (${v.length} characters)`));
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(segments.join('\n'));
  });

  // Directory look-up: the mailboxes the Annuaire Santé extraction gives for a practitioner (RPPS, IDNPS, ADELI), a
  // structure (FINESS, SIRET, IDNST) or an address, each with the liste blanche's verdict on its domain (the last
  // good copy the gateway saved). Operator: it is how a recipient's address is found; the values are not audited.
  app.get('/api/v1/console/directory', {
    config: { role: 'operator' },
    schema: {
      querystring: {
        type: 'object', additionalProperties: false, required: ['q'],
        properties: { q: { type: 'string', minLength: 1, maxLength: 320 }, type: { type: 'string', enum: ['', 'RPPS', 'IDNPS', 'ADELI', 'FINESS', 'FINEG', 'FINEJ', 'SIRET', 'SIREN', 'IDNST'] } },
      },
    },
  }, async (req) => {
    const { q, type = '' } = req.query as { q: string; type?: string };
    req.audit.filters = Object.keys(req.query as object);
    const store = new DirectoryStore(ctx.redis, ctx.config.redis.prefix);
    const found = q.includes('@')
      ? await store.findAddress(q)
      : ['FINESS', 'FINEG', 'FINEJ', 'SIRET', 'SIREN', 'IDNST'].includes(type)
        ? await store.lookup(structureKeys(q, type))
        : await store.lookup(type ? practitionerKeys(q, type) : [...practitionerKeys(q), ...structureKeys(q)]);
    const saved = await ctx.redis.get(redisKeys(ctx.config.redis.prefix).whitelist);
    const list = saved ? (JSON.parse(saved) as LoadedWhitelist) : undefined;
    const testDomains = new Set(ctx.config.mssante.testDomains.map((d) => d.toLowerCase()));
    const info = await store.info();
    return {
      directory: info ? { source: info.source, importedAt: info.importedAt, mailboxes: info.mailboxes } : null,
      whitelist: list ? { generatedAt: list.generatedAt, fetchedAt: list.fetchedAt } : null,
      mailboxes: found.map((m) => ({ ...m, whitelisted: domainAllowed(list, testDomains, m.address.slice(m.address.lastIndexOf('@') + 1).toLowerCase(), false) })),
    };
  });

  // An action on one recipient: the delivery it names, audited with its result.
  const deliveryNamed = async (req: FastifyRequest, id: string) => {
    req.audit.ids = [id];
    const d = await ctx.status.getDelivery(id);
    if (d) req.audit.ids.push(d.resultId);
    return d;
  };
  // An action the gateway refuses (409), with its reason in the audit trail.
  const refuse = (req: FastifyRequest, reply: FastifyReply, why: string) => {
    req.audit.reason = why;
    return reply.code(409).send({ error: 'refused', reason: why });
  };

  // Cancels what is still waiting: a queued or dead-lettered recipient becomes refused (reason "cancelled", by the
  // operator, in its history), and its job leaves its queue. One being sent at this moment is not cancelled (409).
  const deliveryParam = { type: 'object', properties: { id: { type: 'string', pattern: '^d-[0-9a-f]{24}$' } }, required: ['id'] } as const;
  app.post('/api/v1/console/deliveries/:id/cancel', { config: { role: 'operator' }, schema: { params: deliveryParam } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const d = await deliveryNamed(req, id);
    if (!d) return reply.code(404).send({ error: 'not-found', reason: `no delivery ${id}` });
    const conflict = (why: string) => refuse(req, reply, why);
    if (d.state !== 'queued' && d.state !== 'dead-lettered') return conflict(`only a queued or dead-lettered recipient can be cancelled; this one is ${d.state}`);
    const queue = queueOf(d.state === 'dead-lettered' ? QUEUES.deadLetter : QUEUES.send(d.mailbox ?? ''));
    const job = await queue.getJob(id);
    if (job && (await job.getState()) === 'active') return conflict('the mail is being sent now: try again in a moment');
    const caller = req.access?.caller;
    const { applied, previous } = await ctx.status.apply(id, {
      state: 'refused', source: 'operator', fields: { reason: 'cancelled', detail: `cancelled by ${caller ? `${caller.kind}:${caller.id}` : 'an operator'}` },
    });
    if (!applied) return conflict(`only a queued or dead-lettered recipient can be cancelled; this one is ${previous ?? 'gone'}`);
    // The job goes too; one the dispatcher takes meanwhile finds the recipient refused and sends nothing.
    await job?.remove().catch((err: Error) => ctx.log.warn({ deliveryId: id, err: err.message }, 'console: cancelled job not removed from its queue'));
    return { cancelled: id, previous };
  });

  // Resends to one recipient: a new mail (a new Message-ID, the same content) and a new delivery, queued, linked to
  // the first both ways (the new one's first event names it; the first one's history notes the new one). Only a
  // recipient whose delivery is over (delivered, failed, read...): one in flight waits, a dead letter is replayed, a
  // refusal stands (the dispatcher checks the liste blanche and oppositions again before sending anyway).
  app.post('/api/v1/console/deliveries/:id/resend', { config: { role: 'operator' }, schema: { params: deliveryParam } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const d = await deliveryNamed(req, id);
    if (!d) return reply.code(404).send({ error: 'not-found', reason: `no delivery ${id}` });
    const refused = (why: string) => refuse(req, reply, why);
    if (!isResendable(d.state)) return refused(`only a recipient whose delivery is over can be resent; this one is ${d.state}`);
    if (!d.mailId || !d.messageId || !d.mailbox) return refused('this recipient was never sent a mail');
    const mail = await ctx.pg.query<{ head: Buffer | null; attachments_sha256: Buffer | null }>('select head, attachments_sha256 from mails where mail_id = $1', [d.mailId]);
    const head = mail.rows[0]?.head;
    if (!head) return refused('the mail is no longer kept (postgres.bodyRetentionDays)');
    const suffix = `-r${randomBytes(3).toString('hex')}`;
    const mailId = `${d.mailId}${suffix}`;
    const messageId = d.messageId.replace(/@/, `${suffix}@`);
    // The same mail under its new Message-ID and today's Date: the header block only, the body untouched.
    const text = head.toString('latin1');
    const end = text.search(/\r?\n\r?\n/);
    const headers = end < 0 ? text : text.slice(0, end);
    if (!/^Message-ID:/im.test(headers)) return refused('the stored mail has no Message-ID to renew');
    const renewed = headers.replace(/^Message-ID:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*/im, `Message-ID: ${messageId}`)
      .replace(/^Date:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*/im, `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`);
    const caller = req.access?.caller;
    const who = caller ? `${caller.kind}:${caller.id}` : 'an operator';
    const deliveryId = `d-${randomBytes(12).toString('hex')}`;
    await ctx.pg.query('insert into mails (mail_id, result_id, head, attachments_sha256) values ($1, $2, $3, $4) on conflict (mail_id) do nothing',
      [mailId, d.resultId, Buffer.from(renewed + (end < 0 ? '' : text.slice(end)), 'latin1'), mail.rows[0]!.attachments_sha256]);
    await ctx.status.createDelivery({
      deliveryId, resultId: d.resultId, recipient: d.recipient, ...(d.recipientId ? { recipientId: d.recipientId } : {}), kind: d.kind, state: 'queued',
      mailId, messageId, mailbox: d.mailbox,
    }, `resent from ${id} by ${who}`);
    await ctx.status.note(id, { state: d.state, source: 'operator', detail: `resent as ${deliveryId} by ${who}` });
    await queueOf(QUEUES.send(d.mailbox)).add('deliver', { deliveryId, resultId: d.resultId }, { jobId: deliveryId });
    req.audit.ids.push(deliveryId);
    return { resent: deliveryId, from: id, messageId };
  });
}
