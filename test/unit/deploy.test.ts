import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const composeConfig = (file: string) => spawnSync('docker-compose', ['-f', file, 'config', '-q'], { cwd: ROOT, encoding: 'utf8' });

describe('deployment files', () => {
  it('docker-compose.yml is a valid Compose file (checked without a Docker engine)', () => {
    const r = composeConfig(path.join(ROOT, 'docker-compose.yml'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the check refuses a broken Compose file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-compose-'));
    const broken = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8').replace('  redis:\n    image: redis:7.4', '  redis:\n    bogus_key: 1\n    image: redis:7.4');
    writeFileSync(path.join(dir, 'docker-compose.yml'), broken);
    expect(composeConfig(path.join(dir, 'docker-compose.yml')).status).not.toBe(0);
  });

  it('every service the compose file and the Helm chart start is one the gateway knows', async () => {
    const { SERVICE_NAMES } = await import('../../services/gateway/src/start.ts');
    const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const started = [...compose.matchAll(/command: \["start", "([a-z]+)"\]/g)].map((m) => m[1]);
    expect(started.length).toBeGreaterThanOrEqual(5);
    for (const s of started) expect(SERVICE_NAMES).toContain(s);
    const values = readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8');
    const chartServices = [...values.matchAll(/^ {2}([a-z]+):\n {4}replicas:/gm)].map((m) => m[1]);
    expect(chartServices.sort()).toEqual(['api', 'dispatcher', 'feedback', 'intake', 'receipts', 'router']);
    for (const s of chartServices) expect(SERVICE_NAMES).toContain(s);
  });
});

describe('shipped gateway configurations', () => {
  it('the chart\'s configuration and the compose one load as valid gateway configurations', async () => {
    const { parse } = await import('yaml');
    const { loadConfig } = await import('@mssgw/config');
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-config-'));
    const chart = (parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as { config: unknown }).config;
    writeFileSync(path.join(dir, 'chart.json'), JSON.stringify(chart));
    const production = loadConfig({ file: path.join(dir, 'chart.json'), env: {} });
    expect(production.environment).toBe('production');
    expect(production.mssante.whitelist.location).toMatch(/^https:\/\/espacedeconfiance\.mssante\.fr\//);
    // The intake listens where its Service sends: every interface, on the container's MLLP port.
    const values = parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as { services: { intake: { ports: { containerPort: number }[] } } };
    const containerPorts = values.services.intake.ports.map((p) => p.containerPort);
    expect(production.mllp.listeners.map((l) => [l.host, containerPorts.includes(l.port)])).toEqual([['0.0.0.0', true]]);
    expect(loadConfig({ file: path.join(ROOT, 'deploy/docker/gateway.yaml'), env: {} }).environment).toBe('demo');
  });
});

describe('Helm chart', async () => {
  const { parseAllDocuments } = await import('yaml');
  const helm = path.join(process.env['MSSGW_SANDBOX'] ?? path.join(ROOT, '.sandbox'), 'bin', 'helm');
  const run = (args: string[]) => spawnSync(helm, args, { cwd: ROOT, encoding: 'utf8' });

  it('passes helm lint', () => {
    const r = run(['lint', 'helm/mssante-gateway']);
    expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.status).toBe(0);
  });

  it('refuses values outside its schema (values.schema.json)', () => {
    const r = run(['lint', 'helm/mssante-gateway', '--set', 'services.mailer.replicas=1']);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/mailer/);
  });

  it('renders manifests that validate against the Kubernetes schemas', async () => {
    const r = run(['template', 'test', 'helm/mssante-gateway']);
    expect(r.status).toBe(0);
    const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as { apiVersion: string; kind: string; metadata: { name: string } } | null).filter((o) => o !== null);
    expect(objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name).sort()).toEqual(
      ['api', 'dispatcher', 'feedback', 'intake', 'receipts', 'router'].map((s) => `test-mssgw-${s}`),
    );
    const models: Record<string, string> = {
      'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment', 'v1/Service': 'kubernetes-models/v1/Service', 'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
      'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget', 'autoscaling/v2/HorizontalPodAutoscaler': 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    };
    let validated = 0;
    for (const o of objects) {
      const mod = models[`${o.apiVersion}/${o.kind}`];
      if (!mod) continue; // ServiceMonitor: a CRD of the Prometheus operator
      const Model = ((await import(mod)) as Record<string, new (x: unknown) => { validate(): void }>)[o.kind]!;
      expect(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
      validated++;
    }
    expect(validated).toBe(20);
  });

  it('the schema check can fail: a Deployment without a selector is refused', async () => {
    const { Deployment } = await import('kubernetes-models/apps/v1/Deployment');
    expect(() => new Deployment({ metadata: { name: 'x' }, spec: { template: { spec: { containers: [{ name: 'c', image: 'i' }] } } } } as never).validate()).toThrow(/selector/);
  });
});

describe('deploy/patches (fixes to installed libraries, applied after npm ci)', () => {
  const apply = (root: string) => spawnSync(process.execPath, [path.join(root, 'deploy/patches/apply.mjs')], { encoding: 'utf8' });

  it('gives ioredis pipelines a length getter on the prototype, not one of their own that V8 keeps in the old generation', () => {
    const redis = new Redis({ lazyConnect: true });
    const pipeline = redis.pipeline().set('k', '1').get('k');
    expect(Object.getOwnPropertyDescriptor(pipeline, 'length')).toBeUndefined();
    expect(pipeline.length).toBe(2);
    redis.disconnect();
  });

  it('changes nothing when run again, and fails the install when a library no longer has the text a patch replaces', () => {
    const again = apply(ROOT);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('');
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-patches-'));
    mkdirSync(path.join(dir, 'deploy/patches'), { recursive: true });
    mkdirSync(path.join(dir, 'node_modules/ioredis/built'), { recursive: true });
    copyFileSync(path.join(ROOT, 'deploy/patches/apply.mjs'), path.join(dir, 'deploy/patches/apply.mjs'));
    writeFileSync(path.join(dir, 'node_modules/ioredis/built/Pipeline.js'), 'class Pipeline {}\n');
    const upgraded = apply(dir);
    expect(upgraded.status).toBe(1);
    expect(upgraded.stderr).toMatch(/the text to replace is not in node_modules\/ioredis\/built\/Pipeline.js/);
  });
});
