// Access control and audit trail of the HTTP API (issue #22), on the real sandbox, with tokens from a real OpenID
// provider started on loopback (oidc-provider, client credentials grant, ES256 JWT access tokens with a roles claim):
// no credential → 401; a viewer sees identities masked and is refused identity searches and actions (403); an
// operator sees all and acts; every read and refusal is in the audit trail, which holds ids and never identities.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, SignJWT } from 'jose';
import { apiAccessOf, type GatewayConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { createApiKey, queryAudit, revokeApiKey } from '@mssgw/auth';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { SANDBOX, tag, testConfig, waitFor } from '../support/env.ts';
import { apiClient, withBearer, type ApiClient } from '../support/api.ts';
import { startOidcProvider, type TestIdp } from '../support/oidc.ts';

interface Delivery { deliveryId: string; recipient: string; recipientId?: string; state: string }
interface Result { resultId: string; deliveries: Delivery[] }
interface Summary { resultId: string; patient: { ins?: string; family?: string; given?: string } }
interface AuditRow { id: string; at: number; actorKind: string; actor?: string; role?: string; method: string; route: string; status: number; outcome: string; reason?: string; ids: string[]; filters: string[]; client: string }

const ROLE_MAPPING = { 'mssgw-viewer': 'viewer', 'mssgw-operator': 'operator', 'mssgw-admin': 'admin' } as const;

/** The OIDC part of the api section, pointing at the test's IdP. */
const withOidc = (c: GatewayConfig, idp: TestIdp, patch: Partial<GatewayConfig['api'] & object> = {}) => {
  c.api = {
    ...apiAccessOf(c),
    oidc: { issuer: idp.issuer, audience: idp.audience, rolesClaim: 'roles', roleMapping: { ...ROLE_MAPPING }, algorithms: ['ES256'], clockToleranceSeconds: 5, accessTokenType: 'at+jwt' },
    ...patch,
  };
};

/** A raw request, for what fetch does not let a test set (the Host header) or check (a TLS server's certificate). */
function raw(url: string, headers: Record<string, string> = {}, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { headers, ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('API access control and audit trail', () => {
  let idp: TestIdp;
  let gateway: Gateway;
  let base: string;
  let admin: ApiClient;
  let resultId: string;
  const t = tag();
  const patient = PATIENTS[0]!; // PAT-TROIS DOMINIQUE, INS 279035121518989
  const doctor = { ...DOCTORS[0]!, address: `access-${t}@cabinet-demo.mssante.test` };
  const asViewer = () => idp.token('viewer-app').then(withBearer);
  const asOperator = () => idp.token('operator-app').then(withBearer);
  const audit = async (query: string) => {
    const { status, body } = await admin.json<{ events: AuditRow[]; next?: string }>(`${base}/api/v1/audit?${query}`);
    expect(status).toBe(200);
    return body;
  };

  beforeAll(async () => {
    idp = await startOidcProvider([
      { id: 'viewer-app', secret: `viewer-secret-${t}-0123456789abcdef`, roles: ['mssgw-viewer'] },
      { id: 'operator-app', secret: `operator-secret-${t}-0123456789abcdef`, roles: ['other-role', 'mssgw-operator'] },
      { id: 'nobody-app', secret: `nobody-secret-${t}-0123456789abcdef`, roles: ['other-role'] },
    ]);
    gateway = await startGateway(testConfig('access', (c) => withOidc(c, idp, { allowedHosts: ['127.0.0.1', 'localhost'] })));
    base = `http://127.0.0.1:${gateway.api!.port}`;
    admin = await apiClient(gateway.ctx.pg, 'admin');
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    const controlId = `ACCESS-${t}`;
    expect((await c.send(makeCisisResult({ controlId, patient, doctors: [doctor], toPatient: true }))).code).toBe('AA');
    await c.close();
    const operator = await apiClient(gateway.ctx.pg, 'operator');
    resultId = await waitFor('the result routed to both recipients', async () => {
      const { body } = await operator.json<{ results: Result[] }>(`${base}/api/v1/results?controlId=${controlId}`);
      return body.results[0]?.deliveries.length === 2 ? body.results[0].resultId : undefined;
    });
  });
  afterAll(async () => {
    await gateway?.stop();
    await idp?.stop();
  });

  it('answers 401 with a reason to a request without a valid credential; /healthz and /metrics stay open', async () => {
    for (const route of [`/api/v1/results/${resultId}`, '/api/v1/results', '/api/v1/schema', '/api/v1/audit', '/api/v1/keys', '/api/v1/dead-letters']) {
      const res = await fetch(`${base}${route}`);
      expect(res.status, route).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await res.json()).toEqual({ error: 'unauthorized', reason: 'no credential: send Authorization: Bearer <API key or OIDC access token>' });
    }
    expect((await fetch(`${base}/api/v1/dead-letters/d-000000000000000000000000/replay`, { method: 'POST' })).status).toBe(401);
    const reasons = async (token: string) => ((await (await withBearer(token)(`${base}/api/v1/results/${resultId}`)).json()) as { reason: string }).reason;
    expect(await reasons('not-a-jwt')).toBe('token malformed');
    expect(await reasons(`mssgw.k-${'0'.repeat(24)}.${'A'.repeat(43)}`)).toBe('unknown API key');
    expect(await reasons('mssgw.short')).toBe('malformed API key');
    // A key that was valid, revoked.
    const { key, apiKey } = await createApiKey(gateway.ctx.pg, { role: 'operator', name: 'to revoke', createdBy: 'test' });
    expect((await withBearer(key)(`${base}/api/v1/results/${resultId}`)).status).toBe(200);
    expect(await revokeApiKey(gateway.ctx.pg, apiKey.keyId)).toBe(true);
    expect(await reasons(key)).toBe('revoked API key');
    // A well-formed token signed by a key the IdP does not publish, and one of another issuer.
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const forged = await new SignJWT({ roles: ['mssgw-admin'] }).setProtectedHeader({ alg: 'ES256', kid: 'test-signing-key' }).setIssuer(idp.issuer)
      .setAudience(idp.audience).setSubject('intruder').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    expect(await reasons(forged)).toBe('token signature invalid');
    const elsewhere = await new SignJWT({ roles: ['mssgw-admin'] }).setProtectedHeader({ alg: 'ES256', kid: 'other' }).setIssuer('https://idp.example')
      .setAudience(idp.audience).setSubject('intruder').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    expect(await reasons(elsewhere)).toMatch(/^token (signed by an unknown key|iss not accepted)$/);
    // Open routes.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });

  it('shows a viewer identities masked: INS, names, addresses', async () => {
    const call = await asViewer();
    const result = (await (await call(`${base}/api/v1/results/${resultId}`)).json()) as Result;
    const recipients = result.deliveries.map((d) => d.recipient).sort();
    expect(recipients).toEqual(['2************89@patient.mssante.fr', 'a***@cabinet-demo.mssante.test']);
    const search = (await (await call(`${base}/api/v1/results?limit=10`)).json()) as { results: Summary[] };
    expect(search.results.find((r) => r.resultId === resultId)!.patient).toEqual({ ins: '2************89', family: 'P***', given: 'D***' });
    const delivery = result.deliveries[0]!;
    const one = (await (await call(`${base}/api/v1/deliveries/${delivery.deliveryId}`)).json()) as Delivery;
    expect(one.recipient).toBe(delivery.recipient);
    // Nothing that names the patient or the practitioner, anywhere in what a viewer reads.
    const everything = JSON.stringify([result, search, one]);
    for (const secret of [patient.ins, patient.family, patient.given, doctor.address, doctor.rpps]) expect(everything).not.toContain(secret);
  });

  it('refuses a viewer identity searches and actions (403), and a token without a role of ours', async () => {
    const call = await asViewer();
    for (const query of [`patient=${patient.ins}`, 'name=pat', `recipient=${encodeURIComponent(doctor.address)}`]) {
      const res = await call(`${base}/api/v1/results?${query}`);
      expect(res.status, query).toBe(403);
      expect(((await res.json()) as { reason: string }).reason).toMatch(/^searching by (patient|name|recipient) needs the operator role$/);
    }
    const replay = await call(`${base}/api/v1/dead-letters/d-000000000000000000000001/replay`, { method: 'POST' });
    expect([replay.status, await replay.json()]).toEqual([403, { error: 'forbidden', reason: 'this needs the operator role' }]);
    expect((await call(`${base}/api/v1/audit`)).status).toBe(403);
    expect((await call(`${base}/api/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x","role":"admin"}' })).status).toBe(403);
    const nobody = withBearer(await idp.token('nobody-app'));
    const res = await nobody(`${base}/api/v1/results/${resultId}`);
    expect([res.status, await res.json()]).toEqual([403, { error: 'forbidden', reason: 'the token has no role of this API' }]);
  });

  it('shows an operator everything and lets it act', async () => {
    const call = await asOperator();
    const result = (await (await call(`${base}/api/v1/results/${resultId}`)).json()) as Result;
    expect(result.deliveries.map((d) => d.recipient).sort()).toEqual([`${patient.ins}@patient.mssante.fr`, doctor.address]);
    const found = (await (await call(`${base}/api/v1/results?patient=${patient.ins}`)).json()) as { results: Summary[] };
    expect(found.results.find((r) => r.resultId === resultId)!.patient).toEqual({ ins: patient.ins, family: patient.family, given: patient.given });
    // The action is allowed: nothing dead-lettered under that id.
    const replay = await call(`${base}/api/v1/dead-letters/d-000000000000000000000002/replay`, { method: 'POST' });
    expect(replay.status).toBe(404);
    expect(((await (await call(`${base}/api/v1/dead-letters`)).json()) as { deadLetters: unknown[] }).deadLetters).toEqual([]);
    expect((await call(`${base}/api/v1/audit`)).status).toBe(403);
  });

  it('writes every read and every refusal to the audit trail, with ids and never identities', async () => {
    const viewer = await audit('actor=viewer-app&limit=500');
    const read = viewer.events.find((e) => e.route === '/api/v1/results/:id' && e.outcome === 'allowed')!;
    expect(read).toMatchObject({ actorKind: 'oidc', actor: 'viewer-app', role: 'viewer', method: 'GET', status: 200, client: '127.0.0.1' });
    expect(read.ids[0]).toBe(resultId);
    expect(read.ids).toHaveLength(3); // the result and its two recipients
    const refusedSearches = viewer.events.filter((e) => e.route === '/api/v1/results' && e.outcome === 'refused');
    expect(refusedSearches.map((e) => e.filters).sort()).toEqual([['name'], ['patient'], ['recipient']]);
    expect(refusedSearches.every((e) => e.status === 403 && /needs the operator role/.test(e.reason ?? ''))).toBe(true);
    const search = viewer.events.find((e) => e.route === '/api/v1/results' && e.outcome === 'allowed')!;
    expect(search.filters).toEqual(['limit']);
    expect(search.ids).toContain(resultId);
    expect(viewer.events.find((e) => e.route === '/api/v1/dead-letters/:id/replay')).toMatchObject({ outcome: 'refused', status: 403, ids: [] , method: 'POST' });
    expect(viewer.events.find((e) => e.route === '/api/v1/audit')).toMatchObject({ outcome: 'refused', status: 403 });

    const operator = await audit('actor=operator-app');
    expect(operator.events.find((e) => e.route === '/api/v1/results' && e.outcome === 'allowed' && e.filters.includes('patient'))!.ids).toContain(resultId);
    expect(operator.events.find((e) => e.route === '/api/v1/dead-letters/:id/replay')).toMatchObject({ outcome: 'allowed', status: 404, ids: ['d-000000000000000000000002'] });

    // Refusals without a credential: no actor, the reason, the route's pattern.
    const refused = await audit('outcome=refused&limit=500');
    const anonymous = refused.events.filter((e) => e.actorKind === 'none');
    expect(anonymous.length).toBeGreaterThanOrEqual(10);
    expect(anonymous.map((e) => e.reason)).toEqual(expect.arrayContaining(['token malformed', 'unknown API key', 'revoked API key', 'token signature invalid']));
    const nobody = refused.events.find((e) => e.actor === 'nobody-app')!;
    expect([nobody.status, nobody.reason, nobody.role]).toEqual([403, 'the token has no role of this API', undefined]);

    // "Who read this result?"
    const byResult = await audit(`id=${resultId}&limit=500`);
    const actors = new Set(byResult.events.map((e) => e.actor));
    expect([actors.has('viewer-app'), actors.has('operator-app')]).toEqual([true, true]);
    expect([...actors].filter((a) => a !== 'viewer-app' && a !== 'operator-app').every((a) => /^k-[0-9a-f]{24}$/.test(a ?? ''))).toBe(true);

    // Ids, never identities: the whole trail holds no INS, name or address.
    const all = JSON.stringify((await audit('limit=500')).events);
    for (const secret of [patient.ins, patient.family, patient.given, doctor.address, doctor.rpps]) expect(all).not.toContain(secret);
  });

  it('pages the audit trail newest first without gaps or doubles, and refuses unknown filters', async () => {
    const whole = (await audit('limit=500')).events;
    expect(whole.length).toBeGreaterThan(10);
    const seen: AuditRow[] = [];
    let cursor: string | undefined;
    do {
      const page = await audit(`limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.events);
      cursor = page.next;
    } while (cursor && seen.length < 200);
    // Reading the trail is itself audited (newer events): the pages hold the whole trail as it was, in order.
    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(-whole.length)).toEqual(whole.map((e) => e.id));
    expect(seen.map((e) => e.at)).toEqual([...seen.map((e) => e.at)].sort((a, b) => b - a));
    expect((await admin.fetch(`${base}/api/v1/audit?actr=x`)).status).toBe(400);
    expect((await admin.fetch(`${base}/api/v1/audit?cursor=bm9wZQ`)).status).toBe(400);
    const since = (await audit(`from=${new Date(Date.now() - 3_600_000).toISOString()}&limit=500`)).events;
    expect(since.length).toBeGreaterThan(0);
  });

  it('lets an admin create, list and revoke API keys; the key is shown once', async () => {
    const created = await admin.fetch(`${base}/api/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'console', role: 'viewer' }) });
    expect(created.status).toBe(201);
    const { key, keyId, role, createdBy } = (await created.json()) as { key: string; keyId: string; role: string; createdBy: string };
    expect([role, createdBy]).toEqual(['viewer', `key:${admin.keyId}`]);
    expect(key).toMatch(/^mssgw\.k-[0-9a-f]{24}\.[A-Za-z0-9_-]{43}$/);
    expect((await withBearer(key)(`${base}/api/v1/results/${resultId}`)).status).toBe(200);
    // X-API-Key works as well as the bearer form.
    expect((await fetch(`${base}/api/v1/results/${resultId}`, { headers: { 'x-api-key': key } })).status).toBe(200);
    const list = (await admin.json<{ keys: { keyId: string; key?: string; lastUsedAt?: number }[] }>(`${base}/api/v1/keys`)).body.keys;
    const listed = list.find((k) => k.keyId === keyId)!;
    expect(listed.key).toBeUndefined();
    expect(listed.lastUsedAt).toBeGreaterThan(0);
    expect((await admin.fetch(`${base}/api/v1/keys/${keyId}`, { method: 'DELETE' })).status).toBe(204);
    expect((await withBearer(key)(`${base}/api/v1/results/${resultId}`)).status).toBe(401);
    expect((await admin.fetch(`${base}/api/v1/keys/${keyId}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('records the connecting address, not an X-Forwarded-For from a proxy it does not trust', async () => {
    const res = await admin.fetch(`${base}/api/v1/results/${resultId}`, { headers: { 'x-forwarded-for': '10.9.9.9' } });
    expect(res.status).toBe(200);
    const [event] = (await audit(`actor=${admin.keyId}&route=${encodeURIComponent('/api/v1/results/:id')}&limit=1`)).events;
    expect(event!.client).toBe('127.0.0.1');
  });

  it('answers only the hosts it is configured for, and never echoes internals in its errors', async () => {
    const port = gateway.api!.port;
    const auth = { authorization: `Bearer ${admin.key}` };
    expect((await raw(`http://127.0.0.1:${port}/api/v1/results/${resultId}`, { ...auth, host: 'evil.example' })).status).toBe(421);
    expect((await raw(`http://127.0.0.1:${port}/api/v1/results/${resultId}`, { ...auth, host: `localhost:${port}` })).status).toBe(200);
    expect((await raw(`http://127.0.0.1:${port}/healthz`, { host: 'evil.example' })).status).toBe(200);
    // A body that is not JSON, an unknown route carrying a name in its query: fixed texts.
    const notJson = await admin.fetch(`${base}/api/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": "DUPONT JEAN' });
    expect(notJson.status).toBe(400);
    expect(await notJson.text()).not.toMatch(/DUPONT|JSON at position|Unexpected/);
    const unknown = await admin.fetch(`${base}/api/v1/nothing?name=DUPONT`);
    expect([unknown.status, await unknown.json()]).toEqual([404, { error: 'not-found', reason: 'no such route' }]);
  });
});

describe('API: rate limit per caller, TLS, and the api service alone', () => {
  let gateway: Gateway;
  let other: Gateway;
  const ca = readFileSync(path.join(SANDBOX, 'pki', 'ca.pem'));

  beforeAll(async () => {
    // The sandbox operator's certificate names 127.0.0.1 and localhost, signed by the sandbox CA.
    gateway = await startGateway(testConfig('access-tls', (c) => {
      c.api = {
        ...apiAccessOf(c), rateLimit: { max: 5, windowMs: 60_000 }, trustProxy: ['127.0.0.1'],
        tls: { certFile: path.join(SANDBOX, 'pki', 'operator.pem'), keyFile: path.join(SANDBOX, 'pki', 'operator.key') },
      };
    }), ['api']);
    other = await startGateway(testConfig('access-router'), ['router']);
  });
  afterAll(async () => {
    await gateway?.stop();
    await other?.stop();
  });

  it('serves the API over TLS and limits each caller, not the others', async () => {
    expect(gateway.api!.scheme).toBe('https');
    const base = `https://127.0.0.1:${gateway.api!.port}`;
    const [a, b] = [await createApiKey(gateway.ctx.pg, { role: 'viewer', name: 'a', createdBy: 'test' }), await createApiKey(gateway.ctx.pg, { role: 'viewer', name: 'b', createdBy: 'test' })];
    const get = (key: string) => raw(`${base}/api/v1/results?limit=1`, { authorization: `Bearer ${key}` }, ca);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await get(a.key)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const limited = await get(a.key);
    const body = JSON.parse(limited.body) as { error: string; reason: string };
    expect(body.error).toBe('rate-limited');
    expect(body.reason).toMatch(/^too many requests: retry in /);
    expect((await get(b.key)).status).toBe(200);
    // Without a valid credential, a caller is counted by its address: a guesser is limited too.
    const anonymous: number[] = [];
    for (let i = 0; i < 7; i++) anonymous.push((await raw(`${base}/api/v1/results?limit=1`, { authorization: 'Bearer mssgw.guess' }, ca)).status);
    expect(anonymous).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // Behind a proxy it trusts (api.trustProxy), the audit trail records the address the proxy forwards.
    await raw(`${base}/api/v1/results/r-000000000000000000000009`, { authorization: `Bearer ${b.key}`, 'x-forwarded-for': '10.9.9.9' }, ca);
    const { events } = await queryAudit(gateway.ctx.pg, { id: 'r-000000000000000000000009', limit: 1 });
    expect(events[0]!.client).toBe('10.9.9.9');
    // Plain HTTP is not answered on the TLS port.
    await expect(fetch(`http://127.0.0.1:${gateway.api!.port}/healthz`)).rejects.toThrow();
  });

  it('serves no API route in a process that does not run the api service', async () => {
    const base = `http://127.0.0.1:${other.api!.port}`;
    expect(other.api!.scheme).toBe('http');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    const res = await fetch(`${base}/api/v1/results`);
    expect([res.status, await res.json()]).toEqual([404, { error: 'not-found', reason: 'no such route' }]);
  });
});
