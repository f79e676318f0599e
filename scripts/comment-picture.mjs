/**
 * docs/pr-comment.png: the sticky comment for the sample fleet's demo change, rendered as GitHub
 * shows it (GitHub-flavoured markdown, GitHub's markdown CSS) in headless Chromium. The first
 * group is shown expanded; on GitHub every group starts collapsed.
 *
 *   npm run build && node scripts/comment-picture.mjs   (needs Debian's chromium)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { marked } from 'marked';
import { makeDemoRepo } from '../dist/cli/commands/demo.js';
import { readTreeAtRef, resolveCommit } from '../dist/host/git.js';
import { pullRequestReport } from '../dist/core/pull-request.js';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'dotfleet-picture-'));
const { repo, base, head } = await makeDemoRepo(join(dir, 'fleet'));
const [baseSha, headSha] = [await resolveCommit(repo, base), await resolveCommit(repo, head)];
const baseTree = await readTreeAtRef(repo, baseSha);
const { comment } = pullRequestReport({ base: baseTree, head: await readTreeAtRef(repo, headSha), trust: baseTree, baseSha, headSha });

const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
marked.use({
  gfm: true,
  renderer: {
    code({ text, lang }) {
      if (lang !== 'diff') return false;
      const lines = text.split('\n').map((l) => `<span class="${l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : l.startsWith('@@') ? 'hunk' : ''}">${escape(l)}</span>`);
      return `<pre><code>${lines.join('\n')}</code></pre>`;
    },
  },
});
const html = marked.parse(comment).replace('<details>', '<details open>');
const css = readFileSync(require.resolve('github-markdown-css/github-markdown-light.css'), 'utf8');
const page = `<!doctype html><html><head><meta charset="utf-8"><style>${css}
body { background: #fff; margin: 0; }
.frame { width: 880px; margin: 16px; border: 1px solid #d0d7de; border-radius: 6px; }
.frame header { background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: 8px 16px; font: 14px -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #57606a; }
.frame header b { color: #1f2328; }
.markdown-body { padding: 16px; font-family: -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
.markdown-body pre span.add { color: #116329; background: #dafbe1; display: inline-block; width: 100%; }
.markdown-body pre span.del { color: #82071e; background: #ffebe9; display: inline-block; width: 100%; }
.markdown-body pre span.hunk { color: #6639ba; }
</style></head><body><div class="frame"><header><b>dotfleet</b> <span>bot</span> commented</header><article class="markdown-body">${html}</article></div></body></html>`;
const htmlFile = join(dir, 'comment.html');
writeFileSync(htmlFile, page);
const out = new URL('../docs/pr-comment.png', import.meta.url).pathname;
execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`, '--hide-scrollbars', '--window-size=912,1740', `--screenshot=${out}`, `file://${htmlFile}`], { stdio: 'ignore' });
console.log(`wrote ${out} (${comment.length.toLocaleString('en')} characters of markdown)`);
