/**
 * dotfleet fleet attest, sync and drift against a real sshd on 127.0.0.1 started by the test
 * (Debian's openssh-server; .ci/run installs it), with one host whose port nothing listens on.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gitRepo, miniFleet, PROJECT_ROOT } from '../helpers/fleet.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const SSHD = '/usr/sbin/sshd';
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const c = connect(port, '127.0.0.1', () => {
      c.end();
      resolve(true);
    }).on('error', () => resolve(false));
  });

describe('the fleet verbs over SSH, against a real sshd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dotfleet-sshd-'));
  const keygen = (file: string, comment: string) => spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  let sshd: ChildProcess;
  let port = 0;
  let closed = 0;
  let repo = '';
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ssh = () => [
    '--repo', repo,
    '--remote-dotfleet', `env HOME=${dir}/homes/{host} XDG_STATE_HOME=${dir}/state/{host} NO_COLOR=1 ${process.execPath} ${CLI}`,
    '--remote-repo', repo,
    '--remote-key', `${dir}/keys/{host}`,
    '--ssh-option', `IdentityFile=${dir}/client`,
    '--ssh-option', 'StrictHostKeyChecking=no',
    '--ssh-option', 'UserKnownHostsFile=/dev/null',
    '--ssh-option', 'LogLevel=ERROR',
    '--timeout', '60',
  ];

  beforeAll(async () => {
    expect([SSHD, spawnSync(SSHD, ['-V']).error === undefined]).toEqual([SSHD, true]);
    mkdirSync(join(dir, 'keys'));
    keygen(join(dir, 'hostkey'), 'host');
    keygen(join(dir, 'client'), 'client');
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')));
    for (const h of ['alpha', 'beta', 'gamma']) {
      keygen(join(dir, 'keys', h), h);
      mkdirSync(join(dir, 'homes', h), { recursive: true });
    }
    port = await freePort();
    closed = await freePort();
    if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/hostkey`, `PidFile ${dir}/sshd.pid`, `AuthorizedKeysFile ${dir}/authorized_keys`, 'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', 'PermitRootLogin prohibit-password', 'LogLevel ERROR', ''].join('\n'),
    );
    sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 50));
    const pub = (h: string) => readFileSync(join(dir, 'keys', `${h}.pub`), 'utf8').trim();
    const hosts = ['alpha', 'beta', 'gamma']
      .map((h) => [`[hosts.${h}]`, 'machine = "server"', 'platform = "linux"', 'wave = 1', 'ssh_host = "127.0.0.1"', `ssh_port = ${h === 'gamma' ? closed : port}`, ''].join('\n'))
      .join('\n');
    const tree = new Map(miniFleet({ hosts, files: { 'dot_zshrc.hbs': '# {{host.name}}\n' } }));
    tree.set('fleet/allowed_signers', Buffer.from(['alpha', 'beta', 'gamma'].map((h) => `${h} namespaces="dotfleet-attestation" ${pub(h)}`).join('\n') + '\n'));
    repo = gitRepo(tree);
  }, 60_000);

  afterAll(() => {
    sshd?.kill();
  });

  it('fleet attest: every reachable host attests over SSH, each verified here; the unreachable one is named and the rest carry on', () => {
    const r = run(['fleet', 'attest', ...ssh()]);
    // Nothing was applied on the hosts yet: each line says their attestation could not check drift.
    expect(r.stdout).toMatch(/^alpha {2}SUCCESS at [0-9a-f]{7}, verified \(SHA256:\S+\) · drift not checked: no apply recorded on the host$/m);
    expect(r.stdout).toMatch(/^beta {3}SUCCESS at [0-9a-f]{7}, verified \(SHA256:/m);
    expect(r.stdout).toMatch(new RegExp(`^gamma  unreachable: connect to host 127\\.0\\.0\\.1 port ${closed}: Connection refused$`, 'm'));
    expect(r.stdout).toContain('FLEET STATUS: 2/3 aligned; no drift; 1 not reached (gamma)');
    expect(r.stdout).toMatch(/^✓ alpha +[0-9a-f]{7} +matches +yes +none +yes/m);
    expect(r.stdout).toMatch(/^✗ gamma +— /m);
    expect(r.code).toBe(1);
  });

  it('fleet sync updates every host; fleet drift then sees none; a change on a host shows', () => {
    const sync = run(['fleet', 'sync', '--source', repo, ...ssh()]);
    expect(sync.stdout).toMatch(/^alpha {2}updated .* to [0-9a-f]{12}/m);
    expect(sync.stdout).toMatch(/^beta {3}updated /m);
    expect(sync.stdout).toMatch(/^gamma  unreachable: /m);
    expect(sync.stdout).toContain('2/3 hosts updated or up to date; 1 failed or not reached');
    expect(readFileSync(join(dir, 'homes', 'alpha', '.zshrc'), 'utf8')).toBe('# alpha\n');
    writeFileSync(join(dir, 'homes', 'beta', '.zshrc'), 'edited on beta\n');
    const drift = run(['fleet', 'drift', ...ssh(), 'alpha', 'beta']);
    expect(drift.stdout).toMatch(/^alpha {2}no drift$/m);
    expect(drift.stdout).toMatch(/^beta {3}1 path: modified \.zshrc$/m);
    expect(drift.stdout).toContain('2/2 hosts reached; 1 with drift');
    expect(drift.code).toBe(1);
    // The drift travels in beta's attestation: beta is no longer aligned.
    const attest = run(['fleet', 'attest', ...ssh(), 'alpha', 'beta']);
    expect(attest.stdout).toMatch(/^alpha {2}SUCCESS at [0-9a-f]{7}, verified \(SHA256:\S+\)$/m);
    expect(attest.stdout).toMatch(/^beta {3}PARTIAL at [0-9a-f]{7}, verified/m);
    expect(attest.stdout).toContain('FLEET STATUS: 1/2 aligned; drift on beta');
  });
});
