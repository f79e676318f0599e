import { chmod, lstat, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { getHost } from '../../core/fleet.js';
import { Renderer } from '../../core/render.js';
import { renderHash } from '../../core/render-hash.js';
import { formatMode, type RenderedTree } from '../../core/tree.js';
import { EXIT, openFleet, write } from '../io.js';
import { MARKER } from '../../core/secrets/marker.js';
import { decryptMarkers } from '../../host/secrets.js';

/** A file-system failure as one clear line naming the path (never a stack trace). */
function fsError(e: unknown, out: string): never {
  const err = e as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    ENOTDIR: 'is not a directory (or a parent of it is a file)',
    ENOENT: 'cannot be made there (a parent cannot hold directories)',
    EEXIST: 'is in the way: a file exists where a directory must be made',
    EACCES: 'cannot be written: permission denied',
    EPERM: 'cannot be written: operation not permitted',
    EROFS: 'is on a read-only file system',
    ENOSPC: 'has no space left',
    ELOOP: 'has a symbolic link loop in its path',
  };
  if (err?.code && why[err.code]) {
    const at = err.path && err.path !== out ? ` (at ${err.path})` : '';
    throw new DotfleetError('usage', `--out ${out} ${why[err.code]}${at}`, { file: out, hint: 'pass --out with a new or empty directory you can write to' });
  }
  throw e;
}

async function writeTree(out: string, tree: RenderedTree): Promise<void> {
  const info = await lstat(out).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : fsError(e, out)));
  if (info && !info.isDirectory()) {
    throw new DotfleetError('usage', `--out ${out} is ${info.isSymbolicLink() ? 'a symbolic link' : info.isFile() ? 'a file' : 'not a directory (a device, a socket or a pipe)'}`, { file: out, hint: 'pass --out with a new or empty directory; render never overwrites files' });
  }
  const existing = info ? await readdir(out).catch((e) => fsError(e, out)) : [];
  if (existing.length > 0) {
    throw new DotfleetError('usage', `${out} is not empty`, { file: out, hint: 'pass --out with a new or empty directory; render never overwrites files' });
  }
  try {
    await writeEntries(out, tree);
  } catch (e) {
    fsError(e, out);
  }
}

/**
 * mkdir -p, one level at a time: node's recursive mkdir spins forever where a directory cannot
 * be made but is reported as missing (under /proc, for one).
 */
async function makeDirs(dir: string): Promise<void> {
  const parts = resolve(dir).split(sep).filter(Boolean);
  let at: string = sep;
  for (const part of parts) {
    at = join(at, part);
    try {
      await mkdir(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!(await lstat(at)).isDirectory()) throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR', path: at });
    }
  }
}

async function writeEntries(out: string, tree: RenderedTree): Promise<void> {
  await makeDirs(out);
  // Sorted, so parents come before children; modes are set after writing, so a read-only
  // directory is made read-only once its content is in.
  const paths = [...tree.keys()].sort();
  for (const p of paths) {
    const e = tree.get(p)!;
    const abs = join(out, p);
    if (e.kind === 'dir') await mkdir(abs, { recursive: true });
    else {
      await mkdir(dirname(abs), { recursive: true });
      if (e.kind === 'symlink') await symlink(e.target, abs);
      else await writeFile(abs, e.content, { mode: e.mode });
    }
  }
  for (const p of paths.reverse()) {
    const e = tree.get(p)!;
    if (e.kind !== 'symlink') await chmod(join(out, p), e.mode);
  }
}

export function renderCommand(program: Command): void {
  program
    .command('render')
    .description("render one host's configuration: list it, or write it to a directory")
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the fleet at this revision (default: the working tree)')
    .requiredOption('--host <name>', 'the host to render')
    .option('--out <dir>', 'write the rendered tree here (a new or empty directory)')
    .option('--decrypt', 'on the host: replace secret markers with their values, decrypted with sops, or in-process with this host\'s age key (needs --out; secrets are never printed)')
    .option('--json', 'print JSON')
    .action(async (opts: { repo: string; ref?: string; host: string; out?: string; json?: boolean; decrypt?: boolean }) => {
      if (opts.decrypt && !opts.out) throw new DotfleetError('usage', '--decrypt writes files only', { hint: 'add --out DIR: decrypted secrets are never printed' });
      const { fleet, commit, root } = await openFleet(opts.repo, opts.ref);
      const host = getHost(fleet, opts.host);
      const r = new Renderer().renderHost(fleet, host);
      const errors = [...fleet.sources.errors, ...r.errors];
      // A host that does not render has no render hash: its tree is incomplete.
      const hash = errors.length === 0 ? renderHash(r.tree) : null;
      if (opts.out && errors.length === 0) {
        if (opts.decrypt) {
          const cache = new Map<string, Map<string, string>>();
          for (const [path, e] of r.tree) {
            if (e.kind !== 'file') continue;
            const text = Buffer.from(e.content).toString('utf8');
            MARKER.lastIndex = 0;
            // Decrypted files are written 0600, as apply writes them.
            if (MARKER.test(text)) r.tree.set(path, { ...e, mode: 0o600, content: Buffer.from(await decryptMarkers(text, root, cache)) });
          }
        }
        await writeTree(opts.out, r.tree);
      }
      if (opts.json) {
        const entries = [...r.tree].map(([path, e]) => ({ path, kind: e.kind, ...(e.kind === 'symlink' ? { target: e.target } : { mode: formatMode(e.mode) }), ...(e.kind === 'file' ? { size: e.content.length } : {}) }));
        write(JSON.stringify({ host: host.name, commit, renderHash: hash, entries, errors: errors.map((e) => e.toJSON()) }, null, 2));
      } else {
        for (const [path, e] of r.tree) {
          const what = e.kind === 'symlink' ? `-> ${e.target}` : e.kind === 'file' ? `${e.content.length} B` : '';
          write(`${e.kind === 'symlink' ? 'link' : formatMode(e.mode)}  ${e.kind.padEnd(7)}  ${path}${e.kind === 'dir' ? '/' : ''}  ${what}`.trimEnd());
        }
        write(hash ? `render hash ${hash}${opts.out ? ` · written to ${opts.out}` : ''}` : `no render hash: ${host.name} has ${errors.length === 1 ? 'a render error' : `${errors.length} render errors`} (the entries above are what did render)`);
        for (const e of errors) process.stderr.write(`dotfleet: ${e.describe()}\n`);
      }
      if (errors.length > 0) {
        if (opts.out) process.stderr.write(`dotfleet: nothing written to ${opts.out}: ${host.name} has render errors\n`);
        process.exitCode = EXIT.renderErrors;
      }
    });
}
