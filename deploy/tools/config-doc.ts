// npm run config-doc: writes docs/configuration.md from the configuration schema (libs/config/src/schema.ts, whose
// .describe() texts are the meanings and whose defaults are the only ones) and the demo's file (deploy/demo/gateway.yaml).
// test/unit/config-doc.test.ts fails when the file and the schema drift apart.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { DEMO_CONFIG_FILE, GatewayConfigSchema } from '@mssgw/config';

export const CONFIG_DOC = path.resolve(import.meta.dirname, '../../docs/configuration.md');

/** The part of JSON Schema (draft 2020-12) that zod's toJSONSchema emits for this schema. */
interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  format?: string;
  anyOf?: JsonSchema[];
}

export interface ConfigKey {
  /** `section.key`; `[]` stands for every entry of a list, `<name>` for every entry of a map. */
  path: string;
  type: string;
  optional: boolean;
  /** The schema's default, already formatted for the table: '' when the key has none (required: see `optional`). */
  default: string;
  /** The value the demo's file gives it (`${MSSGW_SANDBOX}` left as written), formatted; '—' when it gives none. */
  demo: string;
  /** MSSGW_… variable that overrides the key, when the loader (libs/config/src/load.ts) accepts one. */
  env: string | undefined;
  description: string;
}

/** `{ file }` or `{ env }`: shown as one key, explained once at the top. */
const isSecretRef = (s: JsonSchema) => s.type === 'object' && Object.keys(s.properties ?? {}).sort().join() === 'env,file';
const isRecord = (s: JsonSchema) => s.type === 'object' && !s.properties && typeof s.additionalProperties === 'object';
const isObject = (s: JsonSchema) => s.type === 'object' && Boolean(s.properties) && !isSecretRef(s);

function typeOf(s: JsonSchema): string {
  if (isSecretRef(s)) return 'secret';
  if (s.enum) return `one of ${choices(s.enum)}`;
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (isRecord(s)) return 'map of name → object';
  if (s.type === 'array') {
    const item = s.items ?? {};
    const of = isObject(item) ? 'objects' : item.enum ? choices(item.enum) : typeOf(item);
    return `list of ${of}${s.minItems ? `, at least ${s.minItems}` : ''}`;
  }
  if (s.type === 'string') return s.format === 'uri' ? 'URL' : 'string';
  if (s.type === 'integer' || s.type === 'number') {
    // z.int() bounds every integer by the safe range: not worth a mention.
    const bound = (v: number | undefined) => (v !== undefined && Math.abs(v) !== Number.MAX_SAFE_INTEGER ? v : undefined);
    const [min, max, xmin, xmax] = [bound(s.minimum), bound(s.maximum), bound(s.exclusiveMinimum), bound(s.exclusiveMaximum)];
    const bounds = [
      min !== undefined ? `≥ ${min}` : xmin !== undefined ? `> ${xmin}` : '',
      max !== undefined ? `≤ ${max}` : xmax !== undefined ? `< ${xmax}` : '',
    ].filter(Boolean);
    return [s.type, ...bounds].join(', ');
  }
  return s.type ?? 'any';
}

const choices = (values: unknown[]) => values.map((v) => `\`${String(v)}\``).join(', ');

/** Durations and sizes are hard to read as raw numbers: `86400000 (1 d)`, `33554432 (32 MiB)`. */
function readable(key: string, v: number): string {
  if (/Ms$/.test(key) && v >= 1000) {
    const units: [number, string][] = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']];
    const [size, unit] = units.find(([n]) => v % n === 0) ?? [1000, 's'];
    return ` (${v / size} ${unit})`;
  }
  if (/Bytes/.test(key) && v >= 1024) {
    const units: [number, string][] = [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']];
    const [size, unit] = units.find(([n]) => v % n === 0) ?? [1, 'bytes'];
    return size === 1 ? '' : ` (${v / size} ${unit})`;
  }
  return '';
}

function formatValue(key: string, v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return `\`${v}\`${readable(key, v)}`;
  if (typeof v === 'string') return v === '' ? '`""`' : `\`${v}\``;
  return `\`${JSON.stringify(v)}\``;
}

/** The demo's values at a path: one per list entry or map entry (labelled by its name). */
function valuesAt(root: unknown, segments: string[]): { label: string; value: unknown }[] {
  let found: { label: string; value: unknown }[] = [{ label: '', value: root }];
  for (const seg of segments) {
    const next: { label: string; value: unknown }[] = [];
    for (const { label, value } of found) {
      if (seg === '[]' && Array.isArray(value)) value.forEach((v: unknown) => next.push({ label, value: v }));
      else if (seg === '<name>' && value && typeof value === 'object') Object.entries(value).forEach(([k, v]) => next.push({ label: label || k, value: v }));
      else if (value && typeof value === 'object' && !Array.isArray(value) && seg in value) next.push({ label, value: (value as Record<string, unknown>)[seg] });
    }
    found = next;
  }
  return found;
}

function demoValue(key: string, s: JsonSchema, segments: string[], demo: unknown): string {
  const found = valuesAt(demo, segments).filter((f) => f.value !== undefined);
  if (!found.length) return '—';
  // Objects are described key by key in the rows below them; their own row only says how many entries.
  if (isObject(s)) return '';
  if (isRecord(s)) return found.map((f) => Object.keys(f.value as object).map((k) => `\`${k}\``).join(', ') || '`{}`').join('; ');
  if (s.type === 'array' && isObject(s.items ?? {})) {
    return found.map(({ value }) => ({ 0: '`[]`', 1: '1 entry' })[(value as unknown[]).length] ?? `${(value as unknown[]).length} entries`).join('; ');
  }
  const shown = found.map((f) => (f.label ? `${f.label}: ` : '') + formatValue(key, f.value));
  // The same value in every entry is said once.
  return new Set(shown).size === 1 ? shown[0]! : shown.join('; ');
}

/** MSSGW_<SECTION>_<KEY> reaches a key of a section, or a top-level key, that is not an object. */
function envName(segments: string[], s: JsonSchema): string | undefined {
  if (segments.length > 2 || segments.some((seg) => seg === '[]' || seg === '<name>') || isObject(s) || isSecretRef(s) || isRecord(s)) return undefined;
  const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
  return `MSSGW_${segments.map(snake).join('_')}`;
}

/** Every key of the schema, depth first in the schema's order. Throws on a key without a meaning. */
export function configKeys(schema: { toJSONSchema(params?: object): unknown } = GatewayConfigSchema, demo: object = demoFile()): ConfigKey[] {
  const root = schema.toJSONSchema({ io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const keys: ConfigKey[] = [];
  const visit = (s: JsonSchema, segments: string[], optional: boolean) => {
    const keyPath = segments.join('.').replace(/\.\[\]/g, '[]');
    const key = segments.filter((seg) => seg !== '[]' && seg !== '<name>').at(-1)!;
    if (!s.description?.trim()) throw new Error(`config-doc: "${keyPath}" has no meaning: add .describe('…') to it in libs/config/src/schema.ts`);
    keys.push({
      path: keyPath, type: typeOf(s), optional,
      // A section's default ({}) only says that its keys' defaults apply.
      default: s.default !== undefined && !isObject(s) ? formatValue(key, s.default) : '',
      demo: demoValue(key, s, segments, demo),
      env: envName(segments, s),
      description: s.description.trim().replace(/\s+/g, ' '),
    });
    children(s, segments);
  };
  const children = (s: JsonSchema, segments: string[]) => {
    if (isObject(s)) for (const [k, child] of Object.entries(s.properties!)) visit(child, [...segments, k], !(s.required ?? []).includes(k));
    else if (isRecord(s)) children(s.additionalProperties as JsonSchema, [...segments, '<name>']);
    else if (s.type === 'array' && s.items && isObject(s.items)) children(s.items, [...segments, '[]']);
  };
  children(root, []);
  return keys;
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** deploy/demo/gateway.yaml as written. */
export const demoFile = (): object => parseYaml(readFileSync(DEMO_CONFIG_FILE, 'utf8')) as object;

/** The whole of docs/configuration.md. */
export function renderConfigDoc(keys: ConfigKey[] = configKeys()): string {
  const out = [
    '# Configuration reference',
    '',
    '<!-- Generated by `npm run config-doc` from libs/config/src/schema.ts and deploy/demo/gateway.yaml: edit those, not this file. -->',
    '',
    'Every key the gateway reads, section by section, in the order of the schema (`libs/config/src/schema.ts`). How the',
    'file, the environment and the defaults combine is in the [README](../README.md#configuration).',
    '',
    '- **key**: `[]` stands for each entry of a list, `<name>` for each entry of a map (e.g. a source name).',
    '- **type**: *optional* keys may be left out; a **secret** is `{ file: PATH }` (read from that file, trailing newline',
    '  dropped) or `{ env: NAME }` (read from that environment variable), never the value itself.',
    '- **default**: what the gateway takes when the file and the environment leave the key out; **required** when there',
    '  is none (within its section, or its list entry). These are the only defaults: nothing else is merged in.',
    '- **demo**: the value in the demo\'s file (`deploy/demo/gateway.yaml`), which runs the gateway on the local',
    '  sandbox; not a recommendation for production ([deployment.md](deployment.md)). `${MSSGW_SANDBOX}` is the sandbox',
    '  directory.',
    '- **environment**: the `MSSGW_…` variable that overrides the key (lists of objects take JSON).',
  ];
  let section = '';
  for (const k of keys) {
    const top = k.path.split(/[.[]/)[0]!;
    if (top !== section) {
      section = top;
      out.push('', `## \`${top}\``, '', '| key | type | default | demo | environment | meaning |', '| --- | --- | --- | --- | --- | --- |');
    }
    if (k.path === top && k.type === 'object') {
      // A section's meaning introduces its table.
      out.splice(out.length - 2, 0, cell(k.description), '');
      continue;
    }
    const type = `${k.type}${k.optional ? ', *optional*' : ''}`;
    const dflt = k.default || (k.optional ? '' : '**required**');
    out.push(`| \`${k.path}\` | ${cell(type)} | ${cell(dflt)} | ${cell(k.demo)} | ${k.env ? `\`${k.env}\`` : ''} | ${cell(k.description)} |`);
  }
  return out.join('\n') + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(CONFIG_DOC, renderConfigDoc());
  process.stdout.write(`written ${path.relative(process.cwd(), CONFIG_DOC)}\n`);
}
