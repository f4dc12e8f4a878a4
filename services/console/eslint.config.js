// The project's lint rules (the repository's eslint.config.js), read from here so that dist/ (esbuild's output) is
// ignored for this workspace as the root's dist/ is.
export { default } from '../../eslint.config.js';
