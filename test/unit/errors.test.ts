// Stable error codes (issue #23): one registry (libs/telemetry/src/errors.ts), docs/errors.md generated from it, and
// the places that emit reasons naming the same ones, both ways. The sources are read as they are: lists exported by
// the libraries, and for code other engineers own (libs/routing, libs/store, services/api), their text.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Reason } from '@mssgw/hl7';
import { DISPATCH_REFUSALS, FORGED_RECEIPT_REASONS, MAILBOX_PAUSES, REASONS } from '@mssgw/lifecycle';
import { QUARANTINE_REASONS } from '@mssgw/receipts';
import { codeOf, ERROR_FAMILIES, ERRORS, type ErrorCode, type ErrorFamily } from '@mssgw/telemetry';
import { ERRORS_DOC, renderErrorsDoc } from '../../deploy/tools/errors-doc.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CODES = Object.keys(ERRORS) as ErrorCode[];
const valuesOf = (family: ErrorFamily) => CODES.filter((c) => ERRORS[c].family === family).map((c) => ERRORS[c].value).sort();
const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');
/** The .ts files under some directories (not their node_modules). */
function sources(...dirs: string[]): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== 'node_modules') walk(p);
      else if (/\.tsx?$/.test(e.name)) out.push({ file: p, text: read(p) });
    }
  };
  dirs.forEach(walk);
  return out;
}

describe('the registry of error codes', () => {
  it('names each code once, MSSGW_ in upper case, each with a meaning and what to do, and no value twice in a family', () => {
    expect(CODES.length).toBeGreaterThan(60);
    for (const c of CODES) {
      expect(c).toMatch(/^MSSGW_[A-Z0-9]+(?:_[A-Z0-9]+)*$/);
      expect(ERRORS[c].meaning.length, c).toBeGreaterThan(5);
      expect(ERRORS[c].remedy.length, c).toBeGreaterThan(5);
      expect(codeOf(ERRORS[c].family, ERRORS[c].value), `${c}: its value is another code's in ${ERRORS[c].family}`).toBe(c);
    }
    expect(Object.keys(ERROR_FAMILIES).sort()).toEqual(sorted(CODES.map((c) => ERRORS[c].family)));
  });

  it('has every intake reason of the HL7 table 99MSSGW (ERR-5, the Kafka dead-letter header), and no other', () => {
    expect(valuesOf('intake')).toEqual(sorted(Object.values(Reason).map((r) => r.code)));
  });

  it('has every reason a recipient is refused with: the router\'s (libs/routing), at dispatch, and routing-failed', () => {
    const route = read('libs/routing/src/route.ts');
    const union = /export type RefusalReason =([^;]*);/.exec(route)?.[1] ?? '';
    const declared = [...union.matchAll(/'([a-z-]+)'/g)].map((m) => m[1]!);
    expect(declared.length).toBeGreaterThan(10);
    // Every reason literal the router writes, ternaries included, is one of them.
    const written = route.split('\n').filter((l) => /\breason: /.test(l)).flatMap((l) => [...l.matchAll(/'([a-z]+(?:-[a-z]+)+)'/g)].map((m) => m[1]!));
    expect(written.length).toBeGreaterThan(10);
    expect(sorted(written).filter((r) => !declared.includes(r))).toEqual([]);
    expect(valuesOf('recipient')).toEqual(sorted([...declared, ...DISPATCH_REFUSALS, REASONS.routingFailed]));
  });

  it('has every reason of libs/lifecycle (REASONS), but replayed, which is no failure', () => {
    const lifecycle = Object.values(REASONS).filter((r) => r !== REASONS.replayed);
    for (const r of lifecycle) expect(codeOf('recipient', r) ?? codeOf('delivery', r), r).toBeDefined();
    expect(valuesOf('delivery')).toEqual(sorted(lifecycle.filter((r) => !codeOf('recipient', r))));
  });

  it('has every pause of a mailbox, reason a receipt is not believed, and reason a mail is quarantined', () => {
    expect(valuesOf('mailbox')).toEqual(sorted(MAILBOX_PAUSES));
    expect(valuesOf('receipt')).toEqual(sorted(FORGED_RECEIPT_REASONS));
    expect(valuesOf('quarantine')).toEqual(sorted(QUARANTINE_REASONS));
  });

  it('has every MSSGW_ code the libraries and services give their errors, and each of its own is given somewhere', () => {
    // A literal is an error code where its line speaks of a code or builds an error (not an environment variable).
    const found = sources('libs', 'services')
      .filter((s) => s.file !== path.join('libs', 'telemetry', 'src', 'errors.ts'))
      .flatMap((s) => s.text.split('\n').filter((l) => /\bcode\b|Error\(/.test(l)).flatMap((l) => [...l.matchAll(/'(MSSGW_[A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!)));
    expect(found.length).toBeGreaterThanOrEqual(6);
    expect(sorted(found).filter((c) => !(c in ERRORS)), 'codes emitted but not in libs/telemetry/src/errors.ts').toEqual([]);
    const literal = CODES.filter((c) => ERRORS[c].family === 'store' || ERRORS[c].value === c);
    expect(literal.filter((c) => !found.includes(c)), 'codes in the registry that nothing emits').toEqual([]);
  });

  it('has every error the HTTP API answers with, and no other', () => {
    const api = sources('services/api/src', 'libs/auth/src').map((s) => s.text).join('\n');
    const answered = [...api.matchAll(/\berror: (?:[^,}\n'?]*\? )?'([a-z-]+)'(?: : '([a-z-]+)')?/g)].flatMap((m) => [m[1]!, ...(m[2] ? [m[2]] : [])]);
    const statusMap = /const CLIENT_ERRORS[^=]*= \{([^}]*)\}/.exec(api)?.[1] ?? '';
    const byStatus = [...statusMap.matchAll(/'([a-z-]+)'/g)].map((m) => m[1]!);
    expect(byStatus.length).toBeGreaterThanOrEqual(4);
    expect(valuesOf('api')).toEqual(sorted([...answered, ...byStatus]));
  });
});

describe('docs/errors.md', () => {
  const doc = readFileSync(ERRORS_DOC, 'utf8');

  it('is what npm run errors-doc writes from the registry today', () => {
    expect(doc, 'docs/errors.md is out of date with libs/telemetry/src/errors.ts: run `npm run errors-doc`').toBe(renderErrorsDoc());
  });

  it('lists the codes of the registry, each once, and no other', () => {
    const rows = [...doc.matchAll(/^\| `(MSSGW_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!);
    expect(rows.sort()).toEqual([...CODES].sort());
    const mentioned = sorted([...doc.matchAll(/\bMSSGW_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]));
    expect(mentioned.filter((c) => !(c in ERRORS)), 'codes docs/errors.md names that the registry does not have').toEqual([]);
  });
});
