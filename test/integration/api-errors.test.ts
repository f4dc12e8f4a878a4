// A 5xx never tells the caller what failed inside: the cause stays in the log, under an id the caller is given.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { testConfig } from '../support/env.ts';

describe('HTTP API errors', () => {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await startGateway(testConfig('api-errors'), ['api']);
  });
  afterAll(async () => gateway?.stop());

  it('answers 500 with a request id and no internal message when the store fails', async () => {
    const base = `http://127.0.0.1:${gateway.api!.port}`;
    expect((await fetch(`${base}/api/v1/results?controlId=X`)).status).toBe(200);
    // The message store goes away under the API: pg throws "Cannot use a pool after calling end on the pool".
    await gateway.ctx.pg.end();
    const res = await fetch(`${base}/api/v1/results?controlId=X`);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: string; reason: string };
    expect(body.error).toBe('internal');
    expect(body.reason).toMatch(/^internal error \(request [\w-]+\); the gateway's log has the cause$/);
    expect(JSON.stringify(body)).not.toMatch(/pool|pg|postgres/i);
  });
});
