/**
 * dotfleet update end to end: a real git remote, a real temporary home, the host's own tests run
 * by sh, and the attestations checked with the real ssh-keygen alone.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commit, gitRepo, miniFleet, PROJECT_ROOT } from '../helpers/fleet.js';
import { newKey, scratchDir, sshKeygen } from '../helpers/ssh.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const scratch = () => mkdtempSync(join(tmpdir(), 'dotfleet-update-'));

describe('dotfleet update', () => {
  const keys = scratchDir();
  const beta = newKey(keys, 'beta');
  const allowed = join(keys, 'allowed_signers');
  writeFileSync(allowed, `beta namespaces="dotfleet-attestation" ${beta.publicKey}\n`);
  const remote = gitRepo(
    new Map([
      ...miniFleet({ files: { 'dot_zshrc.hbs': 'export USER={{user}}\n' } }),
      ['hosts/beta/tests/T10-zshrc.sh', Buffer.from('grep -q "USER=robin" "$HOME/.zshrc" && echo "zshrc ok"\n')],
    ]),
  );
  const home = scratch();
  const state = scratch();
  const update = (...more: string[]) => run(['update', '--source', remote, '--host', 'beta', '--target', home, '--state-dir', state, '--key', beta.path, ...more]);
  const outbox = join(state, 'outbox');
  const attestation = (sequence: number) => {
    const file = join(outbox, `beta-${String(sequence).padStart(6, '0')}.json`);
    const payload = readFileSync(file);
    const st = JSON.parse(payload.toString('utf8'));
    const at = st.predicate.issuedAt.replace(/[-:]/g, '').replace('T', '');
    const verified = sshKeygen(['-Y', 'verify', '-f', allowed, '-I', 'beta', '-n', 'dotfleet-attestation', '-s', `${file}.sig`, '-O', `verify-time=${at}`], payload);
    return { st, verified: verified.code === 0 };
  };

  it('applies the default branch from an isolated clone, runs the host tests, and attests SUCCESS', () => {
    // An uncommitted change in the source's working copy is not the fleet: update never sees it.
    writeFileSync(join(remote, 'home', 'dot_zshrc.hbs'), 'uncommitted\n');
    const r = update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/updated .* to [0-9a-f]{12}: no drift, \d+ tool requirement\(s\) met, 1 of 1 host test\(s\) passed/);
    expect(readFileSync(join(home, '.zshrc'), 'utf8')).toBe('export USER=robin\n');
    const { st, verified } = attestation(1);
    expect(verified).toBe(true);
    expect(st.predicate).toMatchObject({ host: 'beta', status: 'SUCCESS', drift: [], tests: [{ name: 'T10-zshrc.sh', status: 'pass', output: 'zshrc ok\n' }] });
    spawnSync('git', ['checkout', '--', '.'], { cwd: remote });
    expect(update().stdout).toMatch(/^up to date: /);
  });

  it('rolls back a configuration whose host test fails, and attests FAILED with the reason; ssh-keygen accepts it', () => {
    const before = readFileSync(join(home, '.zshrc'), 'utf8');
    const bad = commit(remote, {
      'home/dot_zshrc.hbs': 'export USER={{user}}\nexport BROKEN=1\n',
      'hosts/beta/tests/T20-not-broken.sh': 'if grep -q BROKEN "$HOME/.zshrc"; then echo "zshrc is broken" >&2; exit 1; fi\n',
    });
    const r = update();
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('test T20-not-broken.sh failed: zshrc is broken');
    expect(r.stderr).toContain(`the update to ${bad.slice(0, 12)} failed validation and was rolled back`);
    expect(readFileSync(join(home, '.zshrc'), 'utf8')).toBe(before);
    const { st, verified } = attestation(2);
    expect(verified).toBe(true);
    expect(st.predicate).toMatchObject({ appliedCommit: bad, status: 'FAILED' });
    expect(st.predicate.tests).toEqual([
      expect.objectContaining({ name: 'T10-zshrc.sh', status: 'pass' }),
      expect.objectContaining({ name: 'T20-not-broken.sh', status: 'fail', output: 'zshrc is broken\n' }),
    ]);
    // The rollback left the home as the last good apply recorded it: no drift against that commit.
    expect(run(['drift', '--repo', join(state, 'beta', 'checkout'), '--ref', 'HEAD~1', '--host', 'beta', '--target', home, '--state-dir', state, '--exit-code']).code).toBe(0);
  });

  it('a fix on the branch updates again; the outbox holds every attestation until it is sent', () => {
    commit(remote, { 'home/dot_zshrc.hbs': 'export USER={{user}}\n# fixed\n' });
    const r = update();
    expect(r.code).toBe(0);
    expect(attestation(3).st.predicate.status).toBe('SUCCESS');
    expect(readdirSync(outbox).filter((f) => f.endsWith('.json'))).toHaveLength(3);
  });

  it('a test that hangs is killed at --test-timeout and fails', () => {
    commit(remote, { 'hosts/beta/tests/T30-hangs.sh': 'echo start; sleep 30\n', 'home/dot_zshrc.hbs': 'export USER={{user}}\n# again\n' });
    const t0 = Date.now();
    const r = update('--test-timeout', '1');
    expect(r.code).toBe(6);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.stderr).toContain('test T30-hangs.sh failed: (killed after 1 s)');
  });

  it('an update killed while it validates is rolled back at the next start, then done again', async () => {
    const good = readFileSync(join(home, '.zshrc'), 'utf8');
    commit(remote, { 'hosts/beta/tests/T30-hangs.sh': 'sleep 30\n', 'home/dot_zshrc.hbs': 'export USER={{user}}\n# third\n' });
    const child = spawn(process.execPath, [CLI, 'update', '--source', remote, '--host', 'beta', '--target', home, '--state-dir', state], { stdio: 'ignore' });
    // Wait until it applied and is running the tests (its journal names the snapshot), then kill it.
    const journal = join(state, 'beta', 'update.json');
    for (let i = 0; i < 200 && !(existsSync(journal) && readFileSync(journal, 'utf8').includes('"snapshot":"')); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(readFileSync(join(home, '.zshrc'), 'utf8')).toContain('# third');
    commit(remote, { 'hosts/beta/tests/T30-hangs.sh': null });
    const r = update();
    expect(r.stderr).toMatch(/an update to [0-9a-f]{12} was cut off before it was validated: rolled back/);
    expect(r.code).toBe(0);
    expect(readFileSync(join(home, '.zshrc'), 'utf8')).toBe('export USER=robin\n# third\n');
    expect(good).not.toContain('# third');
  });

  it('dotfleet attest reports the real drift of what was applied', () => {
    writeFileSync(join(home, '.zshrc'), 'edited by hand\n');
    const out = scratch();
    const r = run(['attest', '--repo', join(state, 'beta', 'checkout'), '--host', 'beta', '--key', beta.path, '--state-dir', state, '--out', out, '--sequence', '99']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('1 path drifted (dotfleet drift lists them): the attestation says so');
    const st = JSON.parse(readFileSync(join(out, 'beta-000099.json'), 'utf8'));
    expect(st.predicate).toMatchObject({ status: 'PARTIAL', drift: [{ path: '.zshrc', type: 'modified' }] });
  });
});

describe('dotfleet agent', () => {
  const remote = gitRepo(new Map([...miniFleet({ files: { 'dot_zshrc.hbs': 'export USER={{user}}\n' } }), ['hosts/beta/tests/T10.sh', Buffer.from('test -f "$HOME/.zshrc"\n')]]));
  const home = scratch();
  const state = scratch();
  const agent = (...more: string[]) => ['agent', '--source', remote, '--host', 'beta', '--target', home, '--state-dir', state, ...more];

  it('--check says what it would do and changes nothing; --once does it', () => {
    const check = run(agent('--check'));
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/^update pending: nothing applied → [0-9a-f]{12}$/m);
    expect(readdirSync(home)).toEqual([]);
    const once = run(agent('--once'));
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ beta: [0-9a-f]{12} on the branch \(was nothing applied\): updating$/m);
    expect(once.stdout).toMatch(/beta: updated to [0-9a-f]{12}$/m);
    expect(run(agent('--check'))).toMatchObject({ code: 0, stdout: expect.stringMatching(/^up to date at [0-9a-f]{12}\n$/) });
    // Nothing moved: a poll does nothing and says nothing.
    expect(run(agent('--once'))).toMatchObject({ code: 0, stdout: '' });
  });

  it('polls on its interval, updates when the branch moves, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, ...agent('--interval', '1s')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    const until = async (re: RegExp) => {
      for (let i = 0; i < 300 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toMatch(re);
    };
    await until(/agent started: following the default branch of .* every 1s/);
    const next = commit(remote, { 'home/dot_zshrc.hbs': 'export USER={{user}}\n# moved\n' });
    await until(new RegExp(`beta: updated to ${next.slice(0, 12)}`));
    expect(readFileSync(join(home, '.zshrc'), 'utf8')).toContain('# moved');
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
    expect(out).toMatch(/beta: agent stopped\n$/);
    expect(JSON.parse(readFileSync(join(state, 'beta', 'agent.json'), 'utf8'))).toMatchObject({ lastCommit: next, lastOutcome: 'updated' });
  }, 60_000);
});

describe('the agent service files (contrib/)', () => {
  const help = run(['agent', '--help']).stdout;
  it.each([
    ['systemd user unit', 'contrib/systemd/dotfleet-agent.service', (t: string) => /^ExecStart=\S+ (agent .*)$/m.exec(t)![1]!.split(' ')],
    ['launchd plist', 'contrib/launchd/org.dotfleet.agent.plist', (t: string) => [...t.matchAll(/<string>([^<]*)<\/string>/g)].map((m) => m[1]!).slice(2)],
  ])('the %s runs dotfleet agent with options it has', (_n, file, args) => {
    const argv = (args as (t: string) => string[])(readFileSync(join(PROJECT_ROOT, file), 'utf8'));
    expect(argv).toContain('agent');
    for (const a of argv.filter((x) => x.startsWith('--'))) expect([a, help.includes(`${a} `)]).toEqual([a, true]);
  });

  it('the plist is a valid property list', () => {
    const r = spawnSync('python3', ['-c', 'import plistlib,sys; d=plistlib.load(open(sys.argv[1],"rb")); print(d["Label"])', join(PROJECT_ROOT, 'contrib/launchd/org.dotfleet.agent.plist')], { encoding: 'utf8' });
    expect(r.stdout).toBe('org.dotfleet.agent\n');
  });
});
