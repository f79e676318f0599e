import { createHash } from 'node:crypto';
import { loadFleet, getHost } from '../../src/core/fleet.js';
import { Renderer } from '../../src/core/render.js';
import { renderHash } from '../../src/core/render-hash.js';
import type { RenderedTree } from '../../src/core/tree.js';
import { exampleTree, miniFleet } from '../helpers/fleet.js';

function renderOf(files: Record<string, string | Uint8Array>, host = 'alpha', data?: string) {
  const fleet = loadFleet(miniFleet({ files, data }));
  return new Renderer().renderHost(fleet, getHost(fleet, host));
}

const content = (tree: RenderedTree, path: string) => {
  const e = tree.get(path);
  if (e?.kind !== 'file') throw new Error(`${path} is not a file: ${JSON.stringify(e)}`);
  return Buffer.from(e.content).toString('utf8');
};

describe('rendering a host', () => {
  it('renders templates with the host context and copies other files byte for byte', () => {
    const bin = Buffer.from([0, 1, 2, 255]);
    const r = renderOf({ 'dot_gitconfig.hbs': 'name = {{user}} on {{host.name}} ({{hw.wm}})\n', 'dot_config/logo.png': bin });
    expect(r.errors).toEqual([]);
    expect(content(r.tree, '.gitconfig')).toBe('name = robin on alpha (aerospace)\n');
    expect(r.tree.get('.config/logo.png')).toEqual({ kind: 'file', mode: 0o644, content: bin });
    expect(r.tree.get('.config')).toEqual({ kind: 'dir', mode: 0o755 });
  });

  it('leaves out a template that renders to whitespace only, unless it is empty_', () => {
    const files = { 'dot_tb.hbs': '{{#if hw.features.touchbar}}tb{{/if}}\n  \n', 'empty_dot_keep.hbs': '{{#if hw.features.touchbar}}x{{/if}}\n', 'dot_empty': '', 'empty_dot_hush': '' };
    const laptop = renderOf(files, 'alpha');
    const server = renderOf(files, 'beta');
    expect(content(laptop.tree, '.tb')).toBe('tb\n  \n');
    expect(server.tree.has('.tb')).toBe(false);
    expect(content(server.tree, '.keep')).toBe('\n');
    expect(server.tree.has('.empty')).toBe(false);
    expect(content(server.tree, '.hush')).toBe('');
  });

  it('applies modes from attributes', () => {
    const r = renderOf({ 'private_dot_ssh/private_config': 'Host *\n', 'dot_local/bin/executable_x': '#!/bin/sh\n' });
    expect(r.tree.get('.ssh')).toEqual({ kind: 'dir', mode: 0o700 });
    expect(r.tree.get('.ssh/config')).toMatchObject({ mode: 0o600 });
    expect(r.tree.get('.local/bin/x')).toMatchObject({ mode: 0o755 });
  });

  it('renders symlinks, templated or not; an empty target means no link (chezmoi); refuses broken ones with the file named', () => {
    const ok = renderOf({ symlink_dot_vimrc: '.config/nvim/init.lua\n', 'symlink_dot_theme.hbs': 'themes/{{hw.wm}}.toml' });
    expect(ok.tree.get('.vimrc')).toEqual({ kind: 'symlink', target: '.config/nvim/init.lua' });
    expect(ok.tree.get('.theme')).toEqual({ kind: 'symlink', target: 'themes/aerospace.toml' });
    const bad = renderOf({ symlink_dot_a: ' \n', symlink_dot_b: 'one\ntwo\n', 'symlink_dot_c.hbs': '{{#if hw.features.touchbar}}{{/if}}' });
    expect(bad.errors.map((e) => [e.code, e.file, e.host])).toEqual([['bad-symlink', 'home/symlink_dot_b', 'alpha']]);
    expect(bad.tree.has('.a')).toBe(false);
    expect(bad.tree.has('.c')).toBe(false);
  });

  it('keeps rendering after one template fails, naming host, file and line', () => {
    const r = renderOf({ 'dot_a.hbs': 'ok\n', 'dot_b.hbs': 'line\n{{nope}}\n', 'dot_c.hbs': '{{user}}\n' });
    expect([...r.tree.keys()]).toEqual(['.a', '.c']);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.describe()).toBe('host alpha: home/dot_b.hbs:2:3: "nope" is not defined for this host\n  hint: define nope in .chezmoidata, the host\'s preset or the host\'s [hosts.NAME.data], or test it with {{#if nope}}');
  });

  it('sees only the fleet data: no inherited members', () => {
    const r = renderOf({ 'dot_a.hbs': '{{constructor}}{{host.__proto__}}' });
    expect(r.errors[0]!.message).toBe('"constructor" is not defined for this host');
  });

  it('applies the per-host ignore template, with directories and negation', () => {
    const files = {
      '.chezmoiignore': '{{#if (eq host.platform "linux")}}\n.config/mac\n{{/if}}\n# a comment\n*.bak\n.local/*\n!.local/keep\n',
      'dot_config/mac/a': 'a',
      'dot_config/b': 'b',
      'x.bak': 'x',
      'dot_local/bin/y': 'y',
      'dot_local/keep': 'k',
    };
    expect([...renderOf(files, 'alpha').tree.keys()].sort()).toEqual(['.config', '.config/b', '.config/mac', '.config/mac/a', '.local', '.local/keep']);
    expect([...renderOf(files, 'beta').tree.keys()].sort()).toEqual(['.config', '.config/b', '.local', '.local/keep']);
    // As chezmoi: `.local/**` matches .local itself, and an ignored directory hides all of it,
    // so `!` cannot rescue a file inside it.
    const whole = { ...files, '.chezmoiignore': '.local/**\n!.local/keep\n' };
    expect([...renderOf(whole, 'alpha').tree.keys()].sort()).toEqual(['.config', '.config/b', '.config/mac', '.config/mac/a', 'x.bak']);
  });

  it('reports two present sources for one target, naming both, but not when one is absent on the host', () => {
    const files = { dot_x: 'plain', 'dot_x.hbs': '{{#if hw.features.touchbar}}templated{{/if}}' };
    const alpha = renderOf(files, 'alpha');
    expect(alpha.errors.map((e) => e.message)).toEqual(['two sources for one target ".x": home/dot_x and home/dot_x.hbs']);
    expect(alpha.tree.has('.x')).toBe(false);
    const beta = renderOf(files, 'beta');
    expect(beta.errors).toEqual([]);
    expect(content(beta.tree, '.x')).toBe('plain');
  });

  it('reports a symlink that is also a directory', () => {
    const r = renderOf({ symlink_dot_x: '/etc', 'dot_x/passwd': 'root' });
    expect(r.errors.map((e) => e.code)).toEqual(['target-conflict']);
    expect(r.tree.has('.x')).toBe(false);
  });
});

describe('render hash', () => {
  const tree = (entries: [string, any][]): RenderedTree => new Map(entries);
  const file = (s: string, mode = 0o644) => ({ kind: 'file' as const, mode, content: Buffer.from(s) });

  it('is the same for the same tree in any insertion order', () => {
    const a = tree([['.a', file('1')], ['.d', { kind: 'dir', mode: 0o755 }], ['.d/b', file('2')]]);
    const b = tree([['.d/b', file('2')], ['.a', file('1')], ['.d', { kind: 'dir', mode: 0o755 }]]);
    expect(renderHash(a)).toBe(renderHash(b));
    expect(renderHash(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('changes with content, mode, kind, link target, name and directory mode', () => {
    const base = renderHash(tree([['.a', file('1')], ['.d', { kind: 'dir', mode: 0o755 }]]));
    const variants = [
      tree([['.a', file('2')], ['.d', { kind: 'dir', mode: 0o755 }]]),
      tree([['.a', file('1', 0o600)], ['.d', { kind: 'dir', mode: 0o755 }]]),
      tree([['.a', { kind: 'symlink', target: '1' }], ['.d', { kind: 'dir', mode: 0o755 }]]),
      tree([['.b', file('1')], ['.d', { kind: 'dir', mode: 0o755 }]]),
      tree([['.a', file('1')], ['.d', { kind: 'dir', mode: 0o700 }]]),
    ];
    const hashes = new Set([base, ...variants.map(renderHash)]);
    expect(hashes.size).toBe(6);
  });

  it('is pinned for the empty tree (the documented formula)', () => {
    // SHA-256("dir root\n")
    expect(renderHash(new Map())).toBe('sha256:' + createHash('sha256').update('dir root\n').digest('hex'));
  });
});

describe('the sample fleet', () => {
  const fleet = loadFleet(exampleTree());
  const renderer = new Renderer();

  it('has the size the docs promise: 12 presets, 12 hosts over 2 platforms and 3 waves, 15+ templates', () => {
    expect(fleet.presets.size).toBe(12);
    expect(fleet.hosts.size).toBeGreaterThanOrEqual(8);
    expect(new Set([...fleet.hosts.values()].map((h) => h.platform))).toEqual(new Set(['darwin', 'linux']));
    expect(new Set([...fleet.hosts.values()].map((h) => h.wave))).toEqual(new Set([1, 2, 3]));
    expect(fleet.sources.entries.filter((e) => e.template).length).toBeGreaterThanOrEqual(15);
    expect(fleet.sources.entries.some((e) => e.kind === 'symlink')).toBe(true);
    expect(fleet.sources.entries.some((e) => e.kind === 'file' && (e.mode & 0o077) === 0)).toBe(true);
    expect(fleet.sources.entries.some((e) => e.kind === 'file' && (e.mode & 0o100) !== 0)).toBe(true);
  });

  it('renders every host without errors, each WM only where its preset selects it', () => {
    for (const host of fleet.hosts.values()) {
      const r = renderer.renderHost(fleet, host);
      expect(r.errors.map((e) => e.describe())).toEqual([]);
      const wm = fleet.presets.get(host.machine)!.wm;
      expect(r.tree.has('.config/aerospace/aerospace.toml')).toBe(wm === 'aerospace');
      expect(r.tree.has('.config/niri/config.kdl')).toBe(wm === 'niri');
      expect(r.tree.has('.config/kde/kdeglobals')).toBe(wm === 'kde');
      expect(r.tree.has('.config/gnome/dconf.ini')).toBe(wm === 'gnome');
    }
  });

  it('gives headless servers no terminal config and scales fonts by preset', () => {
    const condor = renderer.renderHost(fleet, getHost(fleet, 'condor')).tree;
    expect(condor.has('.config/alacritty')).toBe(false);
    const falcon = renderer.renderHost(fleet, getHost(fleet, 'falcon')).tree;
    expect(content(falcon, '.config/alacritty/alacritty.toml')).toContain('size = 16.5');
    const merlin = renderer.renderHost(fleet, getHost(fleet, 'merlin')).tree;
    expect(content(merlin, '.config/alacritty/alacritty.toml')).toContain('size = 20');
  });
});

describe('outputs shared between hosts', () => {
  it('a host renders what it renders alone, whoever shares its inputs; shared outputs are counted', async () => {
    const { generateFleet } = await import('../../bench/generate-fleet.mjs' as string);
    const cases: [string, Map<string, Uint8Array>][] = [['sample', exampleTree()], ...['realistic', 'preset', 'worst'].map((mix) => [mix, generateFleet({ hosts: 60, templates: 30, mix })] as [string, Map<string, Uint8Array>])];
    for (const [name, tree] of cases) {
      const fleet = loadFleet(tree);
      const shared = new Renderer();
      const alone = new Renderer(undefined, { share: false });
      for (const h of fleet.hosts.values()) {
        const a = shared.renderHost(fleet, h);
        const b = alone.renderHost(fleet, h);
        expect([h.name, renderHash(a.tree), a.errors.map((e) => e.describe())]).toEqual([h.name, renderHash(b.tree), b.errors.map((e) => e.describe())]);
      }
      expect(shared.renders + shared.shared).toBe(alone.renders);
      expect([name, shared.shared > 0]).toEqual([name, true]);
      // Every template of the worst mix prints host.name: each renders once per class, and every
      // other host's output is the shared text with its own name put in.
      if (name === 'worst') expect([shared.filled > 0, shared.renders < alone.renders / 4]).toEqual([true, true]);
    }
  });

  it('a template that only prints host facts renders once per class; any other use of them renders per host; outputs equal unshared renders (random templates)', () => {
    const AGE = ['age10e006te45fzg744v7afymdxga37zpwq05vrqjsnud68tttzm6gwqe9cheg', 'age12ghhasa973y5f3h5qtpzdxc6sts09x6anxse73qp75ztr0s98p2sp95s2g'];
    // Hosts of two classes, with principals an indent or a placeholder could get wrong.
    const principals = ['', 'principal = "ops@p1"', 'principal = "two\\nlines"', 'principal = "tab\\there"', 'principal = "\uE000\uE001 odd"', 'principal = "  spaced  "', 'principal = "é\u2028x"'];
    const hosts = Array.from({ length: 14 }, (_, i) => [
      `[hosts.h${i}]`, `machine = "${i % 2 ? 'laptop' : 'server'}"`, 'platform = "linux"', principals[i % principals.length]!, i % 3 === 0 ? `age_recipient = "${AGE[i % 2]}"` : '', '',
    ].join('\n')).join('\n');
    const FRAGMENTS = [
      '{{host.name}}', '{{{host.principal}}}', '{{~host.name~}}', '{{@root.host.name}}', '{{host.age_recipient}}', '{{host.principal}}',
      '{{#indent 2}}\n{{host.name}}\n{{host.principal}}\nx\n{{/indent}}', '{{#if (eq host.name "h1")}}one{{else}}other{{/if}}',
      '{{#each tags}}{{this}}-{{@root.host.name}} {{/each}}', '{{#with hw}}{{wm}} {{@root.host.principal}}{{/with}}', '{{upper host.name}}',
      '{{#if host.age_recipient}}age{{/if}}', '{{default host.principal "none"}}', '{{#unless hw.features.touchbar}}{{host.principal}}{{/unless}}',
      '{{lookup host "name"}}', '{{hw.wm}}', '{{user}}', '\n', 'text ', '\uE000 0', '{{missing.key}}', '{{#if hw.features.touchbar}}{{host.nope}}{{/if}}',
      '{{#each tags}}{{host.name}}{{/each}}', '{{#if (eq hw.wm "none")}}{{host.name}}{{/if}}', '{{#indent 4}}{{host.name}}{{/indent}}', '{{indent 2 host.name}}',
      // Inherited members: a context has no prototype, and the placeholder render must not give it one.
      '{{host.constructor}}', '{{constructor}}', '{{#if host.toString}}proto{{/if}}', '{{host.hasOwnProperty}}',
      // Other ways to reach the facts: a block's subject, a helper, a climb out of a block, a shared template.
      '{{#with host}}{{name}}{{/with}}', '{{json host.principal}}', '{{#each tags}}{{../host.name}}{{/each}}', '{{#with hw}}{{../host.principal}}{{/with}}',
      '{{this.host.name}}', '{{host.[name]}}', '{{> part}}', '{{host.name.length}}', '{{~host.principal}}', '{{host.machine}}-{{host.platform}}',
    ];
    for (const start of [7, 8, 9, 10]) {
      let seed = start;
      // xorshift32: exact in 32-bit integers (a float LCG loses bits and falls into a short cycle).
      const rnd = (n: number) => ((seed ^= seed << 13), (seed ^= seed >>> 17), (seed ^= seed << 5), (seed >>> 0) % n);
      const pick = () => Array.from({ length: 1 + rnd(6) }, () => FRAGMENTS[rnd(FRAGMENTS.length)]).join('');
      // A shared template and the ignore list are rendered the same ways.
      const files: Record<string, string> = { '.chezmoitemplates/part': `[${pick().replace(/\{\{> part\}\}/g, '')}]`, '.chezmoiignore': '.t{{host.name}}\n{{#if (eq host.name "h3")}}.t1{{/if}}\n{{#each tags}}.t{{../host.principal}}{{/each}}\n' };
      for (let t = 0; t < 100; t++) files[`dot_t${t}.hbs`] = pick();
      const fleet = loadFleet(miniFleet({ hosts, files, data: 'user = "robin"\ntags = ["a", "b"]\n' }));
      expect(fleet.hostErrors.size).toBe(0);
      const shared = new Renderer();
      const alone = new Renderer(undefined, { share: false });
      for (const h of fleet.hosts.values()) {
        const a = shared.renderHost(fleet, h);
        const b = alone.renderHost(fleet, h);
        const texts = (r: typeof a) => [...r.tree].map(([p, e]) => `${p}=${e.kind === 'file' ? Buffer.from(e.content).toString('utf8') : e.kind}`);
        expect([start, h.name, texts(a), a.errors.map((e) => e.describe())]).toEqual([start, h.name, texts(b), b.errors.map((e) => e.describe())]);
      }
      expect(shared.renders + shared.shared).toBe(alone.renders);
      expect(shared.filled).toBeGreaterThan(50);
    }
  });

  it('keys a projection by how far each path resolves: missing, not a table and present differ', () => {
    const files = { 'dot_a.hbs': '{{#if x.y}}yes{{else}}no{{/if}}' };
    const hosts = ['[hosts.p]', 'machine = "laptop"', 'platform = "linux"', '[hosts.p.data]', 'x = { y = true }', '', '[hosts.q]', 'machine = "laptop"', 'platform = "linux"', '[hosts.q.data]', 'x = { z = 1 }', '', '[hosts.r]', 'machine = "laptop"', 'platform = "linux"', '[hosts.r.data]', 'x = "text"', ''].join('\n');
    const fleet = loadFleet(miniFleet({ hosts, files }));
    const renderer = new Renderer();
    const out = ['p', 'q', 'r'].map((h) => {
      const r = renderer.renderHost(fleet, getHost(fleet, h));
      return r.errors.length ? r.errors[0]!.code : content(r.tree, '.a');
    });
    expect(out).toEqual(['yes', 'no', 'no']);
  });
});

describe('host classes', () => {
  it('hosts that differ only in a nested key called name do not share an output', () => {
    const hosts = ['[hosts.p]', 'machine = "laptop"', 'platform = "linux"', '[hosts.p.data.app]', 'name = "one"', '', '[hosts.q]', 'machine = "laptop"', 'platform = "linux"', '[hosts.q.data.app]', 'name = "two"', ''].join('\n');
    const fleet = loadFleet(miniFleet({ hosts, files: { 'dot_a.hbs': '{{app.name}}' }, data: 'app = { name = "default" }\n' }));
    const renderer = new Renderer();
    expect(['p', 'q'].map((h) => content(renderer.renderHost(fleet, getHost(fleet, h)).tree, '.a'))).toEqual(['one', 'two']);
  });
});
