// Secrets and TLS of the configuration (#22): the Redis password from a secret (never inside the URL in production),
// TLS options for rediss://, ZAM endpoints over TLS; and how they reach the connection options of ioredis and BullMQ.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig, type GatewayConfig } from '@mssgw/config';
import { redisOptions } from '@mssgw/queue';
import { bullConnection, redisEndpoint } from '@mssgw/runtime';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-secrets-'));
type Json = Record<string, unknown> & { redis: Record<string, unknown>; feedback?: Record<string, unknown> };
const chart = (): Json => (parse(readFileSync(path.join(ROOT, 'helm/mssante-gateway/values.yaml'), 'utf8')) as { config: Json }).config;
let n = 0;
const load = (config: unknown): GatewayConfig | string[] => {
  const f = path.join(dir, `c${n++}.json`);
  writeFileSync(f, JSON.stringify(config));
  try {
    return loadConfig({ file: f, env: { MSSGW_CONTAINER: '1' } });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
};
const problemsOf = (config: unknown) => {
  const r = load(config);
  return Array.isArray(r) ? r : [];
};

describe('the Redis password and TLS', () => {
  it('production refuses a password inside redis.url, and takes it from redis.password', () => {
    const inUrl = chart();
    inUrl.redis.url = 'redis://:s3cret@redis:6379';
    expect(problemsOf(inUrl)).toEqual([expect.stringMatching(/^redis\.url: a password in the URL/)]);
    const asSecret = chart();
    asSecret.redis.password = { file: '/run/secrets/mssgw/redis-password' };
    expect(problemsOf(asSecret)).toEqual([]);
    // A user name alone is no secret.
    const user = chart();
    user.redis.url = 'rediss://mssgw@redis:6380';
    expect(problemsOf(user)).toEqual([]);
  });

  it('refuses TLS options without rediss://, a certificate without its key, a password given twice', () => {
    const c = chart();
    c.redis.caFile = '/run/secrets/mssgw/redis-ca.pem';
    expect(problemsOf(c).join('\n')).toMatch(/redis\.url: caFile, certFile and tlsServerName are for TLS: use a rediss:\/\/ URL/);
    const d = chart();
    d.redis.url = 'rediss://redis:6380';
    d.redis.certFile = '/run/secrets/mssgw/redis-client.pem';
    expect(problemsOf(d).join('\n')).toMatch(/redis\.certFile: give certFile and keyFile together/);
    const e = { ...chart(), environment: 'test' } as Json;
    e.redis.url = 'redis://:a@redis:6379';
    e.redis.password = { env: 'REDIS_PASSWORD' };
    expect(problemsOf(e).join('\n')).toMatch(/redis\.url: a password in the URL and redis\.password/);
  });

  it('gives every connection the password and the TLS files, Sentinel and its master included', () => {
    const pw = path.join(dir, 'redis-password');
    writeFileSync(pw, 'from-the-file\n');
    const ca = path.join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
    const c = chart();
    c.redis = { url: 'rediss://redis:6380/2', prefix: 'p', password: { file: pw }, caFile: ca, tlsServerName: 'redis.chu.local' };
    const config = load(c) as GatewayConfig;
    expect(Array.isArray(config)).toBe(false);
    const endpoint = redisEndpoint(config);
    expect(endpoint).toEqual({ url: 'rediss://redis:6380/2', password: 'from-the-file', tls: { ca: readFileSync(ca, 'utf8'), servername: 'redis.chu.local' } });
    // JSON-safe: the directory import's child process gets it over IPC.
    expect(JSON.parse(JSON.stringify(endpoint))).toEqual(endpoint);
    expect(bullConnection(config).connection).toEqual({ url: 'rediss://redis:6380/2', password: 'from-the-file', tls: endpoint.tls, maxRetriesPerRequest: null });
    const sentinel = redisOptions({ ...endpoint, sentinel: { masterName: 'm', nodes: ['s1:26379'], password: 'sp' } });
    expect(sentinel).toMatchObject({ name: 'm', password: 'from-the-file', sentinelPassword: 'sp', db: 2, tls: endpoint.tls, sentinelTLS: endpoint.tls, enableTLSForSentinelMode: true });
    // redis:// stays plaintext, whatever else is set.
    expect(redisOptions({ url: 'redis://r:6379', password: 'x' })).toEqual({ url: 'redis://r:6379', password: 'x' });
    expect(redisOptions({ url: 'rediss://r:6379' })).toEqual({ url: 'rediss://r:6379', tls: {} });
  });
});

describe('ZAM endpoints', () => {
  const withZam = (endpoint: Record<string, unknown>) => ({ ...chart(), feedback: { zamEndpoints: [{ source: 'lab', host: 'sil.chu.local', port: 2576, ...endpoint }] } });

  it('production refuses one over plain MLLP unless insecurePlaintext says the link is protected otherwise', () => {
    expect(problemsOf(withZam({}))).toEqual([expect.stringMatching(/^feedback\.zamEndpoints\[0\]\.tls: a ZAM carries the INS/)]);
    expect(problemsOf(withZam({ insecurePlaintext: true }))).toEqual([]);
    expect(problemsOf(withZam({ tls: { caFile: '/run/secrets/mssgw/sil-ca.pem', certFile: '/run/secrets/mssgw/zam.pem', keyFile: '/run/secrets/mssgw/zam.key' } }))).toEqual([]);
    expect(problemsOf(withZam({ tls: { certFile: '/run/secrets/mssgw/zam.pem' } })).join('\n')).toMatch(/give certFile and keyFile together/);
  });
});
