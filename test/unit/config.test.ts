import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, readSecret } from '@mssgw/config';

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

describe('configuration', () => {
  it('runs on the embedded demo defaults with no file and no environment', () => {
    const c = loadConfig({ env: {} });
    expect(c.environment).toBe('demo');
    expect(c.redis.url).toBe('redis://127.0.0.1:16379');
    expect(c.mailboxes.map((m) => m.address)).toContain('labo-noreply@chu-demo.mssante.test');
  });

  it('merges a YAML file over the defaults, then MSSGW_<SECTION>_<KEY> overrides over the file', () => {
    const f = file('a.yaml', 'redis:\n  url: redis://file:6379\nhttp:\n  port: 9000\n');
    const c = loadConfig({ file: f, env: { MSSGW_HTTP_PORT: '9100', MSSGW_KAFKA_BROKERS: 'k1:9092, k2:9092', MSSGW_KAFKA_ENABLED: 'true', MSSGW_LOG_LEVEL: 'warn' } });
    expect(c.redis.url).toBe('redis://file:6379');
    expect(c.http.port).toBe(9100);
    expect(c.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(c.kafka.enabled).toBe(true);
    expect(c.logLevel).toBe('warn');
    expect(c.operator.smtpPort).toBe(10587); // untouched default
  });

  it('reads JSON files too, and MSSGW_CONFIG names the file', () => {
    const f = file('b.json', JSON.stringify({ environment: 'production', mssante: { testDomains: [], whitelist: { location: '/etc/mssgw/listeblanchemssante.xml' } } }));
    expect(loadConfig({ env: { MSSGW_CONFIG: f } }).environment).toBe('production');
  });

  it('takes a mailbox certificate as PEM or PKCS#12, not both, and a SASL password when the operator wants LOGIN', () => {
    const both = file('m.json', JSON.stringify({ mailboxes: [{ address: 'a@b.mssante.test', sources: ['lab'], certFile: '/c', keyFile: '/k', pfxFile: '/p.p12', imapPassword: { env: 'X' } }] }));
    expect(problems(() => loadConfig({ file: both, env: {} }))).toEqual(['mailboxes[0]: give certFile and keyFile (PEM), or pfxFile (PKCS#12), not both']);
    const pfx = file('n.json', JSON.stringify({ operator: { smtpAuth: 'login' }, mailboxes: [{ address: 'a@b.mssante.test', sources: ['lab'], pfxFile: '/p.p12', pfxPassphrase: { env: 'P' }, imapPassword: { env: 'X' } }] }));
    expect(problems(() => loadConfig({ file: pfx, env: {} }))).toEqual(['mailboxes[0].smtpPassword: operator.smtpAuth is "login": every mailbox needs its SASL password']);
  });

  it('refuses test domains, and a missing liste blanche, in production', () => {
    const f = file('p.json', JSON.stringify({ environment: 'production' }));
    expect(problems(() => loadConfig({ file: f, env: {} }))).toEqual([
      'mssante.testDomains: test domains are refused in production',
      'mssante.whitelist.location: production needs the liste blanche (file or URL)',
    ]);
  });

  it('stops on a bad value with the key and what was expected', () => {
    expect(problems(() => loadConfig({ env: { MSSGW_HTTP_PORT: 'eighty' } }))).toEqual(['MSSGW_HTTP_PORT: expected a number, got "eighty"']);
    expect(problems(() => loadConfig({ env: { MSSGW_REDIS_URL: 'localhost:6379' } }))).toEqual(['redis.url: expected a redis:// URL']);
    expect(problems(() => loadConfig({ env: { MSSGW_KAFKA_ENABLED: 'perhaps' } }))[0]).toMatch(/MSSGW_KAFKA_ENABLED: expected true or false/);
    expect(problems(() => loadConfig({ env: { MSSGW_REDIS_HOSTNAME: 'x' } }))).toEqual(['MSSGW_REDIS_HOSTNAME: "redis" has no setting "hostname"']);
    const f = file('c.yaml', 'operator:\n  smtpPort: 70000\n');
    expect(problems(() => loadConfig({ file: f, env: {} }))[0]).toMatch(/^operator\.smtpPort: /);
  });

  it('refuses a secret written into the file itself', () => {
    const f = file('d.yaml', 'mailboxes:\n  - address: a@b.mssante.test\n    sources: [lab]\n    certFile: /c\n    keyFile: /k\n    imapPassword: { value: hunter2 }\n');
    expect(problems(() => loadConfig({ file: f, env: {} })).join('\n')).toMatch(/mailboxes\[0\]\.imapPassword/);
  });

  it('reads secrets from a file or an environment variable', () => {
    expect(readSecret({ file: file('s', 'pw-from-file\n') })).toBe('pw-from-file');
    expect(readSecret({ env: 'MY_SECRET' }, { MY_SECRET: 'pw-from-env' })).toBe('pw-from-env');
    expect(() => readSecret({ env: 'MISSING_SECRET' }, {})).toThrow(/MISSING_SECRET is not set/);
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
  const kafkaFile = (name: string, kafka: object) => file(name, JSON.stringify({ kafka }));

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
    expect(kafkaClientConfig(loadConfig({ env: {} }), 'mssgw')).toEqual({ clientId: 'mssgw', brokers: ['127.0.0.1:19092'] });
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
