import { loadFleet } from '../../src/core/fleet.js';
import { diffFleets, type FleetDiff } from '../../src/core/fleet-diff.js';
import { renderHashes } from '../../src/core/state/render-check.js';
import { Renderer } from '../../src/core/render.js';
import { exampleTree, miniFleet, text } from '../helpers/fleet.js';

type Tree = Map<string, Uint8Array>;

function edit(tree: Tree, path: string, from: string | RegExp, to: string): Tree {
  const next = new Map(tree);
  const before = text(tree, path);
  const after = before.replace(from, to);
  if (after === before) throw new Error(`mutation did not apply to ${path}: ${from}`);
  next.set(path, Buffer.from(after));
  return next;
}

function put(tree: Tree, path: string, content: string | null): Tree {
  const next = new Map(tree);
  if (content === null) next.delete(path);
  else next.set(path, Buffer.from(content));
  return next;
}

const summary = (d: FleetDiff) => d.hosts.map((h) => ({ host: h.host, status: h.status, changes: h.changes, errors: h.errors.map((e) => e.describe()) }));

describe('fleet diff', () => {
  const base = exampleTree();

  it('reports nothing for identical trees and renders nothing to find that out', () => {
    const renderer = new Renderer();
    const d = diffFleets(loadFleet(base), loadFleet(new Map(base)), {}, renderer);
    expect(d.hosts.every((h) => h.status === 'unchanged')).toBe(true);
    expect(d.groups).toEqual([]);
    expect(d.renders).toBe(0);
  });

  it('finds Added, Removed, Modified, Permission and Symlink changes', () => {
    let head = put(base, 'home/dot_newfile', 'hello\n');
    head = put(head, 'home/dot_config/git/ignore', null);
    head = edit(head, 'home/dot_tmux.conf.hbs', 'set -g mouse on', 'set -g mouse off');
    head = put(head, 'home/private_dot_ssh/private_config.hbs', null);
    head = put(head, 'home/private_dot_ssh/config.hbs', text(base, 'home/private_dot_ssh/private_config.hbs'));
    head = edit(head, 'home/symlink_dot_vimrc', '.config/nvim/init.lua', '.config/nvim/init.vim');
    const d = diffFleets(loadFleet(base), loadFleet(head), { hosts: ['kestrel'] });
    const k = d.hosts[0]!;
    expect(k.status).toBe('changed');
    expect(k.changes.map((c) => `${c.type} ${c.path}`)).toEqual([
      'removed .config/git',
      'removed .config/git/ignore',
      'added .newfile',
      'permission .ssh/config',
      'modified .tmux.conf',
      'symlink .vimrc',
    ]);
    const perm = k.changes.find((c) => c.type === 'permission')!;
    expect([perm.fromMode, perm.toMode]).toEqual([0o600, 0o644]);
    const mod = k.changes.find((c) => c.type === 'modified')!;
    expect(mod.patch).toContain('-set -g mouse on\n+set -g mouse off');
    expect(mod.patch).toMatch(/^@@ -\d+,7 \+\d+,7 @@/);
    const added = k.changes.find((c) => c.type === 'added')!;
    expect(added.patch).toContain('+hello');
  });

  it('summarises binary files by size and hash without printing them', () => {
    const tree = miniFleet({ files: { dot_bin: Buffer.from([0, 1, 2]) } });
    const head = put(tree, 'home/dot_bin', '\u0000\u0001\u0002\u0003');
    const d = diffFleets(loadFleet(tree), loadFleet(head), { hosts: ['alpha'] });
    const c = d.hosts[0]!.changes[0]!;
    expect(c.patch).toBeUndefined();
    expect(c.binary).toEqual({ from: { size: 3, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }, to: { size: 4, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
  });

  it('groups hosts whose change sets are identical', () => {
    const head = edit(base, 'home/.chezmoidata.toml', 'font_size = 11', 'font_size = 12');
    const d = diffFleets(loadFleet(base), loadFleet(head));
    const byScale = d.groups.find((g) => g.hosts.includes('osprey'))!;
    // osprey (geekom-a7) and swift (intel-nuc-13) are both scale 1.0 on GNOME or niri: not identical.
    for (const g of d.groups) {
      const patches = new Set(g.hosts.map((h) => JSON.stringify(d.hosts.find((x) => x.host === h)!.changes)));
      expect(patches.size).toBe(1);
    }
    expect(byScale.hosts.length).toBeGreaterThanOrEqual(1);
    const scale2aero = d.groups.find((g) => g.hosts.includes('kestrel'))!;
    expect(scale2aero.hosts).toEqual(['atlas', 'kestrel']);
    expect(d.hosts.find((h) => h.host === 'condor')!.status).toBe('unchanged');
  });

  it('shows a new host as added and a removed host as removed', () => {
    const head = edit(base, 'fleet/hosts.toml', '[hosts.puffin]', '[hosts.gannet]\nmachine = "geekom-a7"\nplatform = "linux"\nwave = 3\n\n[hosts.puffin_old]');
    const d = diffFleets(loadFleet(base), loadFleet(head));
    const status = Object.fromEntries(d.hosts.map((h) => [h.host, h.status]));
    expect(status.gannet).toBe('added');
    expect(status.puffin).toBe('removed');
    expect(status.puffin_old).toBe('added');
    expect(d.hosts.find((h) => h.host === 'puffin')!.changes.every((c) => c.type === 'removed')).toBe(true);
  });

  it('reports head render errors with host, file and line, and marks the host', () => {
    const head = edit(base, 'home/dot_tmux.conf.hbs', 'set -g mouse on', 'set -g mouse {{tmux.mouse}}');
    const d = diffFleets(loadFleet(base), loadFleet(head), { hosts: ['tern'] });
    expect(d.hosts[0]!.status).toBe('error');
    const [e] = d.hosts[0]!.errors;
    expect([e!.host, e!.file, e!.line, e!.message]).toEqual(['tern', 'home/dot_tmux.conf.hbs', 5, '"tmux.mouse" is not defined for this host']);
  });

  describe('renders only what a change can affect', () => {
    const count = (head: Tree) => {
      const renderer = new Renderer();
      return diffFleets(loadFleet(base), loadFleet(head), {}, renderer).renders;
    };
    const hosts = 12;

    it('one template changed: that template and the ignore list, per host', () => {
      expect(count(edit(base, 'home/dot_tmux.conf.hbs', 'set -g mouse on', 'set -g mouse off'))).toBeLessThanOrEqual(hosts * 3);
    });

    it("one host's data changed: only that host", () => {
      const n = count(edit(base, 'fleet/hosts.toml', 'history_size = 200000', 'history_size = 100000'));
      const templates = loadFleet(base).sources.entries.filter((e) => e.template).length;
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(2 * (templates + 1));
    });

    it('a data key no template reads: nothing', () => {
      expect(count(edit(base, 'home/.chezmoidata.toml', '[user]', 'nobody_reads_this = 1\n\n[user]'))).toBe(0);
    });
  });

  const mutations: ((t: Tree) => Tree)[] = [
    // A secret's ciphertext changes: the hosts whose templates read it change (the marker's digest).
    (t) => edit(t, 'secrets/hosts/kestrel/github.sops.yaml', 'data:/cd6FoC1q4IN5', 'data:/cd7FoC1q4IN5'),
    (t) => edit(t, 'secrets/tags/server/restic.sops.env', 'data:z216hW7', 'data:z217hW7'),
    (t) => edit(t, 'home/.chezmoidata.toml', 'font_size = 11', 'font_size = 13'),
    (t) => edit(t, 'home/.chezmoidata.toml', 'theme = "tokyonight"', 'theme = "gruvbox"'),
    (t) => edit(t, 'home/.chezmoidata.toml', '["k", "kubectl"],', '["k", "kubectl"], ["g", "git"],'),
    (t) => edit(t, 'home/.chezmoidata/hardware.toml', 'wm = "niri"', 'wm = "kde"'),
    (t) => edit(t, 'home/.chezmoidata/hardware.toml', 'display_scale = 1.5', 'display_scale = 1.25'),
    (t) => edit(t, 'home/.chezmoidata/hardware.toml', 'features = { touchbar = true, t2 = true, battery = true }', 'features = { t2 = true, battery = true }'),
    (t) => edit(t, 'fleet/hosts.toml', 'machine = "geekom-a7"', 'machine = "framework-13"'),
    (t) => edit(t, 'fleet/hosts.toml', 'platform = "darwin"\nwave = 3', 'platform = "darwin"\nwave = 2'),
    (t) => edit(t, 'fleet/hosts.toml', '[hosts.merlin.data.terminal]\n  font_size = 10', '[hosts.merlin.data.terminal]\n  font_size = 9\n  theme = "gruvbox"'),
    (t) => edit(t, 'fleet/hosts.toml', '[hosts.swift]', '[hosts.swift.data.hw]\nwm = "niri"\n\n[hosts.swift]'),
    (t) => edit(t, 'home/dot_zshrc.hbs', 'setopt share_history', 'setopt share_history extended_history'),
    (t) => edit(t, 'home/.chezmoiignore', '{{#unless hw.features.touchbar}}', '{{#unless (or hw.features.touchbar hw.features.notch)}}'),
    (t) => edit(t, 'home/.chezmoiignore', '.config/power\n', ''),
    (t) => put(t, 'home/dot_config/new.conf.hbs', '{{#if hw.features.battery}}battery{{/if}}\n'),
    (t) => put(t, 'home/dot_config/starship/starship.toml', null),
    (t) => put(put(t, 'home/dot_tmux.conf.hbs', null), 'home/private_dot_tmux.conf.hbs', text(t, 'home/dot_tmux.conf.hbs')),
    (t) => edit(t, 'home/dot_config/alacritty/symlink_theme.toml.hbs', 'themes/', 'colors/'),
    (t) => put(t, 'home/dot_gitconfig', 'conflicts with dot_gitconfig.hbs\n'),
    (t) => edit(t, 'home/dot_config/niri/config.kdl.hbs', 'layout "{{hw.kbd_layout}}"', 'layout "{{hw.kbd_layot}}"'),
    (t) => put(put(t, 'home/.chezmoitemplates/theme', '# {{terminal.theme}} {{hw.wm}}\n'), 'home/dot_themerc.hbs', '{{> theme}}{{#each host.tags}}{{this}} {{/each}}\n'),
    (t) => put(t, 'home/dot_sizes.hbs', '{{hw.display_scale}} {{hw.features.battery}} {{json hw.features}}\n'),
    (t) => put(t, 'home/dot_everything.hbs', '{{json @root.terminal}}\n'),
  ];
  let seed = 20261122;
  // xorshift32: exact in 32-bit integers. (A float LCG lost its low bits here: every pick was a
  // multiple of 8, so the random combinations drew 3 of the 24 mutations.)
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  // Bases that are already broken where no change reaches: the default answer must still
  // report those errors, as a full render does.
  const brokenBases: ((t: Tree) => Tree)[] = [
    (t) => t,
    (t) => put(t, 'home/dot_broken.hbs', '{{#if user.name}}never closed\n'),
    (t) => put(t, 'home/dot_missing.hbs', '{{nobody.defines.this}}\n'),
    (t) => put(t, 'home/dot_config/only_kde.hbs', '{{#if (eq hw.wm "kde")}}{{hw.kde_only_key}}{{/if}}\n'),
  ];
  it('gives the same answer as a full render without shared outputs, for random changes (seeded)', () => {
    const drawn = new Set<number>();
    for (let run = 0; run < 40; run++) {
      const base = brokenBases[run % brokenBases.length]!(exampleTree());
      let head: Tree = base;
      const picked = new Set<number>();
      const k = 1 + rand(3);
      while (picked.size < k) picked.add(rand(mutations.length));
      for (const i of picked) drawn.add(i);
      for (const i of picked) head = mutations[i]!(head);
      const b = loadFleet(base);
      const h = loadFleet(head);
      // The CLI's default: the fast path, with every head error (errors already on the base too).
      const fast = diffFleets(b, h, { allErrors: true });
      // The reference renders every template for every host: no output shared between hosts.
      const full = diffFleets(b, h, { full: true }, new Renderer(undefined, { share: false }));
      expect({ run, picked: [...picked], hosts: summary(fast) }).toEqual({ run, picked: [...picked], hosts: summary(full) });
      expect(fast.groups).toEqual(full.groups);
    }
    // The combinations reach most of the corpus (a float LCG with degenerate low bits drew 3 of 24; this draws 22).
    expect(drawn.size).toBeGreaterThanOrEqual(Math.floor(mutations.length * 0.75));
  });

  it('render hashes from an earlier commit\'s equal a full render of every host, for the same random changes (seeded)', () => {
    // Every change alone, then random combinations on broken bases.
    for (let run = 0; run < mutations.length + 16; run++) {
      const base = run < mutations.length ? exampleTree() : brokenBases[run % brokenBases.length]!(exampleTree());
      let head: Tree = base;
      const picked = new Set<number>(run < mutations.length ? [run] : []);
      const k = 1 + rand(3);
      while (picked.size < k && run >= mutations.length) picked.add(rand(mutations.length));
      for (const i of picked) head = mutations[i]!(head);
      const since = { tree: base, hashes: renderHashes(base) };
      expect({ run, picked: [...picked], hashes: renderHashes(head, since) }).toEqual({ run, picked: [...picked], hashes: renderHashes(head) });
    }
  });
});

describe('errors in the reports', () => {
  it('a template error every host hits is printed once, with the hosts it affects', async () => {
    const { fleetDiffText } = await import('../../src/core/report/text.js');
    const { fleetDiffMarkdown } = await import('../../src/core/report/markdown.js');
    const base = miniFleet({ files: { 'dot_a.hbs': 'ok' } });
    const head = put(base, 'home/dot_a.hbs', '{{#if x}}never closed');
    const diff = diffFleets(loadFleet(base), loadFleet(head));
    const out = fleetDiffText(diff);
    expect(out).toContain('1 error:\nhosts alpha, beta: home/dot_a.hbs:1:22: unexpected end of template');
    expect(out.match(/unexpected end of template/g)).toHaveLength(1);
    const md = fleetDiffMarkdown(diff);
    expect(md.match(/unexpected end of template/g)).toHaveLength(1);
    expect(md).toMatch(/- \*\*alpha, beta\*\* `home\/dot_a\.hbs:1:22`/);
  });
});

describe('grouping by what changes', () => {
  const hosts = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'].map((h) => `[hosts.${h}]\nmachine = "laptop"\nplatform = "linux"\n`).join('\n');
  const file = '# {{host.name}}\nset one\nset two\nset three\nset four\n';

  it('one added line on six hosts whose files name the host is one group, shown for the first host', async () => {
    const { fleetDiffText } = await import('../../src/core/report/text.js');
    const base = miniFleet({ hosts, files: { 'dot_rc.hbs': file } });
    const head = put(base, 'home/dot_rc.hbs', file.replace('set two\n', 'set two\nset added\n'));
    const diff = diffFleets(loadFleet(base), loadFleet(head));
    expect(diff.groups).toHaveLength(1);
    expect(diff.groups[0]).toMatchObject({ hosts: ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'], shownFor: 'a1', exact: false });
    expect(diff.groups[0]!.changes[0]!.patch).toContain('# a1');
    const out = fleetDiffText(diff);
    expect(out).toContain('── group 1: 6 hosts (a1, a2, a3, a4, a5, a6)');
    expect(out).toContain("this is a1's patch");
    expect(out.match(/\+set added/g)).toHaveLength(1);
    // The exact per-host diff is one flag away.
    const one = diffFleets(loadFleet(base), loadFleet(head), { hosts: ['a4'] });
    expect(one.groups[0]!.changes[0]!.patch).toContain('# a4');
  });

  it('identical patches are an exact group; different added lines are different groups', () => {
    const base = miniFleet({ hosts, files: { 'dot_rc.hbs': 'x\n', 'dot_h.hbs': '{{host.name}}\n' } });
    const same = diffFleets(loadFleet(base), loadFleet(put(base, 'home/dot_rc.hbs', 'x\ny\n')));
    expect(same.groups.map((g) => [g.hosts.length, g.exact])).toEqual([[6, true]]);
    const differ = diffFleets(loadFleet(base), loadFleet(put(base, 'home/dot_h.hbs', '{{host.name}}\n{{host.name}} again\n')));
    expect(differ.groups).toHaveLength(6);
  });
});
