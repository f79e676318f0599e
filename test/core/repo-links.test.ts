import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { loadFleet } from '../../src/core/fleet.js';
import { notFiles, type RepoTree } from '../../src/core/tree.js';
import { readTarball } from '../../src/github/tarball.js';
import { readTreeAtRef, readWorkingTree } from '../../src/host/git.js';
import { git, gitRepo, miniFleet } from '../helpers/fleet.js';

/**
 * The three ways a tree is read (a commit with git, the working tree, GitHub's tarball) give the
 * same files: symlinks followed inside the repository, the rest and submodules refused by name.
 */
describe('symlinks and submodules, read from a real repository', () => {
  const repo = gitRepo(miniFleet({ files: { dot_real: 'real\n', 'dot_dir/a': 'A\n' } }));
  symlinkSync('dot_real', join(repo, 'home/dot_alias'));
  symlinkSync('dot_dir', join(repo, 'home/dot_dir2'));
  symlinkSync('/etc/hostname', join(repo, 'home/dot_host'));
  symlinkSync('../../../outside', join(repo, 'home/dot_out'));
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'links');
  const self = git(repo, 'rev-parse', 'HEAD').trim();
  git(repo, 'update-index', '--add', '--cacheinfo', `160000,${self},home/dot_vim`);
  git(repo, 'commit', '-q', '-m', 'a submodule');

  const check = (tree: RepoTree) => {
    expect(Buffer.from(tree.get('home/dot_alias')!).toString()).toBe('real\n');
    expect(Buffer.from(tree.get('home/dot_dir2/a')!).toString()).toBe('A\n');
    expect([...notFiles(tree)].sort()).toEqual([
      ['home/dot_host', 'a symlink to the absolute path "/etc/hostname", outside the repository'],
      ['home/dot_out', 'a symlink that points outside the repository'],
      ['home/dot_vim', 'a git submodule: its files are not in this repository'],
    ]);
    const fleet = loadFleet(tree);
    expect(fleet.sources.errors.map((e) => e.file)).toEqual(['home/dot_host', 'home/dot_out', 'home/dot_vim']);
    expect(fleet.sources.entries.map((e) => e.target)).toEqual(['.alias', '.dir', '.dir/a', '.dir2', '.dir2/a', '.real']);
  };

  it('at a commit (git ls-tree)', async () => check(await readTreeAtRef(repo, 'HEAD')));
  it('in the working tree', async () => {
    // A checked-out submodule is a directory in the working tree.
    execFileSync('mkdir', ['-p', join(repo, 'home/dot_vim')]);
    check(await readWorkingTree(repo));
  });
  it('from an archive as GitHub serves it', () => {
    const gz = execFileSync('git', ['archive', '--format=tar.gz', '--prefix=owner-repo-abc/', 'HEAD'], { cwd: repo });
    check(readTarball(gz).tree);
  });
});
