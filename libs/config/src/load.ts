import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { GatewayConfigSchema, type GatewayConfig, type SecretRef } from './schema.ts';

/** Where deploy/local/*.sh keep the sandbox operator, its PKI and secrets. */
export const sandboxDir = (): string => process.env['MSSGW_SANDBOX'] ?? path.resolve(import.meta.dirname, '../../../.sandbox');

/**
 * The demo's configuration: the gateway on the local sandbox. Loaded when no file is named (a checkout only: the image
 * does not ship it), and explicitly by the demo, the sandbox-based tests and the benchmarks.
 */
export const DEMO_CONFIG_FILE = path.resolve(import.meta.dirname, '../../../deploy/demo/gateway.yaml');

/** Start-up stops on this error; its message names every bad key and what was expected. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Environment variables with the MSSGW_ prefix that are not setting overrides. MSSGW_NODE_FLAGS is read by the
 * launcher (services/gateway/bin/mssgw) before Node starts; MSSGW_CONTAINER says the process runs in a container,
 * reached through a Service or a published port (set by the image and the chart).
 */
const RESERVED = [
  /^MSSGW_CONFIG$/, /^MSSGW_NODE_FLAGS$/, /^MSSGW_LOG_FILE$/, /^MSSGW_CONTAINER$/, /^MSSGW_SANDBOX/, /^MSSGW_SECRET_/, /^MSSGW_TEST_/, /^MSSGW_BENCH_/,
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const camel = (parts: string[]) =>
  parts.map((p, i) => (i === 0 ? p.toLowerCase() : p.charAt(0) + p.slice(1).toLowerCase())).join('');

/** The part of the schema's JSON Schema the environment overrides read: which keys exist, and their types. */
interface KeyShape {
  type?: string;
  properties?: Record<string, KeyShape>;
  items?: KeyShape;
}
let rootShape: KeyShape | undefined;
const shape = (): KeyShape => (rootShape ??= GatewayConfigSchema.toJSONSchema({ io: 'input', unrepresentable: 'any' }) as KeyShape);
const isSection = (s: KeyShape | undefined): s is KeyShape & { properties: Record<string, KeyShape> } => s?.type === 'object' && Boolean(s.properties);

/** Environment values are strings: read them as the type the schema gives the setting. */
function coerce(key: KeyShape, raw: string, name: string, problems: string[]): Json {
  if (key.type === 'number' || key.type === 'integer') {
    const n = Number(raw);
    if (raw.trim() === '' || Number.isNaN(n)) problems.push(`${name}: expected a number, got "${raw}"`);
    return n;
  }
  if (key.type === 'boolean') {
    if (!/^(true|false|1|0|yes|no)$/i.test(raw)) problems.push(`${name}: expected true or false, got "${raw}"`);
    return /^(true|1|yes)$/i.test(raw);
  }
  if (key.type === 'array') {
    if (raw.trim() === '') return [];
    if (key.items?.type === 'object' || raw.trim().startsWith('[')) {
      try {
        return JSON.parse(raw) as Json;
      } catch {
        problems.push(`${name}: expected a JSON array`);
        return [];
      }
    }
    return raw.split(',').map((s) => s.trim()).filter(Boolean);
  }
  return raw;
}

/** MSSGW_<SECTION>_<KEY> → section.key (camelCase), or MSSGW_<KEY> → key for top-level settings. */
function applyEnv(config: JsonObject, env: NodeJS.ProcessEnv, problems: string[]): void {
  const root = shape().properties ?? {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('MSSGW_') || raw === undefined || RESERVED.some((r) => r.test(name))) continue;
    const parts = name.slice('MSSGW_'.length).split('_');
    const top = camel(parts);
    if (root[top] && !isSection(root[top])) {
      config[top] = coerce(root[top], raw, name, problems);
      continue;
    }
    const sectionName = camel(parts.slice(0, 1));
    const section = root[sectionName];
    const key = camel(parts.slice(1));
    if (!isSection(section) || key === '') {
      problems.push(`${name}: no such setting (expected MSSGW_<SECTION>_<KEY>, e.g. MSSGW_REDIS_URL)`);
      continue;
    }
    if (!section.properties[key]) {
      problems.push(`${name}: "${sectionName}" has no setting "${key}"`);
      continue;
    }
    const target = isObject(config[sectionName]) ? config[sectionName] : (config[sectionName] = {});
    target[key] = coerce(section.properties[key], raw, name, problems);
  }
}

/** `${MSSGW_SANDBOX}` in a string of the file is the sandbox directory (the demo's file uses it); nothing else is expanded. */
function expand(value: Json, sandbox: string, at: string, problems: string[]): Json {
  if (typeof value === 'string') {
    for (const m of value.matchAll(/\$\{([^}]*)\}/g)) {
      if (m[1] !== 'MSSGW_SANDBOX') problems.push(`${at}: only \${MSSGW_SANDBOX} is expanded in a configuration file, not ${m[0]}`);
    }
    return value.replaceAll('${MSSGW_SANDBOX}', sandbox);
  }
  if (Array.isArray(value)) return value.map((v, i) => expand(v, sandbox, `${at}[${i}]`, problems));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v, sandbox, at ? `${at}.${k}` : k, problems)]));
  return value;
}

function readFile(file: string, problems: string[]): JsonObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return {};
  }
  try {
    const parsed: unknown = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
    // An empty YAML file is an empty configuration.
    if (parsed === null || parsed === undefined) return {};
    if (!isObject(parsed)) throw new Error('the top level must be a mapping');
    return parsed;
  } catch (err) {
    problems.push(`${file}: not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
    return {};
  }
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\])$/i;
/** 1.2.250.1.999: the arc this project's tests and demo use for the documents it wraps. */
const TEST_OID_ARC = /^1\.2\.250\.1\.999(\.|$)/;
const DEMO_PRODUCT_REFERENCE = 'MSSGW-DEMO-0001';
const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes)$/i.test(v);

/** Every string of the configuration with its key, `a.b[0].c`. */
function strings(value: Json, at = ''): [string, string][] {
  if (typeof value === 'string') return [[at, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${at}[${i}]`));
  if (isObject(value)) return Object.entries(value).flatMap(([k, v]) => strings(v, at ? `${at}.${k}` : k));
  return [];
}

const get = (o: Json | undefined, ...keys: string[]): Json | undefined => keys.reduce<Json | undefined>((v, k) => (isObject(v) ? v[k] : undefined), o);

/**
 * What production refuses, read on the configuration as written (the file and the environment, before validation), so
 * that a file missing half its keys is told every one of them at once. Each problem names its key.
 */
function productionProblems(raw: JsonObject, env: NodeJS.ProcessEnv, sandbox: string): string[] {
  const out: string[] = [];
  const add = (key: string, message: string) => out.push(`${key}: ${message}`);
  const productReference = get(raw, 'mssante', 'productReference');
  if (productReference === undefined) add('mssante.productReference', 'production needs the X-MSS-NIL product reference obtained when declaring the software (ECO.2.4.3)');
  else if (productReference === DEMO_PRODUCT_REFERENCE) add('mssante.productReference', `${DEMO_PRODUCT_REFERENCE} is the demo's: production sends the product reference obtained when declaring the software (ECO.2.4.3)`);
  for (const key of ['idRoot', 'sourceOid']) {
    const oid = get(raw, 'mssante', 'documents', key);
    if (oid === undefined) add(`mssante.documents.${key}`, "production needs an OID of the establishment's own");
    else if (typeof oid === 'string' && TEST_OID_ARC.test(oid)) add(`mssante.documents.${key}`, `${oid} is in the 1.2.250.1.999 arc of tests and demos: production needs an OID of the establishment's own`);
  }
  const testDomains = get(raw, 'mssante', 'testDomains');
  if (Array.isArray(testDomains) && testDomains.length) add('mssante.testDomains', 'test domains are refused in production');
  if (!get(raw, 'mssante', 'whitelist', 'location')) add('mssante.whitelist.location', 'production needs the liste blanche (file or URL)');
  if (get(raw, 'operator', 'insecurePlaintext') === true) add('operator.insecurePlaintext', 'plaintext SMTP is refused in production');
  if (!get(raw, 'operator', 'caFile')) add('operator.caFile', "production checks the operator's certificates: give the IGC-Santé chain (docs/deployment.md)");
  const sslMode = get(raw, 'postgres', 'sslMode') ?? 'verify-full';
  if (sslMode === 'disable' || sslMode === 'require') add('postgres.sslMode', 'production needs verify-ca or verify-full: health data never crosses the network unchecked');
  else if (!get(raw, 'postgres', 'caFile')) add('postgres.caFile', `production verifies the message store's certificate (sslMode ${typeof sslMode === 'string' ? sslMode : '?'}): give the CA that signs it`);

  const redisUrl = get(raw, 'redis', 'url');
  if (typeof redisUrl === 'string' && /^rediss?:\/\/[^/@]*:[^/@]+@/.test(redisUrl)) {
    add('redis.url', 'a password in the URL ends up in the ConfigMap and in process listings: give it in redis.password ({ file } or { env })');
  }
  const zamEndpoints = get(raw, 'feedback', 'zamEndpoints');
  if (Array.isArray(zamEndpoints)) {
    zamEndpoints.forEach((e, i) => {
      if (isObject(e) && !e['tls'] && e['insecurePlaintext'] !== true) {
        add(`feedback.zamEndpoints[${i}].tls`, 'a ZAM carries the INS: production sends it over TLS (tls: { caFile, certFile, keyFile }), or set insecurePlaintext: true for a link protected otherwise');
      }
    });
  }

  const mailboxes = raw['mailboxes'];
  if (!Array.isArray(mailboxes) || mailboxes.length === 0) add('mailboxes', 'production needs at least one applicative mailbox, with its IGC-Santé certificate');
  else {
    const sources = get(raw, 'routing', 'sources');
    // A mailbox may write to patients unless every source it sends for serves neither PRT RCT nor the patient, for every kind of result.
    const writesToPatients = (source: Json) => {
      const roles = typeof source === 'string' ? get(isObject(sources) ? sources : {}, source, 'roles') : undefined;
      return ['lab', 'imaging', 'other'].some((kind) => {
        const served = get(roles ?? {}, kind);
        return !Array.isArray(served) || served.includes('patient') || served.includes('recipient');
      });
    };
    mailboxes.forEach((m, i) => {
      if (!isObject(m)) return;
      if (!(m['certFile'] && m['keyFile']) && !m['pfxFile']) add(`mailboxes[${i}].certFile`, "production needs the mailbox's IGC-Santé certificate: certFile and keyFile (PEM), or pfxFile (PKCS#12)");
      const srcs = Array.isArray(m['sources']) ? m['sources'] : [];
      if (m['patientReplies'] === undefined && srcs.some(writesToPatients)) {
        add(`mailboxes[${i}].patientReplies`, 'this mailbox may write to patients: say "closed" (every mail to a patient ends the conversation, X-MSS-MES: FIN) or { replyTo: <a staffed organisational mailbox> }');
      }
    });
  }

  // Files of the sandbox are its test PKI and secrets: a production file names its own.
  const sandboxPrefix = `${path.resolve(sandbox)}/`;
  for (const [key, value] of strings(raw)) {
    if (value.startsWith(sandboxPrefix) || /(^|\/)\.sandbox\//.test(value) || value.startsWith('/sandbox/')) {
      add(key, `${value} is a sandbox path (its test PKI and secrets): production reads its own files`);
    }
  }

  // In a container, reached through a Service or a published port, a loopback listener is reachable by nobody.
  if (truthy(env['MSSGW_CONTAINER'])) {
    const httpHost = get(raw, 'http', 'host') ?? '127.0.0.1';
    if (typeof httpHost === 'string' && LOOPBACK.test(httpHost)) add('http.host', `${httpHost} is loopback: in a container (MSSGW_CONTAINER) neither probes nor Prometheus reach it; bind 0.0.0.0`);
    const listeners = get(raw, 'mllp', 'listeners');
    if (Array.isArray(listeners)) {
      listeners.forEach((l, i) => {
        const host = get(l, 'host');
        if (typeof host === 'string' && LOOPBACK.test(host)) add(`mllp.listeners[${i}].host`, `${host} is loopback: in a container (MSSGW_CONTAINER) the intake's Service never reaches it; bind 0.0.0.0`);
      });
    }
  }
  return out;
}

const keyOf = (problem: string) => problem.slice(0, problem.indexOf(': '));

/** Frozen all the way down: a service cannot change what another one reads. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export interface LoadOptions {
  /** Configuration file (YAML or JSON); default: $MSSGW_CONFIG, else the demo's (deploy/demo/gateway.yaml) in a checkout. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** What `${MSSGW_SANDBOX}` in the file stands for; default: $MSSGW_SANDBOX, else <repo>/.sandbox. */
  sandbox?: string;
}

/**
 * The file, then the environment, validated once against the schema (whose defaults fill what is left out). Nothing
 * else is merged in. In production, what the demo or a test may do is refused too. Throws ConfigError naming each bad
 * key; returns the configuration frozen.
 */
export function loadConfig(options: LoadOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env['MSSGW_CONFIG'] ?? (existsSync(DEMO_CONFIG_FILE) ? DEMO_CONFIG_FILE : undefined);
  if (!file) throw new ConfigError(['no configuration: name the file with --config FILE or MSSGW_CONFIG (docs/deployment.md)']);
  const sandbox = options.sandbox ?? env['MSSGW_SANDBOX'] ?? sandboxDir();
  const problems: string[] = [];
  const raw = expand(readFile(path.resolve(file), problems), sandbox, '', problems) as JsonObject;
  applyEnv(raw, env, problems);
  if (problems.length) throw new ConfigError(problems);
  const result = GatewayConfigSchema.safeParse(raw);
  const found = result.success
    ? []
    : result.error.issues.map((i) => {
        const key = i.path.map(String).join('.').replace(/\.(\d+)/g, '[$1]') || '(root)';
        return `${key}: ${i.code === 'invalid_type' && /received undefined$/.test(i.message) ? 'required' : i.message}`;
      });
  if ((raw['environment'] ?? 'production') === 'production') {
    // One problem per key: production's own word replaces the schema's, which says less.
    for (const p of productionProblems(raw, env, sandbox)) {
      const at = found.findIndex((f) => keyOf(f) === keyOf(p));
      if (at >= 0) found[at] = p;
      else found.push(p);
    }
  }
  if (found.length || !result.success) throw new ConfigError(found);
  return deepFreeze(result.data);
}

/** Reads a secret from its file or environment variable; trailing newlines are not part of it. */
export function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string {
  if (ref.file) return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  const value = ref.env ? env[ref.env] : undefined;
  if (value === undefined) throw new ConfigError([`secret: environment variable ${ref.env} is not set`]);
  return value;
}
