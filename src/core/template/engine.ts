/**
 * Compiling and rendering fleet templates: strict Handlebars with the fixed helper set, no
 * escaping (these are config files, not HTML), and every failure a located DotfleetError.
 */
import { escapeRegExp } from '../regexp.js';
import Handlebars from 'handlebars';
import { DotfleetError, memoised } from '../errors.js';
import { analyzeTemplate, BLOCK_HELPERS, OPTIONAL_KEY, type KeyPath } from './analyze.js';
import { fastCompiler, strictCompiler } from './compiler.js';
import { HelperCallError, helperFunctions, HELPER_NAMES, type TemplateRuntime } from './helpers.js';

export interface CompiledTemplate {
  /** Context key paths the template may read (see analyze.ts). */
  deps: KeyPath[];
  /** SOPS files it reads through {{secret}}. */
  secretFiles: string[];
  /** Shared templates (`.chezmoitemplates/`) it includes, by repository path. */
  partialFiles: string[];
  /** Paths (keys joined by NUL) read only as plain outputs, `{{host.name}}` (analyze.ts). */
  outputOnly: ReadonlySet<string>;
  render(context: object, runtime?: TemplateRuntime): string;
}

// Handlebars merges these over its own defaults, which include `log`: switch it off explicitly.
const KNOWN_HELPERS: Record<string, boolean> = {
  ...Object.fromEntries([...HELPER_NAMES, ...BLOCK_HELPERS, 'lookup'].map((n) => [n, true])),
  log: false,
  helperMissing: false,
  blockHelperMissing: false,
};

/** Helper names a bare `{{name}}` calls. */
const CALLABLE: ReadonlySet<string> = new Set(HELPER_NAMES);

const COMPILE_OPTIONS = {
  strict: true,
  noEscape: true,
  knownHelpers: KNOWN_HELPERS,
  knownHelpersOnly: true,
} as const;

/** "Parse error on line 3: … Expecting 'X', got 'EOF'" → a sentence for a person. */
function parseErrorMessage(raw: string): string {
  const got = /got '([^']+)'/.exec(raw)?.[1];
  if (got === 'EOF') return 'unexpected end of template: a block ({{#if}}, {{#each}}, …) is not closed';
  const expecting = /Expecting (.+), got/.exec(raw)?.[1];
  return got ? `syntax error: unexpected ${got}${expecting ? ` (expected ${expecting})` : ''}` : raw.split('\n')[0]!;
}

function environment(compiler: (hb: typeof Handlebars) => unknown): typeof Handlebars {
  const hb = Handlebars.create();
  // Built-ins that could reach outside the template's output.
  hb.unregisterHelper('log');
  (hb as any).JavaScriptCompiler = compiler(hb);
  return hb;
}

export class TemplateEngine {
  private readonly hb: typeof Handlebars;
  /** Renders a failed template again to locate a missing key the fast code could not (compiler.ts). */
  private readonly locator: typeof Handlebars;
  private readonly helpers: Record<string, (...args: any[]) => unknown>;
  private readonly cache = new Map<string, CompiledTemplate | DotfleetError>();

  constructor() {
    this.hb = environment(fastCompiler);
    this.locator = environment(strictCompiler);
    // Handlebars logs denied prototype lookups to the console; the render error says enough.
    // (The logger is Handlebars' process-wide singleton; nothing else here uses it.)
    (this.hb as any).logger.level = 99;
    // Our helpers are handed to each template, only those it calls: Handlebars wraps every
    // helper it knows on every render, and that cost dominates small templates.
    this.helpers = helperFunctions();
  }

  /**
   * Parse and analyse (cached by file and text); throws a DotfleetError for a template that
   * cannot be used. Handlebars' own code generation happens on the first render.
   */
  compile(text: string, file: string, partials: Partials = NO_PARTIALS): CompiledTemplate {
    // The shared templates are part of the key only for a template that can include one.
    const key = PARTIAL_CALL.test(text) ? `${file}\u0000${text}\u0000${[...partials].map(([n, p]) => `${n}\u0000${p.file}\u0000${p.text}`).join('\u0000')}` : `${file}\u0000${text}`;
    return memoised(this.cache, key, () => this.compileUncached(text, file, partials));
  }

  private parse(text: string, file: string): hbs.AST.Program {
    try {
      return this.hb.parse(text);
    } catch (e) {
      const loc = (this.hb as any).Parser?.lexer?.yylloc;
      throw new DotfleetError('template-syntax', parseErrorMessage(String((e as Error).message)), {
        file,
        line: loc?.first_line,
        column: loc ? loc.first_column + 1 : undefined,
        hint: goTemplateHint(text) ?? 'check that every {{#block}} has its {{/block}} and every {{ has its }}',
      });
    }
  }

  /**
   * Replace each `{{> NAME}}` by the body of `.chezmoitemplates/NAME`, so analysis sees the
   * included keys in the scope where they are read. Lines of the k-th included file are shifted
   * by k × PARTIAL_LINE, so an error inside it can name that file and its own line.
   */
  private inlinePartials(ast: hbs.AST.Program, file: string, partials: Partials, files: string[], stack: string[]): void {
    const shift = (node: any, by: number): void => {
      if (!node || typeof node !== 'object') return;
      if (Array.isArray(node)) return node.forEach((n) => shift(n, by));
      if (node.loc?.start && !node.loc.shifted) {
        node.loc = { ...node.loc, shifted: true, start: { ...node.loc.start, line: node.loc.start.line + by }, end: { ...node.loc.end, line: node.loc.end.line + by } };
      }
      for (const [k, v] of Object.entries(node)) if (k !== 'loc') shift(v, by);
    };
    const visit = (prog: any): void => {
      if (!prog?.body) return;
      const body: any[] = [];
      for (const s of prog.body) {
        for (const k of ['program', 'inverse']) visit(s[k]);
        if (s.type !== 'PartialStatement' && s.type !== 'PartialBlockStatement') {
          body.push(s);
          continue;
        }
        const at = { ...unshift(s.loc?.start?.line ?? 0, files, file), column: s.loc ? s.loc.start.column + 1 : undefined };
        const nameNode = s.name;
        const name = nameNode?.type === 'PathExpression' ? nameNode.original : nameNode?.type === 'StringLiteral' ? nameNode.value : undefined;
        if (s.type === 'PartialBlockStatement' || name === undefined || s.params.length > 0 || s.hash) {
          throw new DotfleetError('template-forbidden', 'a shared template is included as {{> NAME}}: a literal name, no arguments, no block', {
            ...at,
            hint: 'name a file of .chezmoitemplates/ ({{> NAME}} or {{> "dir/NAME"}}); it sees the context of the place it is included',
          });
        }
        const partial = partials.get(name);
        if (!partial) {
          throw new DotfleetError('template-syntax', `no shared template "${name}"`, {
            ...at,
            hint: partials.size ? `the shared templates in .chezmoitemplates/ are: ${[...partials.keys()].sort().join(', ')}` : 'put shared templates in .chezmoitemplates/ under the source directory',
          });
        }
        if (stack.includes(partial.file) || stack.length > 16) {
          throw new DotfleetError('template-syntax', `shared template "${name}" includes itself (${[...stack, partial.file].join(' → ')})`, { ...at, hint: 'break the cycle' });
        }
        const inner = this.parse(partial.text, partial.file);
        files.push(partial.file);
        const by = files.length * PARTIAL_LINE;
        this.inlinePartials(inner, partial.file, partials, files, [...stack, partial.file]);
        shift(inner, by);
        if (s.indent) {
          // A standalone include is indented like its line, as Handlebars indents partials.
          const wrapper: any = this.hb.parse(`{{#indent ${s.indent.replace(/\t/g, '        ').length}}}x{{/indent}}`);
          wrapper.body[0].program.body = inner.body;
          body.push(wrapper.body[0]);
        } else body.push(...inner.body);
      }
      prog.body = body;
    };
    visit(ast);
  }

  private compileUncached(text: string, file: string, partials: Partials): CompiledTemplate {
    const goHint = goTemplateHint(text);
    const ast = this.parse(text, file);
    const files: string[] = [];
    this.inlinePartials(ast, file, partials, files, [file]);
    let analysis: ReturnType<typeof analyzeTemplate>;
    try {
      analysis = analyzeTemplate(ast, file, CALLABLE);
    } catch (e) {
      throw relocate(e, file, files);
    }
    const { deps, helpers: used, secretFiles, pathsAt, outputOnly } = analysis;
    const helpers = Object.fromEntries([...used].filter((n) => n in this.helpers).map((n) => [n, this.helpers[n]!]));
    const fn = this.hb.compile(ast, COMPILE_OPTIONS);
    const options = { helpers };
    const optionsFor = (runtime?: TemplateRuntime) => (runtime && secretFiles.size > 0 ? { helpers, data: { dotfleet: runtime } } : options);
    const locate = (context: object, runtime: TemplateRuntime | undefined, e: unknown): DotfleetError => {
      // A missing key in the middle of a path: a TypeError, or Handlebars' strict check on the
      // last key finding no parent. The strict-everywhere code names the first missing key.
      if (e instanceof TypeError || / not defined in (undefined|null)$/.test(String((e as Error)?.message).replace(/ - \d+:\d+$/, ''))) {
        try {
          const strictAst = this.parse(text, file);
          this.inlinePartials(strictAst, file, partials, [], [file]);
          analyzeTemplate(strictAst, file, CALLABLE);
          this.locator.compile(strictAst, COMPILE_OPTIONS)(context, optionsFor(runtime));
        } catch (located2) {
          e = located2;
        }
      }
      if (e instanceof RangeError && /Invalid string length/.test(e.message)) {
        // The output outgrew what one JavaScript string can hold: say so, at the first loop.
        const loop = firstLoop(ast);
        e = new DotfleetError('template-runtime', `the output is too large: more than ${MAX_STRING.toLocaleString('en-US')} characters, the largest text JavaScript can hold`, {
          file,
          line: loop?.loc?.start.line ?? 1,
          column: (loop?.loc?.start.column ?? 0) + 1,
          hint: loop ? 'this loop (or one inside it) repeats more than the data can fill; check what it iterates over' : 'a configuration file this large is a mistake; check the data it prints',
        });
      }
      if (e instanceof TypeError) {
        const notTable = /Cannot (?:use 'in' operator to search for|read properties of \S+ \(reading) '([^']+)'/.exec(e.message);
        const at = notTable ? [...pathsAt].find(([, p]) => p.split(/[./]/).slice(1).includes(notTable[1]!)) : undefined;
        if (at) {
          const [lc, written] = at;
          const [line, col] = lc.split(':').map(Number);
          const key = notTable![1]!;
          const m = new RegExp(`[./]${escapeRegExp(key)}(?=[./]|$)`).exec(written);
          const parent = m ? written.slice(0, m.index) : written;
          e = new DotfleetError('template-runtime', `"${written}": ${parent} is not a table, so it has no key "${key}"`, {
            file,
            line,
            column: col! + 1,
            hint: `only tables have keys; for the length of a text or a list write {{len ${parent}}}`,
          });
        }
      }
      const err = relocate(located(e, file, pathsAt, 'template-runtime'), file, files);
      return goHint ? new DotfleetError(err.code, err.message, { ...err.fields(), hint: goHint }) : err;
    };
    return {
      deps,
      secretFiles: [...secretFiles],
      partialFiles: [...new Set(files)],
      outputOnly,
      render: (context: object, runtime?: TemplateRuntime): string => {
        try {
          return fn(context, optionsFor(runtime));
        } catch (e) {
          throw locate(context, runtime, e);
        }
      },
    };
  }
}

/** V8's largest string (2^29 - 24 UTF-16 units on 64-bit). */
const MAX_STRING = 2 ** 29 - 24;

/** The first {{#each}} of a template, where a runaway output most likely grows. */
function firstLoop(program: hbs.AST.Program): hbs.AST.BlockStatement | undefined {
  for (const s of program.body as any[]) {
    if (s.type === 'BlockStatement' && s.path?.original === 'each') return s;
    for (const k of ['program', 'inverse']) {
      const inner = s[k] ? firstLoop(s[k]) : undefined;
      if (inner) return inner;
    }
  }
  return undefined;
}

/** Shared templates by name (path under `.chezmoitemplates/`). */
export type Partials = ReadonlyMap<string, { file: string; text: string }>;
const NO_PARTIALS: Partials = new Map();
export const PARTIAL_CALL = /\{\{~?\s*>/;
/** Lines of included files are shifted by multiples of this (no template has a million lines). */
const PARTIAL_LINE = 1_000_000;

function unshift(line: number, files: string[], file: string): { file: string; line: number } {
  const k = Math.floor(line / PARTIAL_LINE);
  return k === 0 ? { file, line } : { file: files[k - 1]!, line: line % PARTIAL_LINE };
}

/** An error located in an included file names that file and its own line. */
function relocate(e: unknown, file: string, files: string[]): DotfleetError {
  if (!(e instanceof DotfleetError)) throw e;
  if (e.line === undefined || e.line < PARTIAL_LINE) return e;
  const at = unshift(e.line, files, file);
  return new DotfleetError(e.code, e.message, { ...e.fields(), file: at.file, line: at.line, hint: e.file === at.file ? e.hint : `${e.hint ? `${e.hint}; ` : ''}included from ${file}` });
}

/** The written path up to the key that is missing: `hw.featurs` for `hw.featurs.tb`. */
function missingKeyPath(written: string | undefined, key: string): string {
  if (!written) return key;
  let end = -1;
  for (const m of written.matchAll(/[^./]+/g)) if (m[0] === key) end = m.index! + key.length;
  return end < 0 ? written : written.slice(0, end);
}

/**
 * A hint when a template is written in chezmoi's Go-template syntax (`{{ .x }}`, `{{ if … }}`,
 * `{{ end }}`, `{{- x -}}`): dotfleet's templates are Handlebars, and the error alone would not
 * say so.
 */
export function goTemplateHint(text: string): string | undefined {
  const go = /\{\{-?\s*\.[A-Za-z_]|\{\{-?\s*(if|range|with|end|define|template|block)\b[^}]*\}\}|\{\{-\s|\s-\}\}|\{\{\s*\$[A-Za-z_]/.exec(text);
  if (!go) return undefined;
  return 'this looks like a Go template (chezmoi\'s .tmpl syntax), but dotfleet templates are Handlebars: {{x}} not {{ .x }}, {{#if x}}…{{/if}} not {{ if .x }}…{{ end }}, {{#each xs}} not {{ range .xs }}, {{~x~}} not {{- x -}} (docs/fleet-repo.md, Templates)';
}

function located(e: unknown, file: string, pathsAt: Map<string, string>, fallback: 'template-syntax' | 'template-runtime'): DotfleetError {
  if (e instanceof DotfleetError) return e;
  if (e instanceof HelperCallError) {
    return new DotfleetError('template-helper', e.message, {
      file,
      line: e.loc?.start.line,
      column: e.loc ? e.loc.start.column + 1 : undefined,
      hint: 'see the helper list in docs/fleet-repo.md',
    });
  }
  const err = e as Error & { lineNumber?: number; column?: number };
  const message = String(err.message ?? e).replace(/ - \d+:\d+$/, '');
  const missing = /^"(.+)" not defined in/.exec(message);
  if (missing) {
    const written = missingKeyPath(pathsAt.get(`${err.lineNumber}:${err.column}`), missing[1]!);
    return new DotfleetError('template-missing-key', `"${written}" is not defined for this host`, {
      file,
      line: err.lineNumber,
      column: err.column === undefined ? undefined : err.column + 1,
      hint: `define ${written} in .chezmoidata, the host's preset or the host's [hosts.NAME.data], or test it with {{#if ${written}}}`,
    });
  }
  const unknownHelper = /unknown helper (\S+)/.exec(message);
  return new DotfleetError(unknownHelper ? 'template-helper' : fallback, unknownHelper ? `unknown helper "${unknownHelper[1]}"` : message, {
    file,
    line: err.lineNumber,
    column: err.column === undefined ? undefined : err.column + 1,
    hint: unknownHelper ? `the helpers are: ${HELPER_NAMES.join(', ')}, lookup` : undefined,
  });
}
