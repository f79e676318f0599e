/**
 * chezmoi-style source names → target paths, kinds and modes, read exactly as chezmoi reads them
 * (`internal/chezmoi/attr.go`; the parity test in test/core/chezmoi-parity.test.ts holds it).
 *
 * A directory name is `remove_`? `external_`? `exact_`? `private_`? `readonly_`? then `dot_` or
 * `literal_`. A file name starts with at most one type prefix (`create_`, `remove_`, `run_`,
 * `symlink_`, `modify_`), then that type's attributes (a plain file: `encrypted_`? `private_`?
 * `readonly_`? `empty_`? `executable_`?), then `dot_` or `literal_`; then the suffix `.literal`, or
 * `.hbs` (a template) optionally preceded by `.literal`. Each prefix is taken at most once and only
 * in that order: anything else is part of the name. Types and attributes that would run code or
 * need a key where the fleet is rendered are refused by name.
 */
import { DotfleetError } from './errors.js';
import { compareStrings, joinPath } from './paths.js';

export type SourceKind = 'file' | 'symlink' | 'dir';

export interface SourceEntry {
  /** Repository path of the source (a directory for `dir`). */
  source: string;
  /** Target path relative to the host's target root. */
  target: string;
  kind: SourceKind;
  /** Unix permission bits for files and directories (symlinks have none). */
  mode: number;
  template: boolean;
  /** `empty_`: keep the file even when it is empty. */
  empty: boolean;
}

export const TEMPLATE_SUFFIX = '.hbs';
const LITERAL_SUFFIX = '.literal';

/** Prefixes dotfleet refuses, by kind, with what chezmoi would do with them. */
export const REFUSED_DIR_PREFIXES: Record<string, string> = {
  remove_: 'removes the directory on the host',
  external_: 'fills the directory from an archive outside the repository',
  exact_: 'deletes everything in the directory that the source does not name',
};
export const REFUSED_FILE_PREFIXES: Record<string, string> = {
  create_: 'writes the file only when it does not exist yet',
  remove_: 'removes the file on the host',
  run_: 'runs the file as a script (once_, onchange_, before_, after_ only mean something after run_)',
  modify_: 'runs the file as a script that edits the existing file',
  encrypted_: 'decrypts the file with a key dotfleet does not hold (use a SOPS file and {{secret}})',
};

interface ParsedName {
  name: string;
  kind: SourceKind;
  mode: number;
  template: boolean;
  empty: boolean;
}

function cut(s: { rest: string }, prefix: string): boolean {
  if (!s.rest.startsWith(prefix)) return false;
  s.rest = s.rest.slice(prefix.length);
  return true;
}

function refuse(prefix: string, why: string, component: string, source: string, kind: string): never {
  throw new DotfleetError('bad-source-name', `chezmoi's ${prefix} attribute is not supported by dotfleet: on a ${kind} it ${why}`, {
    file: source,
    hint: `rename it; to keep "${prefix}" as part of the target name write literal_${component}`,
  });
}

/** `dot_` or `literal_`, one of them (dot_ wins: `dot_literal_x` is `.literal_x`). */
function takeDot(s: { rest: string }): boolean {
  if (cut(s, 'dot_')) return true;
  cut(s, 'literal_');
  return false;
}

function checkName(name: string, source: string): string {
  if (name === '' || name === '.') {
    throw new DotfleetError('bad-source-name', name === '' ? 'the name is empty once its attributes are removed' : 'the target name "." names the directory itself', {
      file: source,
      hint: 'give the file or directory a name after its attribute prefixes',
    });
  }
  if (name === '..') {
    throw new DotfleetError('path-escape', `the target name "${name}" would escape the target root`, {
      file: source,
      hint: 'a target name cannot be "." or ".."; rename the source',
    });
  }
  return name;
}

export function parseDirName(component: string, source: string): ParsedName {
  const s = { rest: component };
  for (const prefix of Object.keys(REFUSED_DIR_PREFIXES)) {
    if (cut(s, prefix)) refuse(prefix, REFUSED_DIR_PREFIXES[prefix]!, component, source, 'directory');
  }
  let mode = 0o755;
  if (cut(s, 'private_')) mode &= ~0o077;
  if (cut(s, 'readonly_')) mode &= ~0o222;
  const dot = takeDot(s);
  return { name: checkName((dot ? '.' : '') + s.rest, source), kind: 'dir', mode, template: false, empty: false };
}

/** `.literal`, or `.hbs` optionally preceded by `.literal`; chezmoi reads suffixes after prefixes. */
function takeSuffix(s: { rest: string }): boolean {
  if (s.rest.endsWith(LITERAL_SUFFIX)) {
    s.rest = s.rest.slice(0, -LITERAL_SUFFIX.length);
    return false;
  }
  if (s.rest.endsWith(TEMPLATE_SUFFIX)) {
    s.rest = s.rest.slice(0, -TEMPLATE_SUFFIX.length);
    if (s.rest.endsWith(LITERAL_SUFFIX)) s.rest = s.rest.slice(0, -LITERAL_SUFFIX.length);
    return true;
  }
  return false;
}

export function parseFileName(component: string, source: string): ParsedName {
  const s = { rest: component };
  // The type prefix comes first and only one is read (run_symlink_x is a script named symlink_x).
  for (const prefix of ['create_', 'remove_', 'run_', 'modify_']) {
    if (cut(s, prefix)) refuse(prefix, REFUSED_FILE_PREFIXES[prefix]!, component, source, 'file');
  }
  if (cut(s, 'symlink_')) {
    const dot = takeDot(s);
    const template = takeSuffix(s);
    return { name: checkName((dot ? '.' : '') + s.rest, source), kind: 'symlink', mode: 0, template, empty: false };
  }
  if (cut(s, 'encrypted_')) refuse('encrypted_', REFUSED_FILE_PREFIXES.encrypted_!, component, source, 'file');
  // chezmoi's perm(): 0666, executable adds 0111, private drops 0077, readonly drops 0222; umask 022.
  let mode = 0o666;
  const isPrivate = cut(s, 'private_');
  const readonly = cut(s, 'readonly_');
  const empty = cut(s, 'empty_');
  if (cut(s, 'executable_')) mode |= 0o111;
  if (isPrivate) mode &= ~0o077;
  if (readonly) mode &= ~0o222;
  mode &= ~0o022;
  const dot = takeDot(s);
  const template = takeSuffix(s);
  return { name: checkName((dot ? '.' : '') + s.rest, source), kind: 'file', mode, template, empty };
}

export interface SourceIndex {
  /** Source root inside the repository ('' for the repository root). */
  root: string;
  /** Every renderable entry, sorted by target then source. */
  entries: SourceEntry[];
  /** Target → the sources that claim it (usually one). */
  byTarget: Map<string, SourceEntry[]>;
  /** Targets claimed by more than one source (or a file and a directory): candidates for conflicts. */
  contested: Map<string, SourceEntry[]>;
  /** Names that cannot be rendered at all (bad attribute, escaping name, unsupported special file). */
  errors: DotfleetError[];
  /** Data files in chezmoi's read order (`.chezmoidata.*` and `.chezmoidata/` at any depth). */
  dataFiles: string[];
  /** `.chezmoiignore` files, each with the target directory its patterns are relative to. */
  ignoreFiles: { source: string; dir: string }[];
  /** Shared templates: name (path under `.chezmoitemplates/`) → repository path. */
  partials: Map<string, string>;
}

const DATA = '.chezmoidata';
const TEMPLATES_DIR = '.chezmoitemplates';
export const DATA_FORMATS = ['json', 'jsonc', 'toml', 'yaml', 'yml'] as const;
const IGNORE_NAMES = new Set(['.chezmoiignore', '.chezmoiignore.tmpl']);

/** chezmoi's special files dotfleet does not read, with what to do instead. */
const UNSUPPORTED_SPECIAL: [RegExp, string][] = [
  [/^\.chezmoiremove(\.tmpl)?$/, 'dotfleet never deletes files on a host that the source does not name; remove the file'],
  [/^\.chezmoiexternals?(\.[a-z]+)?(\.tmpl)?$/, 'dotfleet renders only what is in the repository (externals would be fetched from the network); vendor the files into the source tree'],
  [/^\.chezmoiscripts$/, 'dotfleet never runs scripts from the repository; remove the directory (post-apply checks live in hosts/<host>/tests/)'],
  [/^\.chezmoiversion$/, 'dotfleet does not check chezmoi versions; remove the file'],
  [/^\.chezmoi\.[a-z]+\.tmpl$/, "this is chezmoi's config template for chezmoi init; dotfleet's settings are .github/dotfleet.yml"],
  [/^\.chezmoi/, 'dotfleet does not know this chezmoi file; remove or rename it (names starting with "." are not rendered)'],
];

function unsupportedSpecial(name: string, path: string, isDir: boolean): DotfleetError {
  const hint = UNSUPPORTED_SPECIAL.find(([re]) => re.test(name))![1];
  return new DotfleetError('bad-source-name', `chezmoi's ${name}${isDir ? '/' : ''} is not supported by dotfleet`, { file: path, hint });
}

/** chezmoi walks the source tree depth first; siblings sorted by name, data and templates first. */
const WALK_FIRST: Record<string, number> = { '.chezmoiversion': -3, '.chezmoidata.json': -2, '.chezmoidata.toml': -2, '.chezmoidata.yaml': -2, '.chezmoitemplates': -1 };

export function compareWalkOrder(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    return (WALK_FIRST[pa[i]!] ?? 0) - (WALK_FIRST[pb[i]!] ?? 0) || compareStrings(pa[i]!, pb[i]!);
  }
  return pa.length - pb.length;
}

function isDataFileName(name: string): boolean {
  return DATA_FORMATS.some((f) => name === `${DATA}.${f}`);
}

/**
 * Index the source tree: map every source path under `root` to its target. Errors in names are
 * collected, not thrown, so one bad name does not hide the rest of the fleet. `refused` names
 * repository paths that are not files (a symlink leaving the repository, a submodule).
 */
export function indexSources(paths: Iterable<string>, root: string, refused: ReadonlyMap<string, string> = new Map()): SourceIndex {
  const entries: SourceEntry[] = [];
  const errors: DotfleetError[] = [];
  const dirs = new Map<string, SourceEntry | null>();
  const prefix = root === '' ? '' : root + '/';
  const dataFiles: string[] = [];
  const ignoreFiles: { source: string; dir: string }[] = [];
  const partials = new Map<string, string>();
  const reported = new Set<string>();
  const once = (key: string, error: () => DotfleetError): void => {
    if (reported.has(key)) return;
    reported.add(key);
    errors.push(error());
  };

  const dirTarget = (sourceDir: string): string | null => {
    if (sourceDir === root) return '';
    const known = dirs.get(sourceDir);
    if (known !== undefined) return known === null ? null : known.target;
    const parent = sourceDir.lastIndexOf('/') >= prefix.length ? sourceDir.slice(0, sourceDir.lastIndexOf('/')) : root;
    const parentTarget = dirTarget(parent);
    if (parentTarget === null) {
      dirs.set(sourceDir, null);
      return null;
    }
    try {
      const parsed = parseDirName(sourceDir.slice(sourceDir.lastIndexOf('/') + 1), sourceDir);
      const entry: SourceEntry = { source: sourceDir, target: joinPath(parentTarget, parsed.name), kind: 'dir', mode: parsed.mode, template: false, empty: false };
      dirs.set(sourceDir, entry);
      entries.push(entry);
      return entry.target;
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      errors.push(e);
      dirs.set(sourceDir, null);
      return null;
    }
  };

  const all = [...paths, ...refused.keys()].filter((p) => !p.startsWith('\0') && (prefix === '' || p.startsWith(prefix)));
  for (const path of all.sort(compareWalkOrder)) {
    const parts = path.slice(prefix.length).split('/');
    const hidden = parts.findIndex((c) => c.startsWith('.'));
    const at = (i: number): string => prefix + parts.slice(0, i + 1).join('/');
    // The directory holding the first hidden component (or the file) exists on hosts.
    const parentOf = (i: number): string => (i === 0 ? root : at(i - 1));
    const last = parts.length - 1;
    if (hidden >= 0) {
      const name = parts[hidden]!;
      const isDir = hidden < last;
      if (name === DATA && isDir) {
        const inner = parts.slice(hidden + 1);
        const special = inner.find((c) => c.startsWith('.chezmoi'));
        if (special) once(path, () => new DotfleetError('bad-source-name', `${special} is not allowed in a ${DATA} directory`, { file: path, hint: `move it out of ${at(hidden)}/` }));
        else if (!inner.some((c) => c.startsWith('.'))) dataFiles.push(path);
      } else if (!isDir && isDataFileName(name)) {
        dataFiles.push(path);
      } else if (name === TEMPLATES_DIR && isDir) {
        const inner = parts.slice(hidden + 1);
        const special = inner.find((c) => c.startsWith('.chezmoi'));
        if (special) once(path, () => new DotfleetError('bad-source-name', `${special} is not allowed in a ${TEMPLATES_DIR} directory`, { file: path, hint: `move it out of ${at(hidden)}/` }));
        else if (!inner.some((c) => c.startsWith('.'))) {
          const partial = inner.join('/');
          const first = partials.get(partial);
          if (first !== undefined && first !== path) {
            once(path, () => new DotfleetError('bad-source-name', `two shared templates named "${partial}": ${first} and ${path}`, { file: path, hint: 'rename one of them' }));
          } else partials.set(partial, path);
        }
      } else if (!isDir && IGNORE_NAMES.has(name)) {
        const dir = dirTarget(parentOf(hidden));
        if (dir !== null) ignoreFiles.push({ source: path, dir });
      } else if (name.startsWith('.chezmoi')) {
        once(at(hidden), () => unsupportedSpecial(name, at(hidden), isDir));
      }
      dirTarget(parentOf(hidden));
      continue;
    }
    const why = refused.get(path);
    if (why !== undefined) {
      errors.push(new DotfleetError('bad-source-name', `${path} is ${why}`, { file: path, hint: 'commit the file itself, or a symlink to a file inside the repository' }));
      continue;
    }
    const slash = path.lastIndexOf('/');
    const parentTarget = dirTarget(slash >= prefix.length ? path.slice(0, slash) : root);
    if (parentTarget === null) continue;
    try {
      const component = path.slice(slash + 1);
      const parsed = parseFileName(component, path);
      if (!parsed.template && component.endsWith('.tmpl')) {
        throw new DotfleetError('bad-source-name', "a .tmpl file is a chezmoi (Go) template; dotfleet's templates are Handlebars files ending in .hbs", {
          file: path,
          hint: `rename it to ${component.slice(0, -'.tmpl'.length)}.hbs and write it in Handlebars (docs/fleet-repo.md#templates), or to ${component}.literal to keep the name ${parsed.name}`,
        });
      }
      entries.push({ source: path, target: joinPath(parentTarget, parsed.name), kind: parsed.kind, mode: parsed.mode, template: parsed.template, empty: parsed.empty });
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      errors.push(e);
    }
  }

  entries.sort((a, b) => compareStrings(a.target, b.target) || compareStrings(a.source, b.source));
  const byTarget = new Map<string, SourceEntry[]>();
  for (const e of entries) {
    const list = byTarget.get(e.target);
    if (list) list.push(e);
    else byTarget.set(e.target, [e]);
  }
  const contested = new Map<string, SourceEntry[]>();
  // Any child of a target has a directory entry at that target, so a file that is also a
  // directory shows up here too; so do dot_x and private_dot_x (their modes differ).
  for (const [target, list] of byTarget) if (list.length > 1) contested.set(target, list);
  return { root, entries, byTarget, contested, errors, dataFiles, ignoreFiles, partials };
}

/** An index with nothing in it (a fleet that cannot be read). */
export function emptyIndex(root: string): SourceIndex {
  return { root, entries: [], byTarget: new Map(), contested: new Map(), errors: [], dataFiles: [], ignoreFiles: [], partials: new Map() };
}
