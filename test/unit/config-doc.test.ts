// docs/configuration.md is generated from the configuration schema (deploy/tools/config-doc.ts): it must say what the
// schema says, key for key, and the environment variables it names must be ones the loader takes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEMO_CONFIG_FILE, demoConfig, GatewayConfigSchema, loadConfig } from '@mssgw/config';
import { CONFIG_DOC, configKeys, renderConfigDoc } from '../../deploy/tools/config-doc.ts';

/** Just what this walk reads of a zod 4 schema. */
interface ZodNode {
  def: { type: string; shape?: Record<string, ZodNode>; innerType?: ZodNode; element?: ZodNode; valueType?: ZodNode; in?: ZodNode };
  description?: string;
}

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional']);

/** The schema's keys, walked on the zod schema itself (not through JSON Schema as the generator does), with their meanings. */
function schemaKeys(node: ZodNode, prefix = '', out = new Map<string, string | undefined>()): Map<string, string | undefined> {
  let n = node;
  let description = n.description;
  for (;;) {
    if (WRAPPERS.has(n.def.type)) n = n.def.innerType!;
    else if (n.def.type === 'pipe') n = n.def.in!;
    else break;
    description ??= n.description;
  }
  if (prefix) out.set(prefix, description);
  const shape = n.def.type === 'object' ? n.def.shape! : undefined;
  // A secret reference ({ file } or { env }) is one key.
  if (shape && Object.keys(shape).sort().join() !== 'env,file') {
    for (const [k, child] of Object.entries(shape)) schemaKeys(child, prefix ? `${prefix}.${k}` : k, out);
  } else if (n.def.type === 'array') {
    const element = n.def.element!;
    if (element.def.type === 'object' || WRAPPERS.has(element.def.type)) schemaKeys(element, `${prefix}[]`, new Map()).forEach((d, k) => out.set(k, d));
  } else if (n.def.type === 'record') {
    schemaKeys(n.def.valueType!, `${prefix}.<name>`, new Map()).forEach((d, k) => out.set(k, d));
  }
  out.delete(`${prefix}[]`);
  out.delete(`${prefix}.<name>`);
  return out;
}

const KEYS = schemaKeys(GatewayConfigSchema);
const DOC = readFileSync(CONFIG_DOC, 'utf8');
/** The key column of every table row of the doc. */
const DOC_ROWS = [...DOC.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);

describe('docs/configuration.md', () => {
  it('is what npm run config-doc writes from the schema today', () => {
    expect(DOC, 'docs/configuration.md is out of date with libs/config/src/schema.ts: run `npm run config-doc`').toBe(renderConfigDoc());
  });

  it('lists every key of the schema, and only those', () => {
    expect(KEYS.size).toBeGreaterThan(100);
    // Sections are introduced by their heading, every other key by its own row.
    const sections = [...KEYS.keys()].filter((k) => !/[.[]/.test(k) && DOC.includes(`\n## \`${k}\`\n`));
    const missing = [...KEYS.keys()].filter((k) => !DOC_ROWS.includes(k) && !sections.includes(k));
    expect(missing, 'keys missing from docs/configuration.md: run `npm run config-doc`').toEqual([]);
    expect(DOC_ROWS.filter((k) => !KEYS.has(k)), 'rows of docs/configuration.md that are not keys of the schema').toEqual([]);
  });

  it('gives every key a meaning, from the schema', () => {
    const undescribed = [...KEYS].filter(([, d]) => !d?.trim()).map(([k]) => k);
    expect(undescribed, 'add .describe(…) to these keys in libs/config/src/schema.ts').toEqual([]);
    for (const [k, d] of KEYS) if (DOC_ROWS.includes(k)) expect(DOC).toContain(d!.replace(/\s+/g, ' ').replace(/\|/g, '\\|'));
  });

  it('names environment variables that the loader applies to their key', () => {
    const withEnv = configKeys().filter((k) => k.env);
    expect(withEnv.map((k) => k.env)).toEqual(expect.arrayContaining(['MSSGW_REDIS_URL', 'MSSGW_HTTP_PORT', 'MSSGW_LOG_LEVEL', 'MSSGW_MAILBOXES']));
    const demo = demoConfig() as unknown as Record<string, unknown>;
    const at = (o: unknown, keyPath: string) => keyPath.split('.').reduce<unknown>((v, seg) => (v as Record<string, unknown> | undefined)?.[seg], o);
    let applied = 0;
    for (const k of withEnv) {
      const value = at(demo, k.path) as string | number | boolean | unknown[] | undefined;
      if (value === undefined) continue; // an optional key the demo leaves out
      const raw = Array.isArray(value) ? (value.some((v) => typeof v === 'object') ? JSON.stringify(value) : (value as string[]).join(',')) : String(value);
      const config = loadConfig({ file: DEMO_CONFIG_FILE, env: { [k.env!]: raw } });
      expect(at(config, k.path), k.env).toEqual(value);
      applied++;
    }
    expect(applied).toBeGreaterThan(50);
    // A key the file leaves out takes its variable too: the loader knows the keys from the schema, not from a file.
    expect(configKeys().find((k) => k.path === 'postgres.caFile')?.env).toBe('MSSGW_POSTGRES_CA_FILE');
    // A key inside a nested object has no variable, and the doc does not claim one.
    expect(configKeys().find((k) => k.path === 'operator.rate.maxPerSecond')?.env).toBeUndefined();
    expect(() => loadConfig({ env: { MSSGW_OPERATOR_RATE_MAX_PER_SECOND: '10' } })).toThrow(/no setting/);
  });

  it('shows the schema default (the only one) and, apart, the demo\'s value', () => {
    const schema = z.object({
      section: z.object({
        fromSchema: z.number().default(7).describe('a key with its own default'),
        required: z.number().describe('a key without one'),
        waitMs: z.number().default(60_000).describe('a duration'),
      }).describe('a section'),
    });
    const keys = configKeys(schema, { section: { required: 3, waitMs: 90_000 } });
    expect(keys.map((k) => [k.path, k.default, k.demo, k.optional])).toEqual([
      ['section', '', '', false],
      ['section.fromSchema', '`7`', '—', true],
      ['section.required', '', '`3`', false],
      ['section.waitMs', '`60000` (1 min)', '`90000` (90 s)', true],
    ]);
    expect(renderConfigDoc(keys)).toMatch(/\| `section\.required` \| number \| \*\*required\*\* \| `3` \|/);
  });

  it('refuses a key without a meaning instead of documenting it blank', () => {
    const schema = z.object({ section: z.object({ blank: z.string() }).describe('a section') });
    expect(() => configKeys(schema, {})).toThrow(/"section\.blank" has no meaning: add \.describe/);
  });
});
