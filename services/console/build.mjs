// Builds the operator console (issue #24) into dist/: src/main.tsx bundled and minified by esbuild (preact, no
// runtime dependency on any network), with index.html and app.css beside it. Run by `npm install` (this workspace's
// prepare script) and by the api service at start when dist/ is missing. Plain JavaScript: it may run under the
// Node that npm runs install scripts with, before the project's own Node 22 is there.
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const DIST = path.join(here, 'dist');
export const FILES = ['index.html', 'app.js', 'app.css'];

/** Builds dist/; returns the size of the JavaScript, raw and gzipped. */
export async function build() {
  const { build: esbuild } = await import('esbuild');
  mkdirSync(DIST, { recursive: true });
  await esbuild({
    entryPoints: [path.join(here, 'web', 'main.tsx')],
    outfile: path.join(DIST, 'app.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(path.join(here, 'web', 'index.html'), path.join(DIST, 'index.html'));
  copyFileSync(path.join(here, 'web', 'app.css'), path.join(DIST, 'app.css'));
  const js = readFileSync(path.join(DIST, 'app.js'));
  const sizes = { bytes: js.length, gzipBytes: gzipSync(js).length };
  writeFileSync(path.join(DIST, 'build.json'), JSON.stringify({ builtAt: new Date().toISOString(), ...sizes }) + '\n');
  return sizes;
}

/** Whether dist/ has every file. */
export function built() {
  try {
    return FILES.every((f) => statSync(path.join(DIST, f)).isFile());
  } catch {
    return false;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const sizes = await build();
  process.stdout.write(`console built into ${DIST}: app.js ${sizes.bytes} bytes, ${sizes.gzipBytes} gzipped\n`);
}
