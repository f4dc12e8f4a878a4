import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
