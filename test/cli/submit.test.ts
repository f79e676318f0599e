/**
 * The host's side of intake, end to end: `dotfleet attest --submit` against the running app (GitHub
 * stood in behind nock), the outbox, and `dotfleet fleet status` / `dotfleet fleet` reading the state
 * branch from a local clone.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { planRollout } from '../../src/core/rollout/plan.js';
import { serialiseManifest } from '../../src/core/rollout/manifest.js';
import { DEFAULT_SETTINGS } from '../../src/core/settings.js';
import { parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';
import { git, PROJECT_ROOT } from '../helpers/fleet.js';
import { appForFile, intakeFleet } from '../helpers/intake.js';
import { newKey, scratchDir } from '../helpers/ssh.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
/** Asynchronous: the app answering it runs in this process. */
const dotfleet = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 70) : 0, stdout, stderr }));
  });

const dir = scratchDir();
const kestrel = newKey(dir, 'kestrel');
const stranger = newKey(dir, 'stranger');
const fleet = intakeFleet([`kestrel namespaces="dotfleet-attestation" ${kestrel.publicKey}`]);
const state = join(dir, 'state');
const outbox = join(state, 'outbox');
const attest = (url: string, key = kestrel.path, extra: string[] = []) =>
  dotfleet(['attest', '--repo', fleet.repo, '--ref', 'main', '--host', 'kestrel', '--key', key, '--state-dir', state, '--submit', url, '--github-repo', 'Codertocat/Hello-World', ...extra]);

const running = appForFile(fleet);

describe('dotfleet attest --submit', () => {
  it('sends the attestation, and removes it from the outbox once the app has committed it', async () => {
    const r = await attest(running.app.url);
    expect(r.stderr).toMatch(/^dotfleet: no apply of \w+ is recorded in .*: the attestation claims no drift .*\n$/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kestrel-000001\.json: recorded as attestations\/kestrel\/\S+-000001\.json in [0-9a-f]{12}\n$/);
    expect(readdirSync(outbox)).toEqual([]);
    const st = JSON.parse(running.gh.filesAt('dotfleet/state')!.get('fleet.json')!.toString());
    // The CLI's render hash is the app's own: verified.
    expect(st.hosts.kestrel).toMatchObject({ sequence: 1, render: 'match', appliedCommit: fleet.main });
  });

  it('keeps it in the outbox while the app cannot be reached, and sends the older one first next time', async () => {
    const down = await attest('http://127.0.0.1:9', kestrel.path, ['--submit-timeout', '0']);
    expect(down.code).toBe(4);
    expect(down.stderr).toContain('not acknowledged (HTTP 0 network)');
    expect(down.stderr).toContain(`stays in ${outbox}`);
    expect(readdirSync(outbox).sort()).toEqual(['kestrel-000002.json', 'kestrel-000002.json.sig']);
    const up = await attest(running.app.url);
    expect(up.code).toBe(0);
    expect(up.stdout.split('\n').filter(Boolean).map((l) => l.split(':')[0])).toEqual(['kestrel-000002.json', 'kestrel-000003.json']);
    expect(readdirSync(outbox)).toEqual([]);
  });

  it('gives up on an app that accepts the connection and never answers, within --submit-timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const r = await attest(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, kestrel.path, ['--submit-timeout', '2']);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('not acknowledged (HTTP 0 timeout): no answer within 2 s');
      expect(readdirSync(outbox).filter((f) => f.endsWith('.json'))).toHaveLength(1);
      // Sent later, when the app answers.
      expect((await attest(running.app.url)).code).toBe(0);
      expect(readdirSync(outbox)).toEqual([]);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('refuses a --submit that is not a URL before signing anything', async () => {
    const r = await attest('dotfleet.example.org');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dotfleet: error: --submit needs the app\'s URL, got "dotfleet.example.org"\n  hint: e.g. --submit https://dotfleet.example.org\n');
    expect(readdirSync(outbox)).toEqual([]);
  });

  it('sets a refused attestation aside (not lost, not resent) and says why', async () => {
    const r = await attest(running.app.url, stranger.path);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refused (HTTP 401 unknown-key)');
    expect(existsSync(join(outbox, 'refused', 'kestrel-000006.json'))).toBe(true);
    expect(readdirSync(outbox)).toEqual(['refused']);
  });
});

describe('dotfleet fleet status and dotfleet fleet', () => {
  it('prints the status line and the table from the state branch', async () => {
    // A clone that has fetched the state branch the app wrote.
    const work = join(dir, 'state-work');
    mkdirSync(work, { recursive: true });
    for (const [p, c] of running.gh.filesAt('dotfleet/state')!) {
      mkdirSync(join(work, p, '..'), { recursive: true });
      writeFileSync(join(work, p), c);
    }
    git(fleet.repo, '--work-tree', work, 'checkout', '-q', '--orphan', 'dotfleet/state');
    git(fleet.repo, '--work-tree', work, 'add', '-A');
    git(fleet.repo, '--work-tree', work, 'commit', '-qm', 'state');
    git(fleet.repo, 'checkout', '-q', '-f', 'main');

    const r = await dotfleet(['fleet', 'status', '--repo', fleet.repo]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('FLEET STATUS: 1/12 aligned; no drift');
    expect(r.stdout).toContain('  Host     Git SHA');
    expect(r.stdout).toMatch(/✓ kestrel +[0-9a-f]{7} +matches +yes +none +yes +\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    expect(r.stdout).toMatch(/✗ atlas +— +— +— +— +— +never/);
    expect((await dotfleet(['fleet', 'status', '--repo', fleet.repo, '--exit-code'])).code).toBe(1);
    const json = JSON.parse((await dotfleet(['fleet', 'status', '--repo', fleet.repo, '--json'])).stdout);
    expect(json).toMatchObject({ line: 'FLEET STATUS: 1/12 aligned; no drift', aligned: 1, total: 12 });

    // Every committed attestation verifies again from the clone, against main's allowed_signers.
    const verified = await dotfleet(['verify', '--repo', fleet.repo, '--ref', 'dotfleet/state', '--trust-ref', 'main']);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('kestrel');

    // An error printed about the trust file makes the exit code say so, even when the verdicts are good.
    const trust = join(dir, 'allowed_signers-with-error');
    writeFileSync(trust, `${fleet.allowedSigners}kestrel namespaces=dotfleet-attestation ${kestrel.publicKey}\n`);
    const flagged = await dotfleet(['verify', '--repo', fleet.repo, '--ref', 'dotfleet/state', '--allowed-signers', trust]);
    expect(flagged.stderr).toMatch(/^dotfleet: error: .*allowed_signers-with-error:\d+: /m);
    expect(flagged.code).toBe(2);

    const hosts = await dotfleet(['fleet', '--repo', fleet.repo]);
    expect(hosts.code).toBe(0);
    expect(hosts.stdout.split('\n')[0]).toMatch(/^HOST +MACHINE +PLATFORM +WAVE +LAST SEEN$/);
    expect(hosts.stdout).toMatch(/kestrel +\S+ +\S+ +1 +\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    expect(hosts.stdout).toMatch(/atlas +\S+ +\S+ +\d +never/);
  });

  it("under a rollout, each host's target is the rollout's: a host its wave holds back is on target where it is", async () => {
    const head = git(fleet.repo, 'rev-parse', 'main').trim();
    const next = 'c'.repeat(40);
    const hosts = [{ name: 'kestrel', wave: 1, principal: 'kestrel' }, { name: 'atlas', wave: 2, principal: 'atlas' }];
    const plan = (kestrelWave: number) => {
      const m = planRollout({
        repository: 'github.com/o/r', branch: 'main', target: next, previous: head,
        before: { kestrel: { hash: 'sha256:' + '0'.repeat(64) }, atlas: { hash: 'sha256:' + '0'.repeat(64) } },
        after: { kestrel: { hash: 'sha256:' + '1'.repeat(64) }, atlas: { hash: 'sha256:' + '1'.repeat(64) } },
        hosts: hosts.map((h) => ({ ...h, wave: h.name === 'kestrel' ? kestrelWave : 3 - kestrelWave })), settings: DEFAULT_SETTINGS, signature: { kind: 'none', detail: '' },
        signers: parseAllowedSigners(`kestrel namespaces="dotfleet-attestation" ${kestrel.publicKey}\natlas namespaces="dotfleet-attestation" ${kestrel.publicKey}\n`), lastSequence: 0, now: new Date(),
      }).manifest;
      const work = join(dir, `state-rollout-${kestrelWave}`);
      git(fleet.repo, 'worktree', 'add', '-q', '--detach', work, 'dotfleet/state');
      mkdirSync(join(work, 'rollout'), { recursive: true });
      writeFileSync(join(work, 'rollout', 'current.json'), serialiseManifest(m));
      git(work, 'add', '-A');
      git(work, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-qm', 'rollout');
      git(fleet.repo, 'branch', '-f', `rollout-${kestrelWave}`, git(work, 'rev-parse', 'HEAD').trim());
      return m;
    };
    // kestrel in wave 1, which is open: its target is the new commit, so it is behind.
    const open = plan(1);
    let r = await dotfleet(['fleet', 'status', '--repo', fleet.repo, '--branch', 'rollout-1']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout.split('\n')[0]).toBe('FLEET STATUS: 0/12 aligned; no drift');
    expect(r.stdout).toContain(`rollout ${open.id} of ${next.slice(0, 12)}: running, wave 1/2 (each host's target is the rollout's)`);
    expect(r.stdout).toMatch(/✗ kestrel +[0-9a-f]{7} \(not target\)/);
    // kestrel in wave 2, not open yet: it stays where it is, and that is its target.
    plan(2);
    r = await dotfleet(['fleet', 'status', '--repo', fleet.repo, '--branch', 'rollout-2']);
    expect(r.stdout.split('\n')[0]).toBe('FLEET STATUS: 1/12 aligned; no drift');
    expect(r.stdout).toMatch(/✓ kestrel +[0-9a-f]{7} +matches/);
  });

  it('says how to get the state branch when the clone does not have it', async () => {
    const r = await dotfleet(['fleet', 'status', '--repo', fleet.repo, '--branch', 'nope/state']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no fleet.json on the state branch "nope/state"');
    expect(r.stderr).toContain('git fetch origin nope/state');
  });
});
