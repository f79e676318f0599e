import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compareEntries } from '../../src/core/diff.js';
import { loadFleet } from '../../src/core/fleet.js';
import { diffFleets } from '../../src/core/fleet-diff.js';
import { fleetDiffMarkdown, SUMMARY_LIMIT } from '../../src/core/report/markdown.js';
import { pullRequestReport } from '../../src/core/pull-request.js';
import { commit, git, gitRepo, miniFleet, PROJECT_ROOT } from '../helpers/fleet.js';

/** Big and ugly changes: reported, never a crash, a hang or a report too large for GitHub. */
const lines = (n: number, f: (i: number) => string = (i) => `line ${i}`) => Array.from({ length: n }, (_, i) => f(i)).join('\n') + '\n';
const file = (text: string) => ({ kind: 'file' as const, mode: 0o644, content: Buffer.from(text) });
const six = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => `[hosts.${h}]\nmachine = "server"\nplatform = "linux"\n`).join('\n');

describe('big diffs', () => {
  it('a 150,000-line added file is summarised; --full-patch gives all of it without overflowing the stack', () => {
    const big = file(lines(150_000));
    const [summary] = compareEntries('big.txt', undefined, big);
    expect(summary!.patch).toBeUndefined();
    expect(summary!.rewrite!.to).toMatchObject({ lines: 150_000, size: big.content.length });
    const [exact] = compareEntries('big.txt', undefined, big, { exact: true });
    expect(exact!.patch!.split('\n')).toHaveLength(150_001);
  });

  it('a 10,000-line file reordered on six hosts is one rewrite, diffed once, shared by all six', () => {
    const before = lines(10_000);
    const after = lines(10_000, (i) => `line ${9_999 - i}`);
    const base = miniFleet({ hosts: six, files: { 'big.txt': before } });
    const head = miniFleet({ hosts: six, files: { 'big.txt': after } });
    const diff = diffFleets(loadFleet(base), loadFleet(head));
    expect(diff.groups).toHaveLength(1);
    expect(diff.groups[0]!.hosts).toHaveLength(6);
    const [c] = diff.groups[0]!.changes;
    expect(c!.patch).toBeUndefined();
    expect(c!.rewrite).toMatchObject({ from: { lines: 10_000 }, to: { lines: 10_000 } });
    // One diff for six hosts: the same change object's summary on every host.
    const summaries = new Set(diff.hosts.map((h) => h.changes[0]!.rewrite));
    expect(summaries.size).toBe(1);
  });

  it('a change past the edit budget is summarised; --full-patch diffs it exactly', () => {
    const base = miniFleet({ hosts: six, files: { 'mid.txt': lines(1_500) } });
    const head = miniFleet({ hosts: six, files: { 'mid.txt': lines(1_500, (i) => `line ${1_499 - i}`) } });
    expect(diffFleets(loadFleet(base), loadFleet(head)).hosts[0]!.changes[0]!.rewrite).toBeDefined();
    const exact = diffFleets(loadFleet(base), loadFleet(head), { hosts: ['h3'], fullPatch: true });
    expect(exact.hosts[0]!.changes[0]!.patch).toMatch(/^@@ -1,1500 \+1,1500 @@/);
  });

  it(`the markdown report stays within ${SUMMARY_LIMIT.toLocaleString('en-US')} bytes, its fences balanced, and says what it cut`, () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`f${i}`] = lines(10_000, (j) => `${i}-${j} some configuration text`);
    const base = miniFleet({ hosts: six, files });
    // Every fiftieth line of every file: 400 edits a file (within the budget), 2 MB of patches.
    const headFiles = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.replace(/([05]0) some/g, '$1 other')]));
    const diff = diffFleets(loadFleet(base), loadFleet(miniFleet({ hosts: six, files: headFiles })));
    const md = fleetDiffMarkdown(diff);
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(SUMMARY_LIMIT);
    expect(md).toMatch(/This report is cut to 1,000,000 bytes/);
    expect((md.match(/<details>/g) ?? []).length).toBe((md.match(/<\/details>/g) ?? []).length);
    expect((md.match(/^```/gm) ?? []).length % 2).toBe(0);
  });

  it('a 600,000-line file added: the CLI diff and the pull-request report say so, exit 0', () => {
    const repo = gitRepo(miniFleet({ files: { dot_a: 'a\n' } }));
    const base = git(repo, 'rev-parse', 'HEAD').trim();
    const head = commit(repo, { 'home/dot_huge': lines(600_000) });
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'dist/cli/dotfleet.mjs'), 'diff', '--repo', repo, '--base', base, '--head', head], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 1 << 28 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('A .huge (too large to diff here: 600,000 lines');
    const tree = miniFleet({ files: { dot_a: 'a\n' } });
    const headTree = new Map(tree).set('home/dot_huge', Buffer.from(lines(600_000)));
    const report = pullRequestReport({ base: tree, head: headTree, trust: tree, baseSha: base, headSha: head });
    expect(report.comment).toContain('too large to diff here: 600,000 lines');
  });
});
