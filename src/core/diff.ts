/**
 * Comparing two rendered trees of one host (or of two hosts): Added, Removed, Modified (a unified
 * diff with 3 lines of context), Permission and Symlink-target changes. Binary files are
 * summarised by size and hash, never printed.
 */
import { createHash } from 'node:crypto';
import { looksLikeSopsAny } from './secrets/sops-file.js';
import { structuredPatch } from 'diff';
import { asText, isSharedContent, type RenderedEntry, type RenderedTree } from './tree.js';
import { compareStrings } from './paths.js';

export type ChangeType = 'added' | 'removed' | 'modified' | 'permission' | 'symlink';

export interface BlobSummary {
  size: number;
  sha256: string;
}

export interface Change {
  type: ChangeType;
  path: string;
  kind: RenderedEntry['kind'];
  /** Unified diff hunks (no file header) for text content: modified, added or removed files. */
  patch?: string;
  /** Binary content, summarised. */
  binary?: { from?: BlobSummary; to?: BlobSummary };
  /** Encrypted (SOPS) content: summarised like binary content, never printed. */
  encrypted?: boolean;
  /**
   * Text too large or too different to diff within the budget (as GitHub does with large
   * diffs): line counts and hashes instead of a patch; `--full-patch` gives the exact diff.
   */
  rewrite?: { from?: BlobSummary & { lines: number }; to?: BlobSummary & { lines: number } };
  fromMode?: number;
  toMode?: number;
  fromTarget?: string;
  toTarget?: string;
}

export const CHANGE_LETTER: Record<ChangeType, string> = {
  added: 'A',
  removed: 'R',
  modified: 'M',
  permission: 'P',
  symlink: 'S',
};

const TYPE_ORDER: ChangeType[] = ['removed', 'added', 'modified', 'permission', 'symlink'];

/** SOPS metadata or sops-encrypted values: such content is summarised, never printed. */
export const looksEncrypted = looksLikeSopsAny;

function summary(bytes: Uint8Array): BlobSummary {
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Past this many lines on either side, a text is summarised rather than diffed. */
export const MAX_DIFF_LINES = 50_000;
/** Past this many inserted and deleted lines, the diff gives up and summarises (Myers' D). */
export const MAX_EDIT_LENGTH = 2_000;

export interface PatchOptions {
  /** The exact patch whatever its size or cost (`--full-patch`). */
  exact?: boolean;
  /** Only that a file changed: no patch, no summary (render hashes need nothing more). */
  none?: boolean;
}

/**
 * The common case without the general algorithm: one block of at most 8 lines replaced by at
 * most 8 others that occur nowhere in the other text, both texts ending in a newline. Myers'
 * diff gives exactly this hunk (a test compares the two on random texts); undefined when the
 * change is not of that shape.
 */
export function oneBlockHunk(from: string, to: string): string | undefined {
  if (!from.endsWith('\n') || !to.endsWith('\n')) return undefined;
  const a = from.slice(0, -1).split('\n');
  const b = to.slice(0, -1).split('\n');
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let q = 0;
  while (q < a.length - p && q < b.length - p && a[a.length - 1 - q] === b[b.length - 1 - q]) q++;
  const removed = a.slice(p, a.length - q);
  const added = b.slice(p, b.length - q);
  if (removed.length + added.length === 0 || removed.length > 8 || added.length > 8) return undefined;
  // No removed line anywhere in the new text and no added line anywhere in the old one: then the
  // longest common subsequence is exactly the unchanged prefix and suffix, and Myers' edit
  // script (jsdiff's) is unique: this block, removals first.
  const occurs = (lines: string[], of: string[]) => {
    if (of.length === 0) return false;
    if (lines.length <= 256) return of.some((l) => lines.includes(l));
    const set = new Set(lines);
    return of.some((l) => set.has(l));
  };
  if (occurs(b, removed) || occurs(a, added)) return undefined;
  const before = a.slice(Math.max(0, p - 3), p);
  const after = a.slice(a.length - q, a.length - q + 3);
  const start = p - before.length + 1;
  const out = [`@@ -${start},${before.length + removed.length + after.length} +${start},${before.length + added.length + after.length} @@`];
  for (const l of before) out.push(' ' + l);
  for (const l of removed) out.push('-' + l);
  for (const l of added) out.push('+' + l);
  for (const l of after) out.push(' ' + l);
  return out.join('\n');
}

/** Unified diff hunks with 3 lines of context, without the ---/+++ header; undefined past the budget. */
export function unifiedHunks(from: string, to: string, options: PatchOptions = {}): string | undefined {
  const quick = oneBlockHunk(from, to);
  if (quick !== undefined) return quick;
  const patch = options.exact
    ? structuredPatch('a', 'b', from, to, '', '', { context: 3 })
    : structuredPatch('a', 'b', from, to, '', '', { context: 3, maxEditLength: MAX_EDIT_LENGTH });
  if (!patch) return undefined;
  const out: string[] = [];
  for (const h of patch.hunks) {
    out.push(`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`);
    // One by one: spreading a hunk of 150,000 lines into push() overflows the stack.
    for (const l of h.lines) out.push(l);
  }
  return out.join('\n');
}

function lineCount(text: string): number {
  if (text === '') return 0;
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n : n + 1;
}

/**
 * Patches by content: one file changed alike on many hosts is diffed once. Keyed weakly on both
 * sides (an added file's patch under its content, a removed one's under the old content), so a
 * long-running app keeps a patch no longer than the bytes it was made from; only for contents
 * many trees hold (tree.ts, sharedContent): a host's own output is diffed once anyway.
 */
const modifiedPatches = new WeakMap<Uint8Array, WeakMap<Uint8Array, Change>>();
const onePatches = { added: new WeakMap<Uint8Array, Change>(), removed: new WeakMap<Uint8Array, Change>() };

function contentChange(type: 'added' | 'removed' | 'modified', path: string, from: Uint8Array | undefined, to: Uint8Array | undefined, options: PatchOptions = {}): Change {
  // Neither an exact patch nor a bare "changed" goes into the memo that later diffs read.
  if (options.exact || options.none || (from && !isSharedContent(from)) || (to && !isSharedContent(to))) return computeContentChange(type, path, from, to, options);
  let byTo: WeakMap<Uint8Array, Change> | undefined;
  let key: Uint8Array;
  if (from && to) {
    byTo = modifiedPatches.get(from);
    if (!byTo) modifiedPatches.set(from, (byTo = new WeakMap()));
    key = to;
  } else {
    byTo = onePatches[from ? 'removed' : 'added'];
    key = (from ?? to)!;
  }
  let c = byTo.get(key);
  if (!c) byTo.set(key, (c = computeContentChange(type, path, from, to, options)));
  return { ...c, path, type };
}

function computeContentChange(type: 'added' | 'removed' | 'modified', path: string, from: Uint8Array | undefined, to: Uint8Array | undefined, options: PatchOptions): Change {
  if (options.none) return { type, path, kind: 'file' };
  const fromText = from === undefined ? '' : asText(from);
  const toText = to === undefined ? '' : asText(to);
  const change: Change = { type, path, kind: 'file' };
  const encrypted = (fromText !== undefined && looksEncrypted(fromText)) || (toText !== undefined && looksEncrypted(toText));
  if (fromText === undefined || toText === undefined || encrypted) {
    if (encrypted) change.encrypted = true;
    change.binary = {};
    if (from) change.binary.from = summary(from);
    if (to) change.binary.to = summary(to);
    return change;
  }
  const fromLines = lineCount(fromText);
  const toLines = lineCount(toText);
  const patch = !options.exact && Math.max(fromLines, toLines) > MAX_DIFF_LINES ? undefined : unifiedHunks(fromText, toText, options);
  if (patch !== undefined) change.patch = patch;
  else {
    change.rewrite = {};
    if (from) change.rewrite.from = { ...summary(from), lines: fromLines };
    if (to) change.rewrite.to = { ...summary(to), lines: toLines };
  }
  return change;
}

function describeEntry(type: 'added' | 'removed', path: string, e: RenderedEntry, options: PatchOptions = {}): Change {
  switch (e.kind) {
    case 'dir':
      return type === 'added' ? { type, path, kind: 'dir', toMode: e.mode } : { type, path, kind: 'dir', fromMode: e.mode };
    case 'symlink':
      return type === 'added' ? { type, path, kind: 'symlink', toTarget: e.target } : { type, path, kind: 'symlink', fromTarget: e.target };
    case 'file': {
      const c = type === 'added' ? contentChange(type, path, undefined, e.content, options) : contentChange(type, path, e.content, undefined, options);
      if (type === 'added') c.toMode = e.mode;
      else c.fromMode = e.mode;
      return c;
    }
  }
}

/** The changes at one path. */
export function compareEntries(path: string, from: RenderedEntry | undefined, to: RenderedEntry | undefined, options: PatchOptions = {}): Change[] {
  if (!from && !to) return [];
  if (!from) return [describeEntry('added', path, to!, options)];
  if (!to) return [describeEntry('removed', path, from, options)];
  if (from.kind !== to.kind) return [describeEntry('removed', path, from, options), describeEntry('added', path, to, options)];
  const out: Change[] = [];
  if (from.kind === 'symlink' && to.kind === 'symlink') {
    if (from.target !== to.target) out.push({ type: 'symlink', path, kind: 'symlink', fromTarget: from.target, toTarget: to.target });
    return out;
  }
  if (from.kind === 'file' && to.kind === 'file' && Buffer.compare(from.content, to.content) !== 0) {
    out.push(contentChange('modified', path, from.content, to.content, options));
  }
  const fromMode = (from as { mode: number }).mode;
  const toMode = (to as { mode: number }).mode;
  if (fromMode !== toMode) out.push({ type: 'permission', path, kind: from.kind, fromMode, toMode });
  return out;
}

export function sortChanges(changes: Change[]): Change[] {
  return changes.sort((a, b) => compareStrings(a.path, b.path) || TYPE_ORDER.indexOf(a.type) - TYPE_ORDER.indexOf(b.type));
}

/** Every change from `from` to `to`; `paths` limits the comparison to those targets. */
export function compareTrees(from: RenderedTree, to: RenderedTree, paths?: Iterable<string>, options: PatchOptions = {}): Change[] {
  const all = paths ? new Set(paths) : new Set([...from.keys(), ...to.keys()]);
  const out: Change[] = [];
  for (const p of all) for (const c of compareEntries(p, from.get(p), to.get(p), options)) out.push(c);
  return sortChanges(out);
}

export function countByType(changes: Change[]): Record<ChangeType, number> {
  const counts: Record<ChangeType, number> = { added: 0, removed: 0, modified: 0, permission: 0, symlink: 0 };
  for (const c of changes) counts[c.type]++;
  return counts;
}
