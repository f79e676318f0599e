/**
 * The Action as GitHub runs it: action/dist/index.mjs (the entry) and action/dist/report-worker.mjs
 * (the render worker, time- and memory-limited as in the app), each one ES module with every
 * dependency inside, committed with the source so that a workflow runs it without `npm install`.
 * Built from dist/ (run `npm run build` first); `node scripts/bundle-action.mjs OUTDIR` writes
 * elsewhere (the suite compares that with the committed bundle: a stale bundle fails CI).
 */
import { build } from 'esbuild';

const outdir = process.argv[2] ?? 'action/dist';
await build({
  entryPoints: { index: 'dist/action/index.js', 'report-worker': 'dist/app/report-worker.js' },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __dotfleetRequire } from 'node:module';\nconst require = __dotfleetRequire(import.meta.url);" },
});
