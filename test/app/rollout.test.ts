/**
 * Rollouts against the real app (Probot, our routes) with real webhook payloads
 * (@octokit/webhooks-examples) and GitHub stood in behind nock: merge → canary attests SUCCESS →
 * wave 2 opens → a host FAILS → halt, comment, revert pull request; a redelivered push; a bot's
 * push; a command from a user without write access; retry; a restart in the middle; a deadline
 * found by the periodic trigger; a superseding merge; an unsigned target under
 * require_signed_target.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nock from 'nock';
import { signingKeyFromEnv } from '../../src/app/rollout.js';
import { MANIFEST_PATH, MANIFEST_SIG_PATH, parseManifest, ROLLOUT_NAMESPACE, type Manifest } from '../../src/core/rollout/manifest.js';
import { renderHashes } from '../../src/core/state/render-check.js';
import { readTarball } from '../../src/github/tarball.js';
import type { GitHubStandIn } from '../../src/github/standin.js';
import { addCommit, appForFile, intakeFleet, signed, standIn, startApp, submit, type IntakeFleet, type RunningApp } from '../helpers/intake.js';
import { until } from '../helpers/wait.js';
import { commentPayload, issueEditedPayload, OWNER, pushPayload, REPO, tarball } from '../helpers/github.js';
import { keygenVerify, newKey, scratchDir } from '../helpers/ssh.js';

const dir = scratchDir();
const appKey = newKey(dir, 'dotfleet-app');
const appSigner = `dotfleet-rollout namespaces="${ROLLOUT_NAMESPACE}" ${appKey.publicKey}`;

/** Every host's render hash at a commit of the fleet repository, as the hosts would attest it. */
function hashesAt(f: IntakeFleet, sha: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [h, v] of Object.entries(renderHashes(readTarball(tarball(f.repo, sha)).tree))) if ('hash' in v) out[h] = v.hash;
  return out;
}

const manifestOf = (gh: GitHubStandIn): Manifest | undefined => {
  const b = gh.filesAt('dotfleet/state')?.get(MANIFEST_PATH);
  return b ? parseManifest(b) : undefined;
};


let n = 0;
const deliver = (app: RunningApp, name: string, payload: any, id = `delivery-${++n}`) => app.probot.receive({ id, name: name as never, payload });

/** Attest `host` at `commit` (SUCCESS unless told), as the host's update would. */
function attest(f: IntakeFleet, app: RunningApp, host: string, commit: string, hashes: Record<string, string>, over: Record<string, unknown> = {}) {
  return submit(app, host, signed(f, host, { appliedCommit: commit, rolloutTarget: commit, renderHash: hashes[host]!, ...over }));
}

describe('a rollout from merge to halt, retry and completion', () => {
  const f = intakeFleet([appSigner]);
  let gh: GitHubStandIn;
  let app: RunningApp;
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  let c1: string;
  let h1: Record<string, string>;
  // The dashboard waits a moment for later news, as in production (2 s there; longer than a loaded machine takes to decide), so views ride together.
  const start = () => startApp({ dashboardIntervalMs: 0, dashboardDelayMs: 800 }, {}, { app: { signingKey: appKey.parsed!, clock } });

  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    gh = standIn(f);
    gh.pullsFor.set('placeholder', []);
    app = await start();
    // The first rollout needs a target to compare with: fleet.json at main, as a host's attestation leaves it.
    expect((await attest(f, app, 'kestrel', f.main, Object.fromEntries(f.renderHashes))).status).toBe(201);
    // A merge that changes every host: a new file, and revert on halt.
    c1 = addCommit(f, gh, { 'home/dot_rollout-note': 'rolled out\n', '.github/dotfleet.yml': 'revert: true\n' }, { onMain: true });
    gh.pullsFor.set(c1, [42]);
    h1 = hashesAt(f, c1);
  });
  afterAll(async () => {
    await app.close();
    nock.cleanAll();
  });

  it('a push to the default branch plans the rollout: a signed manifest that ssh-keygen verifies alone, wave 1 open, a check run and a Deployment', async () => {
    const start = gh.requests.length;
    await deliver(app, 'push', pushPayload(f.main, c1));
    const m = manifestOf(gh)!;
    expect(m).toBeDefined();
    expect(m.target.commit).toBe(c1);
    expect(m.previous).toBe(f.main);
    expect(m.phase).toBe('running');
    expect(m.wave).toBe(1);
    expect(m.waves.map((w) => w.hosts)).toEqual([['kestrel', 'tern'], ['atlas', 'heron', 'merlin', 'osprey', 'wren'], ['condor', 'falcon', 'harrier', 'puffin', 'swift']]);
    expect(m.target.signature.kind).toBe('none');
    const files = gh.filesAt('dotfleet/state')!;
    const bytes = files.get(MANIFEST_PATH)!;
    const sig = files.get(MANIFEST_SIG_PATH)!.toString();
    expect(keygenVerify(dir, f.allowedSigners, 'dotfleet-rollout', ROLLOUT_NAMESPACE, bytes, sig)).toBe(true);
    expect(files.get('FLEET.md')!.toString()).toContain(`## Rollout \`${m.id}\``);
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    const run = gh.checkRuns.find((r) => r.name === 'dotfleet/rollout' && r.head_sha === c1)!;
    expect(run.status).toBe('in_progress');
    expect(run.output.title).toMatch(/is running: wave 1\/3 · 0\/12 hosts attested/);
    expect(gh.deployments).toHaveLength(1);
    expect(gh.deployments[0]).toMatchObject({ sha: c1, environment: 'fleet', payload: { rollout: m.id } });
    // A new deployment has no status until a host reports (one request fewer at planning).
    expect(gh.deployments[0]!.statuses).toEqual([]);
    // Everything people see came in one request, with the dashboard's edit.
    // The check run and the deployment came in one request (with the dashboard's edit when it had news).
    expect(gh.requests.slice(start).filter((r) => /check-runs|deployments|CheckRun|Deployment/.test(r))).toEqual([expect.stringMatching(/^GRAPHQL (updateIssue\+)?createCheckRun\+createDeployment$/)]);
    expect(gh.unhandled).toEqual([]);
  });

  it('GET /dotfleet/v1/rollout serves the exact signed bytes with an ETag; an idle poll is answered 304', async () => {
    const url = `${app.url}/dotfleet/v1/rollout/${OWNER}/${REPO}`;
    const first = await fetch(url);
    expect(first.status).toBe(200);
    const body = (await first.json()) as { manifest: string; signature: string };
    const files = gh.filesAt('dotfleet/state')!;
    expect(Buffer.from(body.manifest, 'base64').equals(files.get(MANIFEST_PATH)!)).toBe(true);
    expect(body.signature).toBe(files.get(MANIFEST_SIG_PATH)!.toString());
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"m\d+-[0-9a-f]{16}"$/);
    const before = gh.requests.length;
    const again = await fetch(url, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    expect(gh.requests.length).toBe(before);
    expect((await fetch(`${app.url}/dotfleet/v1/rollout/${OWNER}`)).status).toBe(404);
    expect((await fetch(url, { method: 'POST', body: '{}' })).status).toBe(405);
  });

  it('a redelivered push makes no second rollout; neither does a bot\'s push or a push to the state branch', async () => {
    const seq = manifestOf(gh)!.sequence;
    const commits = gh.history('dotfleet/state').length;
    await deliver(app, 'push', pushPayload(f.main, c1), `delivery-${n}`); // the same delivery id
    await deliver(app, 'push', pushPayload(f.main, c1)); // a new id, the same push
    const before = gh.requests.length;
    await deliver(app, 'push', pushPayload(c1, c1, { bot: true }));
    await deliver(app, 'push', pushPayload(c1, 'e'.repeat(40), { ref: 'refs/heads/dotfleet/state', bot: true }));
    expect(gh.requests.length).toBe(before);
    expect(manifestOf(gh)!.sequence).toBe(seq);
    expect(gh.history('dotfleet/state')).toHaveLength(commits);
  });

  it('the first canary attests: the check run and the dashboard show it, the deployment is in progress, all in the one edit its commit asked for', async () => {
    const start = gh.requests.length;
    expect((await attest(f, app, 'kestrel', c1, h1)).status).toBe(201);
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    expect(gh.checkRuns.find((r) => r.head_sha === c1)!.output.title).toMatch(/wave 1\/3 · 1\/12 hosts attested/);
    expect(gh.deployments[0]!.statuses).toEqual([{ state: 'in_progress', description: 'wave 1/3 · 1/12 hosts attested' }]);
    const since = gh.requests.slice(start);
    expect(since.filter((r) => /issues|check-runs|deployments|GRAPHQL (update|create|add)/.test(r) && r !== 'GRAPHQL createCommitOnBranch')).toEqual(['GRAPHQL updateIssue+updateCheckRun+createDeploymentStatus']);
  });

  it('the canary attests SUCCESS: wave 2 opens, from the head the intake\'s commit made (no read), and its views go out in one request', async () => {
    const start = gh.requests.length;
    expect((await attest(f, app, 'tern', c1, h1)).status).toBe(201);
    const m = await until('wave 2', () => manifestOf(gh)?.wave === 2 && manifestOf(gh));
    expect(m.log.map((l) => l.action)).toContain('open wave 2');
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    expect(gh.deployments[0]!.statuses.at(-1)).toEqual({ state: 'in_progress', description: 'wave 2/3 · 2/12 hosts attested' });
    // Between the attestation's commit and the gate's: nothing read (the gate started from the head the intake made).
    const since = gh.requests.slice(start);
    const commits = since.flatMap((r, i) => (r === 'GRAPHQL createCommitOnBranch' ? [i] : []));
    expect(since.slice(commits.at(-2)! + 1, commits.at(-1)!).filter((r) => r.startsWith('GET'))).toEqual([]);
    expect(since.slice(commits.at(-1)! + 1).filter((r) => /check-runs|deployments|CheckRun|Deployment/.test(r))).toEqual([expect.stringMatching(/^GRAPHQL (updateIssue\+)?updateCheckRun\+createDeploymentStatus$/)]);
  });

  it('a host of wave 2 FAILS: the rollout halts with its reasons, the merged pull request hears why, and a revert pull request opens', async () => {
    for (const h of ['atlas', 'osprey', 'wren', 'merlin']) expect((await attest(f, app, h, c1, h1)).status).toBe(201);
    const failed = await attest(f, app, 'heron', c1, h1, { status: 'FAILED', tests: [{ name: 'T20-fonts.sh', status: 'fail', durationMs: 5, output: 'fc-list: no Iosevka' }] });
    expect(failed.status).toBe(201);
    const m = await until('halt', () => manifestOf(gh)?.phase === 'halted' && manifestOf(gh));
    expect(m.reasons).toEqual([{ host: 'heron', reason: 'FAILED: 1 host test failing' }]);
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    const comment = gh.comments.find((c) => c.issue === 42)!;
    expect(comment.body).toMatch(/rollout halted/);
    expect(comment.body).toMatch(/\*\*heron\*\*: FAILED: 1 host test failing/);
    expect(gh.pulls).toHaveLength(1);
    expect(gh.pulls[0]).toMatchObject({ base: 'main', head: `dotfleet/revert-${m.id}` });
    expect(gh.pulls[0]!.body).toContain('heron: FAILED: 1 host test failing');
    expect(comment.body).toContain(`A revert is open: #${gh.pulls[0]!.number}`);
    expect(gh.checkRuns.find((r) => r.head_sha === c1)!).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(gh.deployments[0]!.statuses.at(-1)!.state).toBe('failure');
    expect(gh.unhandled).toEqual([]);
  });

  it('a command from a user without write access is refused with a short reply, and nothing is recorded', async () => {
    const seq = manifestOf(gh)!.sequence;
    await deliver(app, 'issue_comment', commentPayload('/dotfleet rollout resume', 'mallory'));
    expect(gh.comments.at(-1)!.body).toMatch(/@mallory only people with write access to Codertocat\/Hello-World can steer a rollout \(your permission: read\)/);
    expect(manifestOf(gh)!.sequence).toBe(seq);
  });

  it('the dashboard offers the commands as checkboxes; a box ticked by a reader is refused, nothing recorded, and the box clears', async () => {
    const dashboard = await until('the dashboard with its boxes', () => gh.issues.find((i) => i.body.includes('<!-- dotfleet:dashboard -->') && i.body.includes('dotfleet:rollout resume')));
    expect(dashboard.body).toContain('- [ ] <!-- dotfleet:rollout resume --> Resume the rollout');
    expect(dashboard.body).toContain('- [ ] <!-- dotfleet:rollout retry heron --> Retry **heron** (FAILED)');
    expect(dashboard.body).toContain('- [ ] <!-- dotfleet:rollout skip heron --> Skip **heron**');
    const seq = manifestOf(gh)!.sequence;
    const before = dashboard.body;
    const ticked = before.replace('- [ ] <!-- dotfleet:rollout skip heron -->', '- [x] <!-- dotfleet:rollout skip heron -->');
    dashboard.body = ticked;
    await deliver(app, 'issues', issueEditedPayload(dashboard.number, before, ticked, 'mallory'));
    expect(gh.comments.at(-1)!).toMatchObject({ issue: dashboard.number });
    expect(gh.comments.at(-1)!.body).toMatch(/@mallory only people with write access to Codertocat\/Hello-World can steer a rollout/);
    expect(manifestOf(gh)!.sequence).toBe(seq);
    await until('the box cleared', () => dashboard.body.includes('- [ ] <!-- dotfleet:rollout skip heron -->'));
    // Boxes already ticked before the edit, and an edit that is not ours to read, do nothing.
    const n = gh.comments.length;
    await deliver(app, 'issues', issueEditedPayload(dashboard.number, ticked, ticked, 'mallory'));
    expect(gh.comments.length).toBe(n);
  });

  it('retry HOST by a writer: recorded with who and when; the host attests SUCCESS and wave 3 opens', async () => {
    gh.permissions.set('owner', 'write');
    await deliver(app, 'issue_comment', commentPayload('Fixed the font.\n/dotfleet rollout retry heron', 'owner'));
    let m = manifestOf(gh)!;
    expect(m.phase).toBe('running');
    expect(m.log.at(-1)).toMatchObject({ by: 'owner', action: 'retry heron' });
    expect(gh.comments.at(-1)!.body).toMatch(/@owner done: retry heron/);
    // Another writer commits between the intake's commit and the gate's: the gate's first try,
    // from the head the intake made, loses the compare-and-swap; the next reads the branch.
    let calls = 0;
    gh.beforeCommit = (branch) => {
      if (branch === 'dotfleet/state' && ++calls === 2) gh.pushCommit(branch, { 'notes/between': 'kept\n' });
    };
    expect((await attest(f, app, 'heron', c1, h1)).status).toBe(201);
    m = await until('wave 3', () => manifestOf(gh)?.wave === 3 && manifestOf(gh));
    gh.beforeCommit = undefined;
    expect(calls).toBe(3);
    expect(m.phase).toBe('running');
    expect(gh.filesAt('dotfleet/state')!.get('notes/between')!.toString()).toBe('kept\n');
  });

  it('a writer ticks "Halt" on the dashboard: halted, recorded with who; "Resume" runs it again; each box clears', async () => {
    const dashboard = () => gh.issues.find((i) => i.body.includes('<!-- dotfleet:dashboard -->'))!;
    const tick = async (command: string) => {
      const d = await until(`the ${command} box`, () => dashboard().body.includes(`- [ ] <!-- dotfleet:rollout ${command} -->`) && dashboard());
      const before = d.body;
      d.body = before.replace(`- [ ] <!-- dotfleet:rollout ${command} -->`, `- [x] <!-- dotfleet:rollout ${command} -->`);
      await deliver(app, 'issues', issueEditedPayload(d.number, before, d.body, 'owner'));
    };
    await tick('halt');
    expect(manifestOf(gh)).toMatchObject({ phase: 'halted' });
    expect(manifestOf(gh)!.log.at(-1)).toMatchObject({ by: 'owner', action: 'halt' });
    // The answer on the dashboard issue (the merged pull request hears of the halt too).
    expect(gh.comments.filter((c) => c.issue !== 42).at(-1)!.body).toMatch(/@owner done: halt/);
    await tick('resume');
    expect(manifestOf(gh)).toMatchObject({ phase: 'running', wave: 3 });
    expect(manifestOf(gh)!.log.at(-1)).toMatchObject({ by: 'owner', action: 'resume' });
    await until('the halt box again, unticked', () => dashboard().body.includes('- [ ] <!-- dotfleet:rollout halt -->'));
  });

  it('a restart in the middle loses nothing: a new app process finishes the rollout from the branch alone', async () => {
    await app.close();
    app = await start();
    for (const h of ['falcon', 'harrier', 'swift', 'condor', 'puffin']) expect((await attest(f, app, h, c1, h1)).status).toBe(201);
    const m = await until('complete', () => manifestOf(gh)?.phase === 'complete' && manifestOf(gh));
    expect(m.log.at(-1)!.action).toBe('complete');
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    expect(gh.comments.filter((c) => c.issue === 42).at(-1)!.body).toMatch(/rollout completed/);
    expect(gh.checkRuns.find((r) => r.head_sha === c1)!).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(gh.deployments[0]!.statuses.at(-1)!.state).toBe('success');
    // FLEET.md shows the rollout and the status table.
    expect(gh.filesAt('dotfleet/state')!.get('FLEET.md')!.toString()).toMatch(/is complete: 12\/12 hosts attested/);
    expect(gh.unhandled).toEqual([]);
  });

  it('a merge that changes no render records "nothing to roll out"', async () => {
    const c2 = addCommit(f, gh, { 'home/dot_rollout-note': 'rolled out\n', '.github/dotfleet.yml': 'revert: true\n', 'README.md': 'docs only\n' }, { onMain: true });
    await deliver(app, 'push', pushPayload(c1, c2));
    const m = manifestOf(gh)!;
    expect(m.target.commit).toBe(c2);
    expect(m.phase).toBe('complete');
    expect(m.log[0]!.action).toBe('nothing to roll out');
    expect(Object.values(m.hosts).every((h) => h.wave === null)).toBe(true);
  });

  it('the periodic trigger halts a wave whose deadline passed, naming the silent hosts; a superseding merge replaces it', async () => {
    const c3 = addCommit(f, gh, { 'home/dot_rollout-note': 'third\n', '.github/dotfleet.yml': 'rollout:\n  wave_timeout: 30m\n' }, { onMain: true });
    await deliver(app, 'push', pushPayload(f.main, c3));
    expect(manifestOf(gh)!.phase).toBe('running');
    offset = 31 * 60_000;
    // Two replicas find the deadline passed at once: one halt lands, the other finds it done.
    const app2 = await start();
    const halts = () => gh.history('dotfleet/state').filter((c) => /^rollout: halt/.test(c.message)).length;
    const before = halts();
    await Promise.all([app.rollouts.tick(), app2.rollouts.tick()]);
    await app2.close();
    expect(halts()).toBe(before + 1);
    const halted = manifestOf(gh)!;
    expect(halted.phase).toBe('halted');
    expect(halted.reasons.map((r) => r.host)).toEqual(['kestrel', 'tern']);
    expect(halted.reasons[0]!.reason).toMatch(/^TIMED_OUT: no attestation of/);
    const c4 = addCommit(f, gh, { 'home/dot_rollout-note': 'fourth\n' }, { onMain: true });
    const from = gh.requests.length;
    await deliver(app, 'push', pushPayload(c3, c4));
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    // Everything this push cost: the heads, the tree, the plan's commit, and the views with the dashboard.
    expect(gh.requests.slice(from).map((r) => r.replace(/[0-9a-f]{40}/, 'SHA'))).toEqual([
      'GRAPHQL heads',
      `GET /repos/${OWNER}/${REPO}/tarball/SHA`,
      `GET /${OWNER}/${REPO}/legacy.tar.gz/SHA`,
      'GRAPHQL createCommitOnBranch',
      'GRAPHQL updateIssue+createCheckRun+createDeployment',
    ]);
    const next = manifestOf(gh)!;
    expect(next.supersedes).toBe(halted.id);
    expect(next.sequence).toBe(halted.sequence + 1);
    expect(next.previous).toBe(c3);
  });

  it('a push plans from the state head its read of the heads saw; when another writer moved the branch since, the plan lands on top and keeps that commit', async () => {
    const before = manifestOf(gh)!;
    const c5 = addCommit(f, gh, { 'home/dot_rollout-note': 'fifth\n' }, { onMain: true });
    let moved = '';
    gh.beforeCommit = (branch) => {
      // Once, right after the push's read of the heads: another writer's commit lands first.
      if (!moved && branch === 'dotfleet/state') moved = gh.pushCommit(branch, { 'notes/other-writer': 'kept\n' });
    };
    const commits = () => gh.requests.filter((r) => r === 'GRAPHQL createCommitOnBranch').length;
    const refReads = () => gh.requests.filter((r) => r.startsWith('GET') && r.includes('/git/ref/heads/dotfleet')).length;
    const [c0, r0] = [commits(), refReads()];
    await deliver(app, 'push', pushPayload(f.main, c5));
    gh.beforeCommit = undefined;
    const m = manifestOf(gh)!;
    expect([m.target.commit, m.sequence, m.supersedes]).toEqual([c5, before.sequence + 1, before.id]);
    // The first try used the head the heads read saw and lost the compare-and-swap; the second read the branch.
    expect(commits() - c0).toBe(2);
    expect(refReads() - r0).toBe(1);
    expect(moved).not.toBe('');
    expect(gh.history('dotfleet/state').some((c) => c.message === 'someone else')).toBe(true);
    expect(gh.filesAt('dotfleet/state')!.get('notes/other-writer')!.toString()).toBe('kept\n');
    expect(gh.unhandled).toEqual([]);
  });

  it('a merge whose fleet does not load plans nothing: a failing check run names the file, and the manifest stays as it was', async () => {
    const before = manifestOf(gh)!;
    const broken = addCommit(f, gh, { 'fleet/hosts.toml': '[hosts.kestrel\npreset = \n' }, { onMain: true });
    await deliver(app, 'push', pushPayload(f.main, broken));
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    const run = gh.checkRuns.find((r) => r.head_sha === broken && r.name === 'dotfleet/rollout')!;
    expect(run).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(run.output.title).toBe('No rollout: the fleet does not load');
    expect(run.output.summary).toContain('fleet/hosts.toml');
    expect(manifestOf(gh)).toEqual(before);
    gh.branches.set('main', before.target.commit);
  });
});

describe('a target that must be signed', () => {
  const f = intakeFleet([appSigner]);
  const held = appForFile(f, {}, undefined, { signingKey: appKey.parsed! });

  it('an unsigned target is BLOCKED with the reason; one signed with an allowed SSH key (git gpg.format=ssh) runs', async () => {
    const { gh, app } = held;
    const c1 = addCommit(f, gh, { 'home/dot_signed': 'one\n', '.github/dotfleet.yml': 'require_signed_target: true\n' }, { onMain: true });
    gh.pullsFor.set(c1, [5]);
    await deliver(app, 'push', pushPayload(f.main, c1));
    const m = manifestOf(gh)!;
    expect(m.phase).toBe('blocked');
    expect(m.reasons[0]!.reason).toMatch(/is not signed, and require_signed_target is set/);
    await app.rollouts.for({ owner: OWNER, repo: REPO }).settle();
    expect(gh.comments.find((c) => c.issue === 5)!.body).toMatch(/rollout is blocked/);

    // The owner signs the next merge with an SSH key allowed_signers lets sign commits.
    const owner = newKey(dir, 'owner');
    const signers = `${f.allowedSigners}owner@example.org namespaces="git" ${owner.publicKey}\n`;
    const g = (...args: string[]) => execFileSync('git', ['-C', f.repo, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    g('checkout', '-q', '--detach', c1);
    writeFileSync(join(f.repo, 'fleet', 'allowed_signers'), signers);
    writeFileSync(join(f.repo, 'home', 'dot_signed'), 'two\n');
    g('add', '-A');
    g('-c', 'gpg.format=ssh', '-c', `user.signingkey=${owner.path}`, '-c', 'user.name=Owner', '-c', 'user.email=owner@example.org', 'commit', '-q', '-S', '-m', 'signed merge');
    const c2 = g('rev-parse', 'HEAD').trim();
    g('checkout', '-q', 'main');
    gh.tarballs.set(c2, tarball(f.repo, c2));
    gh.branches.set('main', c2);
    const raw = g('cat-file', 'commit', c2).split('\n');
    const s = raw.findIndex((l) => l.startsWith('gpgsig '));
    let e = s + 1;
    while (raw[e]!.startsWith(' ')) e++;
    gh.signatures.set(c2, {
      verification: { verified: true, reason: 'valid', signature: [raw[s]!.slice(7), ...raw.slice(s + 1, e).map((l) => l.slice(1))].join('\n') + '\n', payload: [...raw.slice(0, s), ...raw.slice(e)].join('\n') },
      committer: { name: 'Owner', email: 'owner@example.org', date: new Date().toISOString() },
    });
    await deliver(app, 'push', pushPayload(c1, c2));
    const signed2 = manifestOf(gh)!;
    expect(signed2.target.signature).toMatchObject({ kind: 'ssh', detail: expect.stringContaining('owner@example.org') });
    // The signature came with the heads (GraphQL), not from a request of its own.
    expect(gh.requests.filter((r) => r.includes(`/git/commits/${c2}`))).toEqual([]);
    expect(signed2.phase).toBe('running');
    expect(signed2.previous).toBe(f.main); // a blocked rollout never became the target
    expect(gh.unhandled).toEqual([]);
  });
});

describe("the app's signing key and tick settings", () => {
  it('a key that cannot be read or parsed is a clear start-up error naming DOTFLEET_SIGNING_KEY, never the key text', () => {
    expect(() => signingKeyFromEnv('/nonexistent/key')).toThrow(/^DOTFLEET_SIGNING_KEY: cannot read \/nonexistent\/key: ENOENT/);
    const garbage = '-----BEGIN OPENSSH PRIVATE KEY-----\\nc2VjcmV0LWtleS1tYXRlcmlhbA==\\n-----END OPENSSH PRIVATE KEY-----';
    let message = '';
    try {
      signingKeyFromEnv(garbage);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^DOTFLEET_SIGNING_KEY: .*malformed OpenSSH private key/);
    expect(message).not.toContain('c2VjcmV0');
    expect(signingKeyFromEnv(readFileSync(appKey.path, 'utf8').replace(/\n/g, '\\n'))!.public.blob).toEqual(appKey.parsed!.public.blob);
    expect(signingKeyFromEnv(appKey.path)!.public.blob).toEqual(appKey.parsed!.public.blob);
    expect(signingKeyFromEnv('')).toBeUndefined();
  });

  it('a tick interval that is not a number stops the start with its name, instead of polling GitHub every millisecond', async () => {
    process.env.DOTFLEET_ROLLOUT_TICK_SECONDS = 'often';
    try {
      await expect(startApp({}, {}, { app: { rolloutTickMs: undefined } })).rejects.toThrow('DOTFLEET_ROLLOUT_TICK_SECONDS must be a number, got "often"');
    } finally {
      delete process.env.DOTFLEET_ROLLOUT_TICK_SECONDS;
    }
  });
});
