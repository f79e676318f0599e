import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { parseFleetState } from '../../src/core/state/fleet-state.js';
import { DASHBOARD_MARKER } from '../../src/core/state/dashboard.js';
import { ATTESTATION_NAMESPACE } from '../../src/core/attestation/format.js';
import { keygenSign, newKey, scratchDir, sshKeygen } from '../helpers/ssh.js';
import { addCommit, envelope, intakeFleet, newHostKey, post, signed, signerLine, standIn, startApp, submit, type RunningApp } from '../helpers/intake.js';

const fleet = intakeFleet();
const COMMIT = 'GRAPHQL createCommitOnBranch';
const STATE = 'dotfleet/state';

let app: RunningApp | undefined;
let app2: RunningApp | undefined;

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});
afterEach(async () => {
  await app?.close();
  await app2?.close();
  app = app2 = undefined;
  nock.cleanAll();
});

const commits = (s: { requests: string[] }) => s.requests.filter((r) => r === COMMIT).length;
const stateOf = (s: ReturnType<typeof standIn>) => parseFleetState(s.filesAt(STATE)!.get('fleet.json'));

describe('attestation intake', () => {
  it('starts the state branch and commits the attestation, its signature, fleet.json and FLEET.md before answering 201', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    const a = signed(fleet, 'kestrel');
    const res = await submit(app, 'kestrel', a);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ code: 'accepted', render: 'match' });
    expect(res.body.path).toMatch(/^attestations\/kestrel\/\d{4}-\d{2}-\d{2}T\d{6}Z-\d{6}\.json$/);
    // The commit exists when the host hears about it.
    expect(gh.branches.get(STATE)).toBe(res.body.commit);
    const files = gh.filesAt(STATE)!;
    expect(files.get(res.body.path)!.equals(a.payload)).toBe(true);
    expect(files.get(`${res.body.path}.sig`)!.toString()).toBe(a.signature);
    expect(files.get('README.md')!.toString()).toContain('written by dotfleet (the app, or the Action)');
    const state = stateOf(gh);
    expect(state.target).toEqual({ branch: 'main', commit: fleet.main });
    expect(state.hosts.kestrel).toMatchObject({ path: res.body.path, render: 'match', status: 'SUCCESS', appliedCommit: fleet.main, toolsOk: true });
    const md = files.get('FLEET.md')!.toString();
    expect(md).toContain(`FLEET STATUS: 1/${fleet.hosts.length} aligned; no drift`);
    expect(md).toContain('| Host | Git SHA | Policy | Tools OK | Drift | Verified | Last seen |');
    expect(md).toMatch(/\| ✅ kestrel \| `[0-9a-f]{7}` \| matches \| yes \| none \| yes \| \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC \|/);
    // History: the orphan start, then one commit.
    const history = gh.history(STATE);
    expect(history).toHaveLength(2);
    expect(history[0]!.parents).toEqual([]);
    expect(gh.unhandled).toEqual([]);

    // Anyone can check it later with ssh-keygen alone.
    const dir = mkdtempSync(join(tmpdir(), 'dotfleet-intake-'));
    writeFileSync(join(dir, 'allowed_signers'), fleet.allowedSigners);
    writeFileSync(join(dir, 'a.sig'), files.get(`${res.body.path}.sig`)!);
    const v = sshKeygen(['-Y', 'verify', '-f', join(dir, 'allowed_signers'), '-I', 'kestrel', '-n', ATTESTATION_NAMESPACE, '-s', join(dir, 'a.sig')], files.get(res.body.path)!);
    expect(v.stdout + v.stderr).toContain('Good "dotfleet-attestation" signature for kestrel');
  });

  it('puts concurrent submissions into one commit', async () => {
    const gh = standIn(fleet);
    app = await startApp({ writer: { windowMs: 300 } as never });
    const hosts = ['kestrel', 'tern', 'atlas', 'heron', 'osprey', 'wren'];
    const answers = await Promise.all(hosts.map((h) => submit(app!, h, signed(fleet, h))));
    expect(answers.map((a) => a.status)).toEqual(hosts.map(() => 201));
    expect(new Set(answers.map((a) => a.body.commit)).size).toBe(1);
    expect(commits(gh)).toBe(1);
    expect(Object.keys(stateOf(gh).hosts).sort()).toEqual([...hosts].sort());
    expect(gh.history(STATE).at(-1)!.message).toContain('attest: 6 attestations from 6 hosts');
  });

  it('when the head moves mid-commit, re-reads the branch, rebuilds and commits again; nothing of the other writer is lost', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).status).toBe(201);
    // Another writer commits just before our next commit lands.
    let moved = false;
    gh.beforeCommit = (branch) => {
      if (moved) return;
      moved = true;
      const other = parseFleetState(gh.filesAt(branch)!.get('fleet.json'));
      other.hosts.kestrel = { ...other.hosts.kestrel!, receivedAt: '2026-01-01T00:00:00.000Z' };
      gh.pushCommit(branch, { 'notes/other-writer.txt': 'hello\n', 'fleet.json': JSON.stringify(other, null, 2) + '\n' });
    };
    const res = await submit(app, 'tern', signed(fleet, 'tern'));
    expect(res.status).toBe(201);
    expect(commits(gh)).toBe(3); // kestrel, tern (stale), tern again
    const files = gh.filesAt(STATE)!;
    expect(files.get('notes/other-writer.txt')!.toString()).toBe('hello\n');
    const state = stateOf(gh);
    expect(state.hosts.kestrel!.receivedAt).toBe('2026-01-01T00:00:00.000Z');
    expect(state.hosts.tern!.path).toBe(res.body.path);
    expect(gh.branches.get(STATE)).toBe(res.body.commit);
  });

  it('two app replicas writing at once lose nothing', async () => {
    const gh = standIn(fleet);
    app = await startApp({ writer: { windowMs: 50 } as never });
    app2 = await startApp({ writer: { windowMs: 50 } as never });
    const hosts = fleet.hosts;
    const answers = await Promise.all(hosts.map((h, i) => submit(i % 2 === 0 ? app! : app2!, h, signed(fleet, h))));
    expect(answers.map((a) => a.status)).toEqual(hosts.map(() => 201));
    const files = gh.filesAt(STATE)!;
    for (const a of answers) expect(files.has(a.body.path)).toBe(true);
    expect(Object.keys(stateOf(gh).hosts).sort()).toEqual([...hosts].sort());
    expect(files.get('FLEET.md')!.toString()).toContain(`FLEET STATUS: ${hosts.length}/${hosts.length} aligned; no drift`);
  });

  it('the same attestation twice lands once: 200 with the same path', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    const a = signed(fleet, 'kestrel');
    const first = await submit(app, 'kestrel', a);
    const again = await submit(app, 'kestrel', a);
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ code: 'already-recorded', path: first.body.path, commit: first.body.commit });
    expect(commits(gh)).toBe(1);

    // An older one, already in the history, is recognised too; a different one at that sequence is a replay.
    const b = signed(fleet, 'kestrel');
    expect((await submit(app, 'kestrel', b)).status).toBe(201);
    const older = await submit(app, 'kestrel', a);
    expect(older).toMatchObject({ status: 200, body: { code: 'already-recorded', path: first.body.path } });
    const forged = signed(fleet, 'kestrel', { sequence: JSON.parse(a.payload.toString()).predicate.sequence, status: 'FAILED' });
    expect((await submit(app, 'kestrel', forged)).body.code).toBe('sequence');
    expect(commits(gh)).toBe(2);

    // Sent twice at the same moment: still one commit, one path.
    const c = signed(fleet, 'tern');
    const [x, y] = await Promise.all([submit(app, 'tern', c), submit(app, 'tern', c)]);
    expect(x.body.path).toBe(y.body.path);
    expect(commits(gh)).toBe(3);
  });

  it('gives up with 503 and Retry-After when it cannot commit, leaving the branch untouched; a resubmission lands', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).status).toBe(201);
    const before = gh.branches.get(STATE);
    const filesBefore = new Map(gh.filesAt(STATE)!);
    gh.commitFailures.push(502, 502, 502, 502);
    const a = signed(fleet, 'tern');
    const res = await submit(app, 'tern', a);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.body.code).toBe('not-recorded');
    // No request of that batch reached GitHub's commit: saying "nothing" is true here.
    expect(res.body.message).toContain('nothing was recorded');
    expect(gh.branches.get(STATE)).toBe(before);
    expect(gh.filesAt(STATE)).toEqual(filesBefore);
    const again = await submit(app, 'tern', a);
    expect(again.status).toBe(201);
  });

  it('a head that keeps moving exhausts the attempts: 503, and nothing half-committed', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).status).toBe(201);
    let n = 0;
    gh.beforeCommit = (branch) => gh.pushCommit(branch, { [`notes/${n++}`]: 'x' });
    const res = await submit(app, 'tern', signed(fleet, 'tern'));
    expect(res.status).toBe(503);
    const files = gh.filesAt(STATE)!;
    expect([...files.keys()].some((p) => p.startsWith('attestations/tern/'))).toBe(false);
    expect(stateOf(gh).hosts.tern).toBeUndefined();
  });

  it('a commit that landed although GitHub failed to answer is found on the retry, not made twice', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    let once = true;
    gh.beforeCommit = () => undefined;
    const realHandle = gh.handle.bind(gh);
    gh.handle = (method, url, body) => {
      const r = realHandle(method, url, body);
      if (once && method === 'POST' && url.endsWith('/graphql') && JSON.stringify(body).includes('createCommitOnBranch')) {
        once = false;
        return { status: 502, body: { message: 'Bad gateway' } };
      }
      return r;
    };
    const res = await submit(app, 'kestrel', signed(fleet, 'kestrel'));
    expect(res.status).toBe(201);
    expect(commits(gh)).toBe(1);
    expect(gh.history(STATE)).toHaveLength(2);
  });

  it('records an unknown commit and a render that differs as such, never as verified', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    const unknown = await submit(app, 'kestrel', signed(fleet, 'kestrel', { appliedCommit: 'f'.repeat(40) }));
    expect(unknown).toMatchObject({ status: 201, body: { render: 'unknown-commit' } });
    const differs = await submit(app, 'tern', signed(fleet, 'tern', { renderHash: 'sha256:' + '1'.repeat(64) }));
    expect(differs).toMatchObject({ status: 201, body: { render: 'mismatch' } });
    const md = gh.filesAt(STATE)!.get('FLEET.md')!.toString();
    expect(md).toContain('FLEET STATUS: 0/12 aligned; no drift');
    expect(md).toMatch(/\| ⚠️ kestrel \| `fffffff` \(not target\) \| matches \| yes \| none \| unknown commit \|/);
    expect(md).toMatch(/\| ⚠️ tern \| `[0-9a-f]{7}` \| matches \| yes \| none \| render differs \|/);
    expect(md).toContain('- kestrel: not on target, unknown commit');
  });

  it('shows drift, failing tools and the status line', async () => {
    const gh = standIn(fleet);
    app = await startApp({ writer: { windowMs: 200 } as never });
    await Promise.all([
      submit(app, 'kestrel', signed(fleet, 'kestrel')),
      submit(app, 'heron', signed(fleet, 'heron', { drift: [{ path: '.gitconfig', type: 'modified' }, { path: '.tmux.conf', type: 'missing' }] })),
      submit(app, 'osprey', signed(fleet, 'osprey', { drift: [{ path: '.zshrc', type: 'modified' }] })),
      submit(app, 'wren', signed(fleet, 'wren', { tools: [{ name: 'git', version: '2.20.1', requirement: '>=2.30', ok: false }], status: 'FAILED' })),
    ]);
    const md = gh.filesAt(STATE)!.get('FLEET.md')!.toString();
    expect(md).toContain('FLEET STATUS: 1/12 aligned; drift on heron, osprey');
    expect(md).toContain('| 2 paths |');
    expect(md).toContain('no: git 2.20.1 (needs &gt;=2.30)');
    expect(md).toContain('· FAILED |');
    expect(md).toContain('- atlas: never attested');
  });

  it('keeps the Fleet dashboard issue, edited only when its content changes', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).status).toBe(201);
    const repo = app.intake.repository({ owner: 'Codertocat', repo: 'Hello-World' });
    await repo.showDashboard();
    expect(gh.issues).toHaveLength(1);
    const issue = gh.issues[0]!;
    expect(issue.title).toBe('Fleet dashboard');
    expect(issue.body.startsWith(DASHBOARD_MARKER)).toBe(true);
    expect(issue.body).toContain('**FLEET STATUS: 1/12 aligned; no drift**');
    expect(issue.body).toContain('[kestrel](https://github.com/Codertocat/Hello-World/commits/dotfleet/state/attestations/kestrel)');
    expect(issue.body).toContain('### Quiet hosts (no attestation within 24 h)');
    expect(issue.body).toContain('- **atlas**: never attested');
    expect(issue.body).not.toContain('- **kestrel**');
    const writes = repo.dashboard.writes;
    await repo.showDashboard();
    await repo.showDashboard();
    expect(repo.dashboard.writes).toBe(writes);
    expect(gh.requests.filter((r) => r.startsWith('PATCH')).length).toBe(writes - 1);
    // A new attestation changes the table: one edit.
    expect((await submit(app, 'tern', signed(fleet, 'tern'))).status).toBe(201);
    await repo.showDashboard();
    expect(repo.dashboard.writes).toBe(writes + 1);
    expect(gh.issues[0]!.body).toContain('FLEET STATUS: 2/12 aligned');
    expect(gh.issues).toHaveLength(1);
  });

  it('waits a moment before editing the dashboard, so commits arriving together make one edit showing the latest', async () => {
    const gh = standIn(fleet);
    app = await startApp({ dashboardDelayMs: 2_000 });
    const repo = app.intake.repository({ owner: 'Codertocat', repo: 'Hello-World' });
    // Two commits of the state branch, one after the other, each asking for the dashboard.
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).status).toBe(201);
    expect((await submit(app, 'tern', signed(fleet, 'tern'))).status).toBe(201);
    await repo.dashboard.settle();
    expect(repo.dashboard.writes).toBe(1);
    expect(gh.issues).toHaveLength(1);
    expect(gh.issues[0]!.body).toContain('FLEET STATUS: 2/12 aligned');
  });

  it('reads trust from the default branch only, and again after a push to it', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    const fresh = newHostKey();
    // The new key on a pull-request branch: not trusted.
    const lines = `${fleet.allowedSigners}${signerLine('kestrel', fresh)}\n`;
    addCommit(fleet, gh, { 'fleet/allowed_signers': lines });
    const a = signed(fleet, 'kestrel', {}, { key: fresh });
    expect((await submit(app, 'kestrel', a)).body.code).toBe('unknown-key');
    // Merged to main and pushed: trusted once the push arrives.
    const merged = addCommit(fleet, gh, { 'fleet/allowed_signers': lines }, { onMain: true });
    await app.probot.receive({ id: 'push-1', name: 'push', payload: { ref: 'refs/heads/main', after: merged, repository: { name: 'Hello-World', owner: { login: 'Codertocat' }, default_branch: 'main' }, installation: { id: 1 } } } as never);
    const b = signed(fleet, 'kestrel', { appliedCommit: merged, rolloutTarget: merged, renderHash: fleet.renderHashes.get('kestrel')! }, { key: fresh });
    const res = await submit(app, 'kestrel', b);
    expect(res.status).toBe(201);
    expect(stateOf(gh).target!.commit).toBe(merged);
  });

  it('when the last commit lands but its answer is lost, looks before answering: 201, not "nothing was recorded"', async () => {
    const gh = standIn(fleet);
    app = await startApp({ writer: { maxAttempts: 2 } as never });
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).status).toBe(201);
    // Attempt 1 fails before landing, attempt 2 (the last) lands and loses its answer.
    gh.commitFailures.push(502);
    gh.commitLostAnswers.push(0, 502);
    const a = signed(fleet, 'tern');
    const res = await submit(app, 'tern', a);
    expect(res.status).toBe(201);
    expect(res.body.code).toBe('accepted');
    expect(gh.filesAt(STATE)!.get(res.body.path)!.equals(a.payload)).toBe(true);
    expect(stateOf(gh).hosts.tern!.path).toBe(res.body.path);
  });

  it('when it cannot even look, it says the attestation may have been recorded and that sending it again is safe', async () => {
    const gh = standIn(fleet);
    app = await startApp({ writer: { maxAttempts: 1 } as never });
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).status).toBe(201);
    gh.commitLostAnswers.push(502);
    const realHandle = gh.handle.bind(gh);
    gh.handle = (method, url, body) => {
      const r = realHandle(method, url, body);
      // From the lost commit on, reads of the branch fail too.
      if (r.status === 502) gh.readFailure = 502;
      return r;
    };
    const a = signed(fleet, 'tern');
    const res = await submit(app, 'tern', a);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('not-recorded');
    expect(res.body.message).not.toContain('nothing was recorded');
    expect(res.body.message).toContain('may have been recorded');
    // It was: and the resubmission says so.
    gh.readFailure = undefined;
    gh.handle = realHandle;
    const again = await submit(app, 'tern', a);
    expect(again.status).toBe(200);
    expect(again.body.code).toBe('already-recorded');
  });

  it('a recorded attestation sent again after the freshness window is "already-recorded" (200), not "stale"', async () => {
    standIn(fleet);
    let now = Date.now();
    app = await startApp({ clock: () => new Date(now) });
    const a = signed(fleet, 'kestrel');
    expect((await submit(app, 'kestrel', a)).status).toBe(201);
    now += 3 * 3600_000;
    const again = await submit(app, 'kestrel', a);
    expect(again.status).toBe(200);
    expect(again.body.code).toBe('already-recorded');
    // Another attestation of the same age is still refused as stale.
    const old = signed(fleet, 'tern', { issuedAt: a.payload.toString().match(/"issuedAt": "([^"]+)"/)![1]! });
    expect((await submit(app, 'tern', old)).body.code).toBe('stale');
  });

  it('a recorded attestation whose key was removed since is still "already-recorded", so no outbox sets it aside', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    const a = signed(fleet, 'kestrel');
    expect((await submit(app, 'kestrel', a)).status).toBe(201);
    // kestrel's key is rotated out on main.
    const rotated = fleet.allowedSigners.split('\n').filter((l) => !l.startsWith('kestrel ')).join('\n');
    const merged = addCommit(fleet, gh, { 'fleet/allowed_signers': rotated }, { onMain: true });
    await app.probot.receive({ id: 'push-rot', name: 'push', payload: { ref: 'refs/heads/main', after: merged, repository: { name: 'Hello-World', owner: { login: 'Codertocat' }, default_branch: 'main' }, installation: { id: 1 } } } as never);
    const again = await submit(app, 'kestrel', a);
    expect(again).toMatchObject({ status: 200, body: { code: 'already-recorded' } });
    // A new attestation with that key is refused.
    expect((await submit(app, 'kestrel', signed(fleet, 'kestrel'))).body.code).toBe('unknown-key');
    gh.branches.set('main', fleet.main);
  });

  it('a recorded attestation of a host retired from the inventory since is still "already-recorded"; a new one is unknown-host', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    const a = signed(fleet, 'wren');
    expect((await submit(app, 'wren', a)).status).toBe(201);
    const hosts = readFileSync(join(fleet.repo, 'fleet/hosts.toml'), 'utf8').replace(/\[hosts\.wren\][\s\S]*?(?=\n\[hosts\.|$)/, '');
    const merged = addCommit(fleet, gh, { 'fleet/hosts.toml': hosts }, { onMain: true });
    await app.probot.receive({ id: 'push-retire', name: 'push', payload: { ref: 'refs/heads/main', after: merged, repository: { name: 'Hello-World', owner: { login: 'Codertocat' }, default_branch: 'main' }, installation: { id: 1 } } } as never);
    expect(await submit(app, 'wren', a)).toMatchObject({ status: 200, body: { code: 'already-recorded' } });
    expect((await submit(app, 'wren', signed(fleet, 'wren'))).body.code).toBe('unknown-host');
    gh.branches.set('main', fleet.main);
  });

  it('a state branch GitHub says exists but that cannot be read is retried a bounded number of times, then 503', async () => {
    const gh = standIn(fleet);
    app = await startApp({ writer: { maxAttempts: 3 } as never });
    const realHandle = gh.handle.bind(gh);
    gh.handle = (method, url, body) => {
      if (method === 'POST' && url.endsWith('/git/refs')) {
        gh.requests.push('POST refs (refused)');
        return { status: 422, body: { message: 'Reference already exists' } };
      }
      return realHandle(method, url, body);
    };
    const res = await submit(app, 'kestrel', signed(fleet, 'kestrel'));
    expect(res.status).toBe(503);
    expect(res.body.message).toContain('nothing was recorded');
    const tries = gh.requests.filter((r) => r === 'POST refs (refused)').length;
    expect(tries).toBeGreaterThan(0);
    expect(tries).toBeLessThanOrEqual(3 * 3);
  });

  it('accepts a host whose key is ECDSA (signed by ssh-keygen) and stores the signature in canonical armour', async () => {
    const dir = scratchDir();
    const key = newKey(dir, 'ecdsa-host', 'ecdsa');
    const ecFleet = intakeFleet([`heron namespaces="dotfleet-attestation" ${key.publicKey}`]);
    const gh = standIn(ecFleet);
    app = await startApp();
    const a = signed(ecFleet, 'heron', { sequence: 900 });
    const signature = keygenSign(dir, key, a.payload, ATTESTATION_NAMESPACE);
    // Sent in another armour ssh-keygen also reads (64 columns, CRLF inside, text after the end):
    // the same blob, stored as ssh-keygen writes it.
    const b64 = signature.split('\n').slice(1, -2).join('');
    const other = `-----BEGIN SSH SIGNATURE-----\n${b64.match(/.{1,64}/g)!.join('\r\n')}\n-----END SSH SIGNATURE-----\nsent by a script\n`;
    const res = await submit(app, 'heron', { payload: a.payload, signature: other });
    expect(res.status).toBe(201);
    expect(gh.filesAt(STATE)!.get(`${res.body.path}.sig`)!.toString()).toBe(signature);
  });

  it('answers 415 to a body that is not sent as application/json, before reading it', async () => {
    const gh = standIn(fleet);
    app = await startApp();
    const body = envelope(signed(fleet, 'kestrel'));
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/jsonx', '']) {
      const res = await post(app, 'kestrel', body, { headers: { 'content-type': type } });
      expect([type, res.status, res.body.code]).toEqual([type, 415, 'unsupported-media-type']);
    }
    expect((await post(app, 'kestrel', body, { headers: { 'content-type': 'Application/JSON; charset=utf-8' } })).status).toBe(201);
    expect(gh.unhandled).toEqual([]);
  });
});

describe('attestation intake with Octokit throttling on (production settings)', () => {
  const big = intakeFleet([], { extraHosts: 188 });

  it('records 200 hosts at once while another writer commits every 0.3 s, each batch within 3 tries', async () => {
    const gh = standIn(big);
    app = await startApp({ writer: { windowMs: 500, maxAttempts: 8, backoffMs: 100, maxBackoffMs: 400 } as never }, {}, { throttle: true });
    // The state branch exists already (the other writer keeps it moving).
    gh.pushCommit(STATE, { 'README.md': 'state\n' }, 'start');
    let n = 0;
    const other = setInterval(() => gh.pushCommit(STATE, { [`notes/${n++}`]: 'x' }), 300);
    try {
      const answers = await Promise.all(big.hosts.map((h) => submit(app!, h, signed(big, h))));
      const codes = answers.map((a) => a.status);
      expect(codes.filter((c) => c === 201)).toHaveLength(200);
      const writer = app.intake.repository({ owner: 'Codertocat', repo: 'Hello-World' }).writer(await app.intake.repository({ owner: 'Codertocat', repo: 'Hello-World' }).trust());
      expect(writer.stats.triesPerBatch.length).toBeGreaterThan(0);
      expect(Math.max(...writer.stats.triesPerBatch)).toBeLessThanOrEqual(3);
    } finally {
      clearInterval(other);
    }
    expect(n).toBeGreaterThan(0);
    const state = stateOf(gh);
    expect(Object.keys(state.hosts)).toHaveLength(200);
    // Nothing of the other writer was lost.
    expect(gh.filesAt(STATE)!.has(`notes/${n - 1}`)).toBe(true);
  }, 60_000);
});
