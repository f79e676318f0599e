/**
 * Compiling and rendering fleet templates: strict Handlebars with the fixed helper set, no
 * escaping (these are config files, not HTML), and every failure a located DotfleetError.
 */
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
  render(context: object, runtime?: TemplateRuntime): string;
}

// Handlebars merges these over its own defaults, which include `log`: switch it off explicitly.
const KNOWN_HELPERS: Record<string, boolean> = {
  ...Object.fromEntries([...HELPER_NAMES, ...BLOCK_HELPERS, 'lookup'].map((n) => [n, true])),
  log: false,
  helperMissing: false,
  blockHelperMissing: false,
};

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
  compile(text: string, file: string): CompiledTemplate {
    return memoised(this.cache, file + '\u0000' + text, () => this.compileUncached(text, file));
  }

  private compileUncached(text: string, file: string): CompiledTemplate {
    const goHint = goTemplateHint(text);
    let ast: hbs.AST.Program;
    try {
      ast = this.hb.parse(text);
    } catch (e) {
      const loc = (this.hb as any).Parser?.lexer?.yylloc;
      throw new DotfleetError('template-syntax', parseErrorMessage(String((e as Error).message)), {
        file,
        line: loc?.first_line,
        column: loc ? loc.first_column + 1 : undefined,
        hint: goHint ?? 'check that every {{#block}} has its {{/block}} and every {{ has its }}',
      });
    }
    const { deps, helpers: used, secretFiles, pathsAt } = analyzeTemplate(ast, file);
    const helpers = Object.fromEntries([...used].filter((n) => n in this.helpers).map((n) => [n, this.helpers[n]!]));
    const fn = this.hb.compile(ast, COMPILE_OPTIONS);
    const options = { helpers };
    const optionsFor = (runtime?: TemplateRuntime) => (runtime && secretFiles.size > 0 ? { helpers, data: { dotfleet: runtime } } : options);
    const locate = (context: object, runtime: TemplateRuntime | undefined, e: unknown): DotfleetError => {
      // A missing key in the middle of a path: a TypeError, or Handlebars' strict check on the
      // last key finding no parent. The strict-everywhere code names the first missing key.
      if (e instanceof TypeError || / not defined in (undefined|null)$/.test(String((e as Error)?.message).replace(/ - \d+:\d+$/, ''))) {
        try {
          const strictAst = this.locator.parse(text);
          analyzeTemplate(strictAst, file);
          this.locator.compile(strictAst, COMPILE_OPTIONS)(context, optionsFor(runtime));
        } catch (located2) {
          e = located2;
        }
      }
      const err = located(e, file, pathsAt, 'template-runtime');
      return goHint ? new DotfleetError(err.code, err.message, { ...err.fields(), hint: goHint }) : err;
    };
    return {
      deps,
      secretFiles: [...secretFiles],
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
