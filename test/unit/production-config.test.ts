// Production mode (environment: production, the default): the gateway refuses to start, naming each key, on what the
// demo or a test may do and a hospital must not. The configurations shipped for a production install (the chart's
// values, compose's file) pass; each misconfiguration is refused by the key it is at.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, DEMO_CONFIG_FILE, loadConfig } from '@mssgw/config';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-production-'));
/** In a container, as the image and the chart run it. */
const CONTAINER = { MSSGW_CONTAINER: '1' };

type Json = Record<string, unknown>;
const chartConfig = (): Json => (parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as { config: Json }).config;
const composeConfig = (): Json => parse(readFileSync(path.join(ROOT, 'deploy/docker/gateway.yaml'), 'utf8')) as Json;

let n = 0;
const write = (config: unknown, ext = 'json') => {
  const f = path.join(dir, `c${n++}.${ext}`);
  writeFileSync(f, ext === 'json' ? JSON.stringify(config) : String(config));
  return f;
};
const problems = (config: unknown, env: NodeJS.ProcessEnv = CONTAINER): string[] => {
  try {
    // undefined: an empty file.
    loadConfig({ file: config === undefined ? write('', 'yaml') : write(config), env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};
const keys = (list: string[]) => list.map((p) => p.slice(0, p.indexOf(': ')));

/** The chart's configuration with one change: `edit` gets a copy to change. */
const chartWith = (edit: (c: Json & { mailboxes: Json[]; mssante: Json & { documents: Json }; operator: Json; mllp: { listeners: Json[] }; http: Json; routing: Json }) => void) => {
  const c = structuredClone(chartConfig()) as Parameters<typeof edit>[0];
  edit(c);
  return c;
};

describe('a production start', () => {
  it('with an empty file fails and names every key it misses', () => {
    const empty = problems(undefined, {});
    expect(keys(empty)).toEqual([
      'redis.url', 'postgres.url', 'operator.smtpHost', 'operator.imapHost', 'operator.caFile', 'operator.tlsServerName', 'mailboxes',
      'mssante.productReference', 'mssante.documents.idRoot', 'mssante.documents.sourceOid',
      'mssante.documents.custodian.idNatStruct', 'mssante.documents.custodian.name',
      'mssante.documents.facilityType.code', 'mssante.documents.facilityType.displayName',
      'mssante.documents.practiceSetting.code', 'mssante.documents.practiceSetting.displayName',
      'mssante.whitelist.location', 'postgres.caFile',
    ]);
    expect(empty).toContain('redis.url: required');
    expect(empty).toContain("operator.caFile: production checks the operator's certificates: give the IGC-Santé chain (docs/deployment.md)");
    // An empty file is production: the environment's default. In a container, the loopback HTTP default is named too.
    expect(keys(problems(undefined, CONTAINER))).toContain('http.host');
  });

  it('as the gateway runs it: mssgw start exits 78 naming the keys, before connecting to anything', () => {
    const r = spawnSync(path.join(ROOT, 'services/gateway/bin/mssgw'), ['start', '--config', write('', 'yaml')], {
      encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' }, timeout: 60_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/- mailboxes: production needs at least one applicative mailbox/);
    expect(r.stderr).toMatch(/- mssante\.productReference: production needs/);
  });

  it('with the demo\'s configuration, told it is production, refuses each thing the demo may do', () => {
    const demo = parse(readFileSync(DEMO_CONFIG_FILE, 'utf8')) as Json;
    const found = problems({ ...demo, environment: 'production' });
    const at = keys(found);
    for (const key of ['mssante.productReference', 'mssante.documents.idRoot', 'mssante.documents.sourceOid', 'mssante.testDomains', 'mssante.whitelist.location',
      'operator.caFile', 'postgres.caFile', 'postgres.password.file', 'mailboxes[0].certFile', 'mailboxes[0].keyFile', 'mailboxes[0].imapPassword.file',
      'http.host', 'mllp.listeners[0].host', 'mllp.listeners[1].host']) expect(at, key).toContain(key);
    expect(found).toContain('mssante.productReference: MSSGW-DEMO-0001 is the demo\'s: production sends the product reference obtained when declaring the software (ECO.2.4.3)');
    expect(found.find((p) => p.startsWith('operator.caFile: '))).toMatch(/ is a sandbox path /);
  });
});

describe('the demo', () => {
  it('never runs on a production configuration: its results are fictitious', async () => {
    const { runDemo } = await import('../../services/gateway/src/demo.ts');
    const production = loadConfig({ file: write(chartConfig()), env: CONTAINER });
    await expect(runDemo(production)).rejects.toThrow(/never on a production one/);
  });
});

describe('the shipped production configurations', () => {
  it('the chart\'s values start in production, in a container', () => {
    const c = loadConfig({ file: write(chartConfig()), env: CONTAINER });
    expect(c.environment).toBe('production');
    expect(c.mssante.whitelist.location).toMatch(/^https:\/\/espacedeconfiance\.mssante\.fr\//);
    expect(c.mailboxes.every((m) => m.patientReplies)).toBe(true);
  });

  it('compose\'s file starts in production, in a container', () => {
    const c = loadConfig({ file: path.join(ROOT, 'deploy/docker/gateway.yaml'), env: CONTAINER });
    expect(c.environment).toBe('production');
    expect(c.mllp.listeners.map((l) => l.host)).toEqual(['0.0.0.0']);
    expect(composeConfig()['environment']).toBe('production');
  });
});

describe('each misconfiguration is refused by its key', () => {
  const refused = (edit: Parameters<typeof chartWith>[0], env: NodeJS.ProcessEnv = CONTAINER) => problems(chartWith(edit), env);

  it('a test OID', () => {
    expect(refused((c) => (c.mssante.documents['idRoot'] = '1.2.250.1.999.3.1'))).toEqual([
      "mssante.documents.idRoot: 1.2.250.1.999.3.1 is in the 1.2.250.1.999 arc of tests and demos: production needs an OID of the establishment's own",
    ]);
    expect(keys(refused((c) => (c.mssante.documents['sourceOid'] = '1.2.250.1.999')))).toEqual(['mssante.documents.sourceOid']);
  });

  it('the demo product reference', () => {
    expect(keys(refused((c) => (c.mssante['productReference'] = 'MSSGW-DEMO-0001')))).toEqual(['mssante.productReference']);
  });

  it('a sandbox path, wherever it is', () => {
    expect(refused((c) => (c.operator['caFile'] = '/app/.sandbox/pki/ca.pem'))).toEqual([
      'operator.caFile: /app/.sandbox/pki/ca.pem is a sandbox path (its test PKI and secrets): production reads its own files',
    ]);
    expect(keys(refused((c) => (c.mailboxes[0]!['keyFile'] = '/sandbox/pki/clients/labo.key')))).toEqual(['mailboxes[0].keyFile']);
    const elsewhere = '/srv/mssgw-sandbox';
    expect(keys(refused((c) => (c.mailboxes[0]!['imapPassword'] = { file: `${elsewhere}/secrets/x` }), { ...CONTAINER, MSSGW_SANDBOX: elsewhere }))).toEqual(['mailboxes[0].imapPassword.file']);
  });

  it('a loopback listener in a container, and only there', () => {
    expect(refused((c) => (c.mllp.listeners[0]!['host'] = '127.0.0.1'))).toEqual([
      "mllp.listeners[0].host: 127.0.0.1 is loopback: in a container (MSSGW_CONTAINER) the intake's Service never reaches it; bind 0.0.0.0",
    ]);
    expect(keys(refused((c) => (c.http['host'] = 'localhost')))).toEqual(['http.host']);
    // Outside a container (a host install behind a local proxy), loopback is a choice.
    expect(refused((c) => (c.mllp.listeners[0]!['host'] = '127.0.0.1'), {})).toEqual([]);
  });

  it('a missing operator CA', () => {
    expect(refused((c) => delete c.operator['caFile'])).toEqual([
      "operator.caFile: production checks the operator's certificates: give the IGC-Santé chain (docs/deployment.md)",
    ]);
  });

  it('a mailbox without its certificate', () => {
    expect(refused((c) => {
      delete c.mailboxes[0]!['certFile'];
      delete c.mailboxes[0]!['keyFile'];
    })).toContain("mailboxes[0].certFile: production needs the mailbox's IGC-Santé certificate: certFile and keyFile (PEM), or pfxFile (PKCS#12)");
    // A PKCS#12 file is a certificate too.
    expect(refused((c) => {
      delete c.mailboxes[0]!['certFile'];
      delete c.mailboxes[0]!['keyFile'];
      c.mailboxes[0]!['pfxFile'] = '/run/secrets/mssgw/bal-labo.p12';
    })).toEqual([]);
  });

  it('a mailbox that writes to patients without saying where their replies go', () => {
    expect(refused((c) => delete c.mailboxes[0]!['patientReplies'])).toEqual([
      'mailboxes[0].patientReplies: this mailbox may write to patients: say "closed" (every mail to a patient ends the conversation, X-MSS-MES: FIN) or { replyTo: <a staffed organisational mailbox> }',
    ]);
    expect(refused((c) => (c.mailboxes[0]!['patientReplies'] = { replyTo: 'secretariat-labo@chu-exemple.mssante.fr' }))).toEqual([]);
    // A mailbox whose sources serve neither PRT RCT nor the patient, for any kind of result, never writes to one.
    expect(refused((c) => {
      delete c.mailboxes[0]!['patientReplies'];
      c.routing['sources'] = { lab: { roles: { lab: ['ordering'], imaging: ['ordering'], other: [] }, siteStructureIds: [] } };
    })).toEqual([]);
  });

  it('test domains, plaintext SMTP, an unchecked message store, no liste blanche', () => {
    expect(keys(refused((c) => (c.mssante['testDomains'] = ['chu-demo.mssante.test'])))).toEqual(['mssante.testDomains']);
    expect(keys(refused((c) => (c.operator['insecurePlaintext'] = true)))).toEqual(['operator.insecurePlaintext']);
    expect(keys(refused((c) => ((c['postgres'] as Json)['sslMode'] = 'require')))).toEqual(['postgres.sslMode']);
    expect(keys(refused((c) => delete (c.mssante['whitelist'] as Json)['location']))).toEqual(['mssante.whitelist.location']);
  });

  it('none of it in the test and demo environments, which accept it on purpose', () => {
    const demoLike = chartWith((c) => {
      c.mssante.documents['idRoot'] = '1.2.250.1.999.3.1';
      c.mssante['productReference'] = 'MSSGW-DEMO-0001';
      c.operator['caFile'] = '/app/.sandbox/pki/ca.pem';
      c.mllp.listeners[0]!['host'] = '127.0.0.1';
      delete c.mailboxes[0]!['patientReplies'];
    });
    expect(problems({ ...demoLike, environment: 'test' })).toEqual([]);
    expect(problems({ ...demoLike, environment: 'demo' })).toEqual([]);
  });
});
