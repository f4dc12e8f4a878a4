import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import nodemailer from 'nodemailer';
import { parse as parseYaml } from 'yaml';
import { MllpClient } from '@mssgw/hl7';
import { intakeQueue } from '@mssgw/runtime';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { hostileCorpus } from '../support/hostile-mail.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROMETHEUS = 'http://127.0.0.1:19090';
const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/dashboards/mssgw.json'), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[];
};
const rules = (parseYaml(readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);

async function query(expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
  return (await (await fetch(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { status: string; error?: string; data?: { result: unknown[] } };
}

/** An alert expression is "<measure> <comparison> <threshold>": the measure alone must return data. */
const measureOf = (expr: string) => /^(.*\S)\s*(?:>=|<=|==|!=|>|<)\s*[\d.]+\s*$/s.exec(expr)?.[1] ?? expr;

describe('operations: the dashboard and the alert rules, evaluated by the real Prometheus on live traffic', () => {
  let gateway: Gateway;
  const t = tag();

  beforeAll(async () => {
    // Port 8088 is the sandbox Prometheus' scrape target.
    const config = testConfig('ops', (c) => {
      c.http.port = 8088;
      // The Kafka intake on topics of its own: its consumer lag is MssgwKafkaLagGrowing's measure.
      c.kafka.enabled = true;
      // Reference data of its own, so that their age is on the dashboard.
      c.mssante.whitelist.location = path.join(ROOT, 'test/fixtures/whitelist/listeblanchemssante.xml');
      c.directory.extraction = { location: path.join(ROOT, 'test/fixtures/directory/Extraction_Correspondance_MSSante_202611260400.txt'), refreshIntervalMs: 86_400_000, minRatio: 0.5 };
      c.dispatcher.retryBudgetMs = 1_000;
      c.dispatcher.backoffMs = 100;
    });
    const admin = new Kafka({ clientId: 'mssgw-test-ops', brokers: config.kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [config.kafka.intakeTopics[0]!, config.kafka.deadLetterTopic, config.kafka.statusTopic].map((topic) => ({ topic, numPartitions: 1 })) });
    await admin.disconnect();
    gateway = await startGateway(config);
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    // Delivered, bounced (DSN 5.1.1), refused at RCPT (550), deferred until dead-lettered (450), refused by routing.
    const doctors = ['ok', 'unknown', 'reject', 'defer'].map((p, i) => ({ ...DOCTORS[i % 3]!, address: `${p}-ops-${t}@cabinet-demo.mssante.test` }));
    expect((await c.send(makeCisisResult({ controlId: `OPS-${t}`, patient: PATIENTS[0]!, doctors, toPatient: true, extraAddresses: ['x@example.org'] }))).code).toBe('AA');
    expect((await c.send('MSH|^~\\&|A|B|C|D|20260101||ADT^A01|BAD-' + t + '|P|2.5\rPID|||1\r')).code).toBe('AR');
    await c.close();
    // A result whose routing fails on its only attempt (a job the router cannot read): MssgwRoutingFailed's measure.
    const intake = intakeQueue(gateway.ctx);
    await intake.add('result', { unreadable: true }, { jobId: `r-ops-failed-${t}`, attempts: 1 });
    await intake.close();
    // A mail the receipts reader quarantines (more MIME parts than receipts.maxMimeParts): MssgwReceiptsQuarantined's.
    const many = hostileCorpus(40_000).find((m) => m.name === 'mime-parts-many')!.mail;
    await nodemailer.createTransport({ host: '127.0.0.1', port: 10025, ignoreTLS: true })
      .sendMail({ envelope: { from: 'mailer-daemon@mx.hostile.test', to: gateway.ctx.config.mailboxes[0]!.address }, raw: many });
    const [resultId] = await gateway.ctx.status.resultsByControlId(`OPS-${t}`);
    await waitFor('every recipient settled', async () => {
      await gateway.receipts!.sweep();
      const r = await gateway.ctx.status.getResult(resultId!);
      return r?.deliveries.every((d) => ['delivered', 'failed', 'dead-lettered', 'refused'].includes(d.state));
    }, 60_000, 300);
  }, 90_000);
  afterAll(async () => gateway?.stop());

  it('passes promtool check rules, and Prometheus has loaded every rule', async () => {
    expect(execFileSync('promtool', ['check', 'rules', path.join(ROOT, 'deploy/prometheus/alerts.yml')]).toString()).toMatch(/SUCCESS: 18 rules found/);
    const loaded = (await (await fetch(`${PROMETHEUS}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string }[] }[] } };
    expect(loaded.data.groups.flatMap((g) => g.rules.map((r) => r.name)).sort()).toEqual(rules.map((r) => r.alert).sort());
  });

  it('answers every dashboard panel query with data', async () => {
    const targets = dashboard.panels.flatMap((p) => p.targets.map((tg) => ({ panel: p.title, expr: tg.expr })));
    expect(targets.length).toBeGreaterThanOrEqual(15);
    for (const { panel, expr } of targets) {
      const r = await waitFor(`data for "${panel}"`, async () => {
        const x = await query(expr);
        if (x.status !== 'success') throw new Error(`${panel}: ${expr}: ${x.error}`);
        return x.data!.result.length > 0 ? x : undefined;
      }, 30_000, 1000);
      expect(r.status, panel).toBe('success');
    }
  }, 120_000);

  it('answers every alert expression, and its measure returns data', async () => {
    for (const rule of rules) {
      const whole = await query(rule.expr);
      expect(whole.status, `${rule.alert}: ${whole.error ?? ''}`).toBe('success');
      const measure = await waitFor(`data for ${rule.alert}`, async () => {
        const x = await query(measureOf(rule.expr));
        return x.status === 'success' && x.data!.result.length > 0 ? x : undefined;
      }, 30_000, 1000);
      expect(measure.data!.result.length, rule.alert).toBeGreaterThan(0);
    }
  }, 120_000);
});
