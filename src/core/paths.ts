/** Posix path helpers for repository and target paths (always `/`, never absolute). */

export function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

/** `a/b/c` → `['a', 'a/b']`: every proper ancestor, shortest first. */
export function ancestors(p: string): string[] {
  const out: string[] = [];
  let i = p.indexOf('/');
  while (i >= 0) {
    out.push(p.slice(0, i));
    i = p.indexOf('/', i + 1);
  }
  return out;
}

/** True when `p` equals `root` or lies below it. `root` '' contains everything. */
export function isWithin(p: string, root: string): boolean {
  return root === '' || p === root || p.startsWith(root + '/');
}

/** Strip `root/` from `p`; `p` must be within `root`. */
export function relativeTo(p: string, root: string): string {
  return root === '' ? p : p.slice(root.length + 1);
}

/** Code-unit order, the same on every machine and locale (git's order for ASCII names). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
