import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
  it('the chart\'s configuration is a complete production one that starts in its pods (test/unit/production-config.test.ts refuses each misconfiguration)', async () => {
    const { parse } = await import('yaml');
    const { loadConfig } = await import('@mssgw/config');
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-config-'));
    const chart = (parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as { config: unknown }).config;
    writeFileSync(path.join(dir, 'chart.json'), JSON.stringify(chart));
    const production = loadConfig({ file: path.join(dir, 'chart.json'), env: { MSSGW_CONTAINER: '1' } });
    expect(production.environment).toBe('production');
    // The intake listens where its Service sends: every interface, on the container's MLLP port.
    const values = parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as { services: { intake: { ports: { containerPort: number }[] } } };
    const containerPorts = values.services.intake.ports.map((p) => p.containerPort);
    expect(production.mllp.listeners.map((l) => [l.host, containerPorts.includes(l.port)])).toEqual([['0.0.0.0', true]]);
    expect(loadConfig({ file: path.join(ROOT, 'deploy/docker/gateway.yaml'), env: { MSSGW_CONTAINER: '1' } }).environment).toBe('production');
  });

  it('the image holds no configuration of the demo, and says it runs in a container', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'deploy/docker/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/rm -rf [^\n]*\bdeploy\/demo\b/);
    expect(dockerfile).toMatch(/^ENV [^\n]*\bMSSGW_CONTAINER=1\b/m);
    // Its install skips scripts: the operator console is built by the image itself (read-only root at run time).
    expect(dockerfile).toMatch(/--ignore-scripts[\s\S]*&& node services\/console\/build\.mjs/);
  });

  it('compose gives the gateway the secrets directory its configuration names, and no demo secret', () => {
    const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toMatch(/- \.\/deploy\/docker\/secrets:\/run\/secrets\/mssgw:ro/);
    expect(compose).not.toMatch(/\.demo\b|operator-data:\/sandbox:ro/);
  });
});

describe('Helm chart', async () => {
  const { parse, parseAllDocuments } = await import('yaml');
  const sandbox = process.env['MSSGW_SANDBOX'] ?? path.join(ROOT, '.sandbox');
  const helm = path.join(sandbox, 'bin', 'helm');
  // deploy/tools/k8s-validate, built by deploy/local/helm.sh: each manifest strictly decoded into the k8s.io/api types.
  const validator = path.join(sandbox, 'bin', 'k8s-validate');
  const CRDS = ['--crd', 'monitoring.coreos.com/v1/ServiceMonitor', '--crd', 'monitoring.coreos.com/v1/PrometheusRule'];
  const run = (args: string[]) => spawnSync(helm, args, { cwd: ROOT, encoding: 'utf8' });
  const validate = (manifests: string) => {
    expect(existsSync(validator), `${validator} is missing: bash deploy/local/helm.sh install builds it`).toBe(true);
    return spawnSync(validator, CRDS, { input: manifests, encoding: 'utf8' });
  };
  interface Container {
    securityContext: { readOnlyRootFilesystem?: boolean };
    volumeMounts: object[];
    readinessProbe: { httpGet: { path: string } };
    livenessProbe: object;
    env: object[];
    resources: { limits: { memory: string } };
  }
  interface PodSpec { containers: Container[]; volumes: object[]; terminationGracePeriodSeconds: number }
  type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; spec: Record<string, unknown> & { template: { spec: PodSpec } } };
  const render = (...set: string[]) => {
    const r = run(['template', 'test', 'helm/mssante-gateway', ...set.flatMap((s) => ['--set', s])]);
    expect(r.status, r.stderr).toBe(0);
    return { text: r.stdout, objects: parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest | null).filter((o) => o !== null) };
  };
  const values = parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as {
    config: { dispatcher: { concurrency: number }; routing: { maxMailBytes: number }; mailboxes: unknown[] }; memory: { baseMi: number };
  };

  it('passes helm lint', () => {
    const r = run(['lint', 'helm/mssante-gateway']);
    expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.status).toBe(0);
  });

  it('refuses values outside its schema (values.schema.json)', () => {
    const r = run(['lint', 'helm/mssante-gateway', '--set', 'services.mailer.replicas=1']);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/mailer/);
    // A grace period shorter than a send is refused too.
    expect(run(['lint', 'helm/mssante-gateway', '--set', 'terminationGracePeriodSeconds=60']).status).not.toBe(0);
  });

  it('renders manifests that the schema check accepts, with the shipped values and with every option on', () => {
    const { text, objects } = render();
    expect(objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name).sort()).toEqual(
      ['api', 'dispatcher', 'feedback', 'intake', 'receipts', 'router'].map((s) => `test-mssgw-${s}`),
    );
    const checked = validate(text);
    expect(checked.stdout + checked.stderr).toMatch(/^22 valid, 2 skipped$/m);
    expect(checked.status).toBe(0);
    const all = render('ingress.enabled=true', 'ingress.className=nginx', 'ingress.tlsSecretName=mssgw-api-tls', 'networkPolicy.mllpFrom[0].ipBlock.cidr=10.20.0.0/24', 'podDisruptionBudget.enabled=false');
    const allChecked = validate(all.text);
    expect(allChecked.stdout + allChecked.stderr).toMatch(/^17 valid, 2 skipped$/m);
    expect(allChecked.status).toBe(0);
  });

  it('the schema check can fail: an unknown field, a field of the wrong type, a selector that selects nothing, a probe on no port', () => {
    const { objects } = render();
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const broken = (edit: (d: Manifest) => void) => {
      const d = structuredClone(deployment);
      edit(d);
      return validate(JSON.stringify(d));
    };
    const unknown = broken((d) => (d.spec['replica'] = 2));
    expect(unknown.status).toBe(1);
    expect(unknown.stdout).toMatch(/unknown field "replica"/);
    expect(broken((d) => (d.spec['replicas'] = 'two')).stdout).toMatch(/cannot unmarshal string/);
    expect(broken((d) => (d.spec['selector'] = { matchLabels: { app: 'other' } })).stdout).toMatch(/spec\.selector: does not select the pod template's labels/);
    expect(broken((d) => (d.spec.template.spec.containers[0]!.livenessProbe = { tcpSocket: { port: 'nope' } })).stdout).toMatch(/livenessProbe: port "nope" is not a port of the container/);
    expect(validate('apiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w }\n').stdout).toMatch(/unknown apiVersion\/kind/);
  });

  it('runs as drawn: writable /tmp, drains allowed, liveness without Redis, a grace period past the SMTP timeout', () => {
    const { objects } = render();
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      const c = pod.containers[0]!;
      expect(c.securityContext.readOnlyRootFilesystem, d.metadata.name).toBe(true);
      expect(c.volumeMounts, d.metadata.name).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
      expect(pod.volumes, d.metadata.name).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '1Gi' } });
      // /healthz asks Redis: readiness only. Liveness holds as long as the process does.
      expect(c.readinessProbe.httpGet.path).toBe('/healthz');
      expect(c.livenessProbe).toMatchObject({ tcpSocket: { port: 'http' } });
      expect(JSON.stringify(c.livenessProbe)).not.toMatch(/healthz/);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(120);
      expect(c.env).toContainEqual({ name: 'MSSGW_CONTAINER', value: '1' });
    }
    const budgets = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    expect(budgets).toHaveLength(6);
    for (const b of budgets) expect(b.spec, b.metadata.name).toEqual(expect.objectContaining({ maxUnavailable: 1 }));
    for (const b of budgets) expect(b.spec['minAvailable']).toBeUndefined();
  });

  it('sizes the dispatcher\'s memory from maxMailBytes, its concurrency and the mailboxes', () => {
    const limit = (objects: Manifest[]) => objects.find((o) => o.metadata.name === 'test-mssgw-dispatcher' && o.kind === 'Deployment')!.spec.template.spec.containers[0]!.resources.limits.memory;
    const { config, memory } = values;
    const expected = memory.baseMi + 2 * config.dispatcher.concurrency * config.mailboxes.length * (config.routing.maxMailBytes / 1024 / 1024);
    expect(limit(render().objects)).toBe(`${expected}Mi`);
    expect(expected).toBe(784);
    expect(limit(render('config.dispatcher.concurrency=8').objects)).toBe(`${memory.baseMi + 2 * 8 * 50}Mi`);
    expect(limit(render('services.dispatcher.resources.limits.memory=2Gi').objects)).toBe('2Gi');
  });

  it('gives the intake the memory its MLLP listeners may hold (docs/operations.md, MLLP limits: their budgets plus about 400 MiB)', async () => {
    const { mllpLimitsOf } = await import('@mssgw/config');
    const listeners = (values.config as unknown as { mllp: { listeners: { limits?: never }[] } }).mllp.listeners;
    const budgetMi = listeners.reduce((sum, l) => sum + mllpLimitsOf(l).maxBufferedBytes / 1024 / 1024, 0);
    const intake = render().objects.find((o) => o.metadata.name === 'test-mssgw-intake' && o.kind === 'Deployment')!;
    expect(Number.parseInt(intake.spec.template.spec.containers[0]!.resources.limits.memory, 10)).toBeGreaterThanOrEqual(400 + budgetMi);
  });

  it('has a NetworkPolicy that lets in only the HTTP and MLLP ports, and an Ingress for the API and the console when asked', () => {
    const { objects } = render('networkPolicy.mllpFrom[0].ipBlock.cidr=10.20.0.0/24');
    const policy = objects.find((o) => o.kind === 'NetworkPolicy')!;
    expect(policy.spec['policyTypes']).toEqual(['Ingress']);
    expect(policy.spec['ingress']).toEqual([
      { ports: [{ port: 8088, protocol: 'TCP' }], from: [{ namespaceSelector: {} }] },
      { ports: [{ port: 2575, protocol: 'TCP' }], from: [{ ipBlock: { cidr: '10.20.0.0/24' } }] },
    ]);
    expect(render().objects.find((o) => o.kind === 'Ingress')).toBeUndefined();
    const ingress = render('ingress.enabled=true', 'ingress.tlsSecretName=mssgw-api-tls').objects.find((o) => o.kind === 'Ingress')!;
    // The API and the console's page and files; not /metrics nor /healthz.
    const backend = { service: { name: 'test-mssgw-api', port: { name: 'http' } } };
    expect((ingress.spec['rules'] as { http: { paths: unknown } }[])[0]!.http.paths).toEqual([
      { path: '/api/', pathType: 'Prefix', backend }, { path: '/', pathType: 'Exact', backend }, { path: '/console/', pathType: 'Prefix', backend },
    ]);
    expect(ingress.spec['tls']).toEqual([{ hosts: ['mssgw.chu-exemple.fr'], secretName: 'mssgw-api-tls' }]);
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
