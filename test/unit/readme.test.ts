// The README is a user's guide: short enough to read in one sitting, and every page it sends the reader to is there.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const README = path.join(ROOT, 'README.md');
const PAGES = [README, ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join(ROOT, 'docs', f))];

/** Link targets of a Markdown page, code blocks and code spans left out (what they show is not a link). */
function links(markdown: string): string[] {
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

/** The anchors GitHub gives a page's headings. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = heading!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n ? `${slug}-${n}` : slug);
  }
  return out;
}

describe('README.md', () => {
  it('stays under 25 KB', () => {
    expect(readFileSync(README).length).toBeLessThan(25_000);
  });

  it('starts with the two commands a new user runs', () => {
    const text = readFileSync(README, 'utf8');
    const quickStart = text.slice(text.indexOf('## Quick start'));
    expect(quickStart).toMatch(/^```sh\nnpm run demo\nnpm test\n```$/m);
    expect(text.indexOf('## Quick start')).toBeLessThan(text.indexOf('## How it works'));
  });
});

describe.each(PAGES.map((p) => [path.relative(ROOT, p), p]))('%s', (_name, page) => {
  const text = readFileSync(page, 'utf8');
  const relative = links(text).filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l));

  it('links only to files of the repository that exist, and to headings they have', () => {
    for (const link of relative) {
      const [file, anchor] = link.split('#') as [string, string | undefined];
      const target = file ? path.resolve(path.dirname(page), decodeURI(file)) : page;
      expect(target.startsWith(ROOT + path.sep), `${link} leaves the repository`).toBe(true);
      expect(existsSync(target), `${link} does not exist`).toBe(true);
      if (anchor) expect([...anchors(readFileSync(target, 'utf8'))], `${link}: no such heading`).toContain(anchor);
    }
  });

  it('does not send the reader outside the project for its data', () => {
    expect(text).not.toMatch(/\.\.\/shared\b/);
  });
});
