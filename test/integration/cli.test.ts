import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordAudit, verifyApiKey } from '@mssgw/auth';
import { loadConfig } from '@mssgw/config';
import { connectPostgres } from '@mssgw/store';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The launcher a deployment runs (the image's entrypoint), not mssgw.ts on the test's own Node. */
const LAUNCHER = path.join(ROOT, 'services/gateway/bin/mssgw');
const mssgw = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(LAUNCHER, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

/** Starts `mssgw start api` through the launcher and returns what its "gateway started" log line says. */
async function startedWith(env: Record<string, string>): Promise<{ node: string; nodeFlags: string[] }> {
  const child = spawn(LAUNCHER, ['start', 'api'], {
    env: { ...process.env, MSSGW_ENVIRONMENT: 'test', MSSGW_LOG_LEVEL: 'info', MSSGW_HTTP_PORT: '0', MSSGW_REDIS_PREFIX: `test-cli-start-${Date.now()}`, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    // The pipe stays open and read to the end: the gateway still logs while it stops.
    let out = '';
    return await new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.includes('"gateway started"'));
        if (line) resolve(JSON.parse(line) as { node: string; nodeFlags: string[] });
      });
      void exited.then(() => reject(new Error(`the gateway ended without starting: ${out}`)));
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

describe('mssgw command line', () => {
  it('prints its help', () => {
    const r = mssgw(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/mssgw start \[service\.\.\.\]/);
  });

  it('stops at start-up on a bad setting, naming the key and what was expected', () => {
    const r = mssgw(['start'], { MSSGW_HTTP_PORT: 'eighty' });
    expect(r.code).toBe(78);
    expect(r.err).toContain('MSSGW_HTTP_PORT: expected a number, got "eighty"');
  });

  it('runs the services on Node 22 with the launcher\'s V8 flags, which MSSGW_NODE_FLAGS replaces', async () => {
    const started = await startedWith({});
    expect(started.node).toMatch(/^v22\./);
    expect(started.nodeFlags).toEqual(['--single-threaded']);
    expect((await startedWith({ MSSGW_NODE_FLAGS: '' })).nodeFlags).toEqual([]);
    expect((await startedWith({ MSSGW_NODE_FLAGS: '--single-threaded-gc --max-semi-space-size=8' })).nodeFlags).toEqual(['--single-threaded-gc', '--max-semi-space-size=8']);
  });

  it('refuses an unknown service', () => {
    expect(mssgw(['start', 'mailer'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown service mailer/) as unknown });
  });

  it('lists and replays dead letters, and says so when there is nothing to replay', () => {
    const env = { MSSGW_REDIS_PREFIX: `test-cli-${Date.now()}` };
    expect(mssgw(['dlq', 'list'], env)).toMatchObject({ code: 0, out: expect.stringContaining('0 dead-lettered deliveries') as unknown });
    expect(mssgw(['dlq', 'replay', 'd-000000000000000000000000'], env)).toMatchObject({ code: 2, err: expect.stringContaining('no dead-lettered delivery') as unknown });
    expect(mssgw(['dlq', 'replay'], env)).toMatchObject({ code: 2, err: expect.stringContaining('usage: mssgw dlq') as unknown });
  });

  it('creates, lists and revokes API keys, and prints the audit trail', async () => {
    const schema = `test_cli_keys_${Date.now()}`;
    const env = { MSSGW_POSTGRES_SCHEMA: schema };
    const created = mssgw(['apikey', 'create', '--role', 'operator', '--name', 'night shift'], env);
    expect(created.code, created.err).toBe(0);
    const [, keyId, key] = /^(k-[0-9a-f]{24}) {2}operator {2}night shift\nkey \(shown once, keep it secret\): (mssgw\.\S+)$/m.exec(created.out.split('\nuse it')[0]!) ?? [];
    expect(key).toBeDefined();
    expect(mssgw(['apikey', 'create', '--role', 'root', '--name', 'x'], env)).toMatchObject({ code: 2, err: expect.stringContaining('--role: expected one of viewer, operator, admin') as unknown });
    expect(mssgw(['apikey', 'create', '--role', 'viewer'], env).code).toBe(2);
    const list = mssgw(['apikey', 'list'], env);
    expect(list.out).toMatch(new RegExp(`^${keyId}  operator  night shift  created \\S+ by cli:\\S+  last used never$`, 'm'));
    const pool = connectPostgres(loadConfig({ env: { ...process.env, ...env } }).postgres, 'test');
    try {
      expect(await verifyApiKey(pool, key!)).toMatchObject({ keyId, role: 'operator' });
      expect(mssgw(['apikey', 'revoke', keyId!], env)).toMatchObject({ code: 0, out: `${keyId} revoked\n` });
      expect(await verifyApiKey(pool, key!)).toEqual({ refused: 'revoked API key' });
      expect(mssgw(['apikey', 'revoke', keyId!], env).code).toBe(3);
      expect(mssgw(['apikey', 'list', '--json'], env).out).toMatch(/"revokedAt": "\d{4}-/);
      const event = { actorKind: 'key' as const, actor: keyId!, role: 'operator', method: 'GET', route: '/api/v1/results/:id', reason: null, filters: [], client: '10.0.0.7', requestId: 'req-1' };
      await recordAudit(pool, { ...event, status: 200, outcome: 'allowed', ids: ['r-000000000000000000000001'] });
      await recordAudit(pool, { ...event, actorKind: 'none', actor: null, role: null, status: 401, outcome: 'refused', reason: 'no credential', ids: [] });
      // One event past the retention (400 days by default), which the prune removes.
      await pool.query(`insert into audit_events (at, actor_kind, method, route, status, outcome, client, request_id)
        values (now() - interval '401 days', 'none', 'GET', '/api/v1/results', 401, 'refused', '10.0.0.8', 'req-0')`);
    } finally {
      await pool.end();
    }
    expect(mssgw(['audit', 'prune'], env)).toMatchObject({ code: 0, out: expect.stringMatching(/^removed 1 audit events older than \S+ \(400 days\)$/m) as unknown });
    const trail = mssgw(['audit'], env).out.trim().split('\n');
    expect(trail).toHaveLength(3);
    expect(trail[0]).toMatch(/^\S+Z {2}refused {2}no credential {2}GET \/api\/v1\/results\/:id 401 {2}from 10\.0\.0\.7 {2}"no credential"$/);
    expect(trail[1]).toMatch(new RegExp(`^\\S+Z  allowed  key:${keyId} \\(operator\\)  GET /api/v1/results/:id 200  ids r-000000000000000000000001  from 10\\.0\\.0\\.7$`));
    expect(trail[2]).toBe('2 event(s), newest first');
    expect(mssgw(['audit', '--outcome', 'refused', '--json'], env).out).toMatch(/"reason": "no credential"/);
    expect(mssgw(['audit', '--id', 'r-000000000000000000000001'], env).out).toMatch(/1 event\(s\)/);
    expect(mssgw(['audit', 'prune'], env)).toMatchObject({ code: 0, out: expect.stringMatching(/^removed 0 audit events older than \S+ \(400 days\)$/m) as unknown });
  });

  it('imports a directory extraction, reports rejected rows, and looks mailboxes up', () => {
    const env = { MSSGW_REDIS_PREFIX: `test-cli-dir-${Date.now()}` };
    const fixture = path.join(ROOT, 'test/fixtures/directory/Extraction_Correspondance_MSSante_202611260400.txt');
    expect(mssgw(['directory', 'info'], env)).toMatchObject({ code: 3, err: expect.stringContaining('no directory loaded yet') as unknown });
    const imported = mssgw(['directory', 'import', fixture], env);
    expect(imported.code).toBe(0);
    expect(imported.out).toMatch(/^8 mailboxes from 13 rows of Extraction_Correspondance_MSSante_202611260400\.txt/);
    expect(imported.out).toContain('4 rows rejected: mailbox-type 1, column-count 1, address 1, no-key 1');
    expect(imported.out).toContain('column-count: line 10: 30 fields, expected 31 (or 31 and a trailing |)');
    const lookup = mssgw(['directory', 'lookup', '10000000001', '--type', 'RPPS', '--json'], env);
    expect((JSON.parse(lookup.out) as { address: string }[]).map((m) => m.address).sort()).toEqual(['a.medecin-un@chu-demo.mssante.test', 'alice.medecin-un@cabinet-demo.mssante.test']);
    expect(mssgw(['directory', 'lookup', '999999999', '--type', 'FINESS'], env).out).toMatch(/ORG {2}secretariat-labo@chu-demo\.mssante\.test/);
    expect(mssgw(['directory', 'lookup', 'nobody@chu-demo.mssante.test'], env)).toMatchObject({ code: 3, out: '0 mailbox(es)\n' });
    expect(mssgw(['directory', 'import', '/nonexistent.zip'], env)).toMatchObject({ code: 1, err: expect.stringContaining('nonexistent.zip') as unknown });
  });

  it('composes the mails of a result into .eml files without sending, and refuses what the listener would refuse', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'mssgw-compose-'));
    const env = { MSSGW_REDIS_URL: 'redis://127.0.0.1:1' }; // no directory: composing still works
    const r = mssgw(['compose', path.join(ROOT, 'deploy/demo/samples/lab-01-crbio-medecin-et-patient.hl7'), '--out', out], env);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^r-[0-9a-f]+-ps\.eml {2}professional {2}to alice\.medecin-un@cabinet-demo\.mssante\.test {2}"XDM\/1\.0\/DDM\+CR d'examens biologiques PAT-TROIS DOMINIQUE 28\/03\/1979" {2}\d+ bytes$/);
    expect(lines[1]).toMatch(/^r-[0-9a-f]+-pat\.eml {2}patient {2}to 279035121518989@patient\.mssante\.fr /);
    expect(lines.at(-1)).toBe(`2 mail(s) written to ${out}, 0 recipient(s) refused; nothing sent`);
    expect(readdirSync(out).sort()).toEqual(lines.slice(0, 2).map((l) => l.split(' ')[0]).sort());
    expect(readFileSync(path.join(out, lines[0]!.split(' ')[0]!), 'utf8')).toMatch(/^X-Mss-Nil: MSSGW-DEMO-0001$/m);
    expect(r.err).toContain('composing without the directory');
    const bad = mssgw(['compose', path.join(ROOT, 'deploy/demo/samples/lab-07-incoherent.hl7'), '--out', out], env);
    expect(bad).toMatchObject({ code: 2, err: expect.stringContaining('AE 103: OBX-11 "D" contradicts ORC-1 "NW"') as unknown });
  });

  it('prints what a receipt says, as JSON with the documented fields', () => {
    const r = mssgw(['receipt', path.join(ROOT, 'test/fixtures/receipts/postfix-failure-dsn.eml'), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { kind: string; envelopeId: string; originalMessageId: string; recipients: { recipient: string; action: string; status: string; diagnosticCode: string }[] };
    expect(j.kind).toBe('dsn');
    expect(j.envelopeId).toMatch(/^d-[0-9a-f]{24}$/);
    expect(j.originalMessageId).toMatch(/^<r-[0-9a-f]{24}-ps@chu-demo\.mssante\.test>$/);
    expect(j.recipients[0]).toMatchObject({ action: 'failed', status: '5.1.1', diagnosticCode: expect.stringContaining('User unknown') as unknown });
  });

  it('parses a result file to JSON, and reports a file the listener would refuse with exit status 2', () => {
    const ok = mssgw(['parse', path.join(ROOT, 'deploy/demo/samples/lab-01-crbio-medecin-et-patient.hl7'), '--json']);
    expect(ok.code).toBe(0);
    const parsed = JSON.parse(ok.out) as { controlId: string; patient: { ins: { oid: string } }; documents: { kind: string }[] };
    expect([parsed.controlId, parsed.patient.ins.oid, parsed.documents[0]!.kind]).toEqual(['DEMO-LAB-0001', '1.2.250.1.213.1.4.10', 'cda']);
    const bad = mssgw(['parse', path.join(ROOT, 'deploy/demo/samples/lab-07-incoherent.hl7')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/AE 103 at OBX\[\d+\]-11: OBX-11 "D" contradicts ORC-1 "NW"/);
  });
});
