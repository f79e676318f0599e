/**
 * The two kinds of tree the core works on: a repository's files at one commit (the input), and a
 * host's rendered configuration (the output).
 */

/** Repository-relative posix path → file bytes. Git symlinks are stored as their target text. */
export type RepoTree = ReadonlyMap<string, Uint8Array>;

export type RenderedFile = { kind: 'file'; mode: number; content: Uint8Array };
export type RenderedSymlink = { kind: 'symlink'; target: string };
export type RenderedDir = { kind: 'dir'; mode: number };
export type RenderedEntry = RenderedFile | RenderedSymlink | RenderedDir;

/** Target path (relative to the host's target root, e.g. `.config/git/config`) → entry. */
export type RenderedTree = Map<string, RenderedEntry>;

const shared = new WeakSet<Uint8Array>();

/**
 * Mark `content` as held by many rendered trees (a renderer's shared output, a repository's plain
 * file), so what is worked out from it (its hash, a patch) is kept with it; returns it. A host's
 * own output is not marked: keeping anything per such output would hold memory for nothing.
 */
export function sharedContent<T extends Uint8Array>(content: T): T {
  shared.add(content);
  return content;
}

export function isSharedContent(content: Uint8Array): boolean {
  return shared.has(content);
}

export function entriesEqual(a: RenderedEntry | undefined, b: RenderedEntry | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'dir':
      return a.mode === (b as RenderedDir).mode;
    case 'symlink':
      return a.target === (b as RenderedSymlink).target;
    case 'file': {
      const bf = b as RenderedFile;
      return a.mode === bf.mode && bytesEqual(a.content, bf.content);
    }
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || Buffer.compare(a, b) === 0;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The text of a file, or undefined when it is binary (a NUL byte, or not valid UTF-8). */
export function asText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/**
 * The key under which a repository tree lists the paths git holds that are not files: git paths
 * never contain NUL, so it cannot clash with one. Its value is JSON: path → why it is not a file.
 */
export const NOT_FILES_KEY = '\0not-files';

/** Paths in the tree that are not files (a symlink leaving the repository, a submodule), with why. */
export function notFiles(tree: RepoTree): Map<string, string> {
  const raw = tree.get(NOT_FILES_KEY);
  return raw ? new Map(Object.entries(JSON.parse(Buffer.from(raw).toString('utf8')) as Record<string, string>)) : new Map();
}

/** The tree's real paths (without the reserved key). */
export function repoPaths(tree: RepoTree): string[] {
  return [...tree.keys()].filter((p) => p !== NOT_FILES_KEY);
}

const MAX_LINK_HOPS = 40;
/** The most files links to directories may add to a tree. */
export const MAX_LINKED_FILES = 100_000;

/**
 * A repository's files with its symlinks followed, as chezmoi follows symlinks in its source
 * directory: a link to a file inside the repository holds that file's bytes, a link to a
 * directory holds a copy of the files under it. A link that leaves the repository, dangles or
 * loops, and a submodule, are listed under NOT_FILES_KEY so the fleet can refuse them by name.
 */
export function resolveRepoLinks(files: ReadonlyMap<string, Uint8Array>, links: ReadonlyMap<string, string>, gitlinks: Iterable<string> = []): Map<string, Uint8Array> {
  const out = new Map(files);
  const refused: Record<string, string> = {};
  for (const g of gitlinks) refused[g] = 'a git submodule: its files are not in this repository';
  const dirs = new Set<string>();
  for (const p of [...files.keys(), ...links.keys()]) for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) dirs.add(p.slice(0, i));

  /** Resolve a path whose components may be links, to a real path; a string explains a failure. */
  const resolve = (path: string, hops: { n: number }): { real: string } | { why: string } => {
    const parts = path.split('/');
    let done: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (done.length === 0) return { why: 'a symlink that points outside the repository' };
        done.pop();
        continue;
      }
      done.push(part);
      const target = links.get(done.join('/'));
      if (target === undefined) continue;
      if (++hops.n > MAX_LINK_HOPS) return { why: 'a symlink loop' };
      if (target.startsWith('/')) return { why: `a symlink to the absolute path ${JSON.stringify(target)}, outside the repository` };
      const via = resolve([...done.slice(0, -1), target].join('/'), hops);
      if ('why' in via) return via;
      done = via.real === '' ? [] : via.real.split('/');
    }
    return { real: done.join('/') };
  };

  // File paths in order, so the files under a directory are one range (found by bisection).
  const sorted = [...files.keys()].sort();
  const firstAtOrAfter = (prefix: string): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // Links to directories copy files: never more than this many in all (a repository of links
  // to links must not grow without bound where the bot reads it).
  let budget = MAX_LINKED_FILES;
  for (const [link] of links) {
    const r = resolve(link, { n: 0 });
    if ('why' in r) {
      refused[link] = r.why;
      continue;
    }
    const blob = files.get(r.real);
    if (blob) {
      out.set(link, blob);
      continue;
    }
    if (dirs.has(r.real) || r.real === '') {
      if (r.real === '' || link.startsWith(r.real + '/')) {
        refused[link] = 'a symlink to a directory that contains it (a loop)';
        continue;
      }
      const prefix = r.real + '/';
      const from = firstAtOrAfter(prefix);
      let to = from;
      while (to < sorted.length && sorted[to]!.startsWith(prefix)) to++;
      if (to - from > budget) {
        refused[link] = `a symlink to a directory whose files would take the repository past ${MAX_LINKED_FILES.toLocaleString('en-US')} linked files`;
        continue;
      }
      budget -= to - from;
      for (let i = from; i < to; i++) out.set(link + sorted[i]!.slice(r.real.length), files.get(sorted[i]!)!);
      if (to > from) continue;
    }
    refused[link] = `a symlink to ${JSON.stringify(links.get(link))}, which is not a file of the repository`;
  }
  if (Object.keys(refused).length > 0) out.set(NOT_FILES_KEY, Buffer.from(JSON.stringify(refused), 'utf8'));
  return out;
}
