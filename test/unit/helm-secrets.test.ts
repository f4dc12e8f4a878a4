// The chart's Secrets, split per service (#22): each pod mounts only the kinds of secrets its service uses, projected
// together at /run/secrets/mssgw (where the configuration names each file). test/unit/deploy.test.ts checks the
// rendered manifests against the Kubernetes types.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const helm = path.join(process.env['MSSGW_SANDBOX'] ?? path.join(ROOT, '.sandbox'), 'bin', 'helm');
const run = (args: string[]) => spawnSync(helm, args, { cwd: ROOT, encoding: 'utf8' });

interface Projected { projected?: { defaultMode: number; sources: { secret: { name: string; optional?: boolean } }[] }; name: string }
type Deployment = { kind: string; metadata: { name: string }; spec: { template: { spec: { volumes: Projected[]; containers: { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }[] } } } };

const mounted = (...set: string[]) => {
  const r = run(['template', 'test', 'helm/mssante-gateway', ...set.flatMap((s) => ['--set', s])]);
  expect(r.status, r.stderr).toBe(0);
  const deployments = parseAllDocuments(r.stdout).map((d) => d.toJS() as Deployment | null).filter((o): o is Deployment => o?.kind === 'Deployment');
  return Object.fromEntries(deployments.map((d) => {
    const pod = d.spec.template.spec;
    const volume = pod.volumes.find((v) => v.name === 'secrets')!;
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'secrets', mountPath: '/run/secrets/mssgw', readOnly: true });
    expect(volume.projected!.defaultMode).toBe(0o440);
    return [d.metadata.name.replace('test-mssgw-', ''), volume.projected!.sources.map((s) => s.secret.name + (s.secret.optional ? '?' : ''))];
  }));
};

describe('Helm chart Secrets, per service', () => {
  it('mounts in each pod only the Secrets its service uses', () => {
    expect(mounted()).toEqual({
      intake: ['mssgw-store', 'mssgw-mllp?', 'mssgw-kafka?'],
      router: ['mssgw-store', 'mssgw-operator', 'mssgw-directory?'],
      dispatcher: ['mssgw-store', 'mssgw-operator', 'mssgw-mailboxes'],
      receipts: ['mssgw-store', 'mssgw-operator', 'mssgw-mailboxes', 'mssgw-imap'],
      feedback: ['mssgw-store', 'mssgw-kafka?', 'mssgw-zam?'],
      api: ['mssgw-store', 'mssgw-api?', 'mssgw-operator', 'mssgw-mailboxes'],
    });
    // The mailboxes' keys and IMAP passwords stay out of the pods that face the LIS and the producers.
    const m = mounted();
    for (const s of ['intake', 'feedback', 'router']) expect(m[s]!.join(' '), s).not.toMatch(/mailboxes|imap/);
  });

  it('takes other names and lists, and refuses a kind it does not define', () => {
    expect(mounted('secrets.store.name=chu-redis-pg', 'services.api.secrets={store,api}').api).toEqual(['chu-redis-pg', 'mssgw-api?']);
    const bad = run(['lint', 'helm/mssante-gateway', '--set', 'services.api.secrets={store,vault}']);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/services\.api\.secrets\.1 must be one of/);
    // The single Secret of old is gone: a values file still naming it is told so.
    expect(run(['lint', 'helm/mssante-gateway', '--set', 'secrets.tlsSecretName=mssgw-tls']).status).not.toBe(0);
  });
});
