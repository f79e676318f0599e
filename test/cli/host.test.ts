/**
 * dotfleet drift, apply and rollback, run as a user runs them (the built CLI, a child process)
 * against a real temporary home directory and a real git repository.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commit, gitRepo, miniFleet, PROJECT_ROOT, treeOf } from '../helpers/fleet.js';
import { rng } from '../helpers/generate.js';
import * as age from 'age-encryption';
import YAML from 'yaml';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const run = (args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', ...opts, env: { ...process.env, NO_COLOR: '1', ...opts.env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const scratch = () => mkdtempSync(join(tmpdir(), 'dotfleet-home-'));

/** Everything under a directory: kind, mode, bytes or link target (what "exactly" means below). */
function listing(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[p] = `link -> ${readlinkSync(join(root, p))}`;
      else if (st.isDirectory()) {
        out[p] = `dir ${mode}`;
        walk(p);
      } else out[p] = `file ${mode} ${readFileSync(join(root, p)).toString('base64')}`;
    }
  };
  walk('');
  return out;
}

const fleetFiles = {
  'dot_zshrc.hbs': 'export USER={{user}}\n# {{host.name}}\n',
  'dot_local/bin/executable_hello': '#!/bin/sh\necho hello\n',
  'private_dot_ssh/config': 'Host *\n  IdentitiesOnly yes\n',
  'dot_config/app/settings.toml': 'a = 1\n',
  'symlink_dot_vimrc': '.config/app/settings.toml\n',
};

/** A fresh home and state directory for host beta of `repo`, and the arguments of a host command there. */
function hostSetup(repo: string = gitRepo(miniFleet({ files: fleetFiles }))) {
  const home = scratch();
  const state = scratch();
  const args = (cmd: string, ...more: string[]) => [cmd, '--repo', repo, '--host', 'beta', '--target', home, '--state-dir', state, ...more];
  return { repo, home, state, args };
}

describe('dotfleet apply, drift and rollback in a real home directory', () => {
  const repo = gitRepo(miniFleet({ files: fleetFiles }));
  const setup = () => hostSetup(repo);

  it('writes every file, mode and link, and then sees no drift; a second apply writes nothing', () => {
    const { home, state, args } = setup();
    const r = run(args('apply'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/applied [0-9a-f]{12} to .*: \d+ written, 0 removed · snapshot \d{6}-\d{8}T\d{6}Z/);
    const l = listing(home);
    expect(l['.zshrc']).toBe(`file 644 ${Buffer.from('export USER=robin\n# beta\n').toString('base64')}`);
    expect(l['.local/bin/hello']).toMatch(/^file 755 /);
    expect(l['.ssh']).toBe('dir 700');
    expect(l['.vimrc']).toBe('link -> .config/app/settings.toml');
    expect(run(args('drift', '--exit-code'))).toMatchObject({ code: 0, stdout: 'no drift\n' });
    const again = run(args('apply'));
    expect(again.stdout).toMatch(/^nothing to do: /);
    expect(readdirSync(join(state, 'beta', 'snapshots'))).toHaveLength(1);
    expect(listing(home)).toEqual(l);
  });

  it('reports the five drift types, and tells a change here from a change in the source', () => {
    const { home, args } = setup();
    const repo2 = gitRepo(miniFleet({ files: { ...fleetFiles, 'dot_gone': 'bye\n' } }));
    const args2 = (cmd: string, ...more: string[]) => args(cmd, ...more).map((a) => (a === repo ? repo2 : a));
    expect(run(args2('apply')).code).toBe(0);
    // Here: a file edited, a mode changed, a link re-pointed, a file deleted.
    writeFileSync(join(home, '.zshrc'), 'edited\n');
    chmodSync(join(home, '.local/bin/hello'), 0o700);
    rmSync(join(home, '.vimrc'));
    symlinkSync('/etc/hostname', join(home, '.vimrc'));
    rmSync(join(home, '.ssh/config'));
    // In the source: a file no longer rendered (still on disk: unmanaged), one changed.
    commit(repo2, { 'home/dot_gone': null, 'home/dot_config/app/settings.toml': 'a = 2\n' }, 'source changes');
    const r = run(args2('drift', '--json', '--exit-code'));
    expect(r.code).toBe(1);
    const items = JSON.parse(r.stdout) as { path: string; type: string; local: boolean; source: boolean; managed: boolean }[];
    const by = Object.fromEntries(items.map((d) => [d.path, d]));
    expect(by['.zshrc']).toMatchObject({ type: 'modified', local: true, source: false, managed: true });
    expect(by['.local/bin/hello']).toMatchObject({ type: 'permission', local: true, source: false });
    expect(by['.vimrc']).toMatchObject({ type: 'symlink', local: true, source: false });
    expect(by['.ssh/config']).toMatchObject({ type: 'missing', local: true, source: false });
    expect(by['.gone']).toMatchObject({ type: 'unmanaged', local: false, source: true, managed: true });
    expect(by['.config/app/settings.toml']).toMatchObject({ type: 'modified', local: false, source: true });
    expect(items).toHaveLength(6);
    const table = run(args2('drift')).stdout;
    expect(table).toMatch(/^\.zshrc\s+modified\s+changed here\s+content differs$/m);
    expect(table).toMatch(/^\.config\/app\/settings\.toml\s+modified\s+source changed\s+content differs$/m);
    expect(table).toMatch(/^\.gone\s+unmanaged\s+source changed\s+/m);

    // The local changes are refused, whole: nothing is written, not even the source's changes.
    const before = listing(home);
    const refused = run(args2('apply'));
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain('.zshrc was changed here since the last apply');
    expect(refused.stderr).toContain('nothing was written: 3 paths would lose what is there now');
    // A missing file loses nothing: it is not among them.
    expect(refused.stderr).not.toContain('.ssh/config');
    expect(listing(home)).toEqual(before);
    // --force takes them, removes what the source dropped, and rollback puts everything back.
    const forced = run(args2('apply', '--force'));
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('removed  .gone');
    expect(existsSync(join(home, '.gone'))).toBe(false);
    expect(run(args2('drift', '--exit-code')).code).toBe(0);
    const back = run(['rollback', '--host', 'beta', '--target', home, '--state-dir', args2('x')[8]!]);
    expect(back.stderr).toBe('');
    expect(listing(home)).toEqual(before);
  });

  it('refuses to replace a file it never wrote, unless forced; the forced apply is undone exactly', () => {
    const { home, state, args } = setup();
    writeFileSync(join(home, '.zshrc'), 'mine\n', { mode: 0o640 });
    mkdirSync(join(home, '.config'));
    writeFileSync(join(home, '.config/unrelated'), 'not dotfleet\n');
    const before = listing(home);
    const r = run(args('apply'));
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('.zshrc is a file dotfleet never wrote (move it away, or pass --force to replace it)');
    expect(listing(home)).toEqual(before);
    const drift = run(args('drift', '--json')).stdout;
    expect(drift).toContain('"managed": false');
    // A path dotfleet never wrote and the source does not render is none of its business.
    expect(drift).not.toContain('unrelated');
    expect(run(args('apply', '--force')).code).toBe(0);
    expect(readFileSync(join(home, '.zshrc'), 'utf8')).toBe('export USER=robin\n# beta\n');
    expect(readFileSync(join(home, '.config/unrelated'), 'utf8')).toBe('not dotfleet\n');
    const list = run(['rollback', '--host', 'beta', '--target', home, '--state-dir', state, '--list']);
    expect(list.stdout).toMatch(/^000001-\d{8}T\d{6}Z  before applying [0-9a-f]{12}  \d+ paths  \(then: nothing applied\)$/m);
    const back = run(['rollback', '--host', 'beta', '--target', home, '--state-dir', state]);
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('rolled back 1 apply');
    expect(listing(home)).toEqual(before);
    // Nothing applied any more: the record went with it.
    expect(run(args('drift', '--json')).stdout).not.toContain('"managed": true');
  });

  it('rolls back several applies at once with --to, bytes, modes and links exactly', () => {
    const { home, state, args } = setup();
    const repo3 = gitRepo(miniFleet({ files: fleetFiles }));
    const a = (cmd: string, ...more: string[]) => args(cmd, ...more).map((x) => (x === repo ? repo3 : x));
    const empty = listing(home);
    expect(run(a('apply')).code).toBe(0);
    const first = listing(home);
    commit(repo3, { 'home/symlink_dot_vimrc': '.zshrc\n', 'home/private_dot_ssh/config': null, 'home/dot_new': 'new\n' });
    expect(run(a('apply')).code).toBe(0);
    commit(repo3, { 'home/dot_local/bin/executable_hello': null, 'home/dot_local/bin/hello': '#!/bin/sh\necho hi\n' });
    expect(run(a('apply')).code).toBe(0);
    expect(listing(home)['.local/bin/hello']).toMatch(/^file 644 /);
    const ids = run(['rollback', '--host', 'beta', '--target', home, '--state-dir', state, '--list']).stdout.trim().split('\n').map((l) => l.split(' ')[0]!);
    expect(ids).toHaveLength(3);
    // Undo the last two: back to the first apply.
    expect(run(['rollback', '--host', 'beta', '--target', home, '--state-dir', state, '--to', ids[1]!]).code).toBe(0);
    expect(listing(home)).toEqual(first);
    expect(run(a('drift', '--json', '--ref', 'HEAD~2')).stdout.trim()).toBe('[]');
    expect(run(['rollback', '--host', 'beta', '--target', home, '--state-dir', state]).code).toBe(0);
    expect(listing(home)).toEqual(empty);
    expect(run(['rollback', '--host', 'beta', '--target', home, '--state-dir', state]).stderr).toContain('nothing to roll back');
  });

  it('undoes the steps already taken when the file system refuses one midway', () => {
    const { home, state, args } = setup();
    // .zshrc is a directory with a file in it: --force takes it, but it cannot be replaced by a file.
    mkdirSync(join(home, '.zshrc'));
    writeFileSync(join(home, '.zshrc', 'keep'), 'mine\n');
    const before = listing(home);
    const r = run(args('apply', '--force'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot write .*\.zshrc: is a directory that is not empty; the apply was undone, every path is as it was before it/);
    expect(r.stdout).toContain('wrote    .config/app/settings.toml');
    expect(listing(home)).toEqual(before);
    expect(existsSync(join(state, 'beta', 'journal.json'))).toBe(false);
    expect(existsSync(join(state, 'beta', 'applied.json'))).toBe(false);
  });

  it('names the state file it cannot write', () => {
    const { home, args } = setup();
    const blocked = join(scratch(), 'file');
    writeFileSync(blocked, 'not a directory\n');
    const r = run(args('apply').map((a, i, all) => (all[i - 1] === '--state-dir' ? blocked : a)));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^dotfleet: error: cannot (read|write the state file|make the snapshot directory) .*file\/beta\/.*: (a parent is not a directory|something is in the way)$/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(home)).toEqual([]);
  });

  it('never writes through a link: a symlinked parent directory is refused, and nothing outside the target changes', () => {
    const { home, args } = setup();
    const outside = scratch();
    symlinkSync(outside, join(home, '.config'));
    const r = run(args('apply', '--force'));
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/\.config\/app is behind a link: \.config is a symbolic link; dotfleet never writes there/);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(home, '.zshrc'))).toBe(false);
  });

  it('never writes over a pipe where a file must go, not even with --force', () => {
    const { home, args } = setup();
    execFileSync('mkfifo', [join(home, '.zshrc')]);
    const r = run(args('apply', '--force'));
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/\.zshrc is a socket, device or pipe/);
    expect(lstatSync(join(home, '.zshrc')).isFIFO()).toBe(true);
    // Refused whole: nothing else was written (a listing would block reading the pipe).
    expect(readdirSync(home)).toEqual(['.zshrc']);
  });

  it('names the path when the file system says no', () => {
    const { home, state, args } = setup();
    // A file where a directory must be: refused, named; with --force it is replaced (and kept in the snapshot).
    writeFileSync(join(home, '.local'), 'a file\n');
    const r = run(args('apply'));
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('dotfleet: .local is a file dotfleet never wrote');
    expect(run(args('apply', '--force')).code).toBe(0);
    expect(lstatSync(join(home, '.local')).isDirectory()).toBe(true);
    // A directory this user cannot write (run as nobody when the suite runs as root).
    const home2 = scratch();
    const state2 = scratch();
    // .ssh belongs to someone else (root, when the suite runs as root and the apply as nobody).
    mkdirSync(join(home2, '.ssh'), { mode: 0o500 });
    // Another user's repository is "dubious" to git unless said safe.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534, env: { HOME: home2, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'safe.directory', GIT_CONFIG_VALUE_0: '*' } } : {};
    if (asUser.uid) {
      for (const d of [home2, state2]) chownSync(d, 65534, 65534);
      chmodSync(repo, 0o755);
    }
    const denied = run(['apply', '--repo', repo, '--host', 'beta', '--target', home2, '--state-dir', state2, '--force'], asUser);
    expect(denied.stderr).toMatch(new RegExp(`^dotfleet: error: cannot (read|write|snapshot|set the mode of|make the directory) ${home2.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\.ssh.*: permission denied`));
    expect(denied.code).toBe(2);
    void state;
  });
});

describe('snapshots and paths', () => {
  it('keeps the newest 10 snapshots, oldest pruned first', () => {
    const repo = gitRepo(miniFleet({ files: { 'dot_counter': '0\n' } }));
    const home = scratch();
    const state = scratch();
    for (let i = 1; i <= 12; i++) {
      if (i > 1) commit(repo, { 'home/dot_counter': `${i}\n` });
      expect(run(['apply', '--repo', repo, '--host', 'beta', '--target', home, '--state-dir', state]).code).toBe(0);
    }
    const ids = readdirSync(join(state, 'beta', 'snapshots')).sort();
    expect(ids).toHaveLength(10);
    expect(ids[0]).toMatch(/^000003-/);
    expect(ids[9]).toMatch(/^000012-/);
  });

  it('a damaged snapshot manifest is named, never deleted along with its files', () => {
    const { home, state, args } = hostSetup();
    // The user's own .zshrc, replaced with --force: the snapshot holds its only copy.
    writeFileSync(join(home, '.zshrc'), 'mine\n');
    expect(run(args('apply', '--force')).code).toBe(0);
    const [id] = readdirSync(join(state, 'beta', 'snapshots'));
    writeFileSync(join(state, 'beta', 'snapshots', id!, 'manifest.json'), '{ damaged');
    const r = run(['rollback', '--host', 'beta', '--target', home, '--state-dir', state, '--list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^dotfleet: error: .*snapshots/${id}/manifest\\.json is not valid JSON`, 'm'));
    expect(readFileSync(join(state, 'beta', 'snapshots', id!, 'files', readdirSync(join(state, 'beta', 'snapshots', id!, 'files'))[0]!), 'utf8')).toBe('mine\n');
  });

  it('refuses a path that is absolute, empty, or climbs out with ..', async () => {
    const { checkRelative, Home } = await import('../../src/host/home.js');
    for (const bad of ['/etc/passwd', '../outside', 'a/../../b', 'a//b', './a', 'a/.', '', 'a\0b']) {
      expect(() => checkRelative(bad)).toThrow(/must stay inside the target directory/);
      expect(() => new Home('/tmp/h').abs(bad)).toThrow(/must stay inside the target directory/);
    }
    expect(new Home('/tmp/h').abs('.config/a..b/c')).toBe('/tmp/h/.config/a..b/c');
  });
});

describe('drift without a render', () => {
  it('gives the same answer from the record of an apply of the same commit as from a render', () => {
    const { repo, home, state, args } = hostSetup();
    expect(run(args('apply')).code).toBe(0);
    writeFileSync(join(home, '.zshrc'), 'edited\n');
    chmodSync(join(home, '.local/bin/hello'), 0o700);
    rmSync(join(home, '.ssh/config'));
    rmSync(join(home, '.vimrc'));
    symlinkSync('/etc/hostname', join(home, '.vimrc'));
    const fromRecord = run(args('drift', '--json'));
    // The record without the dotfleet that wrote it: drift renders the commit again.
    const file = join(state, 'beta', 'applied.json');
    const record = JSON.parse(readFileSync(file, 'utf8'));
    expect(record.agent).toMatch(/^dotfleet\/\d/);
    delete record.agent;
    writeFileSync(file, JSON.stringify(record));
    const fromRender = run(args('drift', '--json'));
    expect(JSON.parse(fromRecord.stdout)).toHaveLength(4);
    expect(fromRecord.stdout).toBe(fromRender.stdout);
  });
});

describe('dotfleet heal', () => {
  it('copies a plain file changed here back into the source, shows a template\'s difference with its lines, and writes nothing else', () => {
    const { repo, home, state, args } = hostSetup();
    expect(run(args('apply')).code).toBe(0);
    writeFileSync(join(home, '.config/app/settings.toml'), 'a = 1\nb = 2\n');
    writeFileSync(join(home, '.zshrc'), 'export USER=robin\n# beta\nalias ll="ls -l"\n');
    rmSync(join(home, '.vimrc'));
    symlinkSync('.zshrc', join(home, '.vimrc'));
    const zshrcTemplate = readFileSync(join(repo, 'home/dot_zshrc.hbs'), 'utf8');
    const r = run(args('heal'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('.config/app/settings.toml: changed here: wrote it to home/dot_config/app/settings.toml');
    expect(readFileSync(join(repo, 'home/dot_config/app/settings.toml'), 'utf8')).toBe('a = 1\nb = 2\n');
    expect(r.stdout).toContain('.vimrc: the link now points to .zshrc: wrote home/symlink_dot_vimrc');
    expect(readFileSync(join(repo, 'home/symlink_dot_vimrc'), 'utf8')).toBe('.zshrc\n');
    // The template is not touched: its difference is shown.
    expect(r.stdout).toContain('.zshrc: changed here, and it is rendered from the template home/dot_zshrc.hbs: nothing written');
    expect(r.stdout).toContain('+alias ll="ls -l"');
    expect(readFileSync(join(repo, 'home/dot_zshrc.hbs'), 'utf8')).toBe(zshrcTemplate);
    expect(r.stdout).toMatch(/review and commit it \(git -C .* diff\)/);
    // Committed, the plain file is no longer drift once applied.
    commit(repo, {}, 'keep local changes');
    expect(run(args('apply', '--force')).code).toBe(0);
    expect(readFileSync(join(home, '.config/app/settings.toml'), 'utf8')).toBe('a = 1\nb = 2\n');
    expect(run(args('heal')).stdout).toBe('nothing was changed here since the last apply\n');
  });
});

describe('an apply killed at random points', () => {
  // 300 files that all change between two commits: a kill lands in the middle of the writes.
  const N = 200;
  const files = (v: string) => Object.fromEntries(Array.from({ length: N }, (_, i) => [`home/dot_config/many/f${String(i).padStart(3, '0')}`, `${v} ${i}\n`.repeat(20)]));
  const repo = gitRepo(treeOf({ ...Object.fromEntries(miniFleet()), ...files('old') }));
  const oldCommit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
  const newCommit = commit(repo, files('new'), 'every file changes');
  const base = scratch();
  const args = (home: string, state: string, ref: string, cmd = 'apply') => [cmd, '--repo', repo, '--ref', ref, '--host', 'beta', '--target', home, '--state-dir', state];

  it('leaves every file old or new, and the next start puts the home back as a whole', async () => {
    // Every run works in the same paths (the record names its target), reset from pristine copies
    // of the home and state after applying the old commit.
    const home = join(base, 'run-home');
    const state = join(base, 'run-state');
    mkdirSync(home);
    expect(run(args(home, state, oldCommit)).code).toBe(0);
    const oldListing = listing(home);
    execFileSync('cp', ['-a', home, join(base, 'pristine-home')]);
    execFileSync('cp', ['-a', state, join(base, 'pristine-state')]);
    const reset = () => {
      rmSync(home, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
      execFileSync('cp', ['-a', join(base, 'pristine-home'), home]);
      execFileSync('cp', ['-a', join(base, 'pristine-state'), state]);
    };
    const random = rng(20261123);
    reset();
    // How long a whole apply of the new commit takes here, from spawn to exit.
    const t0 = Date.now();
    expect(run(args(home, state, newCommit)).code).toBe(0);
    const whole = Date.now() - t0;
    const newListing = listing(home);
    const tally = { killedMidway: 0, finished: 0, untouched: 0 };
    const RUNS = 50;
    for (let i = 0; i < RUNS; i++) {
      reset();
      // Most runs are killed when the apply has reported its K-th write (K at random), so the kill
      // lands among the writes however fast this machine is; the rest at a random time.
      const child = spawn(process.execPath, [CLI, ...args(home, state, newCommit)], { stdio: ['ignore', 'pipe', 'ignore'] });
      const afterWrites = i < 35 ? 1 + random(N - 20) : undefined;
      const delay = Math.floor(whole * (0.3 + 0.7 * (random(1000) / 1000)));
      const exited = await new Promise<boolean>((resolve) => {
        const kill = () => {
          child.kill('SIGKILL');
          resolve(false);
        };
        const timer = afterWrites === undefined ? setTimeout(kill, delay) : undefined;
        let writes = 0;
        child.stdout!.on('data', (b: Buffer) => {
          writes += b.toString('utf8').split('\n').filter((l) => l.startsWith('wrote')).length;
          if (afterWrites !== undefined && writes >= afterWrites) kill();
        });
        child.on('exit', (code) => {
          if (timer) clearTimeout(timer);
          resolve(code === 0);
        });
      });
      // Every file is whole: old or new, never partial, no temporary file left in its place.
      const l = listing(home);
      let news = 0;
      for (const [p, v] of Object.entries(l)) {
        if (p.startsWith('.config/many/.')) continue;
        expect([p, v === oldListing[p] || v === newListing[p]]).toEqual([p, true]);
        if (v === newListing[p] && v !== oldListing[p]) news++;
      }
      if (exited) tally.finished++;
      else if (news > 0 && news < N) tally.killedMidway++;
      else tally.untouched++;
      // The next start (any host command) finishes or undoes it: the home is old or new as a whole.
      const next = run(args(home, state, newCommit, 'drift'));
      expect(next.code).toBe(0);
      const after = listing(home);
      expect([i, JSON.stringify(after) === JSON.stringify(oldListing) || JSON.stringify(after) === JSON.stringify(newListing)]).toEqual([i, true]);
      // And the record agrees with the home: the next apply goes through without --force (checked
      // on every fifth run: each check is another process).
      if (i % 5 === 0) {
        expect(run(args(home, state, newCommit)).code).toBe(0);
        expect(listing(home)).toEqual(newListing);
      }
    }
    process.stdout.write(`apply killed at random: ${RUNS} runs, ${tally.killedMidway} cut off between files, ${tally.finished} finished, ${tally.untouched} before or after the writes\n`);
    expect(tally.killedMidway).toBeGreaterThanOrEqual(20);
  }, 600_000);
});

describe('apply with secrets, decrypted on the host', () => {
  it('decrypts in-process with the host\'s age key when sops is not installed, writes 0600, prints nothing of it', async () => {
    // A real sops file (example.yaml from getsops/sops: its values and MAC), its data key (opened
    // with sops' published test key through gpg) wrapped for this host's age key, as sops writes it.
    const fixtures = join(PROJECT_ROOT, 'test', 'fixtures', 'sops');
    const gnupg = scratch();
    execFileSync('gpg', ['--batch', '--quiet', '--import', join(fixtures, 'sops_functional_tests_key.asc')], { env: { ...process.env, GNUPGHOME: gnupg }, stdio: 'ignore' });
    const doc = YAML.parseDocument(readFileSync(join(fixtures, 'example.yaml'), 'utf8'));
    const pgp = (doc.toJS().sops.pgp as { enc: string }[]).map((p) => p.enc);
    const key = execFileSync('gpg', ['--batch', '--quiet', '--decrypt'], { input: pgp[0], env: { ...process.env, GNUPGHOME: gnupg }, stdio: ['pipe', 'pipe', 'ignore'] });
    const identity = await age.generateX25519Identity();
    const recipient = await age.identityToRecipient(identity);
    const e = new age.Encrypter();
    e.addRecipient(recipient);
    doc.setIn(['sops', 'age'], [{ recipient, enc: age.armor.encode(await e.encrypt(key)) }]);
    doc.deleteIn(['sops', 'pgp']);
    const hosts = ['[hosts.beta]', 'machine = "server"', 'platform = "linux"', 'wave = 1', `age_recipient = "${recipient}"`, ''].join('\n');
    const tree = new Map([...miniFleet({ hosts, files: { 'dot_profile': 'plain\n', 'private_dot_netrc.hbs': 'machine db login {{secret "secrets/db.sops.yaml" "app2.db.user"}} password {{secret "secrets/db.sops.yaml" "app2.db.password"}}\n' } })]);
    tree.set('secrets/db.sops.yaml', Buffer.from(doc.toString()));
    tree.set('.sops.yaml', Buffer.from(`creation_rules:\n  - path_regex: ^secrets/\n    age: ${recipient}\n`));
    const repo = gitRepo(tree);
    const home = scratch();
    const state = scratch();
    const keys = join(scratch(), 'keys.txt');
    writeFileSync(keys, `# created: 2026-11-23\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });
    const args = (cmd: string, ...more: string[]) => [cmd, '--repo', repo, '--host', 'beta', '--target', home, '--state-dir', state, ...more];
    const env = { SOPS_AGE_KEY_FILE: keys };
    const r = run(args('apply'), { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('wrote    .netrc (secret, 0600)');
    expect(readFileSync(join(home, '.netrc'), 'utf8')).toBe('machine db login eve password c4r1b0u\n');
    expect(lstatSync(join(home, '.netrc')).mode & 0o777).toBe(0o600);
    // The record and the drift check hold no plaintext, and the drift check does not decrypt.
    for (const out of [r.stdout, readFileSync(join(state, 'beta', 'applied.json'), 'utf8'), run(args('drift', '--json'), { env: { SOPS_AGE_KEY_FILE: '/nonexistent' } }).stdout]) {
      expect(out).not.toContain('c4r1b0u');
    }
    expect(run(args('drift', '--exit-code'), { env: { SOPS_AGE_KEY_FILE: '/nonexistent' } }).code).toBe(0);
    // Changed here: drift sees it without a key.
    writeFileSync(join(home, '.netrc'), 'machine db login eve password guessed\n');
    expect(JSON.parse(run(args('drift', '--json')).stdout)).toMatchObject([{ path: '.netrc', type: 'modified', local: true, source: false }]);
    // Without the key (and without sops), apply stops before writing anything, and says why.
    const denied = run(args('apply', '--force'), { env: { SOPS_AGE_KEY_FILE: '/nonexistent' } });
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(/no age key on this host to decrypt secrets\/db\.sops\.yaml/);
    expect(readFileSync(join(home, '.netrc'), 'utf8')).toContain('guessed');
    // Whole: on a new home, the plain file beside the secret is not written either.
    const home2 = scratch();
    const first = run(['apply', '--repo', repo, '--host', 'beta', '--target', home2, '--state-dir', scratch()], { env: { SOPS_AGE_KEY_FILE: '/nonexistent' } });
    expect(first.code).toBe(2);
    expect(readdirSync(home2)).toEqual([]);
  });
});
