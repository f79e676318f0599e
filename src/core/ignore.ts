/**
 * The per-host ignore list (`.chezmoiignore`, always a template): one glob per line over target
 * paths, `#` comments, `!` to exclude a path from the ignore. A pattern matches a path or any of
 * its ancestors, so ignoring a directory ignores what is inside it.
 */

/** A matcher for one glob over repository or target paths (`*`, `**`, `?`). */
export function globMatcher(glob: string): (path: string) => boolean {
  const re = globToRegExp(glob.replace(/^\/+/, ''));
  return (path) => re.test(path);
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
        if (glob[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export class IgnoreList {
  private readonly include: RegExp[] = [];
  private readonly exclude: RegExp[] = [];
  readonly patterns: string[] = [];

  constructor(text: string) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (line === '' || line.startsWith('#')) continue;
      this.patterns.push(line);
      const negated = line.startsWith('!');
      const glob = (negated ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
      (negated ? this.exclude : this.include).push(globToRegExp(glob));
    }
  }

  static readonly EMPTY = new IgnoreList('');

  ignores(target: string): boolean {
    if (this.include.length === 0) return false;
    let hit = false;
    let excluded = false;
    for (let p = target; ; ) {
      if (!hit && this.include.some((r) => r.test(p))) hit = true;
      if (!excluded && this.exclude.some((r) => r.test(p))) excluded = true;
      const i = p.lastIndexOf('/');
      if (i < 0) break;
      p = p.slice(0, i);
    }
    return hit && !excluded;
  }

  equals(other: IgnoreList): boolean {
    return this.patterns.length === other.patterns.length && this.patterns.every((p, i) => p === other.patterns[i]);
  }
}
