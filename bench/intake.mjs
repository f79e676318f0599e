/**
 * bench/intake: 1,000 attestations from 1,000 hosts, sent at once to the running app (in its own thread, bench/intake-app.mjs: Probot's
 * node middleware with our route, on 127.0.0.1). GitHub is stood in by a local server running
 * `GitHubStandIn`: createCommitOnBranch with expectedHeadOid, and another writer that moves the
 * state branch's head before some of our commits (so some commits come back STALE_DATA).
 * Octokit runs with Probot's production settings (throttling on: writes about 1 s apart).
 * Another writer (a second replica, a person) commits to the state branch every WRITER_MS
 * (default 500 ms) for the whole run, and a real `push` webhook (from @octokit/webhooks-examples,
 * signed as GitHub signs it) is delivered every 100 ms, to see whether intake stalls the webhooks.
 *
 *   npm run bench:intake          (or: [THROTTLE=0] [WRITER_MS=500] [COLD=1] node bench/intake.mjs [hosts] [templates])
 *
 * Prints: accepted count (must be all, and all present in the final tree), commits made, moved
 * heads met, p50/p99 time to acknowledge, webhook latency during the run, verify cost per
 * attestation, peak RSS of this process (app, stand-in and clients together).
 */
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { GitHubStandIn, serveStandIn } from '../dist/github/standin.js';
import { renderHashes } from '../dist/core/state/render-check.js';
import { policyHash } from '../dist/core/attestation/policy.js';
import { ed25519Blob, formatPublicKey, publicKeyFromBlob } from '../dist/core/ssh/keys.js';
import { signMessage } from '../dist/core/ssh/sshsig.js';
import { ATTESTATION_NAMESPACE, serialise, statement, subjectName } from '../dist/core/attestation/format.js';
import { generateFleet, gitRepoOf } from './generate-fleet.mjs';

const HOSTS = Number(process.argv[2] ?? 1000);
const TEMPLATES = Number(process.argv[3] ?? 50);
const WRITER_MS = Number(process.env.WRITER_MS ?? 500);

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
  const payload = serialise(statement(subjectName('o', 'r'), {
    host, appliedCommit: main, rolloutTarget: main, renderHash: hashes[host].hash, policyHash: policyHash(tree, host),
    tools: [{ name: 'git', version: '2.39.5', requirement: '>=2.30', ok: true }], drift: i % 50 === 0 ? [{ path: '.gitconfig', type: 'modified' }] : [],
    tests: [{ name: 'T10-git.sh', status: 'pass', durationMs: 31 }], status: 'SUCCESS', agentVersion: 'dotfleet/bench', sequence: 1, issuedAt,
  }));
  return { host, body: JSON.stringify({ attestation: payload.toString('base64'), signature: signMessage(payload, keys.get(host), ATTESTATION_NAMESPACE) }) };
});

// GitHub, stood in.
const served = await serveStandIn((base) => new GitHubStandIn('o', 'r', 'main', main, new Map([[main, tarball]]), `${base}/codeload`), {
  seen: (method, url, raw) => {
    if (process.env.DBG) console.error(`DBG ${Date.now() % 100000} stand-in got ${method} ${url.slice(0, 60)} ${raw.includes('createCommitOnBranch') ? 'COMMIT' : raw.slice(0, 40)}`);
  },
});
let moved = 0;
const otherWriter = () => {
  if (served.gh.branches.has('dotfleet/state')) {
    moved++;
    if (process.env.DBG) console.error(`DBG ${Date.now() % 100000} other writer`);
    served.gh.pushCommit('dotfleet/state', { [`notes/other-writer-${moved}.txt`]: 'another replica was here\n' });
  }
};

// The app, in its own thread. THROTTLE=0 turns Octokit's throttling off, to see the app's own
// cost apart from GitHub's pacing.
const THROTTLE = process.env.THROTTLE !== '0';
const SECRET = 'bench-secret';
const app = new Worker(new URL('./intake-app.mjs', import.meta.url), { workerData: { base: served.base, secret: SECRET, throttle: THROTTLE } });
const fromApp = (kind) => new Promise((resolve) => {
  const on = (m) => {
    if (m.kind !== kind) return;
    app.off('message', on);
    resolve(m);
  };
  app.on('message', on);
});
const { port: appPort } = await fromApp('listening');
const url = `http://127.0.0.1:${appPort}/dotfleet/v1/attestations/o/r`;

// A real push payload (to a branch that is not the default: the app only notes it), signed.
const examples = createRequire(import.meta.url)('@octokit/webhooks-examples');
const push = structuredClone(examples.find((e) => e.name === 'push').examples[0]);
push.ref = 'refs/heads/topic';
push.repository.owner.login = 'o';
push.repository.name = 'r';
push.installation = { id: 1 };
const pushBody = JSON.stringify(push);
const pushSignature = `sha256=${createHmac('sha256', SECRET).update(pushBody).digest('hex')}`;
const appBase = `http://127.0.0.1:${appPort}`;
// The webhook prober runs in its own thread: the 1,000 clients' fetches in this one would
// otherwise delay its requests and make the app look slower than it is.
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, headers, body } = workerData;
let running = true, n = 0;
const ms = [];
parentPort.on('message', () => (running = false));
(async () => {
  while (running) {
    const start = performance.now();
    const res = await fetch(url, { method: 'POST', headers: { ...headers, 'x-github-delivery': 'bench-' + ++n }, body });
    await res.text();
    if (res.status !== 200) throw new Error('webhook answered ' + res.status);
    if (n > 1) ms.push(performance.now() - start); // the first is a warm-up
    await new Promise((r) => setTimeout(r, 100));
  }
  parentPort.postMessage(ms);
})();
`;
const startProber = () => {
  const w = new Worker(PROBER, { eval: true, workerData: { url: `${appBase}/api/github/webhooks`, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': pushSignature }, body: pushBody } });
  const done = new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  return { stop: async () => (w.postMessage('stop'), done) };
};

// Steady state, as minutes after a merge: the state branch exists (earlier runs, another
// replica), and the merge's push to main has reached the app, which has read the trust and
// rendered every host at the new head before the hosts attest. COLD=1 skips this.
if (process.env.COLD !== '1') {
  served.gh.pushCommit('dotfleet/state', { 'README.md': 'state branch\n' }, 'start');
  const merge = { ...structuredClone(push), ref: 'refs/heads/main', after: main };
  merge.repository.default_branch = 'main';
  const mergeBody = JSON.stringify(merge);
  const res = await fetch(`${appBase}/api/github/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'bench-merge', 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(mergeBody).digest('hex')}` }, body: mergeBody });
  if (res.status !== 200) throw new Error(`push to main answered ${res.status}`);
  const ready = fromApp('ready');
  app.postMessage({ kind: 'ready', commit: main, host: names[0], hash: hashes[names[0]].hash });
  await ready;
}

// 1,000 at once, with the other writer and the webhooks going on.
const writer = setInterval(otherWriter, WRITER_MS);
const prober = startProber();
await new Promise((r) => setTimeout(r, 300));
if (process.env.DBG) console.error(`DBG ${Date.now() % 100000} sending`);
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
const webhookMs = await prober.stop();
clearInterval(writer);
const statsAnswer = fromApp('stats');
app.postMessage({ kind: 'stats' });
const stats = await statsAnswer;

const statuses = {};
for (const r of results) statuses[`${r.status} ${r.json.code}`] = (statuses[`${r.status} ${r.json.code}`] ?? 0) + 1;
const accepted = results.filter((r) => r.status === 201);
const files = served.gh.filesAt('dotfleet/state');
const fleetJson = JSON.parse(files.get('fleet.json').toString());
const present = accepted.filter((r) => files.has(r.json.path) && files.has(`${r.json.path}.sig`) && fleetJson.hosts[r.host]?.path === r.json.path).length;
const ourCommits = served.gh.history('dotfleet/state').filter((c) => c.message.startsWith('attest:')).length;
const ms = results.map((r) => r.ms).sort((a, b) => a - b);
const pct = (p) => ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))];
const firstLine = files.get('FLEET.md').toString().split('\n').find((l) => l.startsWith('FLEET STATUS'));

console.log(`bench/intake — ${HOSTS.toLocaleString('en')} attestations from ${HOSTS.toLocaleString('en')} hosts at once, ${TEMPLATES} templates, Octokit throttling ${THROTTLE ? 'on (as in production)' : 'off'}, ${process.env.COLD === '1' ? 'cold start (no state branch, trust and render read on the first submission)' : 'steady state (state branch exists, the merge\'s push seen)'}, node ${process.version}`);
console.log(`answers                       ${Object.entries(statuses).map(([k, v]) => `${v} × ${k}`).join(', ')}`);
console.log(`accepted                      ${accepted.length} of ${HOSTS}; in the final tree (json + sig + fleet.json): ${present}`);
const writerStats = stats.writerStats;
console.log(`commits made                  ${ourCommits} (batch window ${stats.writer.windowMs} ms, ≤ ${stats.writer.maxBatch} per commit); other writer: a commit every ${WRITER_MS} ms (${moved} in all); stale answers: ${served.gh.requests.filter((r) => r === 'GRAPHQL createCommitOnBranch').length - ourCommits}; tries per batch: ${writerStats.triesPerBatch.join(', ')}`);
console.log(`time to acknowledge           first ${ms[0].toFixed(0)} ms · p50 ${pct(50).toFixed(0)} ms · p99 ${pct(99).toFixed(0)} ms · max ${ms.at(-1).toFixed(0)} ms · all answered in ${wall.toFixed(0)} ms`);
const wms = webhookMs.sort((a, b) => a - b);
const wp = (p) => wms[Math.min(wms.length - 1, Math.floor((p / 100) * wms.length))];
console.log(`webhook latency during run    p50 ${wp(50).toFixed(0)} ms · p99 ${wp(99).toFixed(0)} ms · max ${wms.at(-1).toFixed(0)} ms over ${wms.length} push deliveries`);
console.log(`verify cost per attestation   ${(stats.verifyNs / stats.verified / 1000).toFixed(0)} µs (signature, form, schema, allowed_signers lookup in ${HOSTS} lines), in ${stats.pool.size} worker thread(s): ${stats.pool.inWorker} there, ${stats.pool.inline} in-process`);
console.log(`CPU (this process)            ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms for the run (all threads: app, its workers, stand-in, clients)`);
console.log(`peak RSS (this process)       ${(peakRss / 2 ** 20).toFixed(0)} MB`);
console.log(`GitHub requests               ${served.gh.requests.length} (${Object.entries(served.gh.requests.reduce((a, r) => ((a[r.replace(/[0-9a-f]{40}/g, 'SHA').replace(/\/contents\/.*/, '/contents/…')] = (a[r.replace(/[0-9a-f]{40}/g, 'SHA').replace(/\/contents\/.*/, '/contents/…')] ?? 0) + 1), a), {})).map(([k, v]) => `${v} × ${k}`).join(', ')})`);
console.log(`FLEET.md                      ${firstLine}`);
clearInterval(sampler);
app.postMessage({ kind: 'stop' });
process.exit(present === HOSTS && accepted.length === HOSTS ? 0 : 1);
