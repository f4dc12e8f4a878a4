import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { apiClient, type ApiClient } from '../support/api.ts';
import { DOCTORS, makeRawLabResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

/**
 * A raw lab result and its correction (same order, another control id), wrapped as CDA documents of one set: the
 * console's result page shows the set's versions in the order the producer sent them, numbered as the router did.
 */
describe('a document set\'s versions on the console\'s result page', () => {
  const t = tag();
  let gateway: Gateway;
  let api: ApiClient;
  let base: string;
  const order = `VS-${t}`;
  const initial = makeRawLabResult({ controlId: order, patient: PATIENTS[0]!, ordering: DOCTORS[0]! });
  // The correction: a control id of its own, the same order (ORC-2, OBR-2), ORC-1 RO and corrected values (OBX-11 C).
  const correction = initial.replace(`|ORU^R01|${order}|`, `|ORU^R01|${order}-C|`).replace(/^ORC\|NW\|/m, 'ORC|RO|').replace(/\|F$/gm, '|C');

  beforeAll(async () => {
    gateway = await startGateway(testConfig('console-versions'), ['intake', 'router', 'api']);
    base = `http://127.0.0.1:${gateway.api!.port}`;
    api = await apiClient(gateway.ctx.pg, 'operator');
  });
  afterAll(async () => gateway?.stop());

  const routed = (controlId: string) => waitFor(`${controlId} routed`, async () => {
    const [id] = await gateway.ctx.status.resultsByControlId(controlId);
    return id && (await gateway.ctx.status.getResult(id))?.routedAt ? id : undefined;
  });

  it('lists the original as version 1 and the correction as version 2', async () => {
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    for (const m of [initial, correction]) expect((await c.send(m)).code).toBe('AA');
    await c.close();
    const [first, second] = [await routed(order), await routed(`${order}-C`)];
    const { status, body } = await api.json<{ versions: { resultId: string; version: number; action: string }[] }>(`${base}/api/v1/console/results/${second}`);
    expect(status).toBe(200);
    expect(body.versions.map((v) => [v.resultId, v.version, v.action])).toEqual([[first, 1, 'initial'], [second, 2, 'replace']]);
  });
});
