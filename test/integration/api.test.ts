import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '@mssgw/hl7';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';
import { apiClient, type ApiClient } from '../support/api.ts';

const PROMETHEUS = 'http://127.0.0.1:19090';

describe('HTTP API, /metrics and the real Prometheus', () => {
  let gateway: Gateway;
  let base: string;
  let api: ApiClient;
  const t = tag();

  beforeAll(async () => {
    // Port 8088 is the sandbox Prometheus' scrape target (deploy/local/prometheus.sh).
    gateway = await startGateway(testConfig('api', (c) => (c.http.port = 8088)));
    base = `http://127.0.0.1:${gateway.api!.port}`;
    api = await apiClient(gateway.ctx.pg, 'operator');
  });
  afterAll(async () => gateway?.stop());

  it('answers /healthz', async () => {
    const res = await fetch(`${base}/healthz`);
    expect([res.status, await res.json()]).toEqual([200, { status: 'ok' }]);
  });

  it('tracks a result by control id and by id, with each recipient and its history', async () => {
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    const controlId = `API-${t}`;
    expect((await c.send(makeCisisResult({ controlId, patient: PATIENTS[0]!, doctors: [{ ...DOCTORS[0]!, address: `api-${t}@cabinet-demo.mssante.test` }], extraAddresses: ['x@example.org'] }))).code).toBe('AA');
    await c.close();
    const byControl = (await (await api.fetch(`${base}/api/v1/results?controlId=${controlId}`)).json()) as { results: { resultId: string }[] };
    expect(byControl.results).toHaveLength(1);
    const id = byControl.results[0]!.resultId;
    const result = await waitFor('delivered', async () => {
      await gateway.receipts!.sweep();
      const r = (await (await api.fetch(`${base}/api/v1/results/${id}`)).json()) as { deliveries: { deliveryId: string; state: string; reason?: string }[] };
      return r.deliveries.some((d) => d.state === 'delivered') ? r : undefined;
    });
    expect(result.deliveries.map((d) => d.state).sort()).toEqual(['delivered', 'refused']);
    expect(result.deliveries.find((d) => d.state === 'refused')!.reason).toBe('not-whitelisted');
    const delivered = result.deliveries.find((d) => d.state === 'delivered')!;
    const d = (await (await api.fetch(`${base}/api/v1/deliveries/${delivered.deliveryId}`)).json()) as { history: { state: string }[]; mailId: string };
    expect(d.history.map((h) => h.state)).toEqual(['queued', 'submitted', 'delivered']);
    // The same result by the id of its CDA document, and the mail with its recipients.
    const byDoc = (await (await api.fetch(`${base}/api/v1/results?documentId=${encodeURIComponent(`1.2.250.1.999.2.1^DOC-${controlId}`)}`)).json()) as { results: { resultId: string }[] };
    expect(byDoc.results.map((r) => r.resultId)).toEqual([id]);
    const mail = (await (await api.fetch(`${base}/api/v1/mails/${d.mailId}`)).json()) as { messageId: string; deliveries: { state: string }[] };
    expect(mail.messageId).toBe(`<${d.mailId}@${gateway.ctx.config.mailboxes[0]!.address.split('@')[1]}>`);
    expect(mail.deliveries.map((x) => x.state)).toEqual(['delivered']);
    // An empty control id is refused (with no parameter at all, the route lists the newest results: search.test.ts).
    expect((await api.fetch(`${base}/api/v1/results?controlId=`)).status).toBe(400);
  });

  it('publishes the JSON schemas of its answers', async () => {
    const s = (await (await api.fetch(`${base}/api/v1/schema`)).json()) as { result: { required: string[] }; delivery: { properties: { state: { enum: string[] } } } };
    expect(s.result.required).toContain('deliveries');
    expect(s.delivery.properties.state.enum).toEqual(expect.arrayContaining(['refused', 'delivered', 'unconfirmed', 'displayed']));
  });

  it('answers 400 with a reason to a malformed id and 404 to an unknown one', async () => {
    const bad = await api.fetch(`${base}/api/v1/results/not-an-id`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { reason: string }).reason).toMatch(/params\/id must match pattern/);
    expect((await api.fetch(`${base}/api/v1/results/r-000000000000000000000000`)).status).toBe(404);
  });

  it('exports metrics without personal data, and the real Prometheus scrapes them', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^mssgw_results_acknowledged_total\{source="lab",transport="mllp"\} [1-9]/m);
    expect(text).toMatch(/^mssgw_mails_sent_total\{mailbox="api-[0-9a-f]+-noreply@chu-demo\.mssante\.test"\} 1/m);
    expect(text).toMatch(/^mssgw_queue_jobs\{queue="intake",state="completed"\} \d+/m);
    expect(text).not.toMatch(/PAT-TROIS|279035121518989|cabinet-demo/);
    const sample = await waitFor('Prometheus to scrape the gateway', async () => {
      const res = (await (await fetch(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent('sum(mssgw_results_acknowledged_total)')}`)).json()) as {
        data: { result: { value: [number, string] }[] };
      };
      return res.data.result[0] && Number(res.data.result[0].value[1]) >= 1 ? res.data.result[0] : undefined;
    }, 20_000, 500);
    expect(Number(sample.value[1])).toBeGreaterThanOrEqual(1);
  });
});
