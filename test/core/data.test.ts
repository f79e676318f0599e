import { changedPaths, mergeData, parseToml } from '../../src/core/data.js';
import { loadFleet } from '../../src/core/fleet.js';
import { DotfleetError } from '../../src/core/errors.js';
import { miniFleet, treeOf } from '../helpers/fleet.js';

describe('data layers', () => {
  it('merges tables key by key and replaces arrays', () => {
    const merged = mergeData({ a: { x: 1, y: 2 }, list: [1, 2, 3], s: 'a' }, { a: { y: 3, z: 4 }, list: [9], s: 'b' });
    expect(merged).toEqual({ a: { x: 1, y: 3, z: 4 }, list: [9], s: 'b' });
  });

  it('does not mutate its inputs', () => {
    const base = { a: { x: 1 } };
    mergeData(base, { a: { x: 2 } });
    expect(base).toEqual({ a: { x: 1 } });
  });

  it('reads .chezmoidata.toml first, then .chezmoidata/ depth first in lexical order (as chezmoi walks it)', () => {
    const tree = miniFleet({ data: 'editor = "vim"\nlist = [1]\n[t]\na = 1\n' });
    tree.set('home/.chezmoidata/b.toml', Buffer.from('editor = "b"\n[t]\nb = 2\n'));
    tree.set('home/.chezmoidata/a.toml', Buffer.from('editor = "a"\nlist = [2, 3]\n'));
    tree.set('home/.chezmoidata/nested/c.toml', Buffer.from('editor = "nested"\n'));
    const fleet = loadFleet(tree);
    expect(fleet.dataFiles).toEqual(['home/.chezmoidata.toml', 'home/.chezmoidata/a.toml', 'home/.chezmoidata/b.toml', 'home/.chezmoidata/hardware.toml', 'home/.chezmoidata/nested/c.toml']);
    expect(fleet.data.editor).toBe('nested');
    expect(fleet.data.list).toEqual([2, 3]);
    expect(fleet.data.t).toEqual({ a: 1, b: 2 });
  });

  it('honours .chezmoiroot for the source directory', () => {
    const tree = treeOf({});
    for (const [p, c] of miniFleet()) tree.set(p.replace(/^home\//, 'dotfiles/'), c);
    tree.set('.chezmoiroot', Buffer.from('dotfiles\n'));
    expect(loadFleet(tree).sourceRoot).toBe('dotfiles');
  });

  it('refuses a .chezmoiroot that leaves the repository', () => {
    const tree = miniFleet();
    tree.set('.chezmoiroot', Buffer.from('../elsewhere'));
    expect(() => loadFleet(tree)).toThrow(/inside the repository/);
  });

  it('reports TOML syntax errors with file, line and column', () => {
    const err = (() => {
      try {
        parseToml('a = 1\nb = \n', 'home/.chezmoidata.toml');
      } catch (e) {
        return e as DotfleetError;
      }
    })()!;
    expect(err).toBeInstanceOf(DotfleetError);
    expect(err.code).toBe('toml-syntax');
    expect(err.file).toBe('home/.chezmoidata.toml');
    expect(err.line).toBe(2);
    expect(err.column).toBe(5);
    expect(err.describe()).toMatch(/^home\/\.chezmoidata\.toml:2:5: invalid TOML: invalid value/);
  });

  it('gives TOML dates to templates as ISO strings', () => {
    expect(parseToml('d = 1979-05-27T07:32:00Z\n', 'x.toml')).toEqual({ d: '1979-05-27T07:32:00.000Z' });
  });

  it('lists the key paths at which two contexts differ', () => {
    expect(changedPaths({ a: { x: 1, y: [1] }, b: 1 }, { a: { x: 2, y: [1] }, c: 1 }).sort()).toEqual([['a', 'x'], ['b'], ['c']].sort());
    expect(changedPaths({ a: [1, 2] }, { a: [1, 3] })).toEqual([['a']]);
    expect(changedPaths({ a: 1 }, { a: 1 })).toEqual([]);
  });
});
