/**
 * Globs and the per-host ignore list, as chezmoi reads them.
 *
 * Globs follow doublestar (the library chezmoi matches `.chezmoiignore` with): `*` and `?` within
 * a path component, `**` as a whole component for zero or more components (`a/**` also matches
 * `a`), `[...]` classes (`^` or `!` negates, ranges), `{a,b}` alternatives, `\` escapes. A glob
 * matches a whole path; test/core/glob.test.ts holds it to doublestar's own test table.
 *
 * The ignore list: every `.chezmoiignore` (always a template) adds its lines relative to its own
 * directory; `#` after whitespace starts a comment; `!` marks an exclusion. A target is ignored
 * when it or one of its ancestors matches an ignore pattern and no exclusion, so an ignored
 * directory hides everything in it and `!` only rescues a path whose ancestors are not ignored.
 */
import { DotfleetError } from './errors.js';

export class GlobSyntaxError extends Error {}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g;
const lit = (c: string): string => c.replace(REGEX_SPECIAL, '\\$&');
const classChar = (c: string): string => `\\u{${c.codePointAt(0)!.toString(16)}}`;

/** Compile a doublestar glob to an anchored RegExp; throws GlobSyntaxError on a bad pattern. */
export function compileGlob(glob: string): RegExp {
  const chars = Array.from(glob);
  let i = 0;

  const parseClass = (): string => {
    // chars[i] is '['.
    i++;
    let negate = false;
    if (chars[i] === '^' || chars[i] === '!') {
      negate = true;
      i++;
    }
    const items: string[] = [];
    const take = (): string => {
      if (chars[i] === '\\') i++;
      if (i >= chars.length) throw new GlobSyntaxError('unterminated [');
      return chars[i++]!;
    };
    while (true) {
      if (i >= chars.length) throw new GlobSyntaxError('unterminated [');
      if (chars[i] === ']') {
        if (items.length === 0) throw new GlobSyntaxError('empty []');
        i++;
        break;
      }
      const lo = take();
      if (chars[i] === '-' && i + 1 < chars.length && chars[i + 1] !== ']') {
        i++;
        const hi = take();
        if (hi.codePointAt(0)! < lo.codePointAt(0)!) throw new GlobSyntaxError(`bad range ${lo}-${hi}`);
        items.push(`${classChar(lo)}-${classChar(hi)}`);
      } else items.push(classChar(lo));
    }
    return negate ? `[^/${items.join('')}]` : `(?!/)[${items.join('')}]`;
  };

  /** Parse until end, or until ',' / '}' when inside alternatives. */
  const parse = (inAlt: boolean): string => {
    let re = '';
    while (i < chars.length) {
      const c = chars[i]!;
      const atComponentStart = i === 0 || chars[i - 1] === '/';
      if (inAlt && (c === ',' || c === '}')) return re;
      if (c === '\\') {
        if (i + 1 >= chars.length) throw new GlobSyntaxError('trailing \\');
        re += lit(chars[i + 1]!);
        i += 2;
      } else if (c === '*') {
        let n = 0;
        while (chars[i] === '*') {
          n++;
          i++;
        }
        const atComponentEnd = i === chars.length || chars[i] === '/';
        if (n >= 2 && atComponentStart && atComponentEnd) {
          const atEnd = i === chars.length || (chars[i] === '/' && i + 1 === chars.length);
          if (atEnd && re.endsWith('/')) {
            // `a/**` and `a/**/`: a, and everything under it.
            re = `${re.slice(0, -1)}(?:/.*)?`;
            i = chars.length;
          } else if (chars[i] === '/') {
            // `**/`: zero or more whole components.
            re += '(?:.*/)?';
            i++;
          } else re += '.*';
        } else re += '[^/]*';
      } else if (c === '?') {
        re += '[^/]';
        i++;
      } else if (c === '[') {
        re += parseClass();
      } else if (c === '{') {
        i++;
        const alts: string[] = [];
        while (true) {
          alts.push(parse(true));
          if (i >= chars.length) throw new GlobSyntaxError('unterminated {');
          if (chars[i++] === '}') break;
        }
        re += `(?:${alts.join('|')})`;
      } else {
        re += lit(c);
        i++;
      }
    }
    return re;
  };
  return new RegExp(`^${parse(false)}$`, 'u');
}

/** A matcher for one glob over repository or target paths. */
export function globMatcher(glob: string): (path: string) => boolean {
  const re = compileGlob(glob.replace(/^\/+/, ''));
  return (path) => re.test(path);
}

/** path.Join of Go: components joined, `.` and empty ones dropped, `x/..` folded. */
function joinClean(dir: string, rel: string): string {
  const out: string[] = [];
  for (const c of `${dir}/${rel}`.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else out.push(c);
  }
  return out.join('/');
}

/** A rendered `.chezmoiignore`: its repository path, the target directory it is in, its text. */
export interface IgnoreSource {
  source: string;
  dir: string;
  text: string;
  /** The template's own text: an error names its line when the output line is the same there. */
  template?: string;
}

const COMMENT = /(?:^|\s+)#.*$/;

export class IgnoreList {
  private readonly include: RegExp[] = [];
  private readonly exclude: RegExp[] = [];
  /** Normalised patterns (`!` kept), for comparing two lists. */
  readonly patterns: string[] = [];

  constructor(sources: IgnoreSource[] | string) {
    const list = typeof sources === 'string' ? [{ source: '.chezmoiignore', dir: '', text: sources }] : sources;
    for (const { source, dir, text, template } of list) {
      const sourceLines = template?.split('\n');
      text.split('\n').forEach((raw, index) => {
        const line = raw.replace(/\r$/, '').replace(COMMENT, '').trim();
        if (line === '') return;
        const negated = line.startsWith('!');
        const rel = negated ? line.slice(1) : line;
        // A line of the output is a line of the source only when the template has it there.
        const sameLine = sourceLines === undefined || sourceLines[index] === raw;
        const where = { file: source, line: sameLine ? index + 1 : undefined };
        const at = sameLine ? '' : ` (line ${index + 1} of what it renders to for this host)`;
        if (rel === '' || rel === '..' || rel.startsWith('../') || rel.includes('/../') || rel.endsWith('/..') || rel.startsWith('/')) {
          throw new DotfleetError('schema', `an ignore pattern must be a path relative to its directory, got ${JSON.stringify(rel)}${at}`, {
            ...where,
            hint: 'write the target path without a leading / or .. (as chezmoi requires)',
          });
        }
        const pattern = joinClean(dir, rel);
        let re: RegExp;
        try {
          re = compileGlob(pattern);
        } catch (e) {
          if (!(e instanceof GlobSyntaxError)) throw e;
          throw new DotfleetError('schema', `invalid ignore pattern ${JSON.stringify(rel)}: ${e.message}${at}`, {
            ...where,
            hint: 'escape a literal [ { * ? or \\ with a backslash',
          });
        }
        this.patterns.push(negated ? `!${pattern}` : pattern);
        (negated ? this.exclude : this.include).push(re);
      });
    }
  }

  static readonly EMPTY = new IgnoreList([]);

  /** chezmoi's PatternSet.Match == include: an ignore pattern matches and no exclusion does. */
  private matches(path: string): boolean {
    if (this.exclude.some((r) => r.test(path))) return false;
    return this.include.some((r) => r.test(path));
  }

  ignores(target: string): boolean {
    if (this.include.length === 0) return false;
    for (let i = target.indexOf('/'); i >= 0; i = target.indexOf('/', i + 1)) {
      if (this.matches(target.slice(0, i))) return true;
    }
    return this.matches(target);
  }

  equals(other: IgnoreList): boolean {
    return this.patterns.length === other.patterns.length && this.patterns.every((p, i) => p === other.patterns[i]);
  }
}
