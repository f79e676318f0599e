/**
 * Compiling and rendering fleet templates: strict Handlebars with the fixed helper set, no
 * escaping (these are config files, not HTML), and every failure a located DotfleetError.
 */
import Handlebars from 'handlebars';
import { DotfleetError } from '../errors.js';
import { analyzeTemplate, BLOCK_HELPERS, OPTIONAL_LOOKUP_HELPER, type KeyPath } from './analyze.js';
import { HelperCallError, helperFunctions, HELPER_NAMES } from './helpers.js';

export interface CompiledTemplate {
  /** Context key paths the template may read (see analyze.ts). */
  deps: KeyPath[];
  render(context: object): string;
}

// Handlebars merges these over its own defaults, which include `log`: switch it off explicitly.
const KNOWN_HELPERS: Record<string, boolean> = {
  ...Object.fromEntries([...HELPER_NAMES, OPTIONAL_LOOKUP_HELPER, ...BLOCK_HELPERS, 'lookup'].map((n) => [n, true])),
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

export class TemplateEngine {
  private readonly hb: typeof Handlebars;
  private readonly cache = new Map<string, CompiledTemplate | DotfleetError>();

  constructor() {
    this.hb = Handlebars.create();
    // Built-ins that could reach outside the template's output.
    this.hb.unregisterHelper('log');
    // Handlebars logs denied prototype lookups to the console; the render error says enough.
    // (The logger is Handlebars' process-wide singleton; nothing else here uses it.)
    (this.hb as any).logger.level = 99;
    for (const [name, fn] of Object.entries(helperFunctions())) this.hb.registerHelper(name, fn);
  }

  /** Compile (cached by file and text); throws a DotfleetError for a template that cannot be used. */
  compile(text: string, file: string): CompiledTemplate {
    const key = file + '\u0000' + text;
    let hit = this.cache.get(key);
    if (!hit) {
      try {
        hit = this.compileUncached(text, file);
      } catch (e) {
        if (!(e instanceof DotfleetError)) throw e;
        hit = e;
      }
      this.cache.set(key, hit);
    }
    if (hit instanceof DotfleetError) throw hit;
    return hit;
  }

  private compileUncached(text: string, file: string): CompiledTemplate {
    let ast: hbs.AST.Program;
    try {
      ast = this.hb.parse(text);
    } catch (e) {
      const loc = (this.hb as any).Parser?.lexer?.yylloc;
      throw new DotfleetError('template-syntax', parseErrorMessage(String((e as Error).message)), {
        file,
        line: loc?.first_line,
        column: loc ? loc.first_column + 1 : undefined,
        hint: 'check that every {{#block}} has its {{/block}} and every {{ has its }}',
      });
    }
    const { deps, pathsAt } = analyzeTemplate(ast, file);
    let fn: Handlebars.TemplateDelegate;
    try {
      fn = this.hb.compile(ast, COMPILE_OPTIONS);
      // Handlebars compiles lazily; force it so compile errors surface here, not per host.
      (fn as any)._setup?.({});
      this.hb.precompile(ast, COMPILE_OPTIONS);
    } catch (e) {
      throw located(e, file, pathsAt, 'template-syntax');
    }
    return {
      deps,
      render: (context: object): string => {
        try {
          return fn(context);
        } catch (e) {
          throw located(e, file, pathsAt, 'template-runtime');
        }
      },
    };
  }
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
    const written = pathsAt.get(`${err.lineNumber}:${err.column}`) ?? missing[1];
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
