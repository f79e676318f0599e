/**
 * docs/dashboard.png: the "Fleet dashboard" issue for the sample fleet in the middle of a rollout
 * (wave 2 halted by a failing host test, one host drifting, two quiet), rendered as GitHub shows it
 * (GitHub-flavoured markdown, GitHub's markdown CSS) in headless Chromium. The body is the one the
 * app writes: dashboardBody over a plan of the sample fleet's 12 hosts and their records.
 *
 *   npm run build && node scripts/dashboard-picture.mjs   (needs Debian's chromium)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { marked } from 'marked';
import { dashboardBody } from '../dist/core/state/dashboard.js';
import { fleetStatus } from '../dist/core/state/status.js';
import { planRollout } from '../dist/core/rollout/plan.js';
import { advance, expectedCommit, rolloutView } from '../dist/core/rollout/state.js';
import { rolloutCheckboxes, rolloutMarkdown } from '../dist/core/rollout/report.js';
import { DEFAULT_SETTINGS } from '../dist/core/settings.js';
import { parseAllowedSigners } from '../dist/core/ssh/allowed-signers.js';

const require = createRequire(import.meta.url);
const root = new URL('..', import.meta.url).pathname;
const inventory = readFileSync(join(root, 'examples/fleet/fleet/hosts.toml'), 'utf8');
const hosts = [...inventory.matchAll(/^\[hosts\.([a-z]+)\]\n(?:.*\n)*?wave = (\d)/gm)].map((m) => ({ name: m[1], wave: Number(m[2]), principal: m[1] }));
const signers = parseAllowedSigners(readFileSync(join(root, 'examples/fleet/fleet/allowed_signers')));
const T = '9f3c2e17b4d5a6c8e0f1a2b3c4d5e6f708192a3b';
const P = '4e21a0c9d8b7f6e5d4c3b2a1f0e9d8c7b6a59483';
const t0 = new Date('2026-12-04T09:00:00Z');
const at = (min) => new Date(t0.getTime() + min * 60_000);
const hash = (c) => `sha256:${c.repeat(64)}`;
const plan = planRollout({
  repository: 'github.com/robinvale/fleet', branch: 'main', target: T, previous: P,
  before: Object.fromEntries(hosts.map((h) => [h.name, { hash: hash('0') }])),
  after: Object.fromEntries(hosts.map((h) => [h.name, { hash: h.name === 'condor' ? hash('0') : hash('1') }])),
  hosts, settings: DEFAULT_SETTINGS, signature: { kind: 'ssh', detail: 'robin (SHA256:Qm8v…)' }, signers, lastSequence: 41, now: t0,
}).manifest;
const record = (host, commit, min, over = {}) => ({
  path: `attestations/${host}/x.json`, digest: hash('d'), sequence: 7, issuedAt: at(min).toISOString(), receivedAt: at(min).toISOString(), status: 'SUCCESS',
  appliedCommit: commit, rolloutTarget: commit === T ? T : null, renderHash: commit === T ? hash('1') : hash('0'), render: 'match', policyHash: hash('c'),
  toolsOk: true, toolsFailing: [], drift: [], testsFailed: 0, key: 'SHA256:x', ...over,
});
const records = {};
for (const h of hosts) if (h.wave === 1) records[h.name] = record(h.name, T, 12);
let m = advance(plan, records, at(15)).manifest;
for (const h of hosts) if (h.wave === 2) records[h.name] = record(h.name, T, 31);
records.heron = record('heron', T, 33, { status: 'FAILED', testsFailed: 1 });
records.osprey = record('osprey', T, 32, { drift: ['.config/niri/config.kdl'] });
m = advance(m, records, at(40)).manifest;
for (const h of hosts) if (h.wave === 3 && h.name !== 'condor' && h.name !== 'puffin') records[h.name] = record(h.name, P, -60 * 20);
const now = at(41);
const view = rolloutView(m, records, now);
const state = { version: 1, target: { branch: 'main', commit: T }, policy: Object.fromEntries(hosts.map((h) => [h.name, hash('c')])), updatedAt: now.toISOString(), hosts: records };
const body = dashboardBody({
  state, status: fleetStatus(state, hosts.map((h) => h.name), (h) => expectedCommit(m, h)), inventory: hosts.map((h) => h.name), now, quietAfterSeconds: 86400,
  rollout: `${rolloutMarkdown(view)}\n${rolloutCheckboxes(view)}`, repoUrl: 'https://github.com/robinvale/fleet', stateBranch: 'dotfleet/state',
});

const dir = mkdtempSync(join(tmpdir(), 'dotfleet-dashboard-'));
const html = marked.parse(body, { gfm: true }).replace(/<details>/, '<details open>').replace(/<li><input /g, '<li class="task-list-item"><input ');
const css = readFileSync(require.resolve('github-markdown-css/github-markdown-light.css'), 'utf8');
const page = `<!doctype html><html><head><meta charset="utf-8"><style>${css}
body { background: #fff; margin: 0; }
.frame { width: 980px; margin: 16px; border: 1px solid #d0d7de; border-radius: 6px; }
.frame header { background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: 8px 16px; font: 20px -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328; }
.markdown-body { padding: 16px; font-family: -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
</style></head><body><div class="frame"><header>Fleet dashboard <span style="color:#57606a">#3</span></header><article class="markdown-body">${html}</article></div></body></html>`;
const htmlFile = join(dir, 'dashboard.html');
writeFileSync(htmlFile, page);
const out = join(root, 'docs/dashboard.png');
execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`, '--hide-scrollbars', '--window-size=1012,1790', `--screenshot=${out}`, `file://${htmlFile}`], { stdio: 'ignore' });
console.log(`wrote ${out} (${body.length.toLocaleString('en')} characters of markdown)`);
