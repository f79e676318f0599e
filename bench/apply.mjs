/**
 * bench/apply: the host commands on a 500-file home, as a user runs them (the built CLI, a new
 * process each time, so start-up is included): the first apply, a no-op apply, a drift check,
 * and an apply after one file changed. Median of several runs, with the spread. Prints figures;
 * asserts nothing.
 *
 *   npm run bench:apply           (or: node bench/apply.mjs [files] [runs])
 *
 * Targets (issue 15): no-op apply ≤ 400 ms and drift ≤ 250 ms for 500 files, start-up included.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FILES = Number(process.argv[2] ?? 500);
const RUNS = Number(process.argv[3] ?? 7);
const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'dist', 'cli', 'dotfleet.mjs');
const UNBUNDLED = join(root, 'dist', 'cli', 'main.js');

// A fleet whose one host renders FILES files: a fifth of them templates, in nested directories.
const repo = mkdtempSync(join(tmpdir(), 'dotfleet-bench-apply-'));
const put = (p, text) => {
  mkdirSync(dirname(join(repo, p)), { recursive: true });
  writeFileSync(join(repo, p), text);
};
put('fleet/hosts.toml', '[hosts.bench]\nmachine = "box"\nplatform = "linux"\nwave = 1\n');
put('home/.chezmoidata.toml', 'user = "robin"\n\n[hardware.box]\ndisplay_scale = 1.0\nkbd_layout = "us"\nmodifier_mode = "pc"\nperf_profile = "balanced"\nwm = "none"\n');
for (let i = 0; i < FILES; i++) {
  const dir = `dot_config/app${i % 25}/sub${i % 4}`;
  const body = `# file ${i}\n${'setting = value\n'.repeat(40)}`;
  if (i % 5 === 0) put(`home/${dir}/f${i}.conf.hbs`, `${body}user = {{user}}\nhost = {{host.name}}\n`);
  else put(`home/${dir}/f${i}.conf`, body);
}
const git = (...a) => execFileSync('git', a, { cwd: repo, stdio: 'ignore', env: { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' } });
git('init', '-q', '-b', 'main');
git('add', '-A');
git('commit', '-qm', 'bench');

const home = mkdtempSync(join(tmpdir(), 'dotfleet-bench-home-'));
const state = mkdtempSync(join(tmpdir(), 'dotfleet-bench-state-'));
const args = (cmd, ...more) => [cmd, '--repo', repo, '--host', 'bench', '--target', home, '--state-dir', state, ...more];
function timed(cli, argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [cli, ...argv], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && !(argv[0] === 'drift')) throw new Error(`${argv.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return ms;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;

const first = [];
const noop = [];
const drift = [];
const one = [];
const start = [];
const startUnbundled = [];
for (let r = 0; r < RUNS; r++) {
  rmSync(home, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
  mkdirSync(home);
  first.push(timed(CLI, args('apply')));
  noop.push(timed(CLI, args('apply')));
  drift.push(timed(CLI, args('drift')));
  writeFileSync(join(home, '.config/app3/sub3/f3.conf'), 'changed here\n');
  one.push(timed(CLI, args('apply', '--force')));
  start.push(timed(CLI, ['--version']));
  startUnbundled.push(timed(UNBUNDLED, ['--version']));
}
console.log(`bench/apply — ${FILES} files in one host's home, ${RUNS} runs each, a new process each time (start-up included), node ${process.version}`);
console.log(`first apply                  ${fmt(first)}   (${((median(first) - median(noop)) / FILES).toFixed(2)} ms per file written, over a no-op apply)`);
console.log(`no-op apply                  ${fmt(noop)}   (target ≤ 400 ms)`);
console.log(`drift check                  ${fmt(drift)}   (target ≤ 250 ms)`);
console.log(`apply after one local edit   ${fmt(one)}   (--force: one file snapshotted and written)`);
console.log(`start-up alone (--version)   ${fmt(start)}; unbundled dist/cli/main.js ${fmt(startUnbundled)}`);
