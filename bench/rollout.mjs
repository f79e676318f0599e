/**
 * bench/rollout: what a rollout costs.
 *
 *   npm run bench:rollout        (or: node bench/rollout.mjs)
 *
 * 1. Planning after a one-preset change, 1,000 hosts × 200 templates (realistic mix): the render
 *    hashes at the new commit from the previous target's (what the app's render worker computes:
 *    only the hosts the change reaches are rendered), beside a render of every host, and the plan.
 * 2. GitHub requests per rollout event, for 10, 100 and 1,000 hosts: the push that plans, a gate
 *    that opens a wave after an attestation batch, and a gate with nothing to do. The app runs
 *    in-process (Probot, our routes) against `GitHubStandIn` on a local server.
 * 3. An idle host's poll of GET /dotfleet/v1/rollout answered 304: app CPU per request.
 */
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { createNodeMiddleware, Probot, ProbotOctokit } from 'probot';
import { dotfleetApp } from '../dist/app/index.js';
import { GitHubStandIn, serveStandIn } from '../dist/github/standin.js';
import { renderHashes } from '../dist/core/state/render-check.js';
import { policyHash } from '../dist/core/attestation/policy.js';
import { loadFleet } from '../dist/core/fleet.js';
import { parseAllowedSigners } from '../dist/core/ssh/allowed-signers.js';
import { planRollout } from '../dist/core/rollout/plan.js';
import { DEFAULT_SETTINGS } from '../dist/core/settings.js';
import { ed25519Blob, formatPublicKey, publicKeyFromBlob } from '../dist/core/ssh/keys.js';
import { signMessage } from '../dist/core/ssh/sshsig.js';
import { ATTESTATION_NAMESPACE, serialise, statement, subjectName } from '../dist/core/attestation/format.js';
import { generateFleet, gitRepoOf, git } from './generate-fleet.mjs';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples');
const ms = (t) => `${Math.round(t)} ms`;
const now = () => performance.now();

function newKey(comment) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { public: publicKeyFromBlob(ed25519Blob(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32))), key: privateKey, comment };
}

/** The fleet with one preset changed (preset-3's window manager). */
function changePreset(tree) {
  const out = new Map(tree);
  const file = [...out.keys()].find((p) => p.endsWith('hardware.toml'));
  const text = Buffer.from(out.get(file)).toString();
  const i = text.indexOf('[hardware.preset-3]');
  out.set(file, Buffer.from(text.slice(0, i) + text.slice(i).replace(/wm = "[^"]*"/, 'wm = "bench-changed"')));
  return out;
}

// 1. Planning.
if (!process.env.SKIP_PLAN) {
  const tree0 = generateFleet({ hosts: 1000, templates: 200, mix: 'realistic' });
  const tree1 = changePreset(tree0);
  const before = renderHashes(tree0);
  let best = { render: Infinity, plan: Infinity, full: Infinity };
  let plan;
  for (let run = 0; run < 3; run++) {
    // The app's way: from the previous target's hashes, rendering only what the change reaches.
    const t0 = now();
    const after = renderHashes(tree1, { tree: tree0, hashes: before });
    const t1 = now();
    // Every host rendered, for comparison (and the answer must be the same).
    const tf = now();
    const full = renderHashes(tree1);
    best.full = Math.min(best.full, now() - tf);
    if (JSON.stringify(full) !== JSON.stringify(after)) throw new Error('incremental render hashes differ from a full render');
    const t1b = now();
    const fleet = loadFleet(tree1);
    plan = planRollout({
      repository: 'github.com/o/r', branch: 'main', target: 'b'.repeat(40), previous: 'a'.repeat(40), before, after,
      hosts: [...fleet.hosts.values()], settings: DEFAULT_SETTINGS, signature: { kind: 'none', detail: '' },
      signers: parseAllowedSigners([...fleet.hosts.keys()].map((h) => `${h} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl`).join('\n')),
      lastSequence: 0, now: new Date(),
    });
    const t2 = now();
    best = { ...best, render: Math.min(best.render, t1 - t0), plan: Math.min(best.plan, t2 - t1b) };
  }
  const affected = Object.values(plan.manifest.hosts).filter((h) => h.wave !== null).length;
  console.log(`bench/rollout — node ${process.version}`);
  console.log(`planning after a one-preset change, 1000 hosts × 200 templates (realistic mix), best of 3:`);
  console.log(`  render hashes at the new commit   ${ms(best.render)}   from the previous target's (what the app does, in its render worker); every host rendered: ${ms(best.full)}`);
  console.log(`  plan from the hashes (pure)        ${best.plan.toFixed(1)} ms   ${affected} of 1000 hosts affected, ${plan.manifest.waves.length} waves`);
  console.log(`  together                           ${ms(best.render + best.plan)}   (target ≤ 1,000 ms)`);
}

// 2 and 3. The app against a stand-in.
async function appRun(hosts) {
  const appKey = newKey('app');
  const tree = generateFleet({ hosts, templates: 20, mix: 'realistic' });
  const names = [...loadFleet(tree).hosts.keys()];
  const keys = new Map(names.map((h) => [h, newKey(h)]));
  tree.set('fleet/allowed_signers', Buffer.from([...names.map((h) => `${h} namespaces="${ATTESTATION_NAMESPACE}" ${formatPublicKey(keys.get(h).public)}`), `dotfleet-rollout namespaces="dotfleet-rollout" ${formatPublicKey(appKey.public)}`].join('\n') + '\n'));
  const { dir, commit: c0 } = gitRepoOf(tree, 'dotfleet-bench-rollout-');
  const tarballOf = (sha) => execFileSync('git', ['-C', dir, 'archive', '--format=tar.gz', `--prefix=o-r-${sha.slice(0, 7)}/`, sha], { maxBuffer: 1 << 30 });
  const served = await serveStandIn((base) => new GitHubStandIn('o', 'r', 'main', c0, new Map([[c0, tarballOf(c0)]]), `${base}/codeload`));
  const { server, base, gh: standin } = served;

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const probot = new Probot({ appId: 1, privateKey, baseUrl: base, logLevel: 'fatal', Octokit: ProbotOctokit.defaults((o) => ({ ...o, throttle: { enabled: false }, retry: { enabled: false } })) });
  let intake;
  let rollouts;
  const middleware = await createNodeMiddleware(
    dotfleetApp({ intake: { perAddress: { perMinute: 1e6, burst: 1e6 }, perHost: { perMinute: 1e6, burst: 1e6 }, dashboardIntervalMs: 0, writer: { windowMs: 200, writeSpacingMs: 0 } }, onIntake: (i) => (intake = i), onRollouts: (r) => (rollouts = r), signingKey: appKey, rolloutTickMs: 0 }),
    { probot },
  );
  const app = createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
  await new Promise((r) => app.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${app.address().port}`;
  const ref = { owner: 'o', repo: 'r' };

  const attest = async (host, commit, hash, seq) => {
    const payload = serialise(statement(subjectName('o', 'r'), {
      host, appliedCommit: commit, rolloutTarget: commit, renderHash: hash, policyHash: policyHash(tree, host),
      tools: [], drift: [], tests: [], status: 'SUCCESS', agentVersion: 'dotfleet/bench', sequence: seq, issuedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    }));
    const res = await fetch(`${url}/dotfleet/v1/attestations/o/r/${host}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestation: payload.toString('base64'), signature: signMessage(payload, keys.get(host), ATTESTATION_NAMESPACE) }) });
    if (res.status !== 201) throw new Error(`${host}: ${res.status} ${await res.text()}`);
  };
  const h0 = renderHashes(tree);
  // Every host on c0 first (the state branch and fleet.json exist, as in a running fleet).
  for (let i = 0; i < names.length; i += 200) await Promise.all(names.slice(i, i + 200).map((h) => attest(h, c0, h0[h].hash, 1)));
  await intake.settle();

  // A merge changing one preset.
  const tree1 = changePreset(tree);
  for (const [p, c] of tree1) if (p.endsWith('hardware.toml')) (await import('node:fs')).writeFileSync(`${dir}/${p}`, c);
  git(dir, 'commit', '-qam', 'one preset');
  const c1 = git(dir, 'rev-parse', 'HEAD');
  standin.tarballs.set(c1, tarballOf(c1));
  standin.branches.set('main', c1);
  const h1 = renderHashes(tree1);
  const r = rollouts.for(ref);
  const count = async (work) => {
    const before = standin.requests.length;
    await work();
    await r.settle();
    await intake.settle();
    return standin.requests.slice(before);
  };
  const push = structuredClone(examples.find((e) => e.name === 'push').examples.find((x) => x.ref === 'refs/heads/master' && x.installation?.id === 1));
  Object.assign(push, { ref: 'refs/heads/main', before: c0, after: c1 });
  Object.assign(push.repository, { default_branch: 'main', name: 'r', owner: { ...push.repository.owner, login: 'o', name: 'o' } });
  const planReqs = await count(() => probot.receive({ id: 'p1', name: 'push', payload: push }));
  const m = r.view.manifest;
  // The gate with nothing to do, and the gate that opens wave 2 (counted from when the attestation batch has landed).
  const idle = await count(() => r.evaluate());
  const wave1 = m.waves[0].hosts;
  let gateFrom;
  let gateActions = [];
  const realEvaluate = r.evaluate.bind(r);
  r.evaluate = async (...args) => {
    const before = standin.requests.length;
    const out = await realEvaluate(...args);
    if (out.length > 0) {
      gateFrom = before;
      gateActions = out;
    }
    return out;
  };
  for (let i = 0; i < wave1.length; i += 200) await Promise.all(wave1.slice(i, i + 200).map((h) => attest(h, c1, h1[h].hash, 2)));
  await intake.settle();
  await r.settle();
  // The gate's requests: from the evaluation that acted until everything it set off (the
  // dashboard edit included) is done.
  const gateReqs = gateFrom === undefined ? [] : standin.requests.slice(gateFrom);

  // 3. Idle polls answered 304.
  const poll = `${url}/dotfleet/v1/rollout/o/r`;
  const etag = (await fetch(poll)).headers.get('etag');
  const N = 2000;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  for (let i = 0; i < N; i++) {
    const res = await fetch(poll, { headers: { 'if-none-match': etag } });
    if (res.status !== 304) throw new Error(`poll answered ${res.status}`);
    await res.arrayBuffer();
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = now() - t0;
  await rollouts.close();
  await intake.settle();
  await intake.close();
  app.close();
  server.close();
  app.closeAllConnections();
  server.closeAllConnections();
  return { hosts, affected: m.waves.flatMap((w) => w.hosts).length, planReqs, idle, gateReqs, gateActions, pollCpuMs: (cpu.user + cpu.system) / 1000 / N, pollWallMs: wall / N };
}

console.log('GitHub requests per rollout event (the app against a local GitHub stand-in), and idle polls:');
for (const n of [10, 100, 1000]) {
  const r = await appRun(n);
  const list = (reqs) => [...new Set(reqs)].map((q) => `${q} ×${reqs.filter((x) => x === q).length}`).join(', ');
  console.log(`  ${String(n).padStart(4)} hosts (${r.affected} affected): plan ${r.planReqs.length} requests · gate (${r.gateActions.join(', ')}) ${r.gateReqs.length} · gate with nothing to do ${r.idle.length} · idle poll 304: ${r.pollCpuMs.toFixed(2)} ms CPU per request (client and server in this process), ${r.pollWallMs.toFixed(2)} ms wall`);
  if (process.env.VERBOSE) console.log(`    plan: ${list(r.planReqs)}\n    gate: ${list(r.gateReqs)}\n    idle: ${list(r.idle)}`);
}
console.log('targets: at most 5 requests per event, the same for 10, 100 and 1,000 hosts; a 304 in ≤ 5 ms of app CPU');
