/**
 * The fleet diff: for every host, what a change (base → head) does to its rendered tree, with
 * hosts whose change sets are identical grouped.
 *
 * Only what a change can affect is rendered. A host's entry is re-rendered when its source
 * changed, or when it is a template whose static dependencies (template/analyze.ts) overlap a key
 * of the host's context that differs between base and head; the ignore list likewise. Everything
 * else is, by construction, identical on both sides. `full: true` renders everything instead and
 * must give the same answer (the tests hold the two to that).
 */
import { DotfleetError } from './errors.js';
import { changedPaths, deepEqual, type PlainObject } from './data.js';
import type { Fleet } from './fleet.js';
import type { Host } from './inventory.js';
import { IgnoreList } from './ignore.js';
import { conflict, Renderer } from './render.js';
import type { SourceEntry } from './source-names.js';
import { mayRead, pathsOverlap, type KeyPath } from './template/analyze.js';
import { formatOf } from './secrets/sops-file.js';
import type { SecretsDiff } from './secrets/report.js';
import type { TrustReport } from './trust.js';
import { compareEntries, compareTrees, sortChanges, type Change, type PatchOptions } from './diff.js';
import type { RenderedEntry, RenderedTree } from './tree.js';
import { bytesEqual } from './tree.js';
import { compareStrings } from './paths.js';

export type HostStatus = 'added' | 'removed' | 'changed' | 'unchanged' | 'error';

export interface HostDiff {
  host: string;
  machine: string;
  platform: string;
  wave: number;
  status: HostStatus;
  changes: Change[];
  /** Render errors at head in what this change touches. */
  errors: DotfleetError[];
}

export interface ChangeGroup {
  /** Hosts with the same changes (the same files, and the same lines added and removed), sorted. */
  hosts: string[];
  /** The changes as they are on `shownFor`. */
  changes: Change[];
  /** The host whose patches `changes` shows (the first). */
  shownFor: string;
  /** True when every host's patches are byte for byte these; false when only their context lines or positions differ. */
  exact: boolean;
}

export interface FleetDiff {
  hosts: HostDiff[];
  groups: ChangeGroup[];
  /** Errors in the source tree at head that concern every host (bad source names). */
  sourceErrors: DotfleetError[];
  /** How many template renders the diff took (base and head together). */
  renders: number;
  /** SOPS file changes and, when something deciding them changed, secret findings at head. */
  secrets?: SecretsDiff;
  /** Who may sign for which host, against the base (the CLI's `diff`; a pull request reports trust against the default branch). */
  trust?: TrustReport;
}

export interface DiffOptions {
  /** Restrict to these hosts. */
  hosts?: string[];
  /** Which hosts change and where, without patches (render hashes): changes carry no patch, groups are not built. */
  changesOnly?: boolean;
  /** Render every entry of every host on both sides (slow; the reference the fast path is held to). */
  full?: boolean;
  /** Exact patches whatever their size (otherwise a text too large or too different is summarised). */
  fullPatch?: boolean;
  /**
   * Every render error at head, as `full` finds them, also in what the change cannot reach
   * (errors already on the base): each host's head is rendered completely for its errors,
   * sharing outputs with the rest of the diff. The changes stay the fast path's.
   */
  allErrors?: boolean;
}

function hostOf(base: Fleet, head: Fleet, name: string): Host {
  return head.hosts.get(name) ?? base.hosts.get(name)!;
}

/** Source paths whose bytes differ (or exist on one side only), and entries whose mapping differs. */
function changedSources(base: Fleet, head: Fleet): Set<string> {
  const changed = new Set<string>();
  for (const [p, b] of head.tree) {
    const a = base.tree.get(p);
    if (!a || !bytesEqual(a, b)) changed.add(p);
  }
  for (const p of base.tree.keys()) if (!head.tree.has(p)) changed.add(p);
  const key = (e: SourceEntry) => `${e.target}\u0000${e.kind}\u0000${e.mode}\u0000${e.template}\u0000${e.empty}`;
  const baseEntries = new Map(base.sources.entries.map((e) => [e.source, key(e)]));
  for (const e of head.sources.entries) if (baseEntries.get(e.source) !== key(e)) changed.add(e.source);
  const headEntries = new Set(head.sources.entries.map((e) => e.source));
  for (const e of base.sources.entries) if (!headEntries.has(e.source)) changed.add(e.source);
  return changed;
}

const overlaps = (deps: KeyPath[], keys: KeyPath[]): boolean => deps.some((d) => keys.some((k) => pathsOverlap(d, k)));

class Side {
  private readonly deps = new Map<string, KeyPath[]>();
  private readonly texts = new Map<string, string>();
  readonly ignoreDeps: KeyPath[];
  /** Targets of entries whose source changed: affected on every host. */
  readonly changedTargets: string[];
  readonly templates: SourceEntry[];
  constructor(
    readonly fleet: Fleet,
    private readonly renderer: Renderer,
    changed: Set<string> | undefined,
  ) {
    this.ignoreDeps = renderer.ignoreDeps(fleet);
    // A template is changed when its source is, or a SOPS file it reads through {{secret}}.
    const dataFiles = changed ? [...changed].filter((p) => formatOf(p) !== undefined) : [];
    // A shared template that changed (its path is in `changed` on either side) re-renders its includers.
    const partialsChanged = !!changed && [...fleet.sources.partials.values()].some((f) => changed.has(f));
    const isChanged = (e: SourceEntry) =>
      !!changed &&
      (changed.has(e.source) ||
        (e.template && dataFiles.length > 0 && renderer.secretFilesOf(fleet, e).some((f) => changed.has(f))) ||
        (e.template && partialsChanged && renderer.partialFilesOf(fleet, e).some((f) => changed.has(f))));
    this.changedTargets = fleet.sources.entries.filter(isChanged).map((e) => e.target);
    this.templates = fleet.sources.entries.filter((e) => e.template && !isChanged(e));
  }
  /** Can this template read one of `keys`? Parses the template only when its text might. */
  reads(e: SourceEntry, keys: KeyPath[]): boolean {
    let text = this.texts.get(e.source);
    if (text === undefined) {
      text = Buffer.from(this.fleet.tree.get(e.source)!).toString('utf8');
      this.texts.set(e.source, text);
    }
    return mayRead(text, keys) && overlaps(this.depsOf(e), keys);
  }
  depsOf(e: SourceEntry): KeyPath[] {
    let d = this.deps.get(e.source);
    if (!d) {
      d = this.renderer.depsOf(this.fleet, e);
      this.deps.set(e.source, d);
    }
    return d;
  }
  /** The entry at `target` for a host, with conflicts reported. */
  renderTarget(target: string, context: PlainObject, ignore: IgnoreList, host: string, errors: DotfleetError[]): RenderedEntry | undefined {
    if (ignore.ignores(target)) return undefined;
    let found: RenderedEntry | undefined;
    let first: SourceEntry | undefined;
    for (const entry of this.fleet.sources.byTarget.get(target) ?? []) {
      let rendered: RenderedEntry | null;
      try {
        rendered = this.renderer.renderEntry(this.fleet, entry, context);
      } catch (e) {
        if (!(e instanceof DotfleetError)) throw e;
        errors.push(e.forHost(host));
        continue;
      }
      if (!rendered) continue;
      if (first) {
        errors.push(conflict(target, first, entry, host));
        return undefined;
      }
      first = entry;
      found = rendered;
    }
    return found;
  }
}

export function diffFleets(base: Fleet, head: Fleet, options: DiffOptions = {}, renderer: Renderer = new Renderer()): FleetDiff {
  const startRenders = renderer.renders;
  const names = [...new Set([...base.hosts.keys(), ...head.hosts.keys()])]
    .filter((n) => !options.hosts || options.hosts.includes(n))
    .sort(compareStrings);
  const changed = options.full ? undefined : changedSources(base, head);
  const patch: PatchOptions = { exact: options.fullPatch, none: options.changesOnly };
  const b = new Side(base, renderer, changed);
  const h = new Side(head, renderer, changed);
  const inputs = new InputComparison(base, head);

  const hosts = names.map((name) => {
    const host = hostOf(base, head, name);
    const result: HostDiff = { host: name, machine: host.machine, platform: host.platform, wave: host.wave, status: 'unchanged', changes: [], errors: [] };
    const inBase = base.hosts.get(name);
    const inHead = head.hosts.get(name);
    if (!inHead) {
      result.status = 'removed';
      result.changes = compareTrees(renderer.renderHost(base, inBase!).tree, new Map(), undefined, patch);
      return result;
    }
    if (inBase && changed) {
      Object.assign(result, diffHost(b, h, inputs, inBase, inHead, changed, renderer, patch));
      if (options.allErrors) result.errors = renderer.renderHost(head, inHead).errors;
    } else {
      const to = renderer.renderHost(head, inHead);
      const from = inBase ? renderer.renderHost(base, inBase).tree : new Map();
      result.changes = compareTrees(from, to.tree, undefined, patch);
      result.errors = to.errors;
    }
    if (result.errors.length > 0) {
      // A target whose source failed at head is not "removed": its error says what happened.
      const failed = failedTargets(head, result.errors);
      result.changes = result.changes.filter((c) => !failed.has(c.path));
    }
    result.status = result.errors.length > 0 ? 'error' : !inBase ? 'added' : result.changes.length > 0 ? 'changed' : 'unchanged';
    return result;
  });

  return { hosts, groups: options.changesOnly ? [] : groupHosts(hosts), sourceErrors: head.sources.errors, renders: renderer.renders - startRenders };
}

/** Whether a host's template inputs are the same on both sides, without building contexts. */
class InputComparison {
  private readonly defaultsEqual: boolean;
  private readonly presets = new Map<string, boolean>();
  /** Targets of the templates that read a set of changed keys, by the set. */
  readonly readers = new Map<string, string[]>();
  constructor(
    private readonly base: Fleet,
    private readonly head: Fleet,
  ) {
    const { hardware: _b, ...bd } = base.data;
    const { hardware: _h, ...hd } = head.data;
    this.defaultsEqual = deepEqual(bd, hd);
  }
  same(b: Host, h: Host): boolean {
    if (!this.defaultsEqual || b.machine !== h.machine || !deepEqual(b, h)) return false;
    let p = this.presets.get(b.machine);
    if (p === undefined) {
      p = deepEqual(this.base.presets.get(b.machine), this.head.presets.get(h.machine));
      this.presets.set(b.machine, p);
    }
    return p;
  }
}

/** The fast path for a host present on both sides. */
function diffHost(b: Side, h: Side, inputs: InputComparison, baseHost: Host, headHost: Host, changed: Set<string>, renderer: Renderer, patch: PatchOptions): Pick<HostDiff, 'changes' | 'errors'> {
  const errors: DotfleetError[] = [];
  const same = inputs.same(baseHost, headHost);
  let ctxB: PlainObject | undefined;
  let ctxH: PlainObject | undefined;
  const contexts = (): { ok: true } | { ok: false; result: Pick<HostDiff, 'changes' | 'errors'> } => {
    try {
      ctxB ??= renderer.context(b.fleet, baseHost);
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      // The base cannot be rendered for this host: everything at head is new.
      const r = renderer.renderHost(h.fleet, headHost);
      return { ok: false, result: { changes: compareTrees(new Map(), r.tree, undefined, patch), errors: r.errors } };
    }
    try {
      ctxH ??= same ? ctxB : renderer.context(h.fleet, headHost);
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      return { ok: false, result: { changes: [], errors: [e.forHost(headHost.name)] } };
    }
    return { ok: true };
  };
  let keys: KeyPath[] = [];
  if (!same) {
    const c = contexts();
    if (!c.ok) return c.result;
    keys = changedPaths(ctxB, ctxH);
  }
  const targets = new Set<string>([...b.changedTargets, ...h.changedTargets]);
  if (keys.length > 0) {
    // Most hosts see the same changed keys (a fleet-wide data change): which templates read
    // them is worked out once per distinct set of keys.
    const k = keys.map((p) => p.join('\u0000')).join('\u0001');
    let readers = inputs.readers.get(k);
    if (!readers) {
      readers = [];
      for (const side of [b, h]) for (const e of side.templates) if (side.reads(e, keys)) readers.push(e.target);
      inputs.readers.set(k, readers);
    }
    for (const t of readers) targets.add(t);
  }
  const ignoreChanged = [...h.fleet.sources.ignoreFiles, ...b.fleet.sources.ignoreFiles].some((f) => changed.has(f.source)) || overlaps(b.ignoreDeps, keys) || overlaps(h.ignoreDeps, keys);
  if (targets.size === 0 && !ignoreChanged) return { changes: [], errors };
  const c = contexts();
  if (!c.ok) return c.result;

  let ignB: IgnoreList;
  let ignH: IgnoreList;
  try {
    ignB = renderer.ignoreList(b.fleet, ctxB!);
  } catch (e) {
    if (!(e instanceof DotfleetError)) throw e;
    ignB = IgnoreList.EMPTY;
  }
  try {
    ignH = ignoreChanged ? renderer.ignoreList(h.fleet, ctxH!) : ignB;
  } catch (e) {
    if (!(e instanceof DotfleetError)) throw e;
    return { changes: [], errors: [e.forHost(headHost.name)] };
  }
  if (!ignB.equals(ignH)) {
    for (const e of [...b.fleet.sources.entries, ...h.fleet.sources.entries]) {
      if (ignB.ignores(e.target) !== ignH.ignores(e.target)) targets.add(e.target);
    }
  }
  const changes: Change[] = [];
  const discard: DotfleetError[] = [];
  for (const t of targets) {
    const from = b.renderTarget(t, ctxB!, ignB, baseHost.name, discard);
    const to = h.renderTarget(t, ctxH!, ignH, headHost.name, errors);
    for (const c of compareEntries(t, from, to, patch)) changes.push(c);
  }
  return { changes: sortChanges(changes), errors };
}

/** Targets of the sources the errors name. */
function failedTargets(fleet: Fleet, errors: DotfleetError[]): Set<string> {
  const files = new Set(errors.map((e) => e.file));
  return new Set(fleet.sources.entries.filter((e) => files.has(e.source)).map((e) => e.target));
}

/**
 * Group keys of changes. A patch is named by a number (a patch shared by many hosts is one
 * string, hashed once), and what a change does without where is its added and removed lines
 * (not its context or line numbers), so one line added to a file whose first line names the
 * host is one change on every host.
 */
class ChangeKeys {
  private readonly ids = new Map<string, number>();
  private readonly essences = new Map<string, number>();
  private id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) this.ids.set(s, (i = this.ids.size));
    return i;
  }
  private essence(patch: string): number {
    let i = this.essences.get(patch);
    if (i === undefined) this.essences.set(patch, (i = this.id(patch.split('\n').filter((l) => l.startsWith('+') || l.startsWith('-')).join('\n'))));
    return i;
  }
  /**
   * The group key and the exact key of a host's changes: every field of every change, in order,
   * a patch by its essence's number and by its own (strings quoted, so no text can pass for a
   * separator).
   */
  keys(changes: Change[]): [string, string] {
    let key = '';
    let exact = '';
    for (const c of changes) {
      let rest = '';
      for (const field in c) {
        const v = (c as unknown as Record<string, unknown>)[field];
        if (v === undefined || field === 'patch') continue;
        rest += `${field}=${typeof v === 'number' ? v : JSON.stringify(v)},`;
      }
      key += c.patch === undefined ? `${rest};` : `${rest}patch=${this.essence(c.patch)};`;
      exact += c.patch === undefined ? `${rest};` : `${rest}patch=${this.id(c.patch)};`;
    }
    return [key, exact];
  }
}

export function groupHosts(hosts: HostDiff[]): ChangeGroup[] {
  const keys = new ChangeKeys();
  const groups = new Map<string, ChangeGroup & { exactKey: string }>();
  for (const h of hosts) {
    if (h.changes.length === 0) continue;
    const [key, exactKey] = keys.keys(h.changes);
    const g = groups.get(key);
    if (g) {
      g.hosts.push(h.host);
      if (g.exact && exactKey !== g.exactKey) g.exact = false;
    } else groups.set(key, { hosts: [h.host], changes: h.changes, shownFor: h.host, exact: true, exactKey });
  }
  return [...groups.values()]
    .map(({ exactKey: _, ...g }) => g)
    .sort((a, b) => b.hosts.length - a.hosts.length || compareStrings(a.hosts[0]!, b.hosts[0]!));
}

/** Compare two hosts' rendered trees at one commit (`dotfleet fleet diff A B`). */
/**
 * How host `b`'s configuration differs from host `a`'s. When either fails to render, its tree
 * is incomplete: no changes are given (they would list what did not render as removed), and
 * `failed` names the hosts.
 */
export function diffHosts(fleet: Fleet, a: Host, b: Host, renderer: Renderer = new Renderer()): { changes: Change[]; errors: DotfleetError[]; failed: string[] } {
  const ra = renderer.renderHost(fleet, a);
  const rb = renderer.renderHost(fleet, b);
  const failed = [...new Set([...(ra.errors.length > 0 ? [a.name] : []), ...(rb.errors.length > 0 ? [b.name] : [])])];
  return { changes: failed.length > 0 ? [] : compareTrees(ra.tree, rb.tree), errors: [...ra.errors, ...rb.errors], failed };
}
