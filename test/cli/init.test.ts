import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git, PROJECT_ROOT } from '../helpers/fleet.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const PRESETS = ['mac-laptop', 'mac-desktop', 'linux-laptop', 'linux-desktop', 'linux-server'];

/** A scratch HOME (no key, no git identity of the user's) so a run sees only what the test gives it. */
const home = mkdtempSync(join(tmpdir(), 'dotfleet-init-home-'));
function dotfleet(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', DISPLAY: '', WAYLAND_DISPLAY: '', XDG_CURRENT_DESKTOP: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const scratch = () => mkdtempSync(join(tmpdir(), 'dotfleet-init-'));
const commitAll = (repo: string) => {
  git(repo, 'add', '-A');
  git(repo, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false', 'commit', '-qm', 'fleet: start');
};

describe('dotfleet init', () => {
  it('writes a fleet that renders, lints clean and diffs clean, with this host, its key and the workflow', () => {
    const dir = join(scratch(), 'fleet');
    const key = join(home, 'id_test');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'x', '-f', key]);
    const r = dotfleet(tmpdir(), 'init', dir, '--host', 'falcon', '--preset', 'linux-desktop', '--platform', 'linux', '--key', key, '--name', 'Ann "Q" O\'Neil', '--email', 'ann@example.org', '--action', 'acme/dotfleet/action@v1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^A new fleet in .*: host falcon \(linux-desktop, linux\) renders 6 files; its key .*id_test\.pub is in fleet\/allowed_signers\./);
    // A git repository, nothing committed: the first commit is the owner's.
    expect(existsSync(join(dir, '.git'))).toBe(true);
    expect(spawnSync('git', ['rev-parse', '--verify', '-q', 'HEAD'], { cwd: dir }).status).not.toBe(0);
    expect(readFileSync(join(dir, '.github/workflows/dotfleet.yml'), 'utf8')).toContain('uses: acme/dotfleet/action@v1');
    const pub = readFileSync(`${key}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    expect(readFileSync(join(dir, 'fleet/allowed_signers'), 'utf8')).toContain(`falcon namespaces="dotfleet-attestation" ${pub} id_test`);
    const lint = dotfleet(dir, 'signers', 'lint');
    expect([lint.code, lint.stdout.trim()]).toEqual([0, '1 key, 0 errors, 0 warnings']);
    expect(dotfleet(dir, 'secrets', 'check').code).toBe(0);
    const render = dotfleet(dir, 'render', '--host', 'falcon', '--out', join(dir, '..', 'out'));
    expect(render.code).toBe(0);
    const gitconfig = readFileSync(join(dir, '..', 'out', '.gitconfig'), 'utf8');
    // The name goes through TOML and the template unchanged: quotes and apostrophes included.
    expect(gitconfig).toContain('\tname = Ann "Q" O\'Neil\n\temail = ann@example.org\n');
    expect(gitconfig).toContain('helper = cache');
    expect(readdirSync(join(dir, '..', 'out')).sort()).toEqual(['.config', '.editorconfig', '.gitconfig', '.profile', '.tmux.conf', '.zprofile']);
    commitAll(dir);
    const diff = dotfleet(dir, 'diff', '--base', 'HEAD', '--exit-code');
    expect([diff.code, diff.stdout.split('\n')[0]]).toEqual([0, '0 of 1 host change']);
  });

  it('renders without error for every preset on both platforms, and macOS gets its own lines', () => {
    for (const preset of PRESETS) {
      for (const platform of ['darwin', 'linux']) {
        const dir = join(scratch(), 'f');
        const r = dotfleet(tmpdir(), 'init', dir, '--host', `h-${preset}`, '--preset', preset, '--platform', platform, '--no-key', '--no-git');
        expect([preset, platform, r.code, r.stderr]).toEqual([preset, platform, 0, '']);
        expect(existsSync(join(dir, '.git'))).toBe(false);
        git(dir, 'init', '-q');
        const out = join(dir, '..', 'out');
        expect(dotfleet(dir, 'render', '--host', `h-${preset}`, '--out', out).code).toBe(0);
        expect(readFileSync(join(out, '.gitconfig'), 'utf8')).toContain(platform === 'darwin' ? 'helper = osxkeychain' : 'helper = cache');
        expect(existsSync(join(out, '.editorconfig'))).toBe(preset !== 'linux-server');
      }
    }
  });

  it('guesses without a terminal and says what it guessed and what is missing', () => {
    const dir = join(scratch(), 'f');
    const r = dotfleet(tmpdir(), 'init', dir, '--host', 'box', '--platform', 'linux');
    expect(r.code).toBe(0);
    // No battery in /sys on a build machine is not guaranteed: the guess is one of the Linux presets, and said.
    expect(r.stdout).toMatch(/note: preset linux-(laptop|desktop|server) guessed for box \(pass --preset to choose: mac-laptop, mac-desktop, linux-laptop, linux-desktop, linux-server\)/);
    expect(r.stdout).toContain('note: no ~/.ssh/id_ed25519.pub: fleet/allowed_signers has no key for box yet');
    expect(r.stdout).toContain('note: user.name and user.email are placeholders');
    expect(r.stdout).toContain('note: .github/workflows/dotfleet.yml uses OWNER/dotfleet/action@main');
    expect(readFileSync(join(dir, 'home/.chezmoidata.toml'), 'utf8')).toContain('name = "Your Name"');
  });

  it('quotes a host name with a dot in the inventory (a bare dot would nest tables)', () => {
    const dir = join(scratch(), 'f');
    const r = dotfleet(tmpdir(), 'init', dir, '--host', 'web.1', '--preset', 'linux-server', '--platform', 'linux', '--no-key');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'fleet/hosts.toml'), 'utf8')).toContain('[hosts."web.1"]');
    expect(dotfleet(dir, 'hosts').stdout).toMatch(/web\.1\s+linux-server\s+linux\s+1/);
  });

  it('refuses a directory that holds anything, or a repository with commits, and touches nothing', () => {
    const full = scratch();
    writeFileSync(join(full, 'notes.txt'), 'mine\n');
    let r = dotfleet(tmpdir(), 'init', full, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`dotfleet: error: ${full}: the directory is not empty (notes.txt): dotfleet init writes a new fleet repository and never overwrites`);
    expect(readdirSync(full)).toEqual(['notes.txt']);
    const repo = scratch();
    git(repo, 'init', '-q');
    writeFileSync(join(repo, 'x'), 'x');
    commitAll(repo);
    execFileSync('rm', [join(repo, 'x')]);
    r = dotfleet(tmpdir(), 'init', repo, '--yes');
    expect([r.code, r.stderr]).toEqual([2, expect.stringContaining('a git repository with commits')]);
    // An empty clone (only .git, no commit) is a new repository: fine.
    const empty = scratch();
    git(empty, 'init', '-q');
    r = dotfleet(tmpdir(), 'init', empty, '--yes', '--host', 'a', '--preset', 'mac-laptop', '--platform', 'darwin');
    expect(r.code).toBe(0);
    const file = join(scratch(), 'file');
    writeFileSync(file, '');
    expect(dotfleet(tmpdir(), 'init', file, '--yes').stderr).toContain(`${file}: not a directory`);
    // Under a file: one line naming it, no stack trace.
    r = dotfleet(tmpdir(), 'init', join(file, 'fleet'), '--yes');
    expect([r.code, r.stderr]).toEqual([2, `dotfleet: error: ${join(file, 'fleet')}: cannot use this path (ENOTDIR)\n  hint: name a new or empty directory you can write to\n`]);
  });

  it('refuses a bad preset, host name, platform or key by name, before writing anything', () => {
    const base = scratch();
    const cases: [string[], string][] = [
      [['--preset', 'pentium'], '--preset pentium is not a preset of the new fleet\n  hint: one of: mac-laptop, mac-desktop, linux-laptop, linux-desktop, linux-server'],
      [['--host', '-x'], '--host "-x" is not a host name'],
      [['--platform', 'windows'], '--platform windows is not darwin or linux'],
      [['--key', join(base, 'missing')], `${join(base, 'missing.pub')}: cannot read this public key`],
    ];
    mkdirSync(join(base, 'k'));
    writeFileSync(join(base, 'k', 'bad.pub'), 'ssh-ed25519 AAAAnotakey\n');
    cases.push([['--key', join(base, 'k', 'bad.pub')], `${join(base, 'k', 'bad.pub')}: not an SSH public key`]);
    for (const [args, message] of cases) {
      const dir = join(base, 'f');
      const r = dotfleet(tmpdir(), 'init', dir, '--yes', ...args);
      expect([args, r.code, r.stderr]).toEqual([args, 2, expect.stringContaining(message)]);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(dir)).toBe(false);
    }
  });
});
