import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEMO_CONFIG_FILE, demoConfig, loadConfig, readSecret } from '@mssgw/config';

const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-config-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

/** The least a test file needs besides what a test checks: the keys with no default (test environment). */
const MINIMAL = {
  environment: 'test',
  redis: { url: 'redis://redis.chu.test:6379' },
  postgres: { url: 'postgres://mssgw@pg.chu.test:5432/mssgw', caFile: '/ca.pem' },
  operator: { smtpHost: 'smtp.operator.test', imapHost: 'imap.operator.test', caFile: '/ca.pem', tlsServerName: 'smtp.operator.test' },
  mailboxes: [{ address: 'a@b.mssante.test', sources: ['lab'], certFile: '/c', keyFile: '/k', imapPassword: { env: 'X' } }],
  mssante: {
    productReference: 'P',
    documents: { idRoot: '1.2.3', sourceOid: '1.2.4', custodian: { idNatStruct: '1', name: 'C' }, facilityType: { code: 'a', displayName: 'A' }, practiceSetting: { code: 'b', displayName: 'B' } },
  },
};
const withMinimal = (patch: Record<string, unknown>) => ({ ...MINIMAL, ...patch });

describe('configuration', () => {
  it('with no file in a checkout, runs the demo\'s (deploy/demo/gateway.yaml), its ${MSSGW_SANDBOX} paths in the sandbox', () => {
    const c = loadConfig({ env: {}, sandbox: '/srv/sandbox' });
    expect(c.environment).toBe('demo');
    expect(c.redis.url).toBe('redis://127.0.0.1:16379');
    expect(c.mailboxes.map((m) => m.address)).toContain('labo-noreply@chu-demo.mssante.test');
    expect(c.operator.caFile).toBe('/srv/sandbox/pki/ca.pem');
    expect(loadConfig({ env: { MSSGW_SANDBOX: '/elsewhere' } }).postgres.caFile).toBe('/elsewhere/pki/ca.pem');
    // The demo's is the file loaded, in full: nothing of it is merged under another file.
    expect(demoConfig()).toEqual(JSON.parse(JSON.stringify(loadConfig({ file: DEMO_CONFIG_FILE, env: {} }))));
  });

  it('takes the schema\'s defaults for what a file leaves out, and nothing of the demo', () => {
    const c = loadConfig({ file: file('min.json', JSON.stringify(MINIMAL)), env: {} });
    expect(c.operator.smtpPort).toBe(587);
    expect(c.operator.imapPort).toBe(143);
    expect(c.http).toEqual({ host: '127.0.0.1', port: 8088 });
    expect(c.mllp.listeners).toEqual([]);
    expect(c.kafka).toMatchObject({ enabled: false, brokers: [], statusTopic: 'mssgw.status' });
    expect(c.mssante.testDomains).toEqual([]);
    expect(c.dispatcher).toMatchObject({ concurrency: 16, lockMs: 30_000, reconcileMs: 600_000, retryBudgetMs: 86_400_000, maxBackoffMs: 900_000 });
    expect(JSON.stringify(c)).not.toMatch(/sandbox|chu-demo|MSSGW-DEMO|1\.2\.250\.1\.999|10587|16379/);
    // The defaults alone point nowhere: the schema has no value for any key that names a host, a file or an identity.
    expect(JSON.stringify(c.operator)).not.toMatch(/127\.0\.0\.1/);
  });

  it('is frozen all the way down', () => {
    const c = loadConfig({ file: file('frozen.json', JSON.stringify(MINIMAL)), env: {} });
    expect(Object.isFrozen(c) && Object.isFrozen(c.operator.rate) && Object.isFrozen(c.mailboxes[0]) && Object.isFrozen(c.mailboxes)).toBe(true);
    expect(() => {
      (c.dispatcher as { concurrency: number }).concurrency = 1;
    }).toThrow(TypeError);
    // The demo's configuration is given as a copy of one's own, to build on.
    const demo = demoConfig();
    demo.dispatcher.concurrency = 2;
    expect(demoConfig().dispatcher.concurrency).toBe(16);
  });

  it('takes a YAML file, then MSSGW_<SECTION>_<KEY> overrides over it, for keys the file leaves out too', () => {
    const f = file('a.yaml', `environment: test\nredis:\n  url: redis://file:6379\nhttp:\n  port: 9000\nmssante:\n  documents: ${JSON.stringify(MINIMAL.mssante.documents)}\n`);
    const c = loadConfig({
      file: f,
      env: {
        MSSGW_HTTP_PORT: '9100', MSSGW_KAFKA_BROKERS: 'k1:9092, k2:9092', MSSGW_KAFKA_ENABLED: 'true', MSSGW_LOG_LEVEL: 'warn',
        MSSGW_POSTGRES_URL: MINIMAL.postgres.url, MSSGW_POSTGRES_CA_FILE: '/ca.pem', MSSGW_OPERATOR_SMTP_HOST: 'smtp.op.test', MSSGW_OPERATOR_IMAP_HOST: 'imap.op.test',
        MSSGW_OPERATOR_CA_FILE: '/ca.pem', MSSGW_OPERATOR_TLS_SERVER_NAME: 'smtp.op.test', MSSGW_MAILBOXES: JSON.stringify(MINIMAL.mailboxes),
        MSSGW_MSSANTE_PRODUCT_REFERENCE: 'P',
      },
    });
    expect(c.redis.url).toBe('redis://file:6379');
    expect(c.http.port).toBe(9100);
    expect(c.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(c.kafka.enabled).toBe(true);
    expect(c.logLevel).toBe('warn');
    expect(c.operator.smtpHost).toBe('smtp.op.test');
    expect(c.operator.smtpPort).toBe(587); // the schema's default
  });

  it('reads JSON files too, and MSSGW_CONFIG names the file', () => {
    const f = file('b.json', JSON.stringify(withMinimal({ environment: 'demo' })));
    expect(loadConfig({ env: { MSSGW_CONFIG: f } }).environment).toBe('demo');
  });

  it('expands ${MSSGW_SANDBOX} in a file, and nothing else', () => {
    const f = file('x.json', JSON.stringify(withMinimal({ operator: { ...MINIMAL.operator, caFile: '${HOME}/ca.pem' } })));
    expect(problems(() => loadConfig({ file: f, env: {} }))).toEqual(['operator.caFile: only ${MSSGW_SANDBOX} is expanded in a configuration file, not ${HOME}']);
  });

  it('takes a mailbox certificate as PEM or PKCS#12, not both, and a SASL password when the operator wants LOGIN', () => {
    const both = file('m.json', JSON.stringify({ ...MINIMAL, mailboxes: [{ address: 'a@b.mssante.test', sources: ['lab'], certFile: '/c', keyFile: '/k', pfxFile: '/p.p12', imapPassword: { env: 'X' } }] }));
    expect(problems(() => loadConfig({ file: both, env: {} }))).toEqual(['mailboxes[0]: give certFile and keyFile (PEM), or pfxFile (PKCS#12), not both']);
    const pfx = file('n.json', JSON.stringify({ ...MINIMAL, operator: { ...MINIMAL.operator, smtpAuth: 'login' }, mailboxes: [{ address: 'a@b.mssante.test', sources: ['lab'], pfxFile: '/p.p12', pfxPassphrase: { env: 'P' }, imapPassword: { env: 'X' } }] }));
    expect(problems(() => loadConfig({ file: pfx, env: {} }))).toEqual(['mailboxes[0].smtpPassword: operator.smtpAuth is "login": every mailbox needs its SASL password']);
  });

  it('stops on a bad value with the key and what was expected', () => {
    expect(problems(() => loadConfig({ env: { MSSGW_HTTP_PORT: 'eighty' } }))).toEqual(['MSSGW_HTTP_PORT: expected a number, got "eighty"']);
    expect(problems(() => loadConfig({ env: { MSSGW_REDIS_URL: 'localhost:6379' } }))).toEqual(['redis.url: expected a redis:// URL']);
    expect(problems(() => loadConfig({ env: { MSSGW_KAFKA_ENABLED: 'perhaps' } }))[0]).toMatch(/MSSGW_KAFKA_ENABLED: expected true or false/);
    expect(problems(() => loadConfig({ env: { MSSGW_REDIS_HOSTNAME: 'x' } }))).toEqual(['MSSGW_REDIS_HOSTNAME: "redis" has no setting "hostname"']);
    expect(problems(() => loadConfig({ env: { MSSGW_KAFKA_ENABLED: 'true', MSSGW_KAFKA_BROKERS: '' } }))).toEqual(['kafka.brokers: kafka.enabled needs at least one broker']);
    const f = file('c.json', JSON.stringify(withMinimal({ operator: { ...MINIMAL.operator, smtpPort: 70000 } })));
    expect(problems(() => loadConfig({ file: f, env: {} }))[0]).toMatch(/^operator\.smtpPort: /);
  });

  it('refuses a secret written into the file itself', () => {
    const f = file('d.yaml', 'environment: test\nmailboxes:\n  - address: a@b.mssante.test\n    sources: [lab]\n    certFile: /c\n    keyFile: /k\n    imapPassword: { value: hunter2 }\n');
    expect(problems(() => loadConfig({ file: f, env: {} })).join('\n')).toMatch(/mailboxes\[0\]\.imapPassword/);
  });

  it('reads secrets from a file or an environment variable', () => {
    expect(readSecret({ file: file('s', 'pw-from-file\n') })).toBe('pw-from-file');
    expect(readSecret({ env: 'MY_SECRET' }, { MY_SECRET: 'pw-from-env' })).toBe('pw-from-env');
    expect(() => readSecret({ env: 'MISSING_SECRET' }, {})).toThrow(/MISSING_SECRET is not set/);
  });

  it('with no file and none to fall back on, says how to name one', () => {
    expect(problems(() => loadConfig({ env: { MSSGW_CONFIG: '' } }))).toEqual(['no configuration: name the file with --config FILE or MSSGW_CONFIG (docs/deployment.md)']);
  });

  it('says when the file cannot be read or parsed', () => {
    expect(problems(() => loadConfig({ file: path.join(dir, 'nope.yaml'), env: {} }))[0]).toMatch(/cannot read \(ENOENT\)/);
    expect(problems(() => loadConfig({ file: file('e.json', '{ nope'), env: {} }))[0]).toMatch(/not valid JSON/);
  });
});

describe('Kafka result envelope', () => {
  it('has its JSON Schema in the repository, equal to the one the consumer validates with', async () => {
    const { z } = await import('zod');
    const { ResultEnvelopeV1 } = await import('@mssgw/intake');
    const { readFileSync } = await import('node:fs');
    const file = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../services/intake/schemas/result-envelope.v1.json'), 'utf8')) as Record<string, unknown>;
    const { $id: _id, title: _title, ...published } = file;
    expect(published).toEqual(z.toJSONSchema(ResultEnvelopeV1));
    expect(ResultEnvelopeV1.safeParse({ schema: 'mssgw.result.v1', hl7: 'MSH|^~\\&|A' }).success).toBe(true);
    expect(ResultEnvelopeV1.safeParse({ schema: 'mssgw.result.v2', hl7: 'MSH|^~\\&|A' }).success).toBe(false);
  });
});

describe('Kafka security', () => {
  const kafkaFile = (name: string, kafka: object) => file(name, JSON.stringify(withMinimal({ kafka })));

  it('refuses SASL without TLS, and a client certificate without its key', () => {
    const sasl = kafkaFile('k1.json', { sasl: { mechanism: 'plain', username: 'gw', password: { env: 'KAFKA_PW' } } });
    expect(problems(() => loadConfig({ file: sasl, env: {} }))).toEqual(['kafka.sasl: kafka.sasl needs kafka.tls: a SASL password is never sent in clear']);
    const half = kafkaFile('k2.json', { tls: { caFile: '/ca.pem', certFile: '/client.pem' } });
    expect(problems(() => loadConfig({ file: half, env: {} }))).toEqual(['kafka.tls: give both certFile and keyFile, or neither']);
  });

  it('gives kafkajs the CA, the client certificate and key, and the SASL password from its secret', async () => {
    const { kafkaClientConfig } = await import('@mssgw/runtime');
    const [ca, cert, key] = [file('kca.pem', 'CA'), file('kcert.pem', 'CERT'), file('kkey.pem', 'KEY')];
    const f = kafkaFile('k3.json', { brokers: ['kafka.chu.test:9093'], tls: { caFile: ca, certFile: cert, keyFile: key }, sasl: { mechanism: 'scram-sha-512', username: 'gw', password: { env: 'KAFKA_PW' } } });
    process.env['KAFKA_PW'] = 's3cret';
    try {
      const k = kafkaClientConfig(loadConfig({ file: f, env: {} }), 'mssgw');
      expect(k.brokers).toEqual(['kafka.chu.test:9093']);
      expect(k.ssl).toEqual({ ca: [Buffer.from('CA')], cert: Buffer.from('CERT'), key: Buffer.from('KEY'), minVersion: 'TLSv1.2', rejectUnauthorized: true });
      expect(k.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'gw', password: 's3cret' });
    } finally {
      delete process.env['KAFKA_PW'];
    }
    expect(kafkaClientConfig(demoConfig(), 'mssgw')).toEqual({ clientId: 'mssgw', brokers: ['127.0.0.1:19092'] });
  });

  it('logs kafkajs into the service logger with only broker, group and topic fields, a retried broker error as a warning', async () => {
    const { kafkaLogCreator } = await import('@mssgw/runtime');
    const { logLevel } = await import('kafkajs');
    const calls: [string, Record<string, unknown>, string][] = [];
    const fake = Object.fromEntries(['error', 'warn', 'info', 'debug'].map((l) => [l, (o: Record<string, unknown>, m: string) => calls.push([l, o, m])]));
    const write = kafkaLogCreator(fake as never)(logLevel.INFO);
    write({ namespace: 'Connection', level: logLevel.ERROR, label: 'ERROR', log: { timestamp: 't', message: 'Response InitProducerId', broker: '127.0.0.1:19092', error: 'The coordinator is loading', payload: 'PID|||NIR' } });
    write({ namespace: 'Consumer', level: logLevel.INFO, label: 'INFO', log: { timestamp: 't', message: 'Consumer has joined the group', groupId: 'g', memberId: 'm' } });
    write({ namespace: 'Runner', level: logLevel.ERROR, label: 'ERROR', log: { timestamp: 't', message: 'Crash', groupId: 'g' } });
    expect(calls).toEqual([
      ['warn', { kafka: 'Connection', broker: '127.0.0.1:19092', error: 'The coordinator is loading' }, 'Response InitProducerId'],
      ['info', { kafka: 'Consumer', groupId: 'g', memberId: 'm' }, 'Consumer has joined the group'],
      ['error', { kafka: 'Runner', groupId: 'g' }, 'Crash'],
    ]);
  });
});
