/** OpenSSH's pattern lists (match.c): `*` and `?` globs, comma-separated, `!` negates. */

export function matchPattern(s: string, pattern: string): boolean {
  // Iterative glob with backtracking to the last `*`.
  let si = 0;
  let pi = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    const p = pattern[pi];
    if (p === '*') {
      star = pi++;
      mark = si;
    } else if (p !== undefined && (p === '?' || p === s[si])) {
      si++;
      pi++;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else return false;
  }
  while (pattern[pi] === '*') pi++;
  return pi === pattern.length;
}

/** 1 when a positive pattern matches, -1 when a negated one does (that wins), else 0. */
export function matchPatternList(s: string, list: string): 1 | 0 | -1 {
  // A list of one plain name (the usual allowed_signers line) matches only itself.
  if (s === list && s.length < 1023 && !s.includes(',') && !s.includes('*') && !s.includes('?') && !s.startsWith('!')) return 1;
  let positive = false;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const sub = negated ? raw.slice(1) : raw;
    // OpenSSH gives up on a sub-pattern of 1,023 characters or more.
    if (sub.length >= 1023) return 0;
    if (matchPattern(s, sub)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

export function isWildcardList(list: string): boolean {
  return /[*?!]/.test(list);
}
