/**
 * chezmoi-style source names → target paths, kinds and modes.
 *
 * Attributes are read in chezmoi's order (a prefix out of order is part of the name, as in
 * chezmoi): directories `private_`, `readonly_`, `dot_`; files `private_`, `readonly_`, `empty_`,
 * `executable_`, `dot_`; symlinks `symlink_`, `dot_`. `literal_` ends attribute parsing; the
 * `.hbs` suffix makes a Handlebars template and `.literal` ends suffix parsing. chezmoi types that
 * would run code or need a key on the bot (`run_`, `modify_`, `encrypted_`, …) are refused.
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

const UNSUPPORTED = ['create_', 'modify_', 'remove_', 'run_', 'encrypted_', 'external_', 'exact_', 'once_', 'onchange_'];

interface ParsedName {
  name: string;
  kind: SourceKind;
  mode: number;
  template: boolean;
  empty: boolean;
}

function takePrefix(s: { rest: string }, prefix: string): boolean {
  if (s.rest.startsWith('literal_')) return false;
  if (!s.rest.startsWith(prefix)) return false;
  s.rest = s.rest.slice(prefix.length);
  return true;
}

function refuseUnsupported(component: string, source: string): void {
  const bad = UNSUPPORTED.find((p) => component.startsWith(p));
  if (bad) {
    throw new DotfleetError('bad-source-name', `chezmoi's ${bad} attribute is not supported by dotfleet`, {
      file: source,
      hint: `rename it; to keep "${bad}" as part of the target name write literal_${component}`,
    });
  }
}

function finishName(s: { rest: string }, dot: boolean, source: string): string {
  if (s.rest.startsWith('literal_')) s.rest = s.rest.slice('literal_'.length);
  const name = (dot ? '.' : '') + s.rest;
  if (name === '') {
    throw new DotfleetError('bad-source-name', 'the name is empty once its attributes are removed', {
      file: source,
      hint: 'give the file or directory a name after its attribute prefixes',
    });
  }
  if (name === '.' || name === '..') {
    throw new DotfleetError('path-escape', `the target name "${name}" would escape the target root`, {
      file: source,
      hint: 'a target name cannot be "." or ".."; rename the source',
    });
  }
  return name;
}

export function parseDirName(component: string, source: string): ParsedName {
  refuseUnsupported(component, source);
  const s = { rest: component };
  let mode = 0o755;
  if (takePrefix(s, 'private_')) mode &= ~0o077;
  if (takePrefix(s, 'readonly_')) mode &= ~0o222;
  const dot = takePrefix(s, 'dot_');
  return { name: finishName(s, dot, source), kind: 'dir', mode, template: false, empty: false };
}

export function parseFileName(component: string, source: string): ParsedName {
  refuseUnsupported(component, source);
  const s = { rest: component };
  let template = false;
  if (s.rest.endsWith('.literal')) s.rest = s.rest.slice(0, -'.literal'.length);
  else if (s.rest.endsWith('.hbs')) {
    s.rest = s.rest.slice(0, -'.hbs'.length);
    template = true;
  }
  if (takePrefix(s, 'symlink_')) {
    const dot = takePrefix(s, 'dot_');
    return { name: finishName(s, dot, source), kind: 'symlink', mode: 0, template, empty: false };
  }
  let mode = 0o644;
  let empty = false;
  if (takePrefix(s, 'private_')) mode &= ~0o077;
  if (takePrefix(s, 'readonly_')) mode &= ~0o222;
  if (takePrefix(s, 'empty_')) empty = true;
  if (takePrefix(s, 'executable_')) mode |= (mode & 0o444) >> 2;
  const dot = takePrefix(s, 'dot_');
  return { name: finishName(s, dot, source), kind: 'file', mode, template, empty };
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
  /** Names that cannot be rendered at all (bad attribute, escaping name). */
  errors: DotfleetError[];
}

/** A source file is one dotfleet renders: not hidden (chezmoi's rule), not inside a hidden directory. */
function isHidden(component: string): boolean {
  return component.startsWith('.');
}

/**
 * Index the source tree: map every source path under `root` to its target. Errors in names are
 * collected, not thrown, so one bad name does not hide the rest of the fleet.
 */
export function indexSources(paths: Iterable<string>, root: string): SourceIndex {
  const entries: SourceEntry[] = [];
  const errors: DotfleetError[] = [];
  const dirs = new Map<string, SourceEntry | null>();
  const prefix = root === '' ? '' : root + '/';

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

  for (const path of paths) {
    if (prefix !== '' && !path.startsWith(prefix)) continue;
    const rel = path.slice(prefix.length);
    if (rel.split('/').some(isHidden)) continue;
    const slash = path.lastIndexOf('/');
    const parentTarget = dirTarget(slash >= prefix.length ? path.slice(0, slash) : root);
    if (parentTarget === null) continue;
    try {
      const parsed = parseFileName(path.slice(slash + 1), path);
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
  return { root, entries, byTarget, contested, errors };
}
