/**
 * A repository tarball (GitHub's `GET /repos/{owner}/{repo}/tarball/{ref}`, or `git archive`)
 * → RepoTree. ustar with pax extended headers (long names, the commit id); the single top-level
 * directory GitHub adds is removed. Symlinks are followed inside the repository (resolveRepoLinks).
 */
import { gunzipSync } from 'node:zlib';
import { resolveRepoLinks, type RepoTree } from '../core/tree.js';

export class TarballError extends Error {}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
}

function octal(block: Buffer, start: number, length: number): number {
  const text = field(block, start, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** pax records: "LEN key=value\n" … */
function pax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(data.subarray(at, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0) throw new TarballError('malformed pax header');
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

export interface Tarball {
  tree: RepoTree;
  /** The commit id git archive records in the global pax header, when present. */
  commit?: string;
}

export function readTarball(gz: Uint8Array, limits: { maxBytes?: number; maxFiles?: number } = {}): Tarball {
  const maxBytes = limits.maxBytes ?? 512 * 1024 * 1024;
  const maxFiles = limits.maxFiles ?? 200_000;
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: maxBytes });
  } catch (e) {
    throw new TarballError(`cannot gunzip the repository archive: ${(e as Error).message}`);
  }
  const files = new Map<string, Uint8Array>();
  const links = new Map<string, string>();
  const dirs = new Set<string>();
  let commit: string | undefined;
  let next: Record<string, string> = {};
  let at = 0;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156]!);
    const prefix = field(header, 345, 155);
    const name = next.path ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    const linkname = next.linkpath ?? field(header, 157, 100);
    const data = tar.subarray(at + 512, at + 512 + size);
    if (data.length !== size) throw new TarballError('the repository archive is truncated');
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === 'g') {
      commit = pax(data).comment ?? commit;
      continue;
    }
    if (type === 'x') {
      next = pax(data);
      continue;
    }
    next = {};
    if (type === '5') {
      dirs.add(name.replace(/\/+$/, ''));
      continue;
    }
    if (type === '0' || type === '\0' || type === '2') {
      if (files.size >= maxFiles) throw new TarballError(`the repository has more than ${maxFiles} files`);
      if (type === '2') links.set(name, linkname);
      else files.set(name, Buffer.from(data));
    }
  }
  // Remove the one top-level directory (owner-repo-sha/).
  const all = [...files.keys(), ...links.keys()];
  const tops = new Set(all.map((p) => p.split('/')[0]));
  const strip = tops.size === 1 && all.every((p) => p.includes('/'));
  const rel = (p: string) => (strip ? p.slice(p.indexOf('/') + 1) : p);
  // git tracks no empty directory: an empty one in a git archive is a submodule.
  const parents = new Set<string>();
  for (const p of all) for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) parents.add(p.slice(0, i));
  const submodules = [...dirs].filter((d) => !parents.has(d) && (!strip || d.includes('/')));
  const tree = resolveRepoLinks(
    new Map([...files].map(([p, b]) => [rel(p), b])),
    new Map([...links].map(([p, t]) => [rel(p), t])),
    submodules.map(rel),
  );
  return { tree, commit };
}
