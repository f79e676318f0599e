import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, lstatSync, writeFileSync, rmSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveRepoLinks, type RepoTree } from '../../src/core/tree.js';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const EXAMPLE_FLEET = join(PROJECT_ROOT, 'examples', 'fleet');

/** A RepoTree from `{ path: text }`. */
export function treeOf(files: Record<string, string | Uint8Array>): Map<string, Uint8Array> {
  return new Map(Object.entries(files).map(([p, c]) => [p, typeof c === 'string' ? Buffer.from(c) : c]));
}

/** Read a directory from disk as a RepoTree (symlinks followed inside it, as the adapters do). */
export function readDirTree(root: string): Map<string, Uint8Array> {
  const tree = new Map<string, Uint8Array>();
  const links = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      if (n === '.git') continue;
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) links.set(relative(root, p), readlinkSync(p));
      else if (st.isDirectory()) walk(p);
      else tree.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return resolveRepoLinks(tree, links);
}

export function exampleTree(): Map<string, Uint8Array> {
  return readDirTree(EXAMPLE_FLEET);
}

/** A minimal valid fleet: one preset, the given hosts, and the given source files under home/. */
export function miniFleet(opts: { hosts?: string; data?: string; files?: Record<string, string | Uint8Array> } = {}): Map<string, Uint8Array> {
  const files: Record<string, string | Uint8Array> = {
    'home/.chezmoidata.toml': opts.data ?? 'user = "robin"\n',
    'home/.chezmoidata/hardware.toml': [
      '[hardware.laptop]',
      'display_scale = 2.0',
      'kbd_layout = "us"',
      'modifier_mode = "mac"',
      'perf_profile = "balanced"',
      'wm = "aerospace"',
      'features = { touchbar = true }',
      '',
      '[hardware.server]',
      'display_scale = 1.0',
      'kbd_layout = "us"',
      'modifier_mode = "pc"',
      'perf_profile = "performance"',
      'wm = "none"',
      '',
    ].join('\n'),
    'fleet/hosts.toml':
      opts.hosts ??
      ['[hosts.alpha]', 'machine = "laptop"', 'platform = "darwin"', 'wave = 1', '', '[hosts.beta]', 'machine = "server"', 'platform = "linux"', 'wave = 2', ''].join('\n'),
  };
  for (const [p, c] of Object.entries(opts.files ?? {})) files[`home/${p}`] = c;
  return treeOf(files);
}

// Fixed identities and dates: the same trees give the same commit ids, run after run.
const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t.invalid', GIT_AUTHOR_DATE: '2026-11-20T09:00:00Z', GIT_COMMITTER_DATE: '2026-11-20T09:00:00Z' };

export function git(repo: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'commit.gpgsign=false', ...args], { cwd: repo, env: GIT_ENV, encoding: 'utf8' });
}

export function writeTree(dir: string, tree: RepoTree): void {
  for (const [p, c] of tree) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
}

/** A real git repository whose first commit (on main) is `tree`. */
export function gitRepo(tree: RepoTree): string {
  const dir = mkdtempSync(join(tmpdir(), 'dotfleet-test-'));
  git(dir, 'init', '-q', '-b', 'main');
  writeTree(dir, tree);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'initial');
  return dir;
}

/** Commit changes (`null` deletes a file) on the current branch; returns the new commit. */
export function commit(repo: string, changes: Record<string, string | null>, message = 'change'): string {
  for (const [p, c] of Object.entries(changes)) {
    const abs = join(repo, p);
    if (c === null) rmSync(abs);
    else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, c);
    }
  }
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', message);
  return git(repo, 'rev-parse', 'HEAD').trim();
}

export function text(tree: Map<string, Uint8Array>, path: string): string {
  return Buffer.from(tree.get(path)!).toString('utf8');
}
