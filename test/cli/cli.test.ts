import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pullRequestReport } from '../../src/core/pull-request.js';
import { commit, exampleTree, git, gitRepo, PROJECT_ROOT, text } from '../helpers/fleet.js';
import { newHostKey, signerLine } from '../helpers/intake.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');

function dotfleet(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('dotfleet CLI', () => {
  const tree = exampleTree();
  const repo = gitRepo(tree);
  const base = git(repo, 'rev-parse', 'HEAD').trim();
  git(repo, 'switch', '-q', '-c', 'change');
  const head = commit(repo, {
    'home/.chezmoidata.toml': text(tree, 'home/.chezmoidata.toml').replace('theme = "tokyonight"', 'theme = "gruvbox"'),
    'home/dot_config/niri/config.kdl.hbs': text(tree, 'home/dot_config/niri/config.kdl.hbs').replace('Mod+Q', 'Mod+Shift+Q'),
  });

  it('lists hosts with preset, platform and wave', () => {
    const r = dotfleet('hosts', '--repo', repo);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^HOST\s+PRESET\s+PLATFORM\s+WAVE\s+DESCRIPTION$/);
    expect(lines).toHaveLength(13);
    expect(r.stdout).toMatch(/kestrel\s+macbook-m2\s+darwin\s+1\s+Robin's everyday laptop/);
    const json = JSON.parse(dotfleet('hosts', '--repo', repo, '--json').stdout);
    expect(json.find((h: any) => h.name === 'condor')).toMatchObject({ machine: 'epyc-server', platform: 'linux', wave: 3, tags: ['server'] });
  });

  it('diffs two refs read with real git, in every format', () => {
    const r = dotfleet('diff', '--repo', repo, '--base', base, '--head', 'change');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+ of 12 hosts change · \d+ groups/);
    expect(r.stdout).toContain('-    Mod+Q { close-window; }');
    expect(r.stdout).toContain('+    Mod+Shift+Q { close-window; }');
    expect(r.stdout).toContain('S .config/alacritty/theme.toml (→ themes/tokyonight.toml ⇒ → themes/gruvbox.toml)');
    expect(r.stdout).not.toContain('\x1b[');

    const md = dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--format', 'markdown').stdout;
    expect(md).toContain('| Host | Preset | Wave | A | R | M | P | S | Status |');
    expect(md).toMatch(/#### Group 1 · \d+ hosts: /);
    expect(md.match(/<details>/g)!.length).toBe(md.match(/<\/details>/g)!.length);

    const json = JSON.parse(dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--format', 'json').stdout);
    expect(json.version).toBe(1);
    expect(json.base).toBe(base);
    expect(json.head).toBe(head);
    expect(json.hosts.find((h: any) => h.host === 'tern').status).toBe('changed');
    // condor is headless: its editor config does not use the theme, and it has no terminal config.
    expect(json.hosts.find((h: any) => h.host === 'condor').status).toBe('unchanged');
  });

  it('diffs against the working tree when --head is omitted, and --exit-code says whether anything changed', () => {
    expect(dotfleet('diff', '--repo', repo, '--base', 'HEAD', '--exit-code').code).toBe(0);
    writeFileSync(join(repo, 'home/dot_config/git/ignore'), '.DS_Store\n*.swp\n');
    const r = dotfleet('diff', '--repo', repo, '--base', 'HEAD', '--exit-code', '--host', 'tern');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^1 of 1 host changes · 1 group/);
    git(repo, 'checkout', '--', '.');
  });

  it('exits 3 and names host, file and line when the change breaks a template', () => {
    writeFileSync(join(repo, 'home/dot_tmux.conf.hbs'), 'set -g prefix {{tmux.prefx}}\n');
    const r = dotfleet('diff', '--repo', repo, '--base', 'HEAD', '--host', 'wren');
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('host wren: home/dot_tmux.conf.hbs:1:17: "tmux.prefx" is not defined for this host');
    git(repo, 'checkout', '--', '.');
  });

  it('renders one host: a listing with the render hash, or a tree on disk with modes and links', () => {
    const list = dotfleet('render', '--repo', repo, '--ref', base, '--host', 'kestrel');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^0600  file     \.ssh\/config  \d+ B$/m);
    expect(list.stdout).toMatch(/^render hash sha256:[0-9a-f]{64}$/m);
    const json = JSON.parse(dotfleet('render', '--repo', repo, '--ref', base, '--host', 'kestrel', '--json').stdout);
    expect(list.stdout).toContain(json.renderHash);

    const out = join(mkdtempSync(join(tmpdir(), 'dotfleet-out-')), 'home');
    expect(dotfleet('render', '--repo', repo, '--host', 'kestrel', '--out', out).code).toBe(0);
    expect(statSync(join(out, '.ssh/config')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, '.ssh')).mode & 0o777).toBe(0o700);
    expect(statSync(join(out, '.local/bin/fleet-whoami')).mode & 0o777).toBe(0o755);
    expect(lstatSync(join(out, '.vimrc')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(out, '.vimrc'))).toBe('.config/nvim/init.lua');
    expect(readFileSync(join(out, '.gitconfig'), 'utf8')).toContain('helper = osxkeychain');

    const again = dotfleet('render', '--repo', repo, '--host', 'kestrel', '--out', out);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/is not empty/);
  });

  it('compares two hosts at one revision', () => {
    const same = dotfleet('fleet', 'diff', '--repo', repo, 'wren', 'wren');
    expect(same.stdout.trim()).toBe('wren and wren render identically');
    const r = dotfleet('fleet', 'diff', '--repo', repo, '--ref', base, 'tern', 'wren', '--exit-code');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('-    trackpoint {');
  });

  it.each([
    [['diff', '--repo', '/nonexistent-dir-for-dotfleet', '--base', 'HEAD'], /dotfleet: error: /],
    [['diff', '--base', 'no-such-ref'], /dotfleet: error: .*"no-such-ref" is not a commit/],
    [['render', '--host', 'nobody'], /dotfleet: error: fleet\/hosts.toml: no host "nobody" in fleet\/hosts.toml\n  hint: known hosts: atlas, condor/],
    [['diff', '--base', 'HEAD', '--format', 'yaml'], /unknown format "yaml"/],
    [['render'], /required option '--host <name>' not specified/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('a user error is one clear message and exit 2: %j', (args, message) => {
    const withRepo = args[0] === 'frobnicate' || args.includes('--repo') ? args : [...args, '--repo', repo];
    const r = dotfleet(...(withRepo as string[]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports an invalid fleet file with its name and line', () => {
    writeFileSync(join(repo, 'fleet/hosts.toml'), text(tree, 'fleet/hosts.toml').replace('wave = 1', 'wave = "first"'));
    const r = dotfleet('hosts', '--repo', repo);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^dotfleet: error: fleet\/hosts\.toml:7: hosts\.kestrel\.wave: /);
    git(repo, 'checkout', '--', '.');
  });

  it('prints help for every command', () => {
    for (const cmd of [[], ['diff'], ['render'], ['hosts'], ['fleet', 'diff'], ['demo']]) {
      const r = dotfleet(...cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: dotfleet/);
    }
  });

  it('runs the demo: a real repo from the sample fleet, a change on a branch, the markdown diff', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'dotfleet-demo-test-')), 'fleet');
    const r = dotfleet('demo', '--dir', dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^### dotfleet · fleet diff [0-9a-f]{12}…[0-9a-f]{12}/);
    expect(r.stdout).toContain('+size = 24');
    expect(r.stdout).toContain('+    Mod+F { maximize-column; }');
    expect(r.stderr).toMatch(new RegExp(`node \\S*dotfleet\\.mjs diff --repo ${dir} --base main --head bigger-terminal-font`));
    expect(git(dir, 'log', '--oneline').trim().split('\n')).toHaveLength(2);
  });

  it('refuses a --dir that holds anything: it never makes a git repository in, or commits, a user\'s files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotfleet-demo-mine-'));
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const r = dotfleet('demo', '--dir', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`dotfleet: error: ${dir}: --dir ${dir} is not empty: the demo makes a git repository there and commits to it\n  hint: pass --dir with a new or empty directory (or leave it out for a temporary one)\n`);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });

  it('render --out onto a file, a device, an impossible place: one clear line, exit 2, never a stack trace or a spin', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dotfleet-out-')), 'a-file');
    writeFileSync(file, 'x');
    for (const [out, said] of [
      [file, 'is a file'],
      ['/dev/null', 'is not a directory (a device, a socket or a pipe)'],
      [join(file, 'under'), 'is not a directory (or a parent of it is a file)'],
      ['/proc/dotfleet-nope/out', 'cannot be made there'],
    ] as const) {
      const r = dotfleet('render', '--repo', repo, '--host', 'kestrel', '--out', out);
      expect([out, r.code]).toEqual([out, 2]);
      expect(r.stderr).toContain(said);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('validates --color, and names "fleet" for an unknown fleet command', () => {
    const color = dotfleet('diff', '--repo', repo, '--base', base, '--color', 'purple');
    expect(color.code).toBe(2);
    expect(color.stderr).toContain("argument 'purple' is invalid. Allowed choices are auto, always, never");
    const bogus = dotfleet('fleet', 'bogus', '--repo', repo);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toBe('dotfleet: error: "bogus" is not a fleet command\n  hint: dotfleet fleet has: hosts, status, diff, attest, sync, drift (dotfleet fleet --help)\n');
  });

  it('a host that fails to render has no render hash, and fleet diff says it cannot compare it', () => {
    const broken = commit(repo, { 'home/dot_tmux.conf.hbs': text(exampleTree(), 'home/dot_tmux.conf.hbs').replace('set -g mouse on', 'set -g mouse {{tmux.mouse}}') }, 'broken tmux');
    const r = dotfleet('render', '--repo', repo, '--ref', broken, '--host', 'kestrel');
    expect(r.code).toBe(3);
    expect(r.stdout).not.toMatch(/sha256:/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('no render hash: kestrel has a render error (the entries above are what did render)');
    expect(JSON.parse(dotfleet('render', '--repo', repo, '--ref', broken, '--host', 'kestrel', '--json').stdout).renderHash).toBeNull();
    const f = dotfleet('fleet', 'diff', '--repo', repo, '--ref', broken, 'kestrel', 'tern');
    expect(f.code).toBe(3);
    expect(f.stdout.trim()).toBe('cannot compare kestrel and tern: kestrel and tern fail to render');
    expect(f.stdout).not.toMatch(/^R /m);
    git(repo, 'reset', '-q', '--hard', 'HEAD~1');
  });
});


describe('dotfleet diff gives the answer --full gives', () => {
  it('an error already on the base, where the change does not reach, is reported with exit 3 either way', () => {
    const tree = exampleTree();
    tree.set('home/dot_broken.hbs', Buffer.from('{{nobody.defines.this}}\n'));
    const repo = gitRepo(tree);
    const base = git(repo, 'rev-parse', 'HEAD').trim();
    const head = commit(repo, { 'home/dot_zshrc.hbs': text(tree, 'home/dot_zshrc.hbs').replace('setopt share_history', 'setopt share_history extended_history') });
    const fast = dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--format', 'json');
    const full = dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--format', 'json', '--full');
    expect([fast.code, full.code]).toEqual([3, 3]);
    const strip = (out: string) => {
      const j = JSON.parse(out);
      return { hosts: j.hosts, groups: j.groups };
    };
    expect(strip(fast.stdout)).toEqual(strip(full.stdout));
    expect(fast.stdout).toContain('nobody.defines.this');
  });
});

describe('dotfleet diff shows trust changes as the pull-request comment does', () => {
  // What a change to trust looks like to someone reviewing it locally: every carrier the app's
  // review flags (test/app/pull-request-review.test.ts), plus the disguises a hand or an attacker
  // would try: a CRLF line ending on a widened line, and a principal that holds a terminal escape.
  const tree = exampleTree();
  const repo = gitRepo(tree);
  const base = git(repo, 'rev-parse', 'HEAD').trim();
  const signers = text(tree, 'fleet/allowed_signers');
  const k = newHostKey();
  const headTree = new Map(tree);
  const changes: Record<string, string> = {
    'fleet/hosts.toml': text(tree, 'fleet/hosts.toml').replace('[hosts.tern]\n', '[hosts.tern]\nprincipal = "tern.lan"\n').replace(/\[hosts\.wren\][\s\S]*?(?=\n\[hosts\.|$)/, '') + '\n[hosts.ibis]\nmachine = "thinkpad-x1"\nplatform = "linux"\nwave = 3\n',
    'fleet/allowed_signers':
      signers.replace(/^(atlas namespaces="dotfleet-attestation)(".*)$/m, '$1,git$2\r') +
      [signerLine('*.lan', k), signerLine('ibis', newHostKey()), signerLine('ghost\x1b[2J\x07', newHostKey())].join('\n') + '\n',
    'fleet/policy.toml': '[tools]\ngit = ">=2.20"\n',
    '.github/dotfleet.yml': text(tree, '.github/dotfleet.yml').replace('  admins:\n', '  admins:\n    - age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n'),
  };
  for (const [p, t] of Object.entries(changes)) headTree.set(p, Buffer.from(t));
  git(repo, 'switch', '-q', '-c', 'trust');
  const head = commit(repo, changes, 'trust changes');
  const pr = pullRequestReport({ base: tree, head: headTree, trust: tree, baseSha: base, headSha: head });

  it('markdown: the comment\'s trust section, word for word, and its headline', () => {
    const md = dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--format', 'markdown').stdout;
    const section = (s: string) => s.slice(s.indexOf('#### ⚠️ Trust changes'), s.indexOf('\n\n#### ', s.indexOf('#### ⚠️ Trust changes') + 1));
    const prSection = section(pr.comment).replace(/\n\n_The \*\*dotfleet\/fleet-diff\*\* check is "action required"[^\n]*$/, '');
    expect(prSection).toContain('**tern**: signs as `tern.lan`');
    expect(prSection).toContain('**atlas**:');
    // A browser would drop the escape silently: the comment shows it.
    expect(prSection).toContain('**added** `ghost\\u001b[2J\\u0007`');
    expect(section(md)).toBe(prSection);
    expect(md).toMatch(/\*\*\d+ of 13 hosts change[^*]* · 7 trust changes\*\*/);
    expect(pr.comment).toMatch(/· 7 trust changes\*\*/);
  });

  it('text: every host and input named, escapes shown and never obeyed; --exit-code says trust changed', () => {
    const r = dotfleet('diff', '--repo', repo, '--base', 'main', '--head', 'trust', '--exit-code');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toMatch(/ · 7 trust changes$/);
    const at = r.stdout.indexOf('── trust changes (need review)');
    expect(at).toBeGreaterThan(0);
    const section = r.stdout.slice(at, r.stdout.indexOf('\n\n', at));
    expect(section.split('\n')[0]).toContain('against main');
    for (const host of ['tern', 'ibis', 'wren', 'atlas']) expect(section).toMatch(new RegExp(`^  ${host}: `, 'm'));
    expect(section).toMatch(/^ {2}atlas: ssh-ed25519 "SHA256:[^"]+": namespaces="dotfleet-attestation" → namespaces="dotfleet-attestation,git"$/m);
    // atlas's line now allows namespace git too: its key may sign the commits hosts roll out to.
    expect(section).toMatch(/^ {2}target commits \(git verify-commit, require_signed_target\): may now sign: ssh-ed25519 "SHA256:[^"]+" namespaces="dotfleet-attestation,git" \(as "atlas"\)$/m);
    expect(section).toContain('the policy hosts are held to (`fleet/policy.toml`) is added');
    expect(section).toContain('secrets admin added (may read every secret)');
    expect(section).toContain('added "ghost\\u001b[2J\\u0007"');
    expect(section).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(r.stdout).not.toMatch(/[\x07\x1b]/);
  });

  it('json: the trust report; and a change that touches no trust says nothing of it', () => {
    const json = JSON.parse(dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--format', 'json').stdout);
    expect(json.trust.hosts.map((h: { host: string }) => h.host).sort()).toEqual(['atlas', 'ibis', 'tern', 'wren']);
    expect(json.trust.inputs).toHaveLength(2);
    expect(json.trust.changes.map((c: { principals: string }) => c.principals)).toContain('ghost\x1b[2J\x07');
    const plain = commit(repo, { 'home/dot_zshrc.hbs': text(tree, 'home/dot_zshrc.hbs') + '# one more line\n' }, 'no trust');
    const r = dotfleet('diff', '--repo', repo, '--base', head, '--head', plain);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/trust/i);
    expect(JSON.parse(dotfleet('diff', '--repo', repo, '--base', head, '--head', plain, '--format', 'json').stdout).trust).toEqual({ changes: [], hosts: [], roles: [], inputs: [], problems: [] });
  });
});
