import { loadFleet, getHost } from '../../src/core/fleet.js';
import { Renderer } from '../../src/core/render.js';
import { DotfleetError } from '../../src/core/errors.js';
import { resolveRepoLinks, type RenderedTree } from '../../src/core/tree.js';
import { miniFleet } from '../helpers/fleet.js';

/** docs/fleet-repo.md, promise by promise: what a chezmoi user writes means what chezmoi means. */
function fleetOf(files: Record<string, string | Uint8Array>, data?: string) {
  return loadFleet(miniFleet({ files, data }));
}
function render(files: Record<string, string | Uint8Array>, host = 'alpha', data?: string) {
  const fleet = fleetOf(files, data);
  return new Renderer().renderHost(fleet, getHost(fleet, host));
}
const text = (tree: RenderedTree, path: string) => {
  const e = tree.get(path);
  if (e?.kind !== 'file') throw new Error(`${path} is not a file: ${JSON.stringify(e)}`);
  return Buffer.from(e.content).toString('utf8');
};
const keys = (tree: RenderedTree) => [...tree.keys()].sort();
function thrown(fn: () => unknown): DotfleetError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DotfleetError) return e;
    throw e;
  }
  throw new Error('expected a DotfleetError');
}

describe('empty files and directories, as chezmoi', () => {
  it('a directory holding only .keep exists; a plain file of white space is absent unless empty_', () => {
    const r = render({ 'dot_cache/.keep': '', dot_blank: ' \n\t\n', empty_dot_kept: ' \n', dot_nbsp: '\u00a0\n', dot_bom: '\ufeff' });
    expect(keys(r.tree)).toEqual(['.bom', '.cache', '.kept']);
    expect(r.tree.get('.cache')).toEqual({ kind: 'dir', mode: 0o755 });
    // U+FEFF is not white space to Go (chezmoi); U+00A0 is.
    expect(text(r.tree, '.bom')).toBe('\ufeff');
  });
});

describe('special files', () => {
  it.each([
    ['.chezmoiremove', /chezmoi's \.chezmoiremove is not supported/, /never deletes files/],
    ['.chezmoiexternal.toml', /\.chezmoiexternal\.toml is not supported/, /vendor the files/],
    ['.chezmoiscripts/run_x.sh', /\.chezmoiscripts\/ is not supported/, /never runs scripts/],
    ['.chezmoiversion', /\.chezmoiversion is not supported/, /remove the file/],
    ['.chezmoi.toml.tmpl', /\.chezmoi\.toml\.tmpl is not supported/, /dotfleet\.yml/],
    ['dot_config/.chezmoiremove', /\.chezmoiremove is not supported/, /never deletes/],
  ])('%s is refused by name with what to do', (path, message, hint) => {
    const errors = fleetOf({ [path]: 'x\n' }).sources.errors;
    expect(errors).toHaveLength(1);
    expect(errors[0]!.file).toBe(`home/${path.split('/').slice(0, path.startsWith('.chezmoiscripts') ? 1 : undefined).join('/')}`);
    expect(errors[0]!.message).toMatch(message);
    expect(errors[0]!.hint).toMatch(hint);
  });

  it('a .tmpl file is refused with the .hbs and .literal ways out; x.tmpl.literal is the file x.tmpl', () => {
    const f = fleetOf({ 'dot_gitconfig.tmpl': '{{ .email }}', 'notes.tmpl.literal': 'n' });
    expect(f.sources.errors.map((e) => [e.file, e.hint])).toEqual([['home/dot_gitconfig.tmpl', expect.stringMatching(/dot_gitconfig\.hbs.*dot_gitconfig\.tmpl\.literal/)]]);
    expect(f.sources.entries.map((e) => e.target)).toEqual(['notes.tmpl']);
  });
});

describe('.chezmoiignore, as chezmoi reads it', () => {
  const files = { dot_gitconfig: 'g', 'dot_config/git/config': 'c', 'dot_config/x': 'x', config: 'top' };
  it('**/config matches whole components: not .gitconfig, not .config/', () => {
    expect(keys(render({ ...files, '.chezmoiignore': '**/config\n' }).tree)).toEqual(['.config', '.config/git', '.config/x', '.gitconfig']);
  });

  it('is a template rendered per host; # starts a comment at the line start or after white space, not inside a pattern', () => {
    const ignore = '{{#if (eq host.name "alpha")}}config # alpha keeps no top config\n{{/if}}# dot_gitconfig\n';
    expect(keys(render({ ...files, 'dot_a#b': 'h', '.chezmoiignore': ignore + '.a#b\n' }, 'alpha').tree)).toEqual(['.config', '.config/git', '.config/git/config', '.config/x', '.gitconfig']);
    expect(keys(render({ ...files, '.chezmoiignore': ignore }, 'beta').tree)).toEqual(['.config', '.config/git', '.config/git/config', '.config/x', '.gitconfig', 'config']);
  });

  it('a .chezmoiignore in a subdirectory applies to that directory', () => {
    const r = render({ ...files, 'dot_config/.chezmoiignore': 'x\n', '.chezmoiignore': '' });
    expect(keys(r.tree)).toEqual(['.config', '.config/git', '.config/git/config', '.gitconfig', 'config']);
  });

  it('! wins over an ignore of the same path, not over an ignored directory', () => {
    expect(keys(render({ ...files, '.chezmoiignore': '.config/*\n!.config/x\n' }).tree)).toEqual(['.config', '.config/x', '.gitconfig', 'config']);
    expect(keys(render({ ...files, '.chezmoiignore': '.config\n!.config/x\n' }).tree)).toEqual(['.gitconfig', 'config']);
  });

  it.each([
    ['/etc/passwd', /must be a path relative to its directory/],
    ['../x', /must be a path relative to its directory/],
    ['a/[b', /invalid ignore pattern "a\/\[b": unterminated \[/],
    ['!', /must be a path relative/],
  ])('refuses the pattern %s with its file and line', (line, message) => {
    // The line is in the rendered output (the comment line renders to nothing), so it says so.
    const r = render({ ...files, '.chezmoiignore': `# ok\n{{!-- c --}}\n${line}\n` });
    expect(r.errors.map((e) => [e.file, e.line, e.host])).toEqual([['home/.chezmoiignore', undefined, 'alpha']]);
    expect(r.errors[0]!.message).toMatch(message);
    expect(r.errors[0]!.message).toMatch(/\(line 2 of what it renders to for this host\)$/);
  });

  it('a pattern line that is the same in the source names the source line', () => {
    const r = render({ ...files, '.chezmoiignore': `# ok\nfine\n/abs\n` });
    expect(r.errors.map((e) => [e.file, e.line])).toEqual([['home/.chezmoiignore', 3]]);
  });
});

describe('data files, in every format chezmoi reads, in its order', () => {
  it('reads .chezmoidata.{json,toml,yaml} first, then the rest of the walk (.chezmoidata/, .jsonc, nested)', () => {
    const f = fleetOf({
      '.chezmoidata.json': '{"order": ["json"], "j": 1}',
      '.chezmoidata.yaml': 'order: [yaml]\ny: true\n',
      '.chezmoidata.jsonc': '{\n  // a comment\n  "order": ["jsonc"], /* more */ "c": [1, 2,],\n}\n',
      '.chezmoidata/z.yml': 'order: [dir-yml]\n',
      'dot_config/.chezmoidata.toml': 'order = ["nested"]\n',
    });
    expect(f.dataFiles).toEqual([
      'home/.chezmoidata.json',
      'home/.chezmoidata.toml',
      'home/.chezmoidata.yaml',
      'home/.chezmoidata/hardware.toml',
      'home/.chezmoidata/z.yml',
      'home/.chezmoidata.jsonc',
      'home/dot_config/.chezmoidata.toml',
    ]);
    expect(f.data).toMatchObject({ order: ['nested'], j: 1, y: true, c: [1, 2], user: 'robin' });
  });

  it.each([
    ['.chezmoidata.json', '{\n  "a": 1,\n  "b": }\n', /invalid JSON/, 3],
    ['.chezmoidata.yaml', 'a: 1\nb: 2\na: 3\n', /invalid YAML: Map keys must be unique/, 3],
    ['.chezmoidata.yaml', 'a:\n  b:\n', /a\.b is null/, 2],
    ['.chezmoidata.json', '[1, 2]', /must hold a table/, 1],
    ['.chezmoidata/notes.md', '# notes', /must end in \.toml, \.yaml, \.yml, \.json or \.jsonc/, undefined],
  ])('%s with a fault is one error naming the file and line', (path, body, message, line) => {
    const e = thrown(() => fleetOf({ [path]: body }));
    expect(e.file).toBe(`home/${path}`);
    expect(e.message).toMatch(message);
    expect(e.line).toBe(line);
  });

  it('a preset missing a required key names its own line, not another preset’s', () => {
    const tree = miniFleet();
    tree.set('home/.chezmoidata/hardware.toml', Buffer.from('[hardware.a]\ndisplay_scale = 1\nkbd_layout = "us"\nmodifier_mode = "pc"\nperf_profile = "x"\n\n[hardware.b]\ndisplay_scale = 1\nkbd_layout = "us"\nmodifier_mode = "pc"\nperf_profile = "x"\nwm = "none"\n'));
    const e = thrown(() => loadFleet(tree));
    expect(e.message).toMatch(/^hardware\.a\.wm/);
    expect(e.line).toBe(1);
  });

  it('presets may live in YAML, located by line', () => {
    const tree = miniFleet();
    tree.delete('home/.chezmoidata/hardware.toml');
    tree.set('home/.chezmoidata/hardware.yaml', Buffer.from('hardware:\n  laptop:\n    display_scale: 2\n    kbd_layout: us\n    modifier_mode: mac\n    perf_profile: balanced\n    wm: 7\n'));
    const e = thrown(() => loadFleet(tree));
    expect([e.file, e.line]).toEqual(['home/.chezmoidata/hardware.yaml', 7]);
  });
});

describe('shared templates (.chezmoitemplates)', () => {
  it('{{> NAME}} includes the file, with the context of where it is included', () => {
    const r = render({
      '.chezmoitemplates/header': '# {{host.name}} ({{hw.wm}})\n',
      '.chezmoitemplates/git/item': '- {{this}}\n',
      'dot_a.hbs': '{{> header}}body\n{{#each list}}{{> "git/item"}}{{/each}}',
    }, 'alpha', 'list = ["x", "y"]\n');
    expect(r.errors).toEqual([]);
    expect(text(r.tree, '.a')).toBe('# alpha (aerospace)\nbody\n- x\n- y\n');
  });

  it('a standalone include is indented like its line', () => {
    const r = render({ '.chezmoitemplates/kv': 'a = 1\nb = 2\n', 'dot_a.hbs': '[t]\n  {{> kv}}\nend\n' });
    expect(text(r.tree, '.a')).toBe('[t]\n  a = 1\n  b = 2\nend\n');
  });

  it('an error inside a shared template names that file and its line, and the including file', () => {
    const r = render({ '.chezmoitemplates/broken': 'ok\n{{nope}}\n', 'dot_a.hbs': 'x\n{{> broken}}' });
    expect(r.errors.map((e) => [e.code, e.file, e.line, e.column])).toEqual([['template-missing-key', 'home/.chezmoitemplates/broken', 2, 3]]);
    expect(r.errors[0]!.hint).toMatch(/included from home\/dot_a\.hbs/);
  });

  it('a missing or self-including shared template is an error at the include', () => {
    const missing = render({ '.chezmoitemplates/a': 'a', 'dot_x.hbs': '\n{{> nope}}' });
    expect(missing.errors.map((e) => [e.file, e.line, e.message])).toEqual([['home/dot_x.hbs', 2, 'no shared template "nope"']]);
    const loop = render({ '.chezmoitemplates/a': '{{> b}}', '.chezmoitemplates/b': '{{> a}}', 'dot_x.hbs': '{{> a}}' });
    expect(loop.errors[0]!.message).toMatch(/includes itself/);
  });

  it('a change to a shared template re-renders the templates that include it', () => {
    const renderer = new Renderer();
    const a = fleetOf({ '.chezmoitemplates/h': 'one', 'dot_a.hbs': '{{> h}}' });
    const b = fleetOf({ '.chezmoitemplates/h': 'two', 'dot_a.hbs': '{{> h}}' });
    expect(text(renderer.renderHost(a, getHost(a, 'alpha')).tree, '.a')).toBe('one');
    expect(text(renderer.renderHost(b, getHost(b, 'alpha')).tree, '.a')).toBe('two');
  });
});

describe('symlinks and submodules in the repository', () => {
  const base = miniFleet({ files: { 'dot_real': 'real\n', 'dot_dir/a': 'A' } });
  it('a link inside the repository is followed (a file, or a directory’s files), as chezmoi follows it', () => {
    const tree = resolveRepoLinks(base, new Map([['home/dot_alias', 'dot_real'], ['home/dot_dir2', 'dot_dir'], ['home/dot_up', '../home/dot_real']]));
    const fleet = loadFleet(tree);
    const r = new Renderer().renderHost(fleet, getHost(fleet, 'alpha'));
    expect(r.errors).toEqual([]);
    expect(text(r.tree, '.alias')).toBe('real\n');
    expect(text(r.tree, '.up')).toBe('real\n');
    expect(text(r.tree, '.dir2/a')).toBe('A');
  });

  it.each([
    ['/etc/passwd', /absolute path "\/etc\/passwd", outside the repository/],
    ['../../outside', /points outside the repository/],
    ['missing', /not a file of the repository/],
    ['.', /contains it \(a loop\)/],
  ])('a link to %s is refused by name', (target, why) => {
    const fleet = loadFleet(resolveRepoLinks(base, new Map([['home/dot_bad', target]])));
    expect(fleet.sources.errors.map((e) => e.file)).toEqual(['home/dot_bad']);
    expect(fleet.sources.errors[0]!.message).toMatch(why);
  });

  it('a submodule is refused by name, not dropped', () => {
    const fleet = loadFleet(resolveRepoLinks(base, new Map(), ['home/dot_vim/pack']));
    expect(fleet.sources.errors.map((e) => [e.file, e.message])).toEqual([['home/dot_vim/pack', 'home/dot_vim/pack is a git submodule: its files are not in this repository']]);
  });
});

describe('links that multiply', () => {
  it('links to a big directory stop at a budget, named; reading stays fast', async () => {
    const { MAX_LINKED_FILES } = await import('../../src/core/tree.js');
    const files = new Map(miniFleet());
    for (let i = 0; i < 2_000; i++) files.set(`home/dot_big/f${i}`, Buffer.from(`${i}\n`));
    const links = new Map<string, string>();
    for (let i = 0; i < 100; i++) links.set(`home/dot_copy${i}`, 'dot_big');
    const tree = resolveRepoLinks(files, links);
    const refused = [...(await import('../../src/core/tree.js')).notFiles(tree)];
    // 100 links × 2,000 files is twice the budget: the first half is followed, the rest refused by name.
    expect(refused.length).toBe(100 - MAX_LINKED_FILES / 2_000);
    expect(refused[0]![1]).toMatch(/past 100,000 linked files/);
    expect(Buffer.from(tree.get('home/dot_copy0/f1999')!).toString()).toBe('1999\n');
  });
});
