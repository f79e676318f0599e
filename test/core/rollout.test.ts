/**
 * The rollout core: the manifest (exact bytes, signed so that ssh-keygen verifies it alone), the
 * target's signature (a real git commit signed with gpg.format=ssh), the plan, every transition
 * of the host state machine, the gates and the commands.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, type Settings } from '../../src/core/settings.js';
import { parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';
import { MANIFEST_PATH, parseManifest, serialiseManifest, signManifest, verifyManifest, ROLLOUT_NAMESPACE, type Manifest } from '../../src/core/rollout/manifest.js';
import { planRollout, targetSignature, WEB_FLOW_EMAIL, type PlanInput } from '../../src/core/rollout/plan.js';
import { advance, command, expectedCommit, hostState, hostStates, parseCommand, rolloutView, type HostStateName } from '../../src/core/rollout/state.js';
import type { HostRecord } from '../../src/core/state/fleet-state.js';
import { rolloutCheckboxes, rolloutMarkdown, tickedCommands } from '../../src/core/rollout/report.js';
import { hostRecord } from '../../src/core/state/fleet-state.js';
import { serialise, statement } from '../../src/core/attestation/format.js';
import { marked } from 'marked';
import { fleetMarkdown, fleetStatus } from '../../src/core/state/status.js';
import { hostRecordOf } from '../helpers/records.js';
import { keygenVerify, newKey, scratchDir } from '../helpers/ssh.js';

const T = 'a'.repeat(40);
const P = 'b'.repeat(40);
const T0 = new Date('2026-11-23T10:00:00Z');
const later = (s: number) => new Date(T0.getTime() + s * 1000);
const hash = (c: string) => `sha256:${c.repeat(64)}`;

const dir = scratchDir();
const appKey = newKey(dir, 'app');
const hostKey = newKey(dir, 'host');
const signers = (extra = '') => parseAllowedSigners(`dotfleet-rollout namespaces="${ROLLOUT_NAMESPACE}" ${appKey.publicKey}\n${['a', 'b', 'c', 'd', 'e', 'f'].map((h) => `${h} namespaces="dotfleet-attestation" ${hostKey.publicKey}`).join('\n')}\n${extra}`);

const settings = (over: Partial<Settings['rollout']> = {}, top: Partial<Settings> = {}): Settings => ({ ...DEFAULT_SETTINGS, ...top, rollout: { ...DEFAULT_SETTINGS.rollout, ...over } });

function input(over: Partial<PlanInput> = {}): PlanInput {
  const hosts = ['a', 'b', 'c', 'd', 'e', 'f'].map((name, i) => ({ name, wave: i < 1 ? 1 : i < 3 ? 2 : 3, principal: name }));
  return {
    repository: 'github.com/o/r',
    branch: 'main',
    target: T,
    previous: P,
    before: Object.fromEntries(hosts.map((h) => [h.name, { hash: hash('0') }])),
    after: Object.fromEntries(hosts.map((h) => [h.name, { hash: h.name === 'f' ? hash('0') : hash('1') }])),
    hosts,
    settings: settings(),
    signature: { kind: 'ssh', detail: 'owner' },
    signers: signers(),
    lastSequence: 4,
    now: T0,
    ...over,
  };
}

function record(host: string, over: Partial<HostRecord> = {}, receivedAt = later(60)): HostRecord {
  return hostRecordOf(host, T, { issuedAt: receivedAt.toISOString(), receivedAt: receivedAt.toISOString(), ...over });
}

const states = (m: Manifest, records: Record<string, HostRecord>, now: Date) => Object.fromEntries(hostStates(m, records, now).map((s) => [s.host, s.state]));

describe('the manifest', () => {
  const m = planRollout(input()).manifest;

  it('is the same bytes every time, and reads back as itself', () => {
    const bytes = serialiseManifest(m);
    expect(serialiseManifest(parseManifest(bytes))).toEqual(bytes);
    expect(bytes.toString().endsWith('}\n')).toBe(true);
    // Host order does not change the bytes.
    const shuffled = { ...m, hosts: Object.fromEntries(Object.entries(m.hosts).reverse()) };
    expect(serialiseManifest(shuffled)).toEqual(bytes);
  });

  it('is signed so that ssh-keygen -Y verify accepts it alone, with the documented principal and namespace', () => {
    const bytes = serialiseManifest(m);
    const sig = signManifest(bytes, appKey.parsed!);
    const allowed = `dotfleet-rollout namespaces="${ROLLOUT_NAMESPACE}" ${appKey.publicKey}\n`;
    expect(keygenVerify(dir, allowed, 'dotfleet-rollout', ROLLOUT_NAMESPACE, bytes, sig)).toBe(true);
    expect(keygenVerify(dir, allowed, 'dotfleet-rollout', 'dotfleet-attestation', bytes, sig)).toBe(false);
    expect(verifyManifest(bytes, sig, { signers: signers(), principal: 'dotfleet-rollout', repository: 'github.com/o/r', now: T0 }).ok).toBe(true);
  });

  it('a host refuses a changed byte, another namespace, a host key, another repository, an expired or an older manifest', () => {
    const bytes = serialiseManifest(m);
    const sig = signManifest(bytes, appKey.parsed!);
    const check = { signers: signers(), principal: 'dotfleet-rollout', repository: 'github.com/o/r', now: T0 };
    const tampered = Buffer.from(bytes.toString().replace('"wave": 1', '"wave": 3'));
    expect(verifyManifest(tampered, sig, check)).toMatchObject({ ok: false, code: 'signature' });
    const hostSigned = signManifest(bytes, hostKey.parsed!);
    expect(verifyManifest(bytes, hostSigned, check)).toMatchObject({ ok: false, code: 'signer' });
    expect(verifyManifest(bytes, sig, { ...check, repository: 'github.com/o/other' })).toMatchObject({ ok: false, code: 'repository' });
    expect(verifyManifest(bytes, sig, { ...check, now: later(8 * 86400) })).toMatchObject({ ok: false, code: 'expired' });
    expect(verifyManifest(bytes, sig, { ...check, lastSequence: m.sequence + 1 })).toMatchObject({ ok: false, code: 'sequence' });
    expect(verifyManifest(bytes, sig, { ...check, lastSequence: m.sequence }).ok).toBe(true);
    // The app's key allowed only for attestations cannot sign manifests.
    const narrow = parseAllowedSigners(`dotfleet-rollout namespaces="dotfleet-attestation" ${appKey.publicKey}\n`);
    expect(verifyManifest(bytes, sig, { ...check, signers: narrow })).toMatchObject({ ok: false, code: 'signer' });
  });

  it('a manifest whose waves and host entries disagree is refused by name', () => {
    const bad = structuredClone(m);
    bad.hosts.b!.wave = 3;
    expect(() => parseManifest(serialiseManifest(bad))).toThrow(/wave 2 lists b, whose entry says wave 3/);
    expect(() => parseManifest(Buffer.from('{'))).toThrow(/not JSON/);
  });
});

describe("the target's signature", () => {
  const repo = scratchDir();
  const g = (...args: string[]) => execFileSync('git', args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: repo } }).toString();
  g('init', '-q');
  g('config', 'user.name', 'Owner');
  g('config', 'user.email', 'owner@example.org');
  g('config', 'gpg.format', 'ssh');
  g('config', 'user.signingkey', appKey.path);
  writeFileSync(join(repo, 'f'), 'x\n');
  g('add', 'f');
  g('commit', '-q', '-S', '-m', 'signed');
  // What GitHub returns as verification.payload / .signature: the commit without its gpgsig header, and the header.
  const raw = g('cat-file', 'commit', 'HEAD');
  const lines = raw.split('\n');
  const start = lines.findIndex((l) => l.startsWith('gpgsig '));
  let end = start + 1;
  while (lines[end]!.startsWith(' ')) end++;
  const signature = [lines[start]!.slice('gpgsig '.length), ...lines.slice(start + 1, end).map((l) => l.slice(1))].join('\n') + '\n';
  const payload = [...lines.slice(0, start), ...lines.slice(end)].join('\n');
  const info = { signature, payload, verified: false, reason: 'unknown_key', committer: { name: 'Owner', email: 'owner@example.org', date: new Date().toISOString() } };

  it('an SSH signature by a key allowed_signers lets sign commits is "ssh", as git verify-commit says', () => {
    const allowed = parseAllowedSigners(`owner@example.org namespaces="git" ${appKey.publicKey}\n`);
    expect(targetSignature(info, allowed, T0)).toMatchObject({ kind: 'ssh', detail: expect.stringContaining('owner@example.org') });
    writeFileSync(join(repo, 'allowed'), `owner@example.org namespaces="git" ${appKey.publicKey}\n`);
    expect(() => g('-c', `gpg.ssh.allowedSignersFile=${join(repo, 'allowed')}`, 'verify-commit', 'HEAD')).not.toThrow();
  });

  it('a key allowed only other namespaces, an unknown key, or a changed payload is "untrusted"', () => {
    expect(targetSignature(info, parseAllowedSigners(`owner namespaces="dotfleet-attestation" ${appKey.publicKey}\n`), T0).kind).toBe('untrusted');
    expect(targetSignature(info, parseAllowedSigners(`owner ${hostKey.publicKey}\n`), T0).kind).toBe('untrusted');
    const allowed = parseAllowedSigners(`owner namespaces="git" ${appKey.publicKey}\n`);
    expect(targetSignature({ ...info, payload: info.payload.replace('signed', 'signeD') }, allowed, T0)).toMatchObject({ kind: 'untrusted', detail: expect.stringContaining('SSH signature') });
    writeFileSync(join(repo, 'allowed2'), `owner namespaces="dotfleet-attestation" ${appKey.publicKey}\n`);
    expect(() => g('-c', `gpg.ssh.allowedSignersFile=${join(repo, 'allowed2')}`, 'verify-commit', 'HEAD')).toThrow();
  });

  it('no signature is "none"; GitHub\'s web-flow signature is "web-flow"; another verified PGP signature is "untrusted"', () => {
    const s = signers();
    expect(targetSignature({ verified: false, reason: 'unsigned', signature: null, payload: null }, s, T0).kind).toBe('none');
    const pgp = '-----BEGIN PGP SIGNATURE-----\n\nwsBcBAABCAAQ\n-----END PGP SIGNATURE-----\n';
    expect(targetSignature({ verified: true, reason: 'valid', signature: pgp, payload: 'tree x', committer: { name: 'GitHub', email: WEB_FLOW_EMAIL } }, s, T0).kind).toBe('web-flow');
    expect(targetSignature({ verified: true, reason: 'valid', signature: pgp, payload: 'tree x', committer: { name: 'Mallory', email: 'm@example.org' } }, s, T0).kind).toBe('untrusted');
    expect(targetSignature({ verified: false, reason: 'bad_email', signature: pgp, payload: 'tree x', committer: { email: WEB_FLOW_EMAIL } }, s, T0).kind).toBe('untrusted');
  });
});

describe('the plan', () => {
  it('takes only the hosts whose render changed, in the inventory waves, and opens wave 1', () => {
    const { manifest: m, steps } = planRollout(input());
    expect(m.waves.map((w) => w.hosts)).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
    expect(m.hosts.f!.wave).toBeNull();
    expect(m.phase).toBe('running');
    expect(m.wave).toBe(1);
    expect(m.waves[0]!.deadline).toBe('2026-11-23T11:00:00Z');
    expect(m.id).toBe(`r5-${T.slice(0, 7)}`);
    expect(steps.a).toEqual(['PENDING', 'VALIDATING_PRE', 'QUEUED']);
    expect(states(m, {}, T0)).toEqual({ a: 'RUNNING', b: 'QUEUED', c: 'QUEUED', d: 'QUEUED', e: 'QUEUED', f: 'UNCHANGED' });
  });

  it('a new host is affected; a host that does not render or that no key may sign for is BLOCKED', () => {
    const i = input();
    delete i.before!.b;
    i.after.c = { error: 'home/x.hbs:3: missing key hw.dpi' };
    i.signers = parseAllowedSigners(['a', 'b', 'c', 'e', 'f'].map((h) => `${h} namespaces="dotfleet-attestation" ${hostKey.publicKey}`).join('\n') + `\nd namespaces="git" ${hostKey.publicKey}\n`);
    const { manifest: m, steps } = planRollout(i);
    expect(m.hosts.b!.wave).toBe(2);
    expect(steps.c).toEqual(['PENDING', 'VALIDATING_PRE', 'BLOCKED']);
    expect(m.hosts.c!.blocked).toMatch(/does not render at the target: home\/x.hbs:3/);
    expect(m.hosts.d!.blocked).toMatch(/no key in allowed_signers may sign its attestations \(principal "d"/);
    expect(hostState(m, 'c', undefined, T0).state).toBe('BLOCKED');
  });

  it('canary then percentage steps, when settings name a canary', () => {
    const m = planRollout(input({ settings: settings({ canary: ['c'], steps: [50, 100] }) })).manifest;
    expect(m.waves.map((w) => w.hosts)).toEqual([['c'], ['a', 'b'], ['d', 'e']]);
    const unknown = planRollout(input({ settings: settings({ canary: ['zz'] }) })).manifest;
    expect(unknown.phase).toBe('blocked');
    expect(unknown.reasons[0]!.reason).toMatch(/rollout.canary names "zz"/);
  });

  it('with require_signed_target, an unsigned or untrusted target is BLOCKED with the reason; a signed one runs', () => {
    const req = settings({}, { require_signed_target: true });
    const none = planRollout(input({ settings: req, signature: { kind: 'none', detail: 'the commit is not signed' } }));
    expect(none.manifest.phase).toBe('blocked');
    expect(none.manifest.reasons[0]!.reason).toMatch(/is not signed, and require_signed_target is set/);
    expect(none.steps.a).toEqual(['PENDING', 'VALIDATING_PRE', 'BLOCKED']);
    expect(states(none.manifest, {}, T0).a).toBe('BLOCKED');
    const untrusted = planRollout(input({ settings: req, signature: { kind: 'untrusted', detail: 'signed by SHA256:x' } }));
    expect(untrusted.manifest.reasons[0]!.reason).toMatch(/signed by an untrusted key \(signed by SHA256:x\)/);
    expect(planRollout(input({ settings: req, signature: { kind: 'web-flow', detail: '' } })).manifest.phase).toBe('running');
    // Without the setting, the signature is recorded and nothing is blocked.
    const free = planRollout(input({ signature: { kind: 'none', detail: 'the commit is not signed' } })).manifest;
    expect(free.phase).toBe('running');
    expect(free.target.signature.kind).toBe('none');
  });

  it('a push that changes no render is "nothing to roll out": complete at once', () => {
    const i = input();
    i.after = i.before!;
    const m = planRollout(i).manifest;
    expect(m.phase).toBe('complete');
    expect(m.waves).toEqual([]);
    expect(rolloutView(m, {}, T0).line).toBe('nothing to roll out');
    expect(m.log[0]!.action).toBe('nothing to roll out');
  });

  it('a superseding plan takes in every host that had not finished the running rollout, whatever its render', () => {
    const first = planRollout(input()).manifest;
    const i = input({ target: 'c'.repeat(40), previous: T, lastSequence: first.sequence, current: { manifest: first, states: hostStates(first, { a: record('a') }, later(120)) } });
    i.before = i.after; // the new commit changes nothing more
    i.after = { ...i.after, e: { hash: hash('9') } };
    const p = planRollout(i);
    expect(p.manifest.supersedes).toBe(first.id);
    expect(p.carried.sort()).toEqual(['b', 'c', 'd']);
    expect(p.manifest.hosts.a!.wave).toBeNull(); // finished the first rollout, unchanged since
    expect(p.manifest.hosts.e!.wave).not.toBeNull();
    expect(p.manifest.sequence).toBe(first.sequence + 1);
  });
});

describe('host states: every transition', () => {
  const m0 = planRollout(input({ settings: settings({ soak: '10m' }) })).manifest;
  const s = (m: Manifest, r: HostRecord | undefined, now: Date, host = 'a'): HostStateName => hostState(m, host, r, now).state;

  it('QUEUED → RUNNING when the wave opens', () => {
    expect(s(m0, undefined, T0, 'b')).toBe('QUEUED');
    const m1 = structuredClone(m0);
    m1.waves[1]!.openedAt = '2026-11-23T10:05:00Z';
    m1.wave = 2;
    expect(s(m1, undefined, T0, 'b')).toBe('RUNNING');
  });

  it('RUNNING → VALIDATING (post) → SUCCESS over the soak time', () => {
    expect(s(m0, undefined, T0)).toBe('RUNNING');
    expect(s(m0, record('a'), later(120))).toBe('VALIDATING_POST');
    expect(s(m0, record('a'), later(60 + 600))).toBe('SUCCESS');
    const noSoak = planRollout(input()).manifest;
    expect(s(noSoak, record('a'), later(61))).toBe('SUCCESS');
  });

  it('VALIDATING (post) → FAILED when a failure comes within the soak', () => {
    expect(s(m0, record('a', { status: 'FAILED', testsFailed: 1 }, later(300)), later(320))).toBe('FAILED');
  });

  it('RUNNING → FAILED: a FAILED attestation (its reasons), a render that differs, another commit', () => {
    const failed = hostState(m0, 'a', record('a', { status: 'FAILED', testsFailed: 2, toolsOk: false, toolsFailing: ['git 2.20 (needs >=2.30)'] }), later(70));
    expect(failed.state).toBe('FAILED');
    expect(failed.reasons).toEqual(['2 host tests failing', 'tools: git 2.20 (needs >=2.30)']);
    expect(hostState(m0, 'a', record('a', { render: 'mismatch' }), later(70)).reasons[0]).toMatch(/render hash differs/);
    expect(hostState(m0, 'a', record('a', { appliedCommit: P }), later(70))).toMatchObject({ state: 'FAILED', reasons: [expect.stringContaining('not the target')] });
  });

  it('RUNNING → PARTIAL: success with drift or failing tools', () => {
    expect(hostState(m0, 'a', record('a', { drift: ['modified .bashrc'] }), later(700))).toMatchObject({ state: 'PARTIAL', reasons: ['drift: modified .bashrc'] });
    expect(s(m0, record('a', { status: 'PARTIAL' }), later(700))).toBe('PARTIAL');
  });

  it('RUNNING → TIMED_OUT after the deadline; an attestation of another commit does not count', () => {
    expect(s(m0, record('a', { appliedCommit: P, rolloutTarget: null }), later(3601))).toBe('TIMED_OUT');
    expect(s(m0, undefined, later(3599))).toBe('RUNNING');
  });

  it('retry: FAILED → RUNNING (older attestations no longer count); skip: → SKIPPED', () => {
    const failed = record('a', { status: 'FAILED' });
    const r = command(m0, { name: 'retry', host: 'a' }, 'owner', later(200), { a: failed }) as Manifest;
    expect(typeof r).toBe('object');
    expect(s(r, failed, later(210))).toBe('RUNNING');
    expect(s(r, record('a', { sequence: 2 }, later(300)), later(300 + 601))).toBe('SUCCESS');
    const k = command(m0, { name: 'skip', host: 'a' }, 'owner', later(200), { a: failed }) as Manifest;
    expect(hostState(k, 'a', failed, later(210))).toMatchObject({ state: 'SKIPPED', reasons: [expect.stringContaining('@owner')] });
  });
});

describe('the gates', () => {
  const m0 = planRollout(input()).manifest;

  it('wave 1 SUCCESS opens wave 2; all SUCCESS completes; each step is a new sequence', () => {
    const a = advance(m0, { a: record('a') }, later(100));
    expect(a.actions).toEqual(['open wave 2']);
    expect(a.manifest.wave).toBe(2);
    expect(a.manifest.sequence).toBe(m0.sequence + 1);
    expect(rolloutView(a.manifest, { a: record('a') }, later(100)).line).toBe('wave 2/3 · 1/5 hosts attested');
    const all = Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((h) => [h, record(h)]));
    const done = advance(a.manifest, all, later(200));
    expect(done.actions).toEqual(['open wave 3', 'complete']);
    expect(done.manifest.phase).toBe('complete');
    expect(advance(done.manifest, all, later(300)).actions).toEqual([]);
  });

  it('nothing changes while a wave runs: the same manifest, no new sequence', () => {
    const a = advance(m0, {}, later(100));
    expect(a.actions).toEqual([]);
    expect(a.manifest).toBe(m0);
  });

  it('a FAILED host halts with its reasons; max_failures tolerates it', () => {
    const r = { a: record('a', { status: 'FAILED', testsFailed: 1 }) };
    const h = advance(m0, r, later(100));
    expect(h.actions).toEqual(['halt']);
    expect(h.manifest.phase).toBe('halted');
    expect(h.manifest.reasons).toEqual([{ host: 'a', reason: 'FAILED: 1 host test failing' }]);
    const tolerant = planRollout(input({ settings: settings({ max_failures: 1 }) })).manifest;
    // Tolerated, but wave 1 (one host) never reaches success_ratio 1: the deadline halts it.
    expect(advance(tolerant, r, later(100)).actions).toEqual([]);
    expect(advance(tolerant, r, later(3700)).manifest.reasons[0]!.reason).toMatch(/wave 1's deadline .* passed with 0 of 1 hosts done; not done: a \(FAILED\)/);
  });

  it('PARTIAL halts unless partial_ok; success_ratio opens a wave before every host is done', () => {
    const partial = { a: record('a', { drift: ['modified .x'] }) };
    expect(advance(m0, partial, later(100)).actions).toEqual(['halt']);
    const ok = planRollout(input({ settings: settings({ partial_ok: true }) })).manifest;
    expect(advance(ok, partial, later(100)).actions).toEqual(['open wave 2']);
    const half = planRollout(input({ settings: settings({ success_ratio: 0.5 }) })).manifest;
    const w2 = advance(half, { a: record('a') }, later(100)).manifest;
    expect(advance(w2, { a: record('a'), b: record('b') }, later(120)).actions).toEqual(['open wave 3']);
  });

  it("a passed deadline halts with the silent hosts named", () => {
    const h = advance(m0, {}, later(3601));
    expect(h.manifest.phase).toBe('halted');
    expect(h.manifest.reasons[0]!.host).toBe('a');
    expect(h.manifest.reasons[0]!.reason).toMatch(/^TIMED_OUT: no attestation/);
  });

  it('a first wave whose hosts are all BLOCKED halts at planning', () => {
    const i = input();
    i.after.a = { error: 'boom' };
    const m = planRollout(i).manifest;
    expect(m.phase).toBe('halted');
    expect(m.reasons[0]).toEqual({ host: 'a', reason: 'BLOCKED: does not render at the target: boom' });
  });
});

describe('commands', () => {
  const m0 = planRollout(input()).manifest;

  it('are read from a comment line; anything else is a usage answer', () => {
    expect(parseCommand('thanks!')).toBeUndefined();
    expect(parseCommand('LGTM\n/dotfleet rollout retry kestrel\n')).toEqual({ name: 'retry', host: 'kestrel' });
    expect(parseCommand('/dotfleet rollout halt')).toEqual({ name: 'halt' });
    expect(parseCommand('/dotfleet rollout resume now')).toMatch(/takes no argument/);
    expect(parseCommand('/dotfleet rollout skip')).toMatch(/needs one host/);
    // Not a host name: refused without repeating it (the bot's reply would carry a mention or an image).
    for (const bad of ['@octocat', '![x](https://evil.example/p.png)', '<img>', '`x`']) expect(parseCommand(`/dotfleet rollout retry ${bad}`)).toBe('/dotfleet rollout retry needs a host name (letters, digits, ".", "_" and "-")');
    expect(parseCommand('/dotfleet deploy')).toMatch(/^usage:/);
  });

  it('halt and resume; each recorded with who and when', () => {
    const h = command(m0, { name: 'halt' }, 'owner', later(10), {}) as Manifest;
    expect(h.phase).toBe('halted');
    expect(h.log.at(-1)).toEqual({ at: '2026-11-23T10:00:10Z', by: 'owner', action: 'halt' });
    expect(command(h, { name: 'halt' }, 'owner', later(11), {})).toMatch(/already halted/);
    const r = command(h, { name: 'resume' }, 'owner', later(4000), {}) as Manifest;
    expect(r.phase).toBe('running');
    expect(r.waves[0]!.deadline).toBe('2026-11-23T12:06:40Z'); // the wave's full time again
    expect(command(m0, { name: 'resume' }, 'owner', later(10), {})).toMatch(/not halted/);
  });

  it('retry and skip name a host of the rollout, in a state they apply to', () => {
    expect(command(m0, { name: 'retry', host: 'zz' }, 'o', T0, {})).toMatch(/zz is not in rollout/);
    expect(command(m0, { name: 'retry', host: 'f' }, 'o', T0, {})).toMatch(/render did not change/);
    expect(command(m0, { name: 'retry', host: 'a' }, 'o', T0, {})).toMatch(/a is RUNNING; only a FAILED/);
    const failed = { a: record('a', { status: 'FAILED' }) };
    const halted = advance(m0, failed, later(100)).manifest;
    const skipped = command(halted, { name: 'skip', host: 'a' }, 'o', later(200), failed) as Manifest;
    expect(skipped.phase).toBe('running');
    expect(advance(skipped, failed, later(201)).actions).toEqual(['open wave 2']);
    const done = planRollout({ ...input(), after: input().before! }).manifest;
    expect(command(done, { name: 'halt' }, 'o', T0, {})).toMatch(/is complete/);
  });
});

it('the manifest path is rollout/current.json', () => {
  expect(MANIFEST_PATH).toBe('rollout/current.json');
});

describe('the fleet status target under a rollout (expectedCommit)', () => {
  const at = (host: string, commit: string): [string, HostRecord] => [host, hostRecordOf(host, commit, { issuedAt: later(60).toISOString(), receivedAt: later(60).toISOString() })];
  const state = (records: [string, HostRecord][]) => ({ version: 1 as const, target: { branch: 'main', commit: T }, policy: {}, updatedAt: null, hosts: Object.fromEntries(records) });
  const onTarget = (m: Manifest, records: [string, HostRecord][]) =>
    Object.fromEntries(fleetStatus(state(records), ['a', 'b', 'c', 'd', 'e', 'f'], (h) => expectedCommit(m, h)).rows.map((r) => [r.host, r.onTarget]));

  it('wave 1 open: the canary and unchanged hosts are expected at the target, later waves where they were', () => {
    const m = planRollout(input()).manifest;
    expect(Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((h) => [h, expectedCommit(m, h)]))).toEqual({ a: T, b: P, c: P, d: P, e: P, f: T });
    expect(expectedCommit(m, 'not-in-it')).toBeUndefined();
    // b..e still at the previous target are on their target (not "behind"); f, unchanged by the rollout, is expected to move.
    expect(onTarget(m, [at('a', T), at('b', P), at('c', P), at('d', P), at('e', P), at('f', P)])).toEqual({ a: true, b: true, c: true, d: true, e: true, f: false });
    // Without the rollout, the default branch's head is everyone's target.
    expect(fleetStatus(state([at('b', P)]), ['b']).rows[0]!.onTarget).toBe(false);
    // FLEET.md's line above the table says which it is.
    const s = state([at('a', T)]);
    expect(fleetMarkdown(s, fleetStatus(s, ['a']), '## Rollout')).toContain("`main` is at `aaaaaaa`; each host's target is the rollout's (below) · updated");
    expect(fleetMarkdown(s, fleetStatus(s, ['a']))).toContain('Target: `aaaaaaa` (main) · updated');
  });

  it('a wave opens, the rollout completes, is blocked, or holds a blocked host back: the expectation follows', () => {
    const m = planRollout(input()).manifest;
    const next = advance(m, { a: record('a') }, later(120)).manifest;
    expect(next.wave).toBe(2);
    expect([expectedCommit(next, 'b'), expectedCommit(next, 'd')]).toEqual([T, P]);
    const done = { ...next, phase: 'complete' as const, wave: 3 };
    expect(['a', 'b', 'd', 'f'].map((h) => expectedCommit(done, h))).toEqual([T, T, T, T]);
    const blocked = planRollout(input({ settings: settings({}, { require_signed_target: true }), signature: { kind: 'none', detail: '' } })).manifest;
    expect(blocked.phase).toBe('blocked');
    expect(['a', 'b', 'f'].map((h) => expectedCommit(blocked, h))).toEqual([P, P, P]);
    const held = { ...m, hosts: { ...m.hosts, a: { ...m.hosts.a!, blocked: 'no key may sign' } } };
    expect(expectedCommit(held, 'a')).toBe(P);
    expect(expectedCommit({ ...held, hosts: { ...held.hosts, a: { ...held.hosts.a!, skipped: 'robin at 2026-11-23T10:00:00Z' } } }, 'a')).toBe(T);
  });
});

describe('dashboard checkboxes', () => {
  it('offers halt while running, resume while halted, retry and skip for hosts that need a hand; reads only boxes newly ticked', () => {
    const m = planRollout(input()).manifest;
    const running = rolloutCheckboxes(rolloutView(m, {}, T0));
    expect(running).toContain('- [ ] <!-- dotfleet:rollout halt --> Halt the rollout');
    expect(running).not.toContain('retry');
    const halted = advance(m, { a: record('a', { status: 'FAILED' }) }, later(120)).manifest;
    expect(halted.phase).toBe('halted');
    const boxes = rolloutCheckboxes(rolloutView(halted, { a: record('a', { status: 'FAILED' }) }, later(120)));
    expect(boxes).toContain('- [ ] <!-- dotfleet:rollout resume --> Resume the rollout');
    expect(boxes).toContain('- [ ] <!-- dotfleet:rollout retry a --> Retry **a** (FAILED)');
    expect(boxes).toContain('- [ ] <!-- dotfleet:rollout skip a --> Skip **a**');
    expect(rolloutCheckboxes(rolloutView({ ...m, phase: 'complete' }, {}, T0))).toBe('');

    const tick = (text: string, c: string, mark = 'x') => text.replace(`- [ ] <!-- dotfleet:rollout ${c} -->`, `- [${mark}] <!-- dotfleet:rollout ${c} -->`);
    expect(tickedCommands(boxes, tick(boxes, 'skip a', 'X'))).toEqual(['/dotfleet rollout skip a']);
    expect(tickedCommands(tick(boxes, 'resume'), tick(tick(boxes, 'resume'), 'retry a'))).toEqual(['/dotfleet rollout retry a']);
    expect(tickedCommands(boxes, boxes)).toEqual([]);
    // Only the app's own box shape: a marker mid-line, another command, or a host name with a space is not a box.
    for (const forged of ['text - [x] <!-- dotfleet:rollout halt -->', '- [x] <!-- dotfleet:rollout delete everything -->', '- [x] <!-- dotfleet:rollout skip a b -->', '- [x] <!--dotfleet:rollout halt-->']) {
      expect([forged, tickedCommands('', forged)]).toEqual([forged, []]);
    }
  });
});

describe("a host's own words are inert wherever the rollout is shown", () => {
  // A host with a stolen key signs what it likes: its tool versions and drift paths reach the
  // check run, the merged pull request's comment, FLEET.md and the dashboard issue.
  const hostile = ['@octocat', '#1', '![x](https://evil.example/p.png)', '[login](https://evil.example)', '<img src=x>', '**bold** | cell', 'line\nbreak', '`tick`', '_em_'];
  const st = statement('git+https://github.com/o/r', {
    host: 'a', appliedCommit: T, rolloutTarget: T, renderHash: hash('1'), policyHash: hash('2'),
    tools: [{ name: 'git', version: hostile.join(' '), requirement: '>=2.30', ok: false }],
    drift: hostile.slice(0, 5).map((path) => ({ path, type: 'modified' as const })), tests: [], status: 'FAILED', agentVersion: 'dotfleet/test', sequence: 9, issuedAt: later(60).toISOString(),
  });
  const rec = hostRecord(st, serialise(st), { render: 'match', key: 'SHA256:x', receivedAt: later(60).toISOString() });

  it('no mention, issue link, link, image, HTML or table break of the host\'s in the rollout or FLEET.md', () => {
    const m = advance(planRollout(input()).manifest, { a: rec }, later(120)).manifest;
    expect(m.phase).toBe('halted');
    const view = rolloutView(m, { a: rec }, later(120));
    const state = { version: 1 as const, target: { branch: 'main', commit: T }, policy: {}, updatedAt: null, hosts: { a: rec } };
    for (const md of [rolloutMarkdown(view), fleetMarkdown(state, fleetStatus(state, ['a']), rolloutMarkdown(view))]) {
      expect(md).toContain('evil.example'); // the words are shown...
      const html = marked.parse(md) as string;
      // ...and do nothing: no link or image of theirs, no tag, no mention or issue reference.
      expect(html).not.toMatch(/<a |<img/);
      expect(md).not.toMatch(/@octocat|#1\b/);
    }
    const rows = rolloutMarkdown(view).split('\n').filter((l) => l.startsWith('| a |'));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.split(/(?<!\\)\|/)).toHaveLength(6);
  });
});
