/**
 * Reading fleet repositories with the real `git` CLI: a tree at a revision (one `ls-tree` and
 * one `cat-file --batch` for every blob), or the working tree as `git` sees it.
 */
import { spawn } from 'node:child_process';
import { lstat, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DotfleetError } from '../core/errors.js';
import { resolveRepoLinks, type RepoTree } from '../core/tree.js';

export interface GitResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

export function runGit(cwd: string, args: string[], input?: Buffer | string, env: Record<string, string> = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', ...env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new DotfleetError('git', 'git is not installed or not on PATH', { hint: 'install git (apt-get install git)' })
          : e,
      ),
    );
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), code: code ?? 1 }));
    if (child.stdin) {
      // git may exit (e.g. on a bad revision) before reading all of its input; its exit code says why.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

async function git(cwd: string, args: string[], what: string, input?: string): Promise<Buffer> {
  await assertDirectory(cwd);
  const r = await runGit(cwd, args, input);
  if (r.code !== 0) {
    const detail = r.stderr.trim().split('\n')[0] ?? '';
    if (/not a git repository/i.test(detail)) {
      throw new DotfleetError('git', `${cwd} is not a git repository`, { file: cwd, hint: 'pass --repo with the path of your fleet repository' });
    }
    throw new DotfleetError('git', `${what} failed: ${detail}`, { file: cwd });
  }
  return r.stdout;
}

async function assertDirectory(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new DotfleetError('git', `${dir} is not a directory`, { file: dir, hint: 'pass --repo with the path of your fleet repository' });
  }
}

/** The commit a revision names; a clear error when it names nothing. */
export async function resolveCommit(repo: string, rev: string): Promise<string> {
  const r = await runGit(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
  if (r.code !== 0) {
    await git(repo, ['rev-parse', '--git-dir'], 'reading the repository');
    throw new DotfleetError('git', `"${rev}" is not a commit in ${repo}`, {
      file: repo,
      hint: 'name a branch, tag or commit that exists (git log --oneline shows them)',
    });
  }
  return r.stdout.toString('utf8').trim();
}

/**
 * Every file of the commit `rev` names. Symlinks are followed inside the repository and
 * submodules listed as not files (resolveRepoLinks).
 */
export async function readTreeAtRef(repo: string, rev: string): Promise<RepoTree> {
  const commit = await resolveCommit(repo, rev);
  const listing = await git(repo, ['ls-tree', '-r', '-z', '--full-tree', commit], 'listing the tree');
  const paths: string[] = [];
  const shas: string[] = [];
  const isLink: boolean[] = [];
  const gitlinks: string[] = [];
  for (const rec of listing.toString('utf8').split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, type, sha] = rec.slice(0, tab).split(' ');
    if (type === 'commit') gitlinks.push(rec.slice(tab + 1));
    if (type !== 'blob') continue;
    paths.push(rec.slice(tab + 1));
    shas.push(sha!);
    isLink.push(mode === '120000');
  }
  const unique = [...new Set(shas)];
  const blobs = new Map<string, Buffer>();
  if (unique.length > 0) {
    const out = await git(repo, ['cat-file', '--batch'], 'reading blobs', unique.join('\n') + '\n');
    let at = 0;
    for (const sha of unique) {
      const nl = out.indexOf(0x0a, at);
      const header = out.subarray(at, nl).toString('utf8').split(' ');
      const size = Number(header[2]);
      if (header[0] !== sha || !Number.isFinite(size)) throw new Error(`git cat-file: unexpected output for ${sha}`);
      blobs.set(sha, out.subarray(nl + 1, nl + 1 + size));
      at = nl + 1 + size + 1;
    }
  }
  const files = new Map<string, Uint8Array>();
  const links = new Map<string, string>();
  paths.forEach((p, i) => (isLink[i] ? links.set(p, blobs.get(shas[i]!)!.toString('utf8')) : files.set(p, blobs.get(shas[i]!)!)));
  return resolveRepoLinks(files, links, gitlinks);
}

/** The working tree: tracked and untracked files that are not ignored, as they are on disk. */
export async function readWorkingTree(repo: string): Promise<RepoTree> {
  const listing = await git(repo, ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], 'listing files');
  const files = new Map<string, Uint8Array>();
  const links = new Map<string, string>();
  const gitlinks: string[] = [];
  for (const p of [...new Set(listing.toString('utf8').split('\0'))]) {
    if (!p) continue;
    const abs = join(repo, p);
    try {
      const st = await lstat(abs);
      // A link is followed only inside the repository (resolveRepoLinks): a fleet repo must not
      // pull other files of this machine into a render.
      if (st.isSymbolicLink()) links.set(p, await readlink(abs));
      else if (st.isFile()) files.set(p, await readFile(abs));
      else if (st.isDirectory()) gitlinks.push(p.replace(/\/+$/, ''));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return resolveRepoLinks(files, links, gitlinks);
}

/** The repository's top-level directory, or a clear error. */
export async function repoRoot(dir: string): Promise<string> {
  return (await git(dir, ['rev-parse', '--show-toplevel'], 'reading the repository')).toString('utf8').trim();
}
