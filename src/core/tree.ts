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
