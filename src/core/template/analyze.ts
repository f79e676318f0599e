/**
 * One walk over a parsed template that
 * - marks the tested value of `if`, `unless` and `default` so that its last key may be missing
 *   (its parents must exist, so a typo in the middle of a path is still an error); every other
 *   key must exist (the compiler in compiler.ts makes every lookup strict);
 * - refuses what would let a template reach beyond its data: partials, decorators, and block
 *   sections on plain values (`{{#x}}`), which change the context implicitly;
 * - computes the template's static dependencies: the context key paths it may read, so a data
 *   change re-renders only the templates that can see it.
 */
import { DotfleetError } from '../errors.js';

/** A key path in the template context; `[]` means the whole context. */
export type KeyPath = string[];

export const BLOCK_HELPERS = new Set(['if', 'unless', 'each', 'with', 'indent']);
const OPTIONAL_FIRST_PARAM = new Set(['if', 'unless', 'default']);
/**
 * Prefix marking a path's last key as optional (the tested value of if/unless/default); the
 * compiler (compiler.ts) looks such a key up without requiring it. Not a character a template
 * can write in a path.
 */
export const OPTIONAL_KEY = '\u0000?';

interface Scope {
  /**
   * Where `this` points, or a collapsed path: inside `each`, every read is a read of the list.
   * null: `this` is a value a helper computed (`{{#each (split …)}}`), which depends only on the
   * helper's arguments, already recorded.
   */
  base: KeyPath | null;
  collapsed: boolean;
  /** Block parameters: what they name, and whether reads through them collapse (each). */
  params: Map<string, { path: KeyPath | null; collapsed: boolean } | null>;
}

export interface Analysis {
  deps: KeyPath[];
  /** Helpers the template calls (Handlebars wraps every helper it is given on every render). */
  helpers: Set<string>;
  /** SOPS files the template reads through {{secret "PATH" "KEY"}}. */
  secretFiles: Set<string>;
  /** `line:column` (0-based column, as Handlebars reports) → the path as written, for messages. */
  pathsAt: Map<string, string>;
  /**
   * Paths (keys joined by NUL) whose every read is a plain output, `{{a.b}}`: no helper, block or
   * test sees the value, so it reaches the output unchanged (noEscape) and nothing else.
   */
  outputOnly: Set<string>;
}

type Node = hbs.AST.Node & Record<string, any>;

function locKey(loc: hbs.AST.SourceLocation | undefined): string {
  return loc ? `${loc.start.line}:${loc.start.column}` : '';
}

export function analyzeTemplate(program: hbs.AST.Program, file: string, knownHelpers: ReadonlySet<string> = new Set()): Analysis {
  const deps: KeyPath[] = [];
  const helpers = new Set<string>();
  const secretFiles = new Set<string>();
  const pathsAt = new Map<string, string>();
  const reads = new Map<string, number>();
  const outputs = new Map<string, number>();
  const count = (m: Map<string, number>, path: KeyPath) => m.set(path.join('\u0000'), (m.get(path.join('\u0000')) ?? 0) + 1);
  const root: Scope = { base: [], collapsed: false, params: new Map() };

  const forbid = (node: Node, what: string, hint: string): never => {
    throw new DotfleetError('template-forbidden', what, {
      file,
      line: node.loc?.start.line,
      column: node.loc ? node.loc.start.column + 1 : undefined,
      hint,
    });
  };

  /** The context path a PathExpression reads, or null when it reads no context (`@index`). */
  const resolve = (p: hbs.AST.PathExpression, scopes: Scope[]): KeyPath | null => {
    if (p.data) {
      return p.parts[0] === 'root' ? p.parts.slice(1) : null;
    }
    const scope = scopes[Math.max(0, scopes.length - 1 - p.depth)]!;
    if (p.depth === 0 && p.parts.length > 0) {
      for (let i = scopes.length - 1; i >= 0; i--) {
        const bound = scopes[i]!.params.get(p.parts[0]!);
        if (bound !== undefined) {
          if (bound === null || bound.path === null) return null;
          return bound.collapsed ? bound.path : [...bound.path, ...p.parts.slice(1)];
        }
      }
    }
    if (scope.base === null) return null;
    return scope.collapsed ? scope.base : [...scope.base, ...p.parts];
  };

  const readPath = (p: hbs.AST.PathExpression, scopes: Scope[]): KeyPath | null => {
    if (p.loc) pathsAt.set(locKey(p.loc), p.original);
    const path = resolve(p, scopes);
    if (path) {
      deps.push(path);
      count(reads, path);
    }
    return path;
  };

  /** Mark the last key optional: its parents must exist, it may not (compiler.ts). */
  const markOptional = (p: hbs.AST.PathExpression, scopes: Scope[]): void => {
    const last = p.parts.length - 1;
    // A lone block parameter is resolved by name; it always exists inside its block.
    if (last === 0 && !p.data && scopes.some((s) => s.params.has(p.parts[0]!))) return;
    p.parts[last] = OPTIONAL_KEY + p.parts[last];
  };

  const visitExpr = (e: Node, scopes: Scope[]): void => {
    if (e.type === 'PathExpression') {
      readPath(e as hbs.AST.PathExpression, scopes);
      // Handlebars' strict mode spares helper parameters; a fleet template does not.
      (e as any).strict = true;
    } else if (e.type === 'SubExpression') visitCall(e, scopes);
  };

  /** Parameters and hash of a helper call (mustache, block or subexpression). */
  const visitCall = (call: Node, scopes: Scope[]): void => {
    const name: string = call.path.type === 'PathExpression' ? call.path.original : '';
    helpers.add(name);
    if (name === 'secret') {
      const [file, key] = call.params as Node[];
      if (call.params.length !== 2 || file?.type !== 'StringLiteral' || key?.type !== 'StringLiteral') {
        forbid(call, 'secret takes a literal file path and key', 'write {{secret "secrets/hosts/HOST/wifi.sops.yaml" "psk"}}: the bot must see which secret a template uses');
      }
      secretFiles.add((file as hbs.AST.StringLiteral).value);
    }
    (call.params as Node[]).forEach((param, i) => {
      visitExpr(param, scopes);
      if (i === 0 && OPTIONAL_FIRST_PARAM.has(name) && param.type === 'PathExpression' && param.parts.length > (param.data ? 1 : 0)) {
        markOptional(param as hbs.AST.PathExpression, scopes);
        (param as any).strict = false;
      }
    });
    for (const pair of (call.hash?.pairs ?? []) as Node[]) visitExpr(pair.value, scopes);
  };

  const visitProgram = (prog: hbs.AST.Program | undefined, scopes: Scope[]): void => {
    for (const stmt of (prog?.body ?? []) as Node[]) visitStatement(stmt, scopes);
  };

  const visitStatement = (s: Node, scopes: Scope[]): void => {
    switch (s.type) {
      case 'ContentStatement':
      case 'CommentStatement':
        return;
      case 'PartialStatement':
      case 'PartialBlockStatement':
        return forbid(s, 'partials ({{> name}}) are not supported', 'write the text inline, or select it with {{#if}}');
      case 'Decorator':
      case 'DecoratorBlock':
        return forbid(s, 'decorators ({{* name}}) are not supported', 'remove the decorator');
      case 'MustacheStatement': {
        const path = s.path as Node;
        if (path.type !== 'PathExpression') return forbid(s, 'a literal cannot be called as a helper', 'remove the parameters');
        // `{{json}}` with no arguments is a call of the helper (Handlebars calls it), not a read.
        const isHelperName = !(path as any).data && (path as any).parts?.length === 1 && knownHelpers.has((path as any).original);
        if (s.params.length === 0 && !s.hash && !isHelperName) {
          const read = readPath(path as hbs.AST.PathExpression, scopes);
          if (read) count(outputs, read);
          return;
        }
        visitCall(s, scopes);
        return;
      }
      case 'BlockStatement': {
        const name: string = s.path.original;
        if (!BLOCK_HELPERS.has(name)) {
          return forbid(s, `{{#${name}}} is not a block helper`, 'use {{#if x}} to test a value, {{#each x}} to loop, {{#with x}} to enter a table');
        }
        if (s.params.length === 0) return forbid(s, `{{#${name}}} needs a value`, `write {{#${name} some.key}}`);
        const subject: Node = s.params[0];
        visitCall(s, scopes);
        const blockParams: string[] = s.program?.blockParams ?? [];
        if (name === 'each' || name === 'with') {
          const base = subject.type === 'PathExpression' ? resolve(subject as hbs.AST.PathExpression, scopes) : null;
          const inner: Scope = { base, collapsed: name === 'each', params: new Map() };
          if (blockParams[0]) inner.params.set(blockParams[0], { path: base, collapsed: inner.collapsed });
          if (blockParams[1]) inner.params.set(blockParams[1], null);
          visitProgram(s.program, [...scopes, inner]);
        } else {
          visitProgram(s.program, scopes);
        }
        visitProgram(s.inverse, scopes);
        return;
      }
      default:
        return forbid(s, `unsupported template construct ${s.type}`, 'see docs/fleet-repo.md for the template language');
    }
  };

  visitProgram(program, [root]);
  const outputOnly = new Set([...outputs].filter(([k, n]) => reads.get(k) === n).map(([k]) => k));
  return { deps: dedupe(deps), helpers, secretFiles, pathsAt, outputOnly };
}

function dedupe(paths: KeyPath[]): KeyPath[] {
  const seen = new Set<string>();
  const out: KeyPath[] = [];
  for (const p of paths) {
    const k = p.join('\u0000');
    if (!seen.has(k)) {
      seen.add(k);
      out.push(p);
    }
  }
  return out;
}

/** True when a change at `changed` can alter what a read of `dep` sees (one is a prefix of the other). */
export function pathsOverlap(dep: KeyPath, changed: KeyPath): boolean {
  const n = Math.min(dep.length, changed.length);
  for (let i = 0; i < n; i++) if (dep[i] !== changed[i]) return false;
  return true;
}

/** A zero-key path relative to the current scope: `this` or `.`. */
const ZERO_KEY_PATH = /(?:^|[\s(=~#])(?:this|\.)(?=[\s)}~/]|$)/;
/** Paths that climb towards the root from any depth: `..` and a bare `@root`. */
const CLIMBS_TO_ROOT = /\.\.|@root(?![.\w])/;

/**
 * Whether the template may read the whole context: a zero-key path at the root scope. Inside
 * `each`/`with` a zero-key path reads the block's subject, whose own path is written in the
 * template; their `{{else}}` branches run in the outer scope. `..` and a bare `@root` count at
 * any depth. Conservative: when unsure, true.
 */
function mayReadWholeContext(text: string): boolean {
  const blocks: { changesScope: boolean }[] = [];
  const depth = () => blocks.filter((b) => b.changesScope).length;
  for (const m of text.matchAll(/\{\{~?([\s\S]*?)~?\}\}/g)) {
    const body = m[1]!.trim();
    if (body.startsWith('!')) continue;
    const open = /^#\*?\s*([\w-]+)/.exec(body);
    const close = /^\/\s*([\w-]+)/.exec(body);
    if (CLIMBS_TO_ROOT.test(body) || (depth() === 0 && ZERO_KEY_PATH.test(body.replace(/^[#^/]/, ' ')))) return true;
    if (open) blocks.push({ changesScope: open[1] === 'each' || open[1] === 'with' });
    else if (close) blocks.pop();
    else if (/^(else|\^)(\s|$)/.test(body) && blocks.length > 0) blocks[blocks.length - 1]!.changesScope = false;
  }
  // An unclosed block is a syntax error; say yes and let the parser report it.
  return blocks.length > 0;
}

/**
 * A cheap, sound pre-filter for `pathsOverlap(deps, changed)`: false only when the template
 * cannot read any of the changed keys, decided from its text without parsing it. It holds
 * because every dependency's first key is written literally in the template (resolve() builds
 * paths from written segments), except whole-context reads (mayReadWholeContext).
 */
export function mayRead(text: string, changed: KeyPath[]): boolean {
  if (changed.some((k) => k.length === 0 || text.includes(k[0]!))) return true;
  return mayReadWholeContext(text);
}
