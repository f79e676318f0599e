/**
 * bench/intake: 1,000 attestations from 1,000 hosts, sent at once to the running app (Probot's
 * node middleware with our route, on 127.0.0.1). GitHub is stood in by a local server running
 * `GitHubStandIn`: createCommitOnBranch with expectedHeadOid, and another writer that moves the
 * state branch's head before some of our commits (so some commits come back STALE_DATA).
 * Octokit runs with Probot's production settings (throttling on: writes about 1 s apart).
 *
 *   npm run bench:intake          (or: [THROTTLE=0] node bench/intake.mjs [hosts] [templates] [move-probability])
 *
 * Prints: accepted count (must be all, and all present in the final tree), commits made, moved
 * heads met, p50/p99 time to acknowledge, verify cost per attestation, peak RSS of this process
 * (app, stand-in and clients together).
 */
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createNodeMiddleware, Probot, ProbotOctokit } from 'probot';
import { dotfleetApp } from '../dist/app/index.js';
import { GitHubStandIn } from '../dist/github/standin.js';
import { renderHashes } from '../dist/core/state/render-check.js';
import { policyHash } from '../dist/core/attestation/policy.js';
import { ed25519Blob, formatPublicKey, publicKeyFromBlob } from '../dist/core/ssh/keys.js';
import { signMessage } from '../dist/core/ssh/sshsig.js';
import { ATTESTATION_NAMESPACE, serialise, statement } from '../dist/core/attestation/format.js';
import { generateFleet, gitRepoOf } from './generate-fleet.mjs';

const HOSTS = Number(process.argv[2] ?? 1000);
const TEMPLATES = Number(process.argv[3] ?? 50);
const MOVE = Number(process.argv[4] ?? 0.3);

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

// The fleet: generated hosts, a key each in allowed_signers, one commit on main.
const tree = generateFleet({ hosts: HOSTS, templates: TEMPLATES });
const names = [...Buffer.from(tree.get('fleet/hosts.toml')).toString().matchAll(/^\[hosts\.([^\].]+)\]$/gm)].map((m) => m[1]);
const keys = new Map();
const lines = [];
for (const host of names) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = publicKeyFromBlob(ed25519Blob(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)));
  keys.set(host, { public: pub, key: privateKey });
  lines.push(`${host} namespaces="${ATTESTATION_NAMESPACE}" ${formatPublicKey(pub)}`);
}
tree.set('fleet/allowed_signers', Buffer.from(lines.join('\n') + '\n'));
const { dir, commit: main } = gitRepoOf(tree, 'dotfleet-bench-intake-');
const tarball = execFileSync('git', ['-C', dir, 'archive', '--format=tar.gz', `--prefix=o-r-${main.slice(0, 7)}/`, main], { maxBuffer: 1 << 30 });
const hashes = renderHashes(tree);

// The attestations, signed before the clock starts.
const issuedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const bodies = names.map((host, i) => {
  const payload = serialise(statement('git+https://github.com/o/r.git', {
    host, appliedCommit: main, rolloutTarget: main, renderHash: hashes[host].hash, policyHash: policyHash(tree, host),
    tools: [{ name: 'git', version: '2.39.5', requirement: '>=2.30', ok: true }], drift: i % 50 === 0 ? [{ path: '.gitconfig', type: 'modified' }] : [],
    tests: [{ name: 'T10-git.sh', status: 'pass', durationMs: 31 }], status: 'SUCCESS', agentVersion: 'dotfleet/bench', sequence: 1, issuedAt,
  }));
  return { host, body: JSON.stringify({ attestation: payload.toString('base64'), signature: signMessage(payload, keys.get(host), ATTESTATION_NAMESPACE) }) };
});

// GitHub, stood in.
const gh = await new Promise((resolve) => {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      const r = standin.handle(req.method, req.url, raw ? JSON.parse(raw) : undefined);
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      res.end(r.raw ?? (r.body === undefined ? '' : JSON.stringify(r.body)));
    });
  });
  let standin;
  server.listen(0, '127.0.0.1', () => {
    const base = `http://127.0.0.1:${server.address().port}`;
    standin = new GitHubStandIn('o', 'r', 'main', main, new Map([[main, tarball]]), `${base}/codeload`);
    resolve({ server, standin, base });
  });
});
let moved = 0;
gh.standin.beforeCommit = (branch) => {
  if (gh.standin.branches.has(branch) && Math.random() < MOVE) {
    moved++;
    gh.standin.pushCommit(branch, { [`notes/other-writer-${moved}.txt`]: 'another replica was here\n' });
  }
};

// The app.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
// THROTTLE=0 turns Octokit's throttling off, to see the app's own cost apart from GitHub's pacing.
const THROTTLE = process.env.THROTTLE !== '0';
const Octokit = THROTTLE ? ProbotOctokit : ProbotOctokit.defaults((o) => ({ ...o, throttle: { enabled: false } }));
const probot = new Probot({ appId: 1, privateKey, baseUrl: gh.base, logLevel: 'warn', Octokit });
let intake;
const middleware = await createNodeMiddleware(dotfleetApp({ intake: { perAddress: { perMinute: 1e6, burst: 1e6 } }, onIntake: (i) => (intake = i) }), { probot });
const appServer = createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
await new Promise((r) => appServer.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${appServer.address().port}/dotfleet/v1/attestations/o/r`;

// 1,000 at once.
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const results = await Promise.all(bodies.map(async ({ host, body }) => {
  const start = performance.now();
  const res = await fetch(`${url}/${host}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = await res.json();
  return { host, status: res.status, json, ms: performance.now() - start };
}));
const wall = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await intake.settle();

const statuses = {};
for (const r of results) statuses[`${r.status} ${r.json.code}`] = (statuses[`${r.status} ${r.json.code}`] ?? 0) + 1;
const accepted = results.filter((r) => r.status === 201);
const files = gh.standin.filesAt('dotfleet/state');
const fleetJson = JSON.parse(files.get('fleet.json').toString());
const present = accepted.filter((r) => files.has(r.json.path) && files.has(`${r.json.path}.sig`) && fleetJson.hosts[r.host]?.path === r.json.path).length;
const ourCommits = gh.standin.history('dotfleet/state').filter((c) => c.message.startsWith('attest:')).length;
const ms = results.map((r) => r.ms).sort((a, b) => a - b);
const pct = (p) => ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))];
const firstLine = files.get('FLEET.md').toString().split('\n').find((l) => l.startsWith('FLEET STATUS'));

console.log(`bench/intake — ${HOSTS.toLocaleString('en')} attestations from ${HOSTS.toLocaleString('en')} hosts at once, ${TEMPLATES} templates, Octokit throttling ${THROTTLE ? 'on (as in production)' : 'off'}, node ${process.version}`);
console.log(`answers                       ${Object.entries(statuses).map(([k, v]) => `${v} × ${k}`).join(', ')}`);
console.log(`accepted                      ${accepted.length} of ${HOSTS}; in the final tree (json + sig + fleet.json): ${present}`);
console.log(`commits made                  ${ourCommits} (batch window ${intake.options.writer.windowMs} ms, ≤ ${intake.options.writer.maxBatch} per commit); moved heads: ${moved} (other writer's commits), stale answers: ${gh.standin.requests.filter((r) => r === 'GRAPHQL createCommitOnBranch').length - ourCommits}`);
console.log(`time to acknowledge           p50 ${pct(50).toFixed(0)} ms · p99 ${pct(99).toFixed(0)} ms · max ${ms.at(-1).toFixed(0)} ms · all answered in ${wall.toFixed(0)} ms`);
console.log(`verify cost per attestation   ${(Number(intake.stats.verifyNs) / intake.stats.verified / 1000).toFixed(0)} µs (signature, form, schema, allowed_signers lookup in ${HOSTS} lines)`);
console.log(`CPU (this process)            ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms for the run (app + stand-in + clients)`);
console.log(`peak RSS (this process)       ${(peakRss / 2 ** 20).toFixed(0)} MB`);
console.log(`GitHub requests               ${gh.standin.requests.length} (${Object.entries(gh.standin.requests.reduce((a, r) => ((a[r.replace(/[0-9a-f]{40}/g, 'SHA').replace(/\/contents\/.*/, '/contents/…')] = (a[r.replace(/[0-9a-f]{40}/g, 'SHA').replace(/\/contents\/.*/, '/contents/…')] ?? 0) + 1), a), {})).map(([k, v]) => `${v} × ${k}`).join(', ')})`);
console.log(`FLEET.md                      ${firstLine}`);
clearInterval(sampler);
appServer.closeAllConnections();
process.exit(present === HOSTS && accepted.length === HOSTS ? 0 : 1);
