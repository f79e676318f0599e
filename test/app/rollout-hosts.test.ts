/**
 * A rollout end to end with real hosts: the app (with GitHub stood in) plans a signed manifest;
 * real `dotfleet update` processes, each with its own temporary home and ssh-keygen key, read it
 * from the state branch of a real git remote, wait for their wave or go, apply, attest, and their
 * attestations open the next wave and complete the rollout. A manifest changed by one byte is
 * refused by the host.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANIFEST_PATH, MANIFEST_SIG_PATH, parseManifest, ROLLOUT_NAMESPACE, serialiseManifest, signManifest, type Manifest } from '../../src/core/rollout/manifest.js';
import type { GitHubStandIn } from '../../src/github/standin.js';
import { expectedCommit } from '../../src/core/rollout/state.js';
import { commit, git, gitRepo, miniFleet, PROJECT_ROOT } from '../helpers/fleet.js';
import { OWNER, pushPayload, REPO, tarball } from '../helpers/github.js';
import { appForFile, type IntakeFleet } from '../helpers/intake.js';
import { until } from '../helpers/wait.js';
import { newKey, scratchDir } from '../helpers/ssh.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');

/** The CLI as a child process (asynchronously: the app answers its submissions in this process). */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The stand-in's state branch, copied into the real remote the hosts fetch from. */
function mirrorState(gh: GitHubStandIn, repo: string, change?: (files: Map<string, Buffer>) => void): void {
  const files = new Map(gh.filesAt('dotfleet/state')!);
  change?.(files);
  const env = { ...process.env, GIT_INDEX_FILE: join(mkdtempSync(join(tmpdir(), 'dotfleet-index-')), 'index') };
  const g = (args: string[], input?: Buffer) => execFileSync('git', ['-C', repo, ...args], { env, input, stdio: ['pipe', 'pipe', 'pipe'] }).toString().trim();
  g(['read-tree', '--empty']);
  for (const [path, bytes] of files) g(['update-index', '--add', '--cacheinfo', `100644,${g(['hash-object', '-w', '--stdin'], bytes)},${path}`]);
  const tree = g(['write-tree']);
  g(['update-ref', 'refs/heads/dotfleet/state', g(['commit-tree', tree, '-m', 'state'])]);
}


describe('real hosts follow a rollout', () => {
  const keys = scratchDir();
  const hosts = ['alpha', 'beta', 'gamma'];
  const hostKeys = new Map(hosts.map((h) => [h, newKey(keys, h)]));
  const appKey = newKey(keys, 'app');
  const allowedSigners = [...hosts.map((h) => `${h} namespaces="dotfleet-attestation" ${hostKeys.get(h)!.publicKey}`), `dotfleet-rollout namespaces="${ROLLOUT_NAMESPACE}" ${appKey.publicKey}`].join('\n') + '\n';
  const inventory = hosts.map((h, i) => `[hosts.${h}]\nmachine = "${i === 0 ? 'laptop' : 'server'}"\nplatform = "linux"\nwave = ${i === 0 ? 1 : 2}\n`).join('\n');
  const tree = new Map([...miniFleet({ hosts: inventory, files: { 'dot_profile.hbs': 'export WM={{hw.wm}}\n# v1\n' } }), ['fleet/allowed_signers', Buffer.from(allowedSigners)]]);
  const repo = gitRepo(tree);
  const main0 = git(repo, 'rev-parse', 'HEAD').trim();
  const f = { repo, main: main0, keys: new Map(), hosts, allowedSigners, renderHashes: new Map(), policyHashes: new Map() } as unknown as IntakeFleet;
  const homes = new Map(hosts.map((h) => [h, mkdtempSync(join(tmpdir(), `dotfleet-home-${h}-`))]));
  const states = new Map(hosts.map((h) => [h, mkdtempSync(join(tmpdir(), `dotfleet-state-${h}-`))]));
  const held = appForFile(f, {}, undefined, { signingKey: appKey.parsed! });
  const update = (h: string) =>
    run(['update', '--source', repo, '--host', h, '--target', homes.get(h)!, '--state-dir', states.get(h)!, '--key', hostKeys.get(h)!.path, '--submit', held.app.url, '--github-repo', `${OWNER}/${REPO}`, '--submit-timeout', '20']);
  const manifest = (): Manifest | undefined => {
    const b = held.gh.filesAt('dotfleet/state')?.get(MANIFEST_PATH);
    return b ? parseManifest(b) : undefined;
  };

  it('before any rollout, each host follows the default branch and attests it', async () => {
    for (const h of hosts) {
      const r = await update(h);
      expect(r.stdout).toMatch(/recorded as attestations\//);
      expect(r.code).toBe(0);
    }
    expect(JSON.parse(held.gh.filesAt('dotfleet/state')!.get('fleet.json')!.toString()).target.commit).toBe(main0);
  });

  it('a merge: the canary goes, the others wait for their wave; its attestation opens wave 2; theirs complete the rollout', async () => {
    const c1 = commit(repo, { 'home/dot_profile.hbs': 'export WM={{hw.wm}}\n# v2\n' }, 'v2');
    held.gh.tarballs.set(c1, tarball(repo, c1));
    held.gh.branches.set('main', c1);
    await held.app.probot.receive({ id: 'push-1', name: 'push', payload: pushPayload(main0, c1) } as never);
    expect(manifest()).toMatchObject({ phase: 'running', wave: 1, target: { commit: c1 } });
    mirrorState(held.gh, repo);

    const waiting = await update('beta');
    expect(waiting.code).toBe(0);
    expect(waiting.stdout).toMatch(/waiting for wave 2 \(wave 1 of 2 is open\)/);
    expect(readFileSync(join(homes.get('beta')!, '.profile'), 'utf8')).toContain('# v1');
    // The fleet status expects what the gate decided: beta where it was, alpha at the target.
    expect([expectedCommit(manifest()!, 'beta'), expectedCommit(manifest()!, 'alpha')]).toEqual([main0, c1]);

    const canary = await update('alpha');
    expect(canary.code).toBe(0);
    expect(canary.stdout).toMatch(/wave 1 is open; going to/);
    expect(readFileSync(join(homes.get('alpha')!, '.profile'), 'utf8')).toBe('export WM=aerospace\n# v2\n');
    await until('wave 2', () => manifest()?.wave === 2);
    mirrorState(held.gh, repo);

    for (const h of ['beta', 'gamma']) {
      const r = await update(h);
      expect(r.code).toBe(0);
      expect(readFileSync(join(homes.get(h)!, '.profile'), 'utf8')).toBe('export WM=none\n# v2\n');
    }
    const done = await until('complete', () => manifest()?.phase === 'complete' && manifest());
    expect(done.log.map((l) => l.action)).toEqual(['plan: 3 of 3 hosts in 2 wave(s)', 'open wave 1', 'open wave 2', 'complete']);
    // Each attestation names the rollout's target.
    const fleet = JSON.parse(held.gh.filesAt('dotfleet/state')!.get('fleet.json')!.toString());
    for (const h of hosts) expect(fleet.hosts[h]).toMatchObject({ appliedCommit: c1, rolloutTarget: c1, render: 'match', status: 'SUCCESS' });
  });

  it('a manifest changed by one byte (its signature kept) is refused: exit 5, nothing changed', async () => {
    mirrorState(held.gh, repo, (files) => files.set(MANIFEST_PATH, Buffer.from(files.get(MANIFEST_PATH)!.toString().replace('"wave": 2', '"wave": 1'))));
    const before = readFileSync(join(homes.get('beta')!, '.profile'), 'utf8');
    writeFileSync(join(homes.get('beta')!, 'marker'), 'x');
    const r = await update('beta');
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/the rollout manifest's signature/);
    expect(r.stderr).toMatch(/nothing was changed/);
    expect(readFileSync(join(homes.get('beta')!, '.profile'), 'utf8')).toBe(before);
  });

  it('a signed manifest that planned another render for this host is refused: exit 5, nothing changed', async () => {
    mirrorState(held.gh, repo, (files) => {
      const m = parseManifest(files.get(MANIFEST_PATH)!);
      m.hosts.beta!.renderHash = 'sha256:' + 'f'.repeat(64);
      const bytes = serialiseManifest(m);
      files.set(MANIFEST_PATH, bytes);
      files.set(MANIFEST_SIG_PATH, Buffer.from(signManifest(bytes, appKey.parsed!)));
    });
    const before = readFileSync(join(homes.get('beta')!, '.profile'), 'utf8');
    const r = await update('beta');
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/rollout r\S+ planned the render sha256:f{64} for beta at [0-9a-f]{12}, but this host renders sha256:[0-9a-f]{64} \(another dotfleet version than the app's, dotfleet\/[\d.]+ here\?\)\ndotfleet: nothing was changed/);
    expect(readFileSync(join(homes.get('beta')!, '.profile'), 'utf8')).toBe(before);
  });

  it('a damaged record of the last manifest followed is refused by name, never taken as "none yet" (replays stay refused)', async () => {
    mirrorState(held.gh, repo);
    const file = join(states.get('beta')!, 'beta', 'rollout.json');
    writeFileSync(file, '{"sequence": "lots"');
    const r = await update('beta');
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`${file} is damaged`);
    rmSync(file);
    expect((await update('beta')).code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).sequence).toBe(manifest()!.sequence);
  });
});

