import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { demoDefaults } from './defaults.ts';
import { GatewayConfigSchema, type GatewayConfig, type SecretRef } from './schema.ts';

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
 * launcher (services/gateway/bin/mssgw) before Node starts.
 */
const RESERVED = [/^MSSGW_CONFIG$/, /^MSSGW_NODE_FLAGS$/, /^MSSGW_LOG_FILE$/, /^MSSGW_SANDBOX/, /^MSSGW_SECRET_/, /^MSSGW_TEST_/, /^MSSGW_BENCH_/];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const camel = (parts: string[]) =>
  parts.map((p, i) => (i === 0 ? p.toLowerCase() : p.charAt(0) + p.slice(1).toLowerCase())).join('');

/** Objects merge key by key; arrays and scalars from the override replace the default. */
function merge(base: Json, override: Json): Json {
  if (!isObject(base) || !isObject(override)) return override;
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = k in base ? merge(base[k] as Json, v) : v;
  return out;
}

/** Environment values are strings: read them as the type the setting already has. */
function coerce(current: Json | undefined, raw: string, name: string, problems: string[]): Json {
  if (typeof current === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || Number.isNaN(n)) problems.push(`${name}: expected a number, got "${raw}"`);
    return n;
  }
  if (typeof current === 'boolean') {
    if (!/^(true|false|1|0|yes|no)$/i.test(raw)) problems.push(`${name}: expected true or false, got "${raw}"`);
    return /^(true|1|yes)$/i.test(raw);
  }
  if (Array.isArray(current)) {
    if (current.some(isObject) || raw.trim().startsWith('[')) {
      try {
        return JSON.parse(raw) as Json;
      } catch {
        problems.push(`${name}: expected a JSON array`);
        return current;
      }
    }
    return raw.split(',').map((s) => s.trim()).filter(Boolean);
  }
  return raw;
}

/** MSSGW_<SECTION>_<KEY> → section.key (camelCase), or MSSGW_<KEY> → key for top-level settings. */
function applyEnv(config: JsonObject, env: NodeJS.ProcessEnv, problems: string[]): void {
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('MSSGW_') || raw === undefined || RESERVED.some((r) => r.test(name))) continue;
    const parts = name.slice('MSSGW_'.length).split('_');
    const top = camel(parts);
    if (top in config && !isObject(config[top])) {
      config[top] = coerce(config[top], raw, name, problems);
      continue;
    }
    const section = config[camel(parts.slice(0, 1))];
    const key = camel(parts.slice(1));
    if (!isObject(section) || key === '') {
      problems.push(`${name}: no such setting (expected MSSGW_<SECTION>_<KEY>, e.g. MSSGW_REDIS_URL)`);
      continue;
    }
    if (!(key in section)) {
      problems.push(`${name}: "${camel(parts.slice(0, 1))}" has no setting "${key}"`);
      continue;
    }
    section[key] = coerce(section[key], raw, name, problems);
  }
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
    if (!isObject(parsed)) throw new Error('the top level must be a mapping');
    return parsed;
  } catch (err) {
    problems.push(`${file}: not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
    return {};
  }
}

export interface LoadOptions {
  /** Configuration file (YAML or JSON); default: $MSSGW_CONFIG, else the embedded demo defaults alone. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** Defaults ← file ← environment, validated once. Throws ConfigError naming each bad key. */
export function loadConfig(options: LoadOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env['MSSGW_CONFIG'];
  const problems: string[] = [];
  let merged = demoDefaults() as unknown as JsonObject;
  if (file) merged = merge(merged, readFile(path.resolve(file), problems)) as JsonObject;
  applyEnv(merged, env, problems);
  if (problems.length) throw new ConfigError(problems);
  const result = GatewayConfigSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => `${i.path.map(String).join('.').replace(/\.(\d+)/g, '[$1]') || '(root)'}: ${i.message}`),
    );
  }
  return result.data;
}

/** Reads a secret from its file or environment variable; trailing newlines are not part of it. */
export function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string {
  if (ref.file) return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  const value = ref.env ? env[ref.env] : undefined;
  if (value === undefined) throw new ConfigError([`secret: environment variable ${ref.env} is not set`]);
  return value;
}
