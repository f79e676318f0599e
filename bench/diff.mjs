/**
 * bench/diff: the diff path on big and ugly changes. Prints figures; asserts nothing.
 *
 *   npm run bench:diff
 *
 * Targets (issue 14): a 10,000-line file reordered on 6 identical hosts ≤ 1 s and ≤ 300 MB;
 * 1,000 hosts with one 5,000-line file changed alike ≤ 1.5 s end to end; a 600,000-line file
 * added ≤ 3 s for the CLI diff and for the pull-request report; peak RSS of a 1,000-host full
 * render (its own process) ≤ 250 MB.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadFleet } from '../dist/core/fleet.js';
import { diffFleets } from '../dist/core/fleet-diff.js';
import { pullRequestReport } from '../dist/core/pull-request.js';
import { fleetDiffMarkdown } from '../dist/core/report/markdown.js';
import { presetsToml } from './generate-fleet.mjs';

const lines = (n, f = (i) => `line ${i} of some configuration`) => Array.from({ length: n }, (_, i) => f(i)).join('\n') + '\n';
const hostsToml = (n) => Array.from({ length: n }, (_, h) => `[hosts.host-${h}]\nmachine = "preset-${h % 12}"\nplatform = "linux"\n`).join('\n');
const fleetOf = (n, files) => {
  const t = new Map([['home/.chezmoidata.toml', Buffer.from('x = 1\n')], ['home/.chezmoidata/hardware.toml', Buffer.from(presetsToml(12))], ['fleet/hosts.toml', Buffer.from(hostsToml(n))]]);
  for (const [p, c] of Object.entries(files)) t.set(`home/${p}`, Buffer.from(c));
  return t;
};
const timed = (fn) => {
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const t = process.hrtime.bigint();
  const result = fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, mb: (process.memoryUsage().rss - rss0) / 2 ** 20, result };
};
const fmt = (label, r, target, extra = '') => console.log(`${label.padEnd(58)} ${r.ms.toFixed(0).padStart(6)} ms  ${r.mb.toFixed(0).padStart(4)} MB more RSS   (target ${target})${extra}`);

console.log(`bench/diff — node ${process.version}`);

const reordered = timed(() => {
  const base = fleetOf(6, { 'big.conf': lines(10_000) });
  const head = fleetOf(6, { 'big.conf': lines(10_000, (i) => `line ${9_999 - i} of some configuration`) });
  const d = diffFleets(loadFleet(base), loadFleet(head));
  return d.groups.length;
});
fmt('10,000-line file reordered, 6 hosts identical', reordered, '≤ 1 s, ≤ 300 MB', `   ${reordered.result} group`);

const fleetWide = timed(() => {
  const text = lines(5_000);
  const base = fleetOf(1000, { 'dot_big.conf.hbs': `# {{hw.wm}}\n${text}` });
  const head = fleetOf(1000, { 'dot_big.conf.hbs': `# {{hw.wm}}\n${text.replace(/line (\d*7) of/g, 'line $1 changed in')}` });
  const d = diffFleets(loadFleet(base), loadFleet(head));
  return { groups: d.groups.length, md: fleetDiffMarkdown(d).length };
});
fmt('1,000 hosts, one 5,000-line file changed alike (diff + md)', fleetWide, '≤ 1.5 s', `   ${fleetWide.result.groups} group(s), ${fleetWide.result.md.toLocaleString('en')} chars of markdown`);

const hugeBase = fleetOf(12, { dot_a: 'a\n' });
const hugeHead = fleetOf(12, { dot_a: 'a\n', dot_huge: lines(600_000) });
const hugeDiff = timed(() => diffFleets(loadFleet(hugeBase), loadFleet(hugeHead)).hosts.length);
fmt('600,000-line file added: fleet diff (12 hosts)', hugeDiff, '≤ 3 s');
// Fresh copies: nothing memoised by the fleet diff above is reused.
const copy = (t) => new Map([...t].map(([p, b]) => [p, Buffer.from(b)]));
const [prBase, prHead] = [copy(hugeBase), copy(hugeHead)];
const hugePr = timed(() => pullRequestReport({ base: prBase, head: prHead, trust: prBase, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40) }).comment.length);
fmt('600,000-line file added: pull-request report', hugePr, '≤ 3 s', `   comment ${hugePr.result.toLocaleString('en')} chars`);

// Peak RSS of a full render, in a process of its own.
const child = fileURLToPath(new URL('./diff-rss-child.mjs', import.meta.url));
for (const mix of ['realistic', 'worst']) {
  const r = spawnSync(process.execPath, [child, mix], { encoding: 'utf8' });
  console.log(`peak RSS, full render of 1,000 hosts × 200 templates (${mix.padEnd(9)}) ${r.stdout.trim().padStart(6)} MB   (target ≤ 250)`);
}

