/**
 * The CLI as users run it: one ES module (dist/cli/dotfleet.mjs) with its dependencies inside,
 * so a command starts by reading one file instead of some 400 modules (zod alone is 124): about
 * half the start-up time of the unbundled dist/cli/main.js. What is imported dynamically (the age
 * implementation, for in-process decryption) goes to dist/cli/chunks/ and is read only when used. node:* stays external; CommonJS
 * dependencies get a `require` made for the bundle's own location.
 */
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli/main.js'],
  outdir: 'dist/cli',
  entryNames: 'dotfleet',
  outExtension: { '.js': '.mjs' },
  // What a command loads only when it needs it (the age implementation) is a file of its own.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __dotfleetRequire } from 'node:module';\nconst require = __dotfleetRequire(import.meta.url);" },
});
