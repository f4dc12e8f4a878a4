// The chart's bundled PostgreSQL for trials (#21, postgres.bundled): off by default; on, a StatefulSet, its Service,
// Secret and ConfigMap, the services pointed at it with the Secret's password and CA, and a NetworkPolicy that lets in
// only the gateway's pods. Then PostgreSQL 15 itself, started as the rendered StatefulSet starts it (its arguments,
// pg_hba.conf, the creation script, the Secret's certificate and key with the modes the kubelet gives them), and the
// gateway's connection: verify-full against the Secret's CA, for the host name the chart put in the url.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sandbox = process.env['MSSGW_SANDBOX'] ?? path.join(ROOT, '.sandbox');
const helm = path.join(sandbox, 'bin', 'helm');
const validator = path.join(sandbox, 'bin', 'k8s-validate');
const CRDS = ['--crd', 'monitoring.coreos.com/v1/ServiceMonitor', '--crd', 'monitoring.coreos.com/v1/PrometheusRule'];

type Labels = Record<string, string>;
interface Selector { matchLabels?: Labels; matchExpressions?: { key: string; operator: string; values?: string[] }[] }
interface Mount { name: string; mountPath: string; readOnly?: boolean }
interface Container {
  name: string; image: string; args?: string[]; env?: { name: string; value: string }[]; volumeMounts: Mount[];
  securityContext: Record<string, unknown>; resources: Record<string, unknown>;
  startupProbe?: { exec: { command: string[] } }; readinessProbe?: { exec: { command: string[] } }; livenessProbe?: { exec: { command: string[] } };
}
interface Volume { name: string; secret?: { secretName: string; defaultMode?: number; items?: { key: string; path: string }[] }; projected?: { sources: { secret: { name: string; items?: { key: string; path: string }[] } }[] }; configMap?: { name: string }; emptyDir?: object }
interface PodTemplate { metadata: { labels: Labels; annotations?: Labels }; spec: { containers: Container[]; volumes: Volume[]; securityContext: Record<string, unknown>; automountServiceAccountToken?: boolean } }
interface K8s {
  apiVersion: string; kind: string; metadata: { name: string; labels?: Labels; annotations?: Labels };
  spec: Record<string, unknown> & { template: PodTemplate; podSelector: Selector; selector: Labels & Selector };
  data: Record<string, string>; type?: string;
}

const render = (...set: string[]) => {
  const r = spawnSync(helm, ['template', 'test', 'helm/mssante-gateway', ...set.flatMap((s) => ['--set', s])], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8s | null).filter((o): o is K8s => o !== null);
  const gatewayConfig = parse(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'test-mssgw-config')!.data['gateway.yaml']!) as {
    postgres: { url: string; password: { file: string }; sslMode: string; caFile: string; schema: string; poolSize: number };
  };
  return { text: r.stdout, objects, gatewayConfig };
};
const BUNDLED = 'postgres.bundled.enabled=true';
const deploymentsOf = (objects: K8s[]) => objects.filter((o) => o.kind === 'Deployment');
const one = (objects: K8s[], kind: string, name = 'test-mssgw-postgres') => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found, `${kind} ${name}`).toHaveLength(1);
  return found[0]!;
};

/** Whether a NetworkPolicy's label selector selects a pod with these labels (matchLabels, In, NotIn, Exists). */
const selects = (s: Selector, labels: Labels) =>
  Object.entries(s.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
  (s.matchExpressions ?? []).every((e) =>
    e.operator === 'In' ? e.values!.includes(labels[e.key]!) :
    e.operator === 'NotIn' ? !e.values!.includes(labels[e.key]!) :
    e.operator === 'Exists' ? e.key in labels : (() => { throw new Error(`operator ${e.operator}`); })());

describe('Helm chart: the bundled PostgreSQL for trials (postgres.bundled)', () => {
  it('draws no PostgreSQL by default, and leaves config.postgres and the Secrets as given', () => {
    const values = parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as { postgres: { bundled: { enabled: boolean } }; config: { postgres: unknown } };
    expect(values.postgres.bundled.enabled).toBe(false);
    const { text, objects, gatewayConfig } = render();
    expect(objects.filter((o) => o.kind === 'StatefulSet')).toEqual([]);
    expect(objects.filter((o) => o.metadata.name.includes('postgres')).map((o) => `${o.kind} ${o.metadata.name}`)).toEqual([]);
    expect(gatewayConfig.postgres).toEqual(values.config.postgres);
    expect(text).not.toMatch(/bundled-postgres/);
    expect(objects.filter((o) => o.kind === 'NetworkPolicy')).toHaveLength(1);
  });

  it('on, draws a StatefulSet, a headless Service, a Secret and a ConfigMap that the schema check accepts', () => {
    const { text, objects } = render(BUNDLED);
    expect(existsSync(validator), `${validator} is missing: bash deploy/local/helm.sh install builds it`).toBe(true);
    // Its data volume comes from volumeClaimTemplates, which k8s-validate counts as the pod's volumes (only those: a
    // mount of nothing still fails, below).
    const checked = spawnSync(validator, CRDS, { input: text, encoding: 'utf8' });
    // The 22 objects of the default rendering, plus the StatefulSet, Service, Secret, ConfigMap and NetworkPolicy.
    expect(checked.stdout + checked.stderr).toMatch(/^27 valid, 2 skipped$/m);
    expect(checked.status).toBe(0);
    const stray = objects.map((o) => {
      if (o.kind !== 'StatefulSet') return JSON.stringify(o);
      const copy = structuredClone(o);
      (copy.spec.template.spec.containers[0]!.volumeMounts as unknown[]).push({ name: 'nothing', mountPath: '/x' });
      return JSON.stringify(copy);
    }).join('\n---\n');
    expect(spawnSync(validator, CRDS, { input: stray, encoding: 'utf8' }).stdout).toMatch(/volumeMounts: no volume "nothing"/);

    const set = one(objects, 'StatefulSet');
    expect(set.spec['replicas']).toBe(1);
    expect(set.spec['serviceName']).toBe('test-mssgw-postgres');
    const pod = set.spec.template.spec;
    const c = pod.containers[0]!;
    expect(c.image).toBe('postgres:15');
    expect(render(BUNDLED, 'postgres.bundled.image.tag=15.10').objects.find((o) => o.kind === 'StatefulSet')!.spec.template.spec.containers[0]!.image).toBe('postgres:15.10');
    // Non-root, read-only root: the socket directory, /tmp and the data are volumes of their own.
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, fsGroupChangePolicy: 'OnRootMismatch' });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.automountServiceAccountToken).toBe(false);
    const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.mountPath, m.name]));
    expect(mounts).toMatchObject({ '/var/lib/postgresql/data': 'data', '/var/run/postgresql': 'run', '/tmp': 'tmp' });
    expect(c.env).toContainEqual({ name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' });
    expect(set.spec['volumeClaimTemplates']).toMatchObject([{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } } }]);
    expect(render(BUNDLED, 'postgres.bundled.storage.size=50Gi', 'postgres.bundled.storage.storageClassName=fast').objects.find((o) => o.kind === 'StatefulSet')!.spec['volumeClaimTemplates'])
      .toMatchObject([{ spec: { storageClassName: 'fast', resources: { requests: { storage: '50Gi' } } } }]);
    expect(c.resources).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } });
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(probe!.exec.command[0]).toBe('pg_isready');
    // TLS on, with the Secret's certificate and key.
    expect(c.args!.join(' ')).toMatch(/-c ssl=on -c ssl_cert_file=\/etc\/postgresql\/secret\/tls\.crt -c ssl_key_file=\/etc\/postgresql\/secret\/tls\.key/);

    const service = one(objects, 'Service');
    expect(service.spec['clusterIP']).toBe('None');
    expect(service.spec['ports']).toEqual([{ name: 'postgres', port: 5432, targetPort: 'postgres' }]);
    expect(selects({ matchLabels: service.spec.selector }, set.spec.template.metadata.labels)).toBe(true);
    for (const d of deploymentsOf(objects)) expect(selects({ matchLabels: service.spec.selector }, d.spec.template.metadata.labels), d.metadata.name).toBe(false);

    const secret = one(objects, 'Secret');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'mssgw-password', 'postgres-password', 'tls.crt', 'tls.key']);
    // Kept by helm uninstall, like the volume: a new install finds the password the data was made with.
    expect(secret.metadata.annotations).toMatchObject({ 'helm.sh/resource-policy': 'keep' });
    const password = Buffer.from(secret.data['mssgw-password']!, 'base64').toString();
    expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    // Random at install (an upgrade reads the Secret back: lookup, which helm template cannot show).
    expect(Buffer.from(one(render(BUNDLED).objects, 'Secret').data['mssgw-password']!, 'base64').toString()).not.toBe(password);
    expect(one(objects, 'ConfigMap').data['pg_hba.conf']).toMatch(/^hostssl +mssgw +mssgw +all +scram-sha-256$/m);
  });

  it('points every service at it: the url names its Service, and the projected Secrets carry its password and CA, never its key', async () => {
    const { objects, gatewayConfig } = render(BUNDLED, 'config.postgres.poolSize=7');
    expect(gatewayConfig.postgres).toEqual({
      url: 'postgres://mssgw@test-mssgw-postgres.default.svc:5432/mssgw',
      password: { file: '/run/secrets/mssgw/bundled-postgres-password' },
      sslMode: 'verify-full',
      caFile: '/run/secrets/mssgw/bundled-postgres-ca.pem',
      // The rest of config.postgres is kept.
      schema: 'mssgw', poolSize: 7, connectTimeoutMs: 5000, migrateOnStart: true,
    });
    const deployments = deploymentsOf(objects);
    expect(deployments).toHaveLength(6);
    for (const d of deployments) {
      const projected = d.spec.template.spec.volumes.find((v) => v.name === 'secrets')!.projected!.sources;
      const bundled = projected.filter((s) => s.secret.name === 'test-mssgw-postgres');
      expect(bundled, d.metadata.name).toEqual([{ secret: { name: 'test-mssgw-postgres', items: [
        { key: 'mssgw-password', path: 'bundled-postgres-password' },
        { key: 'ca.crt', path: 'bundled-postgres-ca.pem' },
      ] } }]);
      // The files the configuration names are those paths, under the mount; the store Secret (Redis) is still there.
      expect(bundled[0]!.secret.items!.map((i) => `/run/secrets/mssgw/${i.path}`)).toEqual([gatewayConfig.postgres.password.file, gatewayConfig.postgres.caFile]);
      expect(projected.map((s) => s.secret.name)).toContain('mssgw-store');
    }
    // A new configuration restarts the pods.
    const checksum = (o: K8s[]) => deploymentsOf(o)[0]!.spec.template.metadata.annotations!['checksum/config'];
    expect(checksum(objects)).not.toBe(checksum(render('config.postgres.poolSize=7').objects));
    // A service that does not mount the store Secret does not get the store's password either.
    const api = deploymentsOf(render(BUNDLED, 'services.api.secrets={api}').objects).find((d) => d.metadata.name === 'test-mssgw-api')!;
    expect(JSON.stringify(api.spec.template.spec.volumes)).not.toMatch(/test-mssgw-postgres/);

    // Production accepts it: verified TLS, a password from a file.
    const { loadConfig } = await import('@mssgw/config');
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-bundled-config-'));
    try {
      writeFileSync(path.join(dir, 'gateway.yaml'), one(objects, 'ConfigMap', 'test-mssgw-config').data['gateway.yaml']!);
      const config = loadConfig({ file: path.join(dir, 'gateway.yaml'), env: { MSSGW_CONTAINER: '1' } });
      expect(config.environment).toBe('production');
      expect(config.postgres.url).toBe(gatewayConfig.postgres.url);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets the gateway\'s pods reach its port, and nothing else', () => {
    const { objects } = render(BUNDLED);
    const pods = Object.fromEntries([...deploymentsOf(objects), one(objects, 'StatefulSet')].map((o) => [o.metadata.name, o.spec.template.metadata.labels]));
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    expect(policies.map((p) => p.metadata.name).sort()).toEqual(['test-mssgw', 'test-mssgw-postgres']);
    // The gateway's policy (HTTP and MLLP from anywhere in the cluster) is not the PostgreSQL pod's.
    const gateway = policies.find((p) => p.metadata.name === 'test-mssgw')!;
    for (const [name, labels] of Object.entries(pods)) expect(selects(gateway.spec.podSelector, labels), name).toBe(name !== 'test-mssgw-postgres');
    const policy = policies.find((p) => p.metadata.name === 'test-mssgw-postgres')!;
    for (const [name, labels] of Object.entries(pods)) expect(selects(policy.spec.podSelector, labels), name).toBe(name === 'test-mssgw-postgres');
    expect(policy.spec['policyTypes']).toEqual(['Ingress']);
    const ingress = policy.spec['ingress'] as { ports: unknown[]; from: { podSelector: Selector; namespaceSelector?: unknown; ipBlock?: unknown }[] }[];
    expect(ingress).toHaveLength(1);
    expect(ingress[0]!.ports).toEqual([{ port: 5432, protocol: 'TCP' }]);
    // One peer: pods of this namespace (no namespaceSelector, no ipBlock), the gateway's, not PostgreSQL's own.
    expect(ingress[0]!.from).toHaveLength(1);
    expect(Object.keys(ingress[0]!.from[0]!)).toEqual(['podSelector']);
    for (const [name, labels] of Object.entries(pods)) expect(selects(ingress[0]!.from[0]!.podSelector, labels), name).toBe(name !== 'test-mssgw-postgres');
    expect(selects(ingress[0]!.from[0]!.podSelector, { 'app.kubernetes.io/instance': 'test', 'app.kubernetes.io/component': 'redis' })).toBe(false);
    expect(selects(ingress[0]!.from[0]!.podSelector, { ...pods['test-mssgw-router']!, 'app.kubernetes.io/instance': 'other' })).toBe(false);
    // The gateway's own policy turned off leaves PostgreSQL's in place: nothing else guards it.
    const without = render(BUNDLED, 'networkPolicy.enabled=false').objects.filter((o) => o.kind === 'NetworkPolicy');
    expect(without.map((p) => p.metadata.name)).toEqual(['test-mssgw-postgres']);
  });

  it('has helm install say it is a trial, and how to move to an external PostgreSQL (NOTES.txt)', () => {
    // helm template does not render the notes, and helm install needs a cluster: a copy of the chart renders them
    // into a ConfigMap, with the same values and helpers.
    const chart = mkdtempSync(path.join(tmpdir(), 'mssgw-notes-'));
    try {
      cpSync(path.join(ROOT, 'helm/mssante-gateway'), chart, { recursive: true });
      mkdirSync(path.join(chart, 'files'), { recursive: true });
      writeFileSync(path.join(chart, 'files', 'notes-under-test.txt'), readFileSync(path.join(chart, 'templates', 'NOTES.txt')));
      writeFileSync(path.join(chart, 'templates', 'notes-under-test.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: notes }\ndata:\n  notes: {{ tpl (.Files.Get "files/notes-under-test.txt") . | quote }}\n');
      const notes = (...set: string[]) => {
        const r = spawnSync(helm, ['template', 'mssgw', chart, '-n', 'hdh', '--show-only', 'templates/notes-under-test.yaml', ...set.flatMap((v) => ['--set', v])], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        return (parse(r.stdout) as { data: { notes: string } }).data.notes;
      };
      expect(notes()).not.toMatch(/bundled|pg_dump/i);
      const bundled = notes(BUNDLED);
      expect(bundled).toMatch(/WARNING: the message store is the BUNDLED PostgreSQL \(mssgw-mssgw-postgres\), for trials only: one replica, no backups/);
      expect(bundled).toMatch(/kubectl -n hdh exec mssgw-mssgw-postgres-0 -- pg_dump -U postgres -d mssgw -Fc > mssgw\.dump/);
      expect(bundled).toMatch(/pg_restore --no-owner --no-privileges -d /);
      expect(bundled).toMatch(/kubectl -n hdh delete pvc data-mssgw-mssgw-postgres-0 && kubectl -n hdh delete secret mssgw-mssgw-postgres/);
    } finally {
      rmSync(chart, { recursive: true, force: true });
    }
  });

  it('gives a server certificate for the url\'s host, signed by the CA the services trust, with its key', () => {
    const { objects, gatewayConfig } = render(BUNDLED);
    const data = Object.fromEntries(Object.entries(one(objects, 'Secret').data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    const ca = new X509Certificate(data['ca.crt']!);
    const cert = new X509Certificate(data['tls.crt']!);
    const host = new URL(gatewayConfig.postgres.url).hostname;
    expect(host).toBe('test-mssgw-postgres.default.svc');
    expect(cert.checkHost(host)).toBe(host);
    for (const name of ['test-mssgw-postgres', 'test-mssgw-postgres.default', 'test-mssgw-postgres.default.svc.cluster.local']) expect(cert.checkHost(name), name).toBe(name);
    expect(cert.checkHost('postgres.example')).toBeUndefined();
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(createPublicKey(createPrivateKey(data['tls.key']!)).export({ format: 'pem', type: 'spki' })).toBe(cert.publicKey.export({ format: 'pem', type: 'spki' }));
    // Ten years by default: a trial left running does not stop on an expired certificate next year.
    expect(new Date(cert.validTo).getTime() - Date.now()).toBeGreaterThan(9 * 365 * 86400_000);
  });
});

// PostgreSQL 15 of Debian (deploy/local/postgres.sh installs it), run as its postgres user like the sandbox's: root only.
const PG_BIN = '/usr/lib/postgresql/15/bin';
const canRunPostgres = existsSync(path.join(PG_BIN, 'initdb')) && process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status === 0;
const POSTGRES_IDS = canRunPostgres ? ['-u', '-g'].map((o) => Number(spawnSync('id', [o, 'postgres'], { encoding: 'utf8' }).stdout)) : [];

describe.skipIf(!canRunPostgres)('Helm chart: the bundled PostgreSQL, run (PostgreSQL 15, as the rendered StatefulSet starts it)', () => {
  const started: ChildProcess[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const p of started) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((resolve) => p.once('exit', resolve));
        p.kill('SIGINT'); // fast shutdown
        await exited;
      }
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const [uid, gid] = POSTGRES_IDS as [number, number];
  // As the postgres user, from a directory it may enter; spawned directly, so that a signal reaches the server itself.
  const asUser = { uid, gid, cwd: '/' };
  const asPostgres = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(args[0]!, args.slice(1), { ...asUser, env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8' });
  const freePort = () => new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); });
  });

  it('serves verify-full TLS for the url\'s host to the gateway\'s role, with the Secret\'s key as the kubelet mounts it, and the gateway\'s migrations run', async () => {
    const { objects, gatewayConfig } = render(BUNDLED);
    const secret = one(objects, 'Secret').data;
    const configMap = one(objects, 'ConfigMap').data;
    const pod = one(objects, 'StatefulSet').spec.template.spec;
    const c = pod.containers[0]!;

    // The pod's volumes, here: the Secret's items as the kubelet writes them (root's, group fsGroup, defaultMode),
    // the ConfigMap's files, the socket directory.
    const base = mkdtempSync(path.join(tmpdir(), 'mssgw-bundled-pg-'));
    dirs.push(base);
    chmodSync(base, 0o755);
    const local: Record<string, string> = {};
    for (const v of pod.volumes) {
      const dir = path.join(base, v.name);
      mkdirSync(dir);
      if (v.secret) {
        chownSync(dir, 0, gid);
        chmodSync(dir, 0o750);
        for (const item of v.secret.items!) {
          const file = path.join(dir, item.path);
          writeFileSync(file, Buffer.from(secret[item.key]!, 'base64'));
          chownSync(file, 0, gid);
          chmodSync(file, v.secret.defaultMode!);
        }
      } else if (v.configMap) {
        for (const [key, text] of Object.entries(configMap)) writeFileSync(path.join(dir, key), text, { mode: 0o644 });
      } else {
        chownSync(dir, uid, gid);
      }
    }
    expect(pod.volumes.find((v) => v.name === 'secret')!.secret!.defaultMode).toBe(0o440);
    for (const m of c.volumeMounts) if (m.name !== 'data') local[m.mountPath] = path.join(base, m.name);
    // A path of the pod (a value, or after the "=" of a -c setting) mapped to its volume here.
    const here = (s: string) => s.replace(/^([^=]*=)?(\/.*)$/, (whole, setting: string | undefined, file: string) => {
      const mount = Object.keys(local).find((m) => file.startsWith(`${m}/`));
      return mount ? `${setting ?? ''}${local[mount]}${file.slice(mount.length)}` : whole;
    });
    const envOf = (name: string) => here(c.env!.find((e) => e.name === name)!.value);

    // initdb as the image's entrypoint runs it: the superuser with its password from the Secret.
    const data = path.join(base, 'pgdata');
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, uid, gid);
    const init = asPostgres([`${PG_BIN}/initdb`, '-D', data, '--username=postgres', `--pwfile=${envOf('POSTGRES_PASSWORD_FILE')}`, '-E', 'UTF8', '--locale=C.UTF-8']);
    expect(init.status, init.stderr).toBe(0);

    // The rendered arguments, the pod's paths mapped here; only the address, port and socket differ.
    const port = await freePort();
    const socketDir = local['/var/run/postgresql']!;
    const args = c.args!.map(here);
    expect(args).toContain(`ssl_key_file=${path.join(base, 'secret', 'tls.key')}`);
    const start = () => {
      const server = spawn(`${PG_BIN}/postgres`, ['-D', data, '-k', socketDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', ...args], { ...asUser, env: {}, stdio: ['ignore', 'ignore', 'pipe'] });
      started.push(server);
      let log = '';
      server.stderr.on('data', (b: Buffer) => (log += b.toString()));
      return { server, log: () => log };
    };
    const waitReady = async (log: () => string) => {
      for (let i = 0; i < 200; i++) {
        if (/ready to accept connections/.test(log())) return;
        if (/FATAL/.test(log())) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`PostgreSQL did not start:\n${log()}`);
    };

    // PostgreSQL refuses a key its group may write: the check the kubelet's modes pass is a real one.
    const keyFile = path.join(base, 'secret', 'tls.key');
    chmodSync(keyFile, 0o460);
    const refused = start();
    await new Promise((resolve) => refused.server.once('exit', resolve));
    expect(refused.log()).toMatch(/private key file .*tls\.key" has group or world access/);
    chmodSync(keyFile, 0o440);

    const { log } = start();
    await waitReady(log);

    // The creation script, as the entrypoint runs it on an empty data directory (through the socket, as postgres).
    const create = asPostgres(['bash', path.join(base, 'initdb', 'create-mssgw.sh')], { PGHOST: socketDir, PGPORT: String(port), PATH: `${PG_BIN}:/usr/bin:/bin`, MSSGW_PASSWORD_FILE: envOf('MSSGW_PASSWORD_FILE') });
    expect(create.status, create.stderr).toBe(0);

    // The probes' command answers, and the server logs nothing of it (pg_isready hangs up when asked a password).
    const beforeProbes = log().length;
    for (const probe of [c.startupProbe!, c.readinessProbe!, c.livenessProbe!]) {
      const cmd = probe.exec.command.map((a) => (a === '5432' ? String(port) : a));
      const r = spawnSync(path.join(PG_BIN, cmd[0]!), cmd.slice(1), { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(log().slice(beforeProbes)).toBe('');

    // The gateway's connection: its configuration's user, database, password file and CA file (the Secret's), TLS
    // checked for the url's host name; 127.0.0.1 stands for the Service's address, which only the cluster resolves.
    const url = new URL(gatewayConfig.postgres.url);
    const password = Buffer.from(secret['mssgw-password']!, 'base64').toString();
    const ca = Buffer.from(secret['ca.crt']!, 'base64').toString();
    const client = (over: Partial<pg.ClientConfig> = {}) => new pg.Client({
      host: '127.0.0.1', port, user: url.username, database: url.pathname.slice(1), password,
      ssl: { ca, rejectUnauthorized: true, servername: url.hostname }, connectionTimeoutMillis: 5000, ...over,
    });
    const refusedWith = async (over: Partial<pg.ClientConfig>) => {
      const cl = client(over);
      try {
        await cl.connect();
        await cl.end();
        return 'connected';
      } catch (err) {
        await cl.end().catch(() => undefined);
        return (err as Error).message;
      }
    };
    const gateway = client();
    await gateway.connect();
    try {
      const row = (await gateway.query<{ user: string; ssl: boolean; owner: string }>(
        `select current_user as user, (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as ssl,
                (select pg_get_userbyid(datdba) from pg_database where datname = current_database()) as owner`,
      )).rows[0]!;
      expect(row).toEqual({ user: 'mssgw', ssl: true, owner: 'mssgw' });
    } finally {
      await gateway.end();
    }

    // The gateway's own migrations, in its schema, as the pods run them at start (postgres.migrateOnStart).
    const { migrate, readMigrations } = await import('@mssgw/store');
    const pool = new pg.Pool({
      host: '127.0.0.1', port, user: url.username, database: url.pathname.slice(1), password,
      ssl: { ca, rejectUnauthorized: true, servername: url.hostname }, options: `-c search_path=${gatewayConfig.postgres.schema}`, max: 2,
    });
    try {
      expect((await migrate(pool)).length).toBe(readMigrations().length);
    } finally {
      await pool.end();
    }

    // What the server refuses: another host name (the certificate names the Service only), no TLS, a wrong password,
    // the superuser over the network even with its password.
    expect(await refusedWith({ ssl: { ca, rejectUnauthorized: true, servername: 'postgres.example' } })).toMatch(/does not match|altnames/i);
    expect(await refusedWith({ ssl: false })).toMatch(/no pg_hba\.conf entry .*no encryption/);
    expect(await refusedWith({ password: 'not-the-password' })).toMatch(/password authentication failed for user "mssgw"/);
    const superuser = Buffer.from(secret['postgres-password']!, 'base64').toString();
    expect(await refusedWith({ user: 'postgres', database: 'postgres', password: superuser })).toMatch(/no pg_hba\.conf entry for host "127\.0\.0\.1", user "postgres"/);
    // Without the Secret's CA, the certificate is not trusted.
    expect(await refusedWith({ ssl: { rejectUnauthorized: true, servername: url.hostname } })).toMatch(/self[- ]signed|unable to (get|verify)/i);
  }, 60_000);
});
