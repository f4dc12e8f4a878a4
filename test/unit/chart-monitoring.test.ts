// The chart's monitoring (issue #23): the ServiceMonitor names the job the alert rules match, the PrometheusRule is
// deploy/prometheus/alerts.yml (valid for promtool) and the dashboard ConfigMap is deploy/grafana's dashboard, both
// from copies under helm/mssante-gateway/files that must not drift from their sources.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHART = path.join(ROOT, 'helm/mssante-gateway');
const helm = path.join(process.env['MSSGW_SANDBOX'] ?? path.join(ROOT, '.sandbox'), 'bin', 'helm');
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');

interface Rule { alert: string; expr: string }
interface Manifest { kind: string; metadata: { name: string; labels: Record<string, string> }; spec: Record<string, unknown>; data?: Record<string, string> }

function render(...set: string[]): Manifest[] {
  expect(existsSync(helm), `${helm} is missing: bash deploy/local/helm.sh install`).toBe(true);
  const r = spawnSync(helm, ['template', 'test', CHART, ...set.flatMap((s) => ['--set', s])], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest | null).filter((o): o is Manifest => o !== null);
}

const jobsOf = (rules: Rule[]) => [...new Set(rules.flatMap((r) => [...r.expr.matchAll(/\bjob="([^"]*)"/g)].map((m) => m[1])))];

describe('the chart\'s monitoring', () => {
  it('ships the alert rules and the dashboard as they are in deploy/ (copies under files/)', () => {
    expect(read('helm/mssante-gateway/files/alerts.yml'), 'cp deploy/prometheus/alerts.yml helm/mssante-gateway/files/alerts.yml').toBe(read('deploy/prometheus/alerts.yml'));
    expect(read('helm/mssante-gateway/files/dashboards/mssgw.json'), 'cp deploy/grafana/dashboards/mssgw.json helm/mssante-gateway/files/dashboards/').toBe(read('deploy/grafana/dashboards/mssgw.json'));
  });

  it('names the scraped job as the rules match it, whatever serviceMonitor.job says', () => {
    for (const job of ['mssgw', 'gateway-chu']) {
      const objects = render(`serviceMonitor.job=${job}`);
      const monitor = objects.find((o) => o.kind === 'ServiceMonitor')!;
      const endpoints = monitor.spec['endpoints'] as { port: string; relabelings: { targetLabel: string; replacement: string; action: string }[] }[];
      expect(endpoints).toHaveLength(1);
      expect(endpoints[0]!.relabelings).toEqual([{ action: 'replace', targetLabel: 'job', replacement: job }]);
      const rule = objects.find((o) => o.kind === 'PrometheusRule')!;
      const rules = (rule.spec['groups'] as { rules: Rule[] }[]).flatMap((g) => g.rules);
      expect(jobsOf(rules)).toEqual([job]);
    }
  });

  it('renders a PrometheusRule with every rule of alerts.yml, which promtool accepts', () => {
    const source = (parse(read('deploy/prometheus/alerts.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
    const rule = render('prometheusRule.labels.release=kube-prometheus-stack').find((o) => o.kind === 'PrometheusRule')!;
    expect(rule.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack', 'app.kubernetes.io/instance': 'test' });
    const groups = rule.spec['groups'] as { rules: Rule[] }[];
    expect(groups.flatMap((g) => g.rules)).toEqual(source);
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-rules-'));
    writeFileSync(path.join(dir, 'rules.yml'), stringify({ groups }));
    const checked = spawnSync('promtool', ['check', 'rules', path.join(dir, 'rules.yml')], { encoding: 'utf8' });
    expect(checked.stdout + checked.stderr).toMatch(new RegExp(`SUCCESS: ${source.length} rules found`));
  });

  it('renders the dashboard as a ConfigMap for Grafana\'s sidecar, on the data source it is given', () => {
    const map = render('grafanaDashboard.datasourceUid=prom-chu').find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'test-mssgw-dashboard')!;
    expect(map.metadata.labels['grafana_dashboard']).toBe('1');
    const dashboard = JSON.parse(map.data!['mssgw.json']!) as { uid: string; panels: { datasource: { uid: string }; targets: { expr: string }[] }[] };
    const shipped = JSON.parse(read('deploy/grafana/dashboards/mssgw.json')) as typeof dashboard;
    expect(dashboard.uid).toBe(shipped.uid);
    expect(dashboard.panels.map((p) => p.targets.map((t) => t.expr))).toEqual(shipped.panels.map((p) => p.targets.map((t) => t.expr)));
    expect(new Set(dashboard.panels.map((p) => p.datasource.uid))).toEqual(new Set(['prom-chu']));
  });

  it('draws none of them when turned off', () => {
    const kinds = render('serviceMonitor.enabled=false', 'prometheusRule.enabled=false', 'grafanaDashboard.enabled=false').map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds.filter((k) => /ServiceMonitor|PrometheusRule|dashboard/.test(k))).toEqual([]);
  });

  it('reads queue depths with max in every rule and panel (each process exports the same Redis depths)', () => {
    const rules = (parse(read('deploy/prometheus/alerts.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/mssgw.json')) as { panels: { targets: { expr: string }[] }[] };
    const exprs = [...rules.map((r) => r.expr), ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))].filter((e) => e.includes('mssgw_queue_jobs'));
    expect(exprs.length).toBeGreaterThanOrEqual(3);
    for (const e of exprs) expect(e, e).toMatch(/^max\b/);
  });
});
