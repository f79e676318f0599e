import { indexSources, parseDirName, parseFileName } from '../../src/core/source-names.js';
import { DotfleetError } from '../../src/core/errors.js';

describe('chezmoi-style source names', () => {
  it.each([
    ['dot_zshrc', '.zshrc', 'file', 0o644, false],
    ['dot_zshrc.hbs', '.zshrc', 'file', 0o644, true],
    ['private_dot_netrc', '.netrc', 'file', 0o600, false],
    ['executable_run.sh', 'run.sh', 'file', 0o755, false],
    ['private_executable_x', 'x', 'file', 0o700, false],
    ['readonly_dot_x', '.x', 'file', 0o444, false],
    ['empty_dot_hushlogin', '.hushlogin', 'file', 0o644, false],
    ['symlink_dot_vimrc', '.vimrc', 'symlink', 0, false],
    ['symlink_dot_vimrc.hbs', '.vimrc', 'symlink', 0, true],
    ['dot_private_x', '.private_x', 'file', 0o644, false],
    ['executable_private_x', 'private_x', 'file', 0o755, false],
    ['literal_dot_x', 'dot_x', 'file', 0o644, false],
    ['x.hbs.literal', 'x.hbs', 'file', 0o644, false],
  ])('%s → %s', (name, target, kind, mode, template) => {
    const p = parseFileName(name, `home/${name}`);
    expect(p).toMatchObject({ name: target, kind, mode, template });
  });

  it('parses directory attributes', () => {
    expect(parseDirName('private_dot_ssh', 'home/private_dot_ssh')).toMatchObject({ name: '.ssh', mode: 0o700 });
    expect(parseDirName('dot_config', 'home/dot_config')).toMatchObject({ name: '.config', mode: 0o755 });
  });

  it('marks empty_ files', () => {
    expect(parseFileName('empty_dot_x', 'home/empty_dot_x').empty).toBe(true);
  });

  it.each(['run_once_install.sh', 'modify_dot_x', 'encrypted_dot_x', 'create_dot_x'])('refuses %s (it would need code or keys on the bot)', (name) => {
    expect(() => parseFileName(name, `home/${name}`)).toThrow(/is not supported by dotfleet/);
  });

  it.each([['dot_.', '..']])('refuses %s: the target %s escapes the root', (name, target) => {
    try {
      parseFileName(name, `home/${name}`);
      throw new Error('expected an error');
    } catch (e) {
      expect((e as DotfleetError).code).toBe('path-escape');
      expect((e as DotfleetError).message).toContain(`"${target}"`);
      expect((e as DotfleetError).file).toBe(`home/${name}`);
    }
  });

  it('maps nested paths, skips hidden entries (keeping their directory) and indexes directories', () => {
    const idx = indexSources(['home/private_dot_ssh/private_config.hbs', 'home/.chezmoiignore', 'home/.git/x', 'home/dot_config/.keep', 'README.md', 'home/dot_zshrc'], 'home');
    expect(idx.entries.map((e) => [e.target, e.kind, e.mode.toString(8)])).toEqual([
      // A directory holding only a hidden file (.keep) exists, as in chezmoi.
      ['.config', 'dir', '755'],
      ['.ssh', 'dir', '700'],
      ['.ssh/config', 'file', '600'],
      ['.zshrc', 'file', '644'],
    ]);
    expect(idx.errors).toEqual([]);
  });

  it('finds targets claimed by two sources, and a file that is also a directory', () => {
    const idx = indexSources(['home/dot_x', 'home/dot_x.hbs', 'home/symlink_dot_y', 'home/dot_y/z', 'home/dot_ok'], 'home');
    expect([...idx.contested.keys()].sort()).toEqual(['.x', '.y']);
    expect(idx.contested.get('.x')!.map((e) => e.source)).toEqual(['home/dot_x', 'home/dot_x.hbs']);
  });

  it('collects name errors and keeps indexing the rest', () => {
    const idx = indexSources(['home/run_x.sh', 'home/exact_dir/a', 'home/dot_fine'], 'home');
    expect(idx.entries.map((e) => e.target)).toEqual(['.fine']);
    expect(idx.errors.map((e) => e.file)).toEqual(['home/exact_dir', 'home/run_x.sh']);
  });
});
