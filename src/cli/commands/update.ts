/**
 * `dotfleet update`: bring this host to the fleet's default branch and prove it. An isolated
 * clone under the state directory (fetch and hard reset; never the user's working copy), apply,
 * then validate (no drift, tools as fleet/policy.toml requires, the host's own tests); a failed
 * validation is rolled back at once. Then an attestation with the real drift, tools and test
 * results, signed, into the outbox, and sent when --submit is given. An update cut off before it
 * was validated is rolled back at the next start (docs/host.md).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { computeDrift, type DriftItem } from '../../core/drift.js';
import { serialise, statement, type Predicate } from '../../core/attestation/format.js';
import { policyHash } from '../../core/attestation/policy.js';
import { renderHash } from '../../core/render-hash.js';
import { runGit } from '../../host/git.js';
import { Home, HostState, openTarget } from '../../host/home.js';
import { defaultStateDir, lastSequence, saveSequence } from '../../host/state.js';
import { Outbox } from '../../host/submit.js';
import { runHostTests } from '../../host/tests.js';
import { rolloutGate } from '../../host/rollout.js';
import { EXIT, write } from '../io.js';
import { applyHost, driftOf, openHost } from './apply.js';
import { AGENT_VERSION, githubRepo, issuedNow, readKeyFile, repositoryName, sendTo, signAttestation, submitTo, toolResults } from './attest.js';

export interface UpdateOptions {
  source: string;
  branch?: string;
  host: string;
  target: string;
  stateDir: string;
  key?: string;
  submit?: string;
  githubRepo?: string;
  submitTimeout: string;
  testTimeout: string;
  /** Follow the default branch's head even when a rollout manifest exists (commander: --no-rollout). */
  rollout?: boolean;
}

async function git(cwd: string, args: string[], what: string): Promise<string> {
  const r = await runGit(cwd, args);
  if (r.code !== 0) throw new DotfleetError('git', `${what} failed: ${r.stderr.trim().split('\n')[0] ?? ''}`, { file: cwd, hint: 'check --source (a URL or path git can fetch) and the network' });
  return r.stdout.toString('utf8').trim();
}

/** The isolated clone at the branch's newest commit (fetch, then a hard reset and a clean). */
export async function syncCheckout(checkout: string, source: string, branch?: string): Promise<string> {
  const have = await runGit(checkout, ['rev-parse', '--git-dir']).catch(() => undefined);
  if (!have || have.code !== 0 || resolve(checkout, have.stdout.toString('utf8').trim()) !== join(resolve(checkout), '.git')) {
    await rm(checkout, { recursive: true, force: true });
    await mkdir(checkout, { recursive: true });
    await git(checkout, ['init', '-q'], 'making the checkout');
  }
  await git(checkout, ['remote', 'remove', 'origin'], 'resetting the remote').catch(() => undefined);
  await git(checkout, ['remote', 'add', 'origin', source], 'setting the remote');
  await git(checkout, ['fetch', '-q', '--prune', 'origin', '+refs/heads/*:refs/remotes/origin/*'], `fetching ${source}`);
  let name = branch;
  if (!name) {
    // The remote's default branch (its HEAD).
    const head = await git(checkout, ['ls-remote', '--symref', 'origin', 'HEAD'], `asking ${source} for its default branch`);
    name = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(head)?.[1];
    if (!name) throw new DotfleetError('usage', `${source} does not say which branch is its default`, { hint: 'pass --branch' });
  }
  const commit = await git(checkout, ['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${name}^{commit}`], `finding the branch ${name}`).catch(() => {
    throw new DotfleetError('usage', `${source} has no branch ${name}`, { hint: 'pass --branch with a branch that exists' });
  });
  await checkoutCommit(checkout, commit);
  return commit;
}

/** The isolated clone at exactly `commit`, nothing else in its working tree. */
async function checkoutCommit(checkout: string, commit: string): Promise<void> {
  await git(checkout, ['-c', 'advice.detachedHead=false', 'checkout', '-q', '--force', '--detach', commit], 'checking out');
  await git(checkout, ['reset', '-q', '--hard', commit], 'resetting');
  await git(checkout, ['clean', '-q', '-ffdx'], 'cleaning');
}

/** One line per reason an update failed validation. */
function reasons(drift: DriftItem[], tools: Predicate['tools'], tests: Predicate['tests']): string[] {
  return [
    ...tests.filter((t) => t.status === 'fail').map((t) => `test ${t.name} failed${t.output ? `: ${t.output.trim().split('\n').pop()}` : ''}`),
    ...tools.filter((t) => !t.ok).map((t) => `tool ${t.name} ${t.version ?? 'missing'} does not meet ${t.requirement}`),
    ...drift.map((d) => `${d.path}: ${d.type} after the apply (${d.detail})`),
  ];
}

export interface UpdateResult {
  code: number;
  commit: string;
  outcome: 'up-to-date' | 'updated' | 'failed' | 'waiting';
}

/** One update, start to end (the agent runs it on every poll that finds work). */
export async function runUpdate(opts: UpdateOptions): Promise<UpdateResult> {
  const testTimeout = Number(opts.testTimeout);
  if (!Number.isFinite(testTimeout) || testTimeout <= 0) throw new DotfleetError('usage', `--test-timeout must be a number of seconds, got ${opts.testTimeout}`);
  const say = (l: string) => process.stderr.write(`dotfleet: ${l}\n`);
  if (opts.key) await readKeyFile(opts.key);
  const state = new HostState(opts.stateDir, opts.host);
  const home = new Home(await openTarget(opts.target));
  // An update cut off after its apply and before its validation is undone first.
  const journal = join(state.dir, 'update.json');
  const unfinished = await readFile(journal, 'utf8').then((t) => JSON.parse(t) as { snapshot: string | null; commit: string }, () => undefined);
  if (unfinished) {
    await state.recover(home);
    const record = await state.record();
    const snap = (await state.snapshots()).find((m) => m.id === unfinished.snapshot);
    if (snap && record?.snapshot === snap.id) {
      await state.restore(home, snap);
      await state.dropSnapshot(snap.id);
      say(`an update to ${unfinished.commit.slice(0, 12)} was cut off before it was validated: rolled back`);
    }
    await rm(journal, { force: true });
  }

  const checkout = join(state.dir, 'checkout');
  const head = await syncCheckout(checkout, opts.source, opts.branch);
  let commit = head;
  let rolloutTarget: string | null = null;
  let planned: { id: string; renderHash: string } | undefined;
  if (opts.rollout !== false) {
    const gh = await githubRepo({ githubRepo: opts.githubRepo }, checkout).catch(() => undefined);
    const gate = await rolloutGate(checkout, { host: opts.host, stateDir: opts.stateDir, repository: gh ? `github.com/${gh.owner}/${gh.repo}` : undefined, now: new Date() });
    if (gate.kind === 'refuse') {
      say(gate.message);
      say('nothing was changed');
      return { code: EXIT.refused, commit: head, outcome: 'waiting' };
    }
    if (gate.kind === 'wait') {
      write(gate.message);
      return { code: EXIT.ok, commit: head, outcome: 'waiting' };
    }
    if (gate.kind === 'go') {
      write(gate.note);
      commit = gate.commit;
      rolloutTarget = commit;
      const entry = gate.manifest.hosts[opts.host];
      if (entry?.renderHash) planned = { id: gate.manifest.id, renderHash: entry.renderHash };
      if (commit !== head) await checkoutCommit(checkout, commit);
    }
  }
  const h = await openHost({ repo: checkout, ref: commit, host: opts.host, target: opts.target, stateDir: opts.stateDir }, say);

  const hash = renderHash(h.tree);
  // The rollout planned this host's render at the target: anything else (another dotfleet
  // version, a checkout changed by hand) is not what was reviewed and released.
  if (planned && planned.renderHash !== hash) {
    say(`rollout ${planned.id} planned the render ${planned.renderHash} for ${h.host.name} at ${commit.slice(0, 12)}, but this host renders ${hash} (another dotfleet version than the app's, ${AGENT_VERSION} here?)`);
    say('nothing was changed');
    return { code: EXIT.refused, commit, outcome: 'waiting' };
  }
  const before = await driftOf(h);
  if (h.record?.commit === commit && h.record.renderHash === hash && before.length === 0) {
    write(`up to date: ${h.home.root} is as ${commit.slice(0, 12)} renders it for ${h.host.name}`);
    return { code: EXIT.ok, commit, outcome: 'up-to-date' };
  }

  await mkdir(state.dir, { recursive: true });
  await writeFile(journal, JSON.stringify({ commit, snapshot: null, startedAt: new Date().toISOString() }) + '\n');
  const applied = await applyHost(h, { log: (l) => write(l) });
  let drift: DriftItem[];
  let failures: string[];
  let tools: Predicate['tools'] = [];
  let tests: Predicate['tests'] = [];
  if ('refused' in applied) {
    drift = before;
    failures = applied.refused.map((r) => `${r.path} ${r.why}`);
  } else {
    await writeFile(journal, JSON.stringify({ commit, snapshot: applied.snapshot, startedAt: new Date().toISOString() }) + '\n');
    drift = computeDrift(h.desired, applied.record, await h.home.observeAll(new Set([...h.desired.keys(), ...Object.keys(applied.record.entries)])));
    tools = toolResults(h.fleet.tree);
    tests = await runHostTests(checkout, h.host.name, h.home.root, testTimeout * 1000);
    failures = reasons(drift, tools, tests);
    if (failures.length > 0 && applied.snapshot) {
      const snap = (await state.snapshots()).find((m) => m.id === applied.snapshot)!;
      await state.restore(home, snap);
      await state.dropSnapshot(snap.id);
    }
  }
  await rm(journal, { force: true });
  const ok = failures.length === 0;
  let exit: number = EXIT.ok;
  if (ok) write(`updated ${h.home.root} to ${commit.slice(0, 12)}: no drift, ${tools.filter((t) => t.requirement).length} tool requirement(s) met, ${tests.filter((t) => t.status === 'pass').length} of ${tests.length} host test(s) passed`);
  else {
    for (const f of failures) say(f);
    say(`the update to ${commit.slice(0, 12)} failed${'refused' in applied ? ' (nothing was written)' : ' validation and was rolled back'}`);
  }

  if (opts.key) {
    const sequence = (await lastSequence(opts.stateDir, h.host.name)) + 1;
    const predicate: Predicate = {
      host: h.host.name,
      appliedCommit: commit,
      rolloutTarget,
      renderHash: hash,
      policyHash: policyHash(h.fleet.tree, h.host.name),
      tools: tools.length > 0 ? tools : toolResults(h.fleet.tree),
      drift: drift.map((d) => ({ path: d.path, type: d.type })),
      tests,
      status: ok ? 'SUCCESS' : 'FAILED',
      agentVersion: AGENT_VERSION,
      sequence,
      issuedAt: issuedNow(),
    };
    const payload = serialise(statement(await repositoryName({ githubRepo: opts.githubRepo }, checkout), predicate));
    const signature = await signAttestation(opts.key, payload);
    await saveSequence(opts.stateDir, h.host.name, sequence);
    const name = `${h.host.name}-${String(sequence).padStart(6, '0')}.json`;
    const outbox = new Outbox(join(opts.stateDir, 'outbox'), h.host.name);
    const file = await outbox.put(name, payload, signature);
    write(`attested ${predicate.status}: ${file} (+ .sig), sequence ${sequence}`);
    if (opts.submit) {
      const to = await submitTo(opts.submit, { githubRepo: opts.githubRepo }, checkout, h.host.name, h.fleet.settings.state_branch);
      const code = await sendTo(outbox, to, Number(opts.submitTimeout));
      if (code !== EXIT.ok) process.exitCode = code;
    }
  }
  return { code: ok ? exit : EXIT.failed, commit, outcome: ok ? 'updated' : 'failed' };
}

/** The options of update, which the agent shares. */
export const updateOptions = (c: Command): Command =>
  c
    .requiredOption('--source <url>', 'the fleet repository to fetch (a URL or path git can fetch)')
    .option('--branch <name>', "the branch to follow (default: the repository's default branch)")
    .requiredOption('--host <name>', 'this host')
    .option('--target <dir>', 'the home directory', homedir())
    .option('--state-dir <dir>', 'where the checkout, the record, the snapshots and the outbox are kept', defaultStateDir())
    .option('--key <file>', "the host's SSH key: sign an attestation of each result")
    .option('--submit <url>', 'send attestations to the dotfleet app at this URL, or with `git` (`git:REMOTE`) push them to incoming/ on the state branch for the Action (each waits in the outbox until then)')
    .option('--github-repo <owner/repo>', 'the fleet repository on GitHub (default: from --source)')
    .option('--submit-timeout <seconds>', 'keep retrying this long before leaving it in the outbox', '600')
    .option('--test-timeout <seconds>', "each host test's time limit", '60')
    .option('--no-rollout', "follow the branch's head even when the state branch has a rollout manifest (by default the host goes to the manifest's target when its wave is open)");

export function updateCommand(program: Command): void {
  updateOptions(program.command('update').description("bring this host to the fleet's target (the signed rollout manifest's, when its wave is open; else the default branch's head): isolated clone, apply, validate (drift, tools, host tests), roll back on failure, attest"))
    .action(async (opts: UpdateOptions) => {
      const r = await runUpdate(opts);
      if (r.code !== EXIT.ok) process.exitCode = r.code;
    });
}
