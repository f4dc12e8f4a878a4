// Applied after every `npm ci` (the postinstall script; the image runs it after its install): small fixes to
// installed libraries, each an exact text replacement that fails the install when the text is not found, so an
// upgrade of the library cannot drop a fix unnoticed. Run again, it changes nothing.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const patches = [
  {
    // ioredis gives every pipeline its own `length` getter, a closure over the pipeline. V8 allocates the accessor
    // pair in the old generation, so each pipeline (its ~130 copied methods, its commands, their arguments and
    // replies) survives every scavenge until the next full collection. A getter on the prototype answers the same.
    // docs/design.md, "Library choices" (ioredis): 4-7 % less CPU in the intake and the dispatcher.
    name: 'ioredis: Pipeline#length on the prototype',
    file: 'node_modules/ioredis/built/Pipeline.js',
    find: `        const _this = this;
        Object.defineProperty(this, "length", {
            get: function () {
                return _this._queue.length;
            },
        });
    }
`,
    replace: `    }
    // mssante-gateway (deploy/patches/apply.mjs): a getter on the prototype, not one per pipeline.
    get length() {
        return this._queue.length;
    }
`,
  },
];

for (const p of patches) {
  const file = path.join(root, p.file);
  const text = readFileSync(file, 'utf8');
  if (text.includes(p.replace)) continue;
  if (!text.includes(p.find)) {
    console.error(`deploy/patches: ${p.name}: the text to replace is not in ${p.file} (library upgraded?); review the patch`);
    process.exit(1);
  }
  writeFileSync(file, text.replace(p.find, p.replace));
  console.log(`deploy/patches: ${p.name}`);
}
