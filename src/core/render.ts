/**
 * Rendering one host: its template context, its ignore list, and each source entry to a
 * rendered entry. Errors are collected per entry (a broken template does not hide the rest of
 * the host's tree) and always name the host.
 */
import { randomBytes } from 'node:crypto';
import { DotfleetError, memoised } from './errors.js';
import { contextFor, type Fleet } from './fleet.js';
import { IgnoreList } from './ignore.js';
import type { Host } from './inventory.js';
import type { PlainObject } from './data.js';
import type { SourceEntry } from './source-names.js';
import { OPTIONAL_KEY } from './template/analyze.js';
import { PARTIAL_CALL, TemplateEngine, type CompiledTemplate, type Partials } from './template/engine.js';
import type { TemplateRuntime } from './template/helpers.js';
import { parseSopsFile, type SopsFile } from './secrets/sops-file.js';
import { secretMarker } from './secrets/marker.js';
import { sharedContent, type RenderedEntry, type RenderedTree } from './tree.js';

export interface HostRender {
  host: string;
  tree: RenderedTree;
  errors: DotfleetError[];
}

/** Host facts that differ on every host: a template reading one renders per host… */
// Facts unique to a host; `ssh` (how to reach it) is not in its template context at all.
const HOST_UNIQUE = new Set(['name', 'principal', 'age_recipient', 'ssh']);
/**
 * …unless it only prints them (`{{host.name}}`, no helper, test or loop sees the value): then it
 * renders once per class with a placeholder for each, and each host's output is that text with
 * its own values put in. A placeholder holds a per-renderer random nonce, so no data can forge
 * one, and a value is put in only when it is non-empty text with no control character or line
 * separator (so `indent`, the one block helper that rewrites its block's text, treats the value
 * as it treats the placeholder); any other host renders on its own.
 */
const FILLABLE = ['name', 'principal', 'age_recipient'] as const;
const FILLABLE_VALUE = /^[^\u0000-\u001f\u007f\u0085\u2028\u2029]+$/;

/** A shared output with host facts still to put in: text between placeholders, and which fact goes where. */
interface Filled {
  parts: string[];
  /** Index into the template's filled facts, one per gap between parts. */
  facts: number[];
}
type SharedOutput = Uint8Array | DotfleetError | Filled | typeof PER_HOST;
/** A placeholder render failed: this projection's hosts render on their own (their own errors). */
const PER_HOST = Symbol('renders per host');

/** Longest symlink target we accept (Linux PATH_MAX). */
const MAX_LINK_TARGET = 4096;

const decoder = new TextDecoder('utf-8', { fatal: true });
/** Go's unicode.IsSpace: chezmoi's test for an empty file (bytes.TrimSpace), not JavaScript's \s. */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const NON_SPACE = new RegExp(`[^${GO_SPACE}]`);
const EDGE_SPACE = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');

const keepBom = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** chezmoi's isEmpty: nothing but white space (invalid UTF-8 is not white space). */
export function isBlank(content: string | Uint8Array): boolean {
  if (typeof content === 'string') return !NON_SPACE.test(content);
  for (const b of content) {
    if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) continue;
    if (b < 0x80) return false;
    // Non-ASCII: Unicode white space (U+00A0, U+3000, …) or not, as Go decides.
    try {
      return !NON_SPACE.test(keepBom.decode(content));
    } catch {
      return false;
    }
  }
  return true;
}
/** Marks a blob whose template includes shared templates (not cached by its bytes alone). */
const PARTIAL_USER = Symbol('includes shared templates');

/**
 * Renders hosts of one or more fleets. Holds the compiled-template cache, so base and head of a
 * diff share compilations of unchanged templates; no other state.
 */
export class Renderer {
  /**
   * Told of each template about to render (host, source): a worker reports where it is, so a
   * render stopped at its time limit can say which template it was in.
   */
  static onTemplate?: (host: string, source: string) => void;
  /** Template renders so far (benchmarks and tests read it to see what a diff rendered). */
  renders = 0;
  /** Template outputs taken from another host with the same inputs instead of rendering. */
  shared = 0;
  /**
   * Per template: whether its reads can be bounded, and its outputs by host class and by the
   * values of the keys it reads (its projection of the host's context). Hosts whose projections
   * are equal share one output, rendered once; a template that only prints facts unique to a
   * host (FILLABLE) shares one output with them left to put in. A template that reads the whole
   * context, uses a fact unique to a host otherwise, or reads secrets, renders per host.
   */
  private readonly shares = new WeakMap<
    CompiledTemplate,
    { unbounded: boolean; fill: readonly string[]; deps: string[][]; byClass: Map<number, SharedOutput>; byKey: Map<string, SharedOutput> }
  >();
  /** Shared outputs that had the host's own facts put in (a part of `shared`). */
  filled = 0;
  private readonly nonce = randomBytes(12).toString('hex');
  private readonly placeholder = new RegExp(`\uE000(\\d)${this.nonce}\uE001`, 'g');
  /** Per context: its class, the JSON of the context without the host's unique facts. */
  private readonly classes = new WeakMap<object, number>();
  private readonly classIds = new Map<string, number>();
  private readonly fleetData = new WeakMap<Fleet, number>();
  /** Per context: a key path → its value as projection text (many templates read the same keys). */
  private readonly projections = new WeakMap<object, Map<string, string>>();

  /** Share outputs between hosts (the default); off, every host renders every template. */
  constructor(readonly engine: TemplateEngine = new TemplateEngine(), readonly options: { share?: boolean } = {}) {}

  /** Compiled templates by blob: the same bytes object is looked up once per host. */
  private readonly byBlob = new WeakMap<Uint8Array, CompiledTemplate | DotfleetError | typeof PARTIAL_USER>();
  private readonly partialMaps = new WeakMap<Fleet, Partials>();
  /** Host contexts by fleet; contexts are never mutated (templates only read). */
  private readonly contexts = new WeakMap<Fleet, Map<string, PlainObject>>();
  /** Parsed SOPS files by blob (null: not a SOPS file). */
  private readonly sopsFiles = new WeakMap<Uint8Array, SopsFile | null>();
  /** Per fleet: SOPS file → hosts whose renders used it through {{secret}}. */
  private readonly uses = new WeakMap<Fleet, Map<string, Set<string>>>();


  template(fleet: Fleet, source: string): CompiledTemplate {
    const blob = fleet.tree.get(source)!;
    const compile = (): CompiledTemplate => {
      let text: string;
      try {
        text = decoder.decode(blob);
      } catch {
        throw new DotfleetError('template-syntax', 'a template must be UTF-8 text', {
          file: source,
          hint: 'remove the .hbs suffix from binary files',
        });
      }
      return this.engine.compile(text, source, PARTIAL_CALL.test(text) ? this.partials(fleet) : undefined);
    };
    // A template that includes shared templates depends on more than its own bytes: the
    // engine's cache is keyed by the shared templates too.
    const cached = this.byBlob.get(blob);
    if (cached === PARTIAL_USER) return compile();
    if (cached === undefined && PARTIAL_CALL.test(Buffer.from(blob).toString('utf8'))) {
      this.byBlob.set(blob, PARTIAL_USER);
      return compile();
    }
    return memoised(this.byBlob as WeakMap<Uint8Array, CompiledTemplate | DotfleetError>, blob, compile);
  }

  /** The fleet's shared templates (`.chezmoitemplates/`), by name. */
  partials(fleet: Fleet): Partials {
    let m = this.partialMaps.get(fleet);
    if (!m) {
      m = new Map([...fleet.sources.partials].map(([name, file]) => [name, { file, text: Buffer.from(fleet.tree.get(file)!).toString('utf8') }]));
      this.partialMaps.set(fleet, m);
    }
    return m;
  }

  /** Which hosts' renders (so far) used which SOPS files. */
  secretUses(fleet: Fleet): Map<string, Set<string>> {
    let m = this.uses.get(fleet);
    if (!m) {
      m = new Map();
      this.uses.set(fleet, m);
    }
    return m;
  }

  private runtime(fleet: Fleet, host: string): TemplateRuntime {
    return {
      secret: (file, key) => {
        const blob = fleet.tree.get(file);
        if (!blob) return { error: `${file} does not exist` };
        let sops = this.sopsFiles.get(blob);
        if (sops === undefined) {
          try {
            sops = parseSopsFile(file, blob);
          } catch (e) {
            return { error: (e as Error).message };
          }
          this.sopsFiles.set(blob, sops);
        }
        if (!sops) return { error: `${file} is not a SOPS file` };
        const value = sops.values.get(key);
        if (!value) return { error: `"${key}" is not a key of ${file} (keys: ${[...sops.values.keys()].slice(0, 12).join(', ')})` };
        if (!value.encrypted) return { error: `"${key}" is stored in plain text in ${file}: encrypt it with sops before using it as a secret` };
        const uses = this.secretUses(fleet);
        if (!uses.has(file)) uses.set(file, new Set());
        uses.get(file)!.add(host);
        return { marker: secretMarker(file, key, value.digest) };
      },
    };
  }

  /**
   * What the values a template reads are on this host, as text: for each key path, how far the
   * path resolves and the value there (a missing key, a key under a value that is not a table and
   * a present key all differ), so equal texts render equally.
   */
  private projection(context: PlainObject, deps: string[][]): string {
    let memo = this.projections.get(context);
    if (!memo) this.projections.set(context, (memo = new Map()));
    const parts: string[] = [];
    for (const dep of deps) {
      const key = dep.join('\u0000');
      let text = memo.get(key);
      if (text === undefined) {
        let v: unknown = context;
        let depth = 0;
        for (const k of dep) {
          const name = k.startsWith(OPTIONAL_KEY) ? k.slice(OPTIONAL_KEY.length) : k;
          if (typeof v !== 'object' || v === null || !Object.prototype.hasOwnProperty.call(v, name)) break;
          v = (v as Record<string, unknown>)[name];
          depth++;
        }
        text = `${depth}:${depth < dep.length ? (typeof v === 'object' && v !== null ? 'table' : `${typeof v}:${JSON.stringify(v)}`) : JSON.stringify(v) ?? 'u'}`;
        memo.set(key, text);
      }
      parts.push(text);
    }
    return parts.join('\u0001');
  }

  /**
   * Hosts of one class have equal contexts but for their own name, principal and key: the same
   * fleet data (presets included) and the same inventory entry otherwise. A class is a small
   * number (its text is compared once per host, not once per template).
   */
  private classOf(fleet: Fleet, context: PlainObject): number {
    let cls = this.classes.get(context);
    if (cls === undefined) {
      let data = this.fleetData.get(fleet);
      if (data === undefined) this.fleetData.set(fleet, (data = this.idOf(JSON.stringify(fleet.data))));
      const host = fleet.hosts.get(String((context.host as PlainObject).name));
      const text = host
        ? JSON.stringify(host, function (this: unknown, k, v) {
            // Only the host's own top-level facts: a key `name` inside its data stays.
            return this === host && HOST_UNIQUE.has(k) ? undefined : v;
          })
        : JSON.stringify(context);
      cls = this.idOf(`${data}\u0000${text}`);
      this.classes.set(context, cls);
    }
    return cls;
  }

  private idOf(text: string): number {
    let id = this.classIds.get(text);
    if (id === undefined) this.classIds.set(text, (id = this.classIds.size));
    return id;
  }

  /** A template's output for a host: shared with every host whose projection is the same. */
  private output(fleet: Fleet, template: CompiledTemplate, context: PlainObject, host: string): Uint8Array {
    if (template.secretFiles.length > 0) {
      this.renders++;
      return Buffer.from(template.render(context, this.runtime(fleet, host)), 'utf8');
    }
    if (this.options.share === false) {
      this.renders++;
      return Buffer.from(template.render(context), 'utf8');
    }
    // A template reading the whole context or a host-unique fact renders per host, unless it
    // only prints the fact (FILLABLE).
    let share = this.shares.get(template);
    if (!share) {
      const fact = (d: string[]) => (d.length === 2 && d[0] === 'host' ? d[1] : undefined);
      const fill: string[] = FILLABLE.filter((k) => template.deps.some((d) => fact(d) === k) && template.outputOnly.has(`host\u0000${k}`));
      const filled = (d: string[]) => fill.includes(fact(d)!);
      const unbounded = template.deps.some((d) => d.length === 0 || (d[0] === 'host' && (d.length === 1 || (HOST_UNIQUE.has(d[1]!) && !filled(d)))));
      const deps = template.deps.filter((d) => !filled(d));
      this.shares.set(template, (share = { unbounded, fill, deps, byClass: new Map(), byKey: new Map() }));
    }
    const facts = share.fill.length > 0 ? share.fill.map((k) => (context.host as PlainObject)[k]) : undefined;
    const alone = () => {
      this.renders++;
      return Buffer.from(template.render(context), 'utf8');
    };
    if (share.unbounded || (facts && !facts.every((v) => typeof v === 'string' && FILLABLE_VALUE.test(v)))) return alone();
    // First by the host's class (its context without the facts unique to it): one lookup;
    // then by the values of the keys the template reads.
    const cls = this.classOf(fleet, context);
    let out = share.byClass.get(cls);
    let hit = out !== undefined;
    if (!hit) {
      const key = this.projection(context, share.deps);
      out = share.byKey.get(key);
      hit = out !== undefined;
      if (!hit) share.byKey.set(key, (out = facts ? this.renderFilled(template, context, share.fill) : this.renderShared(template, context)));
      share.byClass.set(cls, out!);
    }
    if (out === PER_HOST) return alone();
    if (hit) this.shared++;
    else this.renders++;
    if (out instanceof DotfleetError) throw out;
    if (out instanceof Uint8Array) return out;
    const { parts, facts: at } = out!;
    if (hit) this.filled++;
    let text = parts[0]!;
    for (let i = 0; i < at.length; i++) text += (facts![at[i]!] as string) + parts[i + 1]!;
    return Buffer.from(text, 'utf8');
  }

  private renderShared(template: CompiledTemplate, context: PlainObject): Uint8Array | DotfleetError {
    try {
      return sharedContent(Buffer.from(template.render(context), 'utf8'));
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      return e;
    }
  }

  /** The template rendered with a placeholder for each fact in `fill`; PER_HOST when that fails. */
  private renderFilled(template: CompiledTemplate, context: PlainObject, fill: readonly string[]): Filled | Uint8Array | typeof PER_HOST {
    // Copies as the contexts are made (inventory.ts): no prototype, the same hidden members.
    const like = <T extends object>(o: T): T => Object.create(Object.getPrototypeOf(o), Object.getOwnPropertyDescriptors(o));
    const host = like(context.host as PlainObject);
    fill.forEach((k, i) => (host[k] = `\uE000${i}${this.nonce}\uE001`));
    const placeheld = like(context);
    placeheld.host = host;
    let text: string;
    try {
      text = template.render(placeheld);
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      // The error may concern the placeholder's place; the host's own render says it truly.
      return PER_HOST;
    }
    const pieces = text.split(this.placeholder);
    if (pieces.length === 1) return sharedContent(Buffer.from(text, 'utf8'));
    return { parts: pieces.filter((_, i) => i % 2 === 0), facts: pieces.filter((_, i) => i % 2 === 1).map(Number) };
  }

  context(fleet: Fleet, host: Host): PlainObject {
    let perFleet = this.contexts.get(fleet);
    if (!perFleet) {
      perFleet = new Map();
      this.contexts.set(fleet, perFleet);
    }
    let ctx = perFleet.get(host.name);
    if (!ctx) {
      ctx = contextFor(fleet, host);
      perFleet.set(host.name, ctx);
    }
    return ctx;
  }

  /** What a template entry reads (none for non-templates, and for a template that fails to compile). */
  private reads<K extends 'deps' | 'secretFiles' | 'partialFiles'>(fleet: Fleet, entry: SourceEntry, what: K): CompiledTemplate[K] | [] {
    if (!entry.template) return [];
    try {
      return this.template(fleet, entry.source)[what];
    } catch (e) {
      if (e instanceof DotfleetError) return [];
      throw e;
    }
  }

  /** Static dependencies of a template entry ([] for non-templates: they read no data). */
  depsOf(fleet: Fleet, entry: SourceEntry): string[][] {
    return this.reads(fleet, entry, 'deps');
  }

  /** SOPS files a template entry reads through {{secret}}. */
  secretFilesOf(fleet: Fleet, entry: SourceEntry): string[] {
    return this.reads(fleet, entry, 'secretFiles');
  }

  /** Shared template files a template entry includes. */
  partialFilesOf(fleet: Fleet, entry: SourceEntry): string[] {
    return this.reads(fleet, entry, 'partialFiles');
  }

  /** The `.chezmoiignore` files as template entries. */
  private ignoreEntries(fleet: Fleet): SourceEntry[] {
    return fleet.sources.ignoreFiles.map(({ source }) => ({ source, target: '', kind: 'file' as const, mode: 0, template: true, empty: false }));
  }

  ignoreDeps(fleet: Fleet): string[][] {
    return this.ignoreEntries(fleet).flatMap((e) => this.depsOf(fleet, e));
  }

  /** The host's ignore list: every `.chezmoiignore`, rendered for it. Throws DotfleetError. */
  ignoreList(fleet: Fleet, context: PlainObject): IgnoreList {
    const files = fleet.sources.ignoreFiles;
    if (files.length === 0) return IgnoreList.EMPTY;
    return new IgnoreList(files.map(({ source, dir }) => {
      const template = this.template(fleet, source);
      const text = Buffer.from(this.output(fleet, template, context, '')).toString('utf8');
      return { source, dir, text, template: Buffer.from(fleet.tree.get(source)!).toString('utf8') };
    }));
  }

  /** One entry for one host; null when the entry is absent on that host. Throws DotfleetError. */
  renderEntry(fleet: Fleet, entry: SourceEntry, context: PlainObject, host = String((context.host as PlainObject | undefined)?.name ?? '')): RenderedEntry | null {
    if (entry.kind === 'dir') return { kind: 'dir', mode: entry.mode };
    const raw = fleet.tree.get(entry.source)!;
    let content: string | Uint8Array = raw;
    if (!entry.template) sharedContent(raw);
    else {
      Renderer.onTemplate?.(host, entry.source);
      const template = this.template(fleet, entry.source);
      content = this.output(fleet, template, context, host);
    }
    if (entry.kind === 'symlink') {
      // As chezmoi: the target is the content with white space trimmed; none means no link.
      const target = (typeof content === 'string' ? content : Buffer.from(content).toString('utf8')).replace(EDGE_SPACE, '');
      if (target === '') return null;
      if (target.includes('\n') || target.includes('\0') || target.length > MAX_LINK_TARGET) {
        throw new DotfleetError('bad-symlink', 'a symlink target must be one line of at most 4096 characters', {
          file: entry.source,
          hint: 'the file content of a symlink_ source is the link target, nothing else',
        });
      }
      return { kind: 'symlink', target };
    }
    // As chezmoi: a file that is empty or only white space is absent unless it is empty_.
    if (!entry.empty && isBlank(content)) return null;
    return { kind: 'file', mode: entry.mode, content: typeof content === 'string' ? Buffer.from(content, 'utf8') : content };
  }

  /**
   * Render the given entries (all of them by default) for one host. Two present sources for one
   * target is an error naming both; the target is then left out. Errors in source names concern
   * every host and are in `fleet.sources.errors`, not here.
   */
  renderHost(fleet: Fleet, host: Host, only?: (entry: SourceEntry) => boolean): HostRender {
    const tree: RenderedTree = new Map();
    const errors: DotfleetError[] = [];
    let context: PlainObject;
    let ignore: IgnoreList;
    try {
      context = this.context(fleet, host);
      ignore = this.ignoreList(fleet, context);
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      return { host: host.name, tree, errors: [...errors, e.forHost(host.name)] };
    }
    const claimed = new Map<string, SourceEntry>();
    for (const entry of fleet.sources.entries) {
      if (only && !only(entry)) continue;
      if (ignore.ignores(entry.target)) continue;
      let rendered: RenderedEntry | null;
      try {
        rendered = this.renderEntry(fleet, entry, context);
      } catch (e) {
        if (!(e instanceof DotfleetError)) throw e;
        errors.push(e.forHost(host.name));
        continue;
      }
      if (!rendered) continue;
      const first = claimed.get(entry.target);
      if (first) {
        tree.delete(entry.target);
        errors.push(conflict(entry.target, first, entry, host.name));
        continue;
      }
      claimed.set(entry.target, entry);
      tree.set(entry.target, rendered);
    }
    return { host: host.name, tree, errors };
  }
}

export function conflict(target: string, a: SourceEntry, b: SourceEntry, host: string): DotfleetError {
  return new DotfleetError('target-conflict', `two sources for one target "${target}": ${a.source} and ${b.source}`, {
    file: b.source,
    host,
    hint: `keep one of them, or make one absent on this host (ignore it, or render it empty)`,
  });
}
