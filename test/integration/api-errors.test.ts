// A 5xx never tells the caller what failed inside: the cause stays in the log, under an id the caller is given. And an
// answer whose audit trail cannot be written is withheld.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { testConfig } from '../support/env.ts';
import { apiClient, type ApiClient } from '../support/api.ts';

describe('HTTP API errors', () => {
  let gateway: Gateway;
  let api: ApiClient;
  let base: string;
  beforeAll(async () => {
    gateway = await startGateway(testConfig('api-errors'), ['api']);
    api = await apiClient(gateway.ctx.pg, 'operator');
    base = `http://127.0.0.1:${gateway.api!.port}`;
  });
  afterAll(async () => gateway?.stop());

  it('answers 500 with a request id and no internal message when the store fails', async () => {
    expect((await api.fetch(`${base}/api/v1/results?controlId=X`)).status).toBe(200);
    // The results table goes away under the API (the keys and the audit trail stay): PostgreSQL says "relation ... does not exist".
    await gateway.ctx.pg.query('alter table results rename to results_away');
    try {
      const res = await api.fetch(`${base}/api/v1/results?controlId=X`);
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: string; reason: string };
      expect(body.error).toBe('internal');
      expect(body.reason).toMatch(/^internal error \(request [\w-]+\); the gateway's log has the cause$/);
      expect(JSON.stringify(body)).not.toMatch(/relation|results_away|pool|pg|postgres/i);
    } finally {
      await gateway.ctx.pg.query('alter table results_away rename to results');
    }
  });

  it('withholds an answer whose audit trail cannot be written (503), and says so without internals', async () => {
    await gateway.ctx.pg.query('alter table audit_events rename to audit_away');
    try {
      const res = await api.fetch(`${base}/api/v1/results?controlId=X`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: string; reason: string; results?: unknown };
      expect(body).toEqual({ error: 'unavailable', reason: expect.stringMatching(/^the audit trail cannot be written, so nothing is shown \(request [\w-]+\)$/) as unknown });
      expect(JSON.stringify(body)).not.toMatch(/relation|audit_events|postgres/i);
    } finally {
      await gateway.ctx.pg.query('alter table audit_away rename to audit_events');
    }
    expect((await api.fetch(`${base}/api/v1/results?controlId=X`)).status).toBe(200);
  });

  it('answers 503 without internals when credentials cannot be checked', async () => {
    await gateway.ctx.pg.end();
    const res = await api.fetch(`${base}/api/v1/results?controlId=X`);
    expect([res.status, await res.json()]).toEqual([503, { error: 'unavailable', reason: 'credentials cannot be checked now' }]);
  });
});
