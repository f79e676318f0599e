/**
 * The fixed helper set templates may call. A fleet repo cannot add helpers: a template is data,
 * never code. Every helper checks its arguments and fails with the call's location.
 */
import { stringify as tomlStringify } from 'smol-toml';
import type { HelperOptions } from 'handlebars';

/** What the renderer gives templates beyond their context. */
export interface TemplateRuntime {
  /** The redacted marker for a secret, or why there is none. */
  secret(file: string, key: string): { marker: string } | { error: string };
}

/** An error in a helper call; the engine turns it into a located DotfleetError. */
export class HelperCallError extends Error {
  constructor(
    readonly helper: string,
    message: string,
    readonly loc: { start: { line: number; column: number } } | undefined,
  ) {
    super(message);
  }
}

type Helper = (args: unknown[], options: HelperOptions & { loc?: HelperCallError['loc'] }, self: unknown) => unknown;

interface HelperSpec {
  min: number;
  max: number;
  usage: string;
  fn: Helper;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (a missing key?)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a table' : `${typeof v} ${JSON.stringify(v)}`;
}

class ArgError extends Error {}

function str(v: unknown, what: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new ArgError(`${what} must be text, got ${describe(v)}`);
}

function num(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw new ArgError(`${what} must be a number, got ${describe(v)}`);
}

function list(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  throw new ArgError(`${what} must be a list, got ${describe(v)}`);
}

function comparable(a: unknown, b: unknown, op: string): [number | string, number | string] {
  if ((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string')) return [a, b];
  throw new ArgError(`${op} compares two numbers or two texts, got ${describe(a)} and ${describe(b)}`);
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
}

function truthy(v: unknown): boolean {
  return !isEmpty(v) && v !== false && v !== 0;
}

function indentText(n: number, text: string): string {
  const pad = ' '.repeat(n);
  return text.replace(/^(?=.)/gm, pad);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function tomlValue(v: unknown): string {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return tomlStringify(v as Record<string, unknown>).trimEnd();
  // A scalar or list: render it as the value of a key and keep the right-hand side.
  const line = tomlStringify({ v });
  return line.slice(line.indexOf('=') + 1).trim();
}

const SPECS: Record<string, HelperSpec> = {
  eq: { min: 2, max: 2, usage: 'eq A B', fn: ([a, b]) => a === b },
  ne: { min: 2, max: 2, usage: 'ne A B', fn: ([a, b]) => a !== b },
  lt: { min: 2, max: 2, usage: 'lt A B', fn: ([a, b]) => { const [x, y] = comparable(a, b, 'lt'); return x < y; } },
  le: { min: 2, max: 2, usage: 'le A B', fn: ([a, b]) => { const [x, y] = comparable(a, b, 'le'); return x <= y; } },
  gt: { min: 2, max: 2, usage: 'gt A B', fn: ([a, b]) => { const [x, y] = comparable(a, b, 'gt'); return x > y; } },
  ge: { min: 2, max: 2, usage: 'ge A B', fn: ([a, b]) => { const [x, y] = comparable(a, b, 'ge'); return x >= y; } },
  and: { min: 2, max: 16, usage: 'and A B …', fn: (args) => args.every(truthy) },
  or: { min: 2, max: 16, usage: 'or A B …', fn: (args) => args.some(truthy) },
  not: { min: 1, max: 1, usage: 'not A', fn: ([a]) => !truthy(a) },
  default: { min: 2, max: 2, usage: 'default VALUE FALLBACK', fn: ([v, fallback]) => (isEmpty(v) ? fallback : v) },
  has: {
    min: 2, max: 2, usage: 'has TABLE KEY',
    fn: ([t, k]) => t !== null && typeof t === 'object' && Object.prototype.hasOwnProperty.call(t, str(k, 'the key')),
  },
  includes: {
    min: 2, max: 2, usage: 'includes LIST-OR-TEXT VALUE',
    fn: ([c, v]) => (typeof c === 'string' ? c.includes(str(v, 'the value')) : list(c, 'the first argument').includes(v)),
  },
  join: { min: 1, max: 2, usage: 'join LIST [SEPARATOR]', fn: ([l, sep]) => list(l, 'the first argument').map((x) => str(x, 'each item')).join(sep === undefined ? ', ' : str(sep, 'the separator')) },
  split: { min: 2, max: 2, usage: 'split TEXT SEPARATOR', fn: ([s, sep]) => str(s, 'the text').split(str(sep, 'the separator')) },
  concat: { min: 1, max: 16, usage: 'concat A B …', fn: (args) => args.map((a, i) => str(a, `argument ${i + 1}`)).join('') },
  lower: { min: 1, max: 1, usage: 'lower TEXT', fn: ([s]) => str(s, 'the text').toLowerCase() },
  upper: { min: 1, max: 1, usage: 'upper TEXT', fn: ([s]) => str(s, 'the text').toUpperCase() },
  trim: { min: 1, max: 1, usage: 'trim TEXT', fn: ([s]) => str(s, 'the text').trim() },
  replace: { min: 3, max: 3, usage: 'replace TEXT FROM TO', fn: ([s, a, b]) => str(s, 'the text').split(str(a, 'FROM')).join(str(b, 'TO')) },
  len: {
    min: 1, max: 1, usage: 'len LIST-TEXT-OR-TABLE',
    fn: ([v]) => {
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (v !== null && typeof v === 'object') return Object.keys(v).length;
      throw new ArgError(`len needs a list, text or table, got ${describe(v)}`);
    },
  },
  indent: {
    min: 1, max: 2, usage: 'indent N TEXT, or {{#indent N}}…{{/indent}}',
    fn: (args, options, self) => {
      const n = num(args[0], 'the width');
      if (!Number.isInteger(n) || n < 0 || n > 64) throw new ArgError('the width must be a whole number from 0 to 64');
      const text = args.length === 2 ? str(args[1], 'the text') : options.fn ? options.fn(self) : '';
      return indentText(n, text);
    },
  },
  json: {
    min: 1, max: 2, usage: 'json VALUE [INDENT]',
    fn: ([v, n]) => {
      if (v === undefined) throw new ArgError('json needs a value, got nothing (a missing key?)');
      return JSON.stringify(v, null, n === undefined ? undefined : num(n, 'the indent'));
    },
  },
  toml: {
    min: 1, max: 1, usage: 'toml VALUE',
    fn: ([v]) => {
      if (v === undefined) throw new ArgError('toml needs a value, got nothing (a missing key?)');
      return tomlValue(v);
    },
  },
  add: { min: 2, max: 2, usage: 'add A B', fn: ([a, b]) => num(a, 'A') + num(b, 'B') },
  sub: { min: 2, max: 2, usage: 'sub A B', fn: ([a, b]) => num(a, 'A') - num(b, 'B') },
  mul: { min: 2, max: 2, usage: 'mul A B', fn: ([a, b]) => num(a, 'A') * num(b, 'B') },
  div: {
    min: 2, max: 2, usage: 'div A B',
    fn: ([a, b]) => {
      if (num(b, 'B') === 0) throw new ArgError('division by zero');
      return num(a, 'A') / (b as number);
    },
  },
  round: {
    min: 1, max: 2, usage: 'round NUMBER [DECIMALS]',
    fn: ([a, d]) => {
      const places = d === undefined ? 0 : num(d, 'DECIMALS');
      if (!Number.isInteger(places) || places < 0 || places > 10) throw new ArgError('DECIMALS must be a whole number from 0 to 10');
      const f = 10 ** places;
      return Math.round(num(a, 'NUMBER') * f) / f;
    },
  },
  secret: {
    min: 2, max: 2, usage: 'secret "PATH" "KEY"',
    fn: ([file, key], options) => {
      const runtime = (options.data as { dotfleet?: TemplateRuntime } | undefined)?.dotfleet;
      if (!runtime) throw new ArgError('secrets are not available in this template');
      const r = runtime.secret(str(file, 'the path'), str(key, 'the key'));
      if ('error' in r) throw new ArgError(r.error);
      return r.marker;
    },
  },
  quote: { min: 1, max: 1, usage: 'quote TEXT', fn: ([s]) => shellQuote(str(s, 'the text')) },
};

export const HELPER_NAMES = Object.keys(SPECS);

/** Handlebars helper functions for SPECS, with arity and argument checks. */
export function helperFunctions(): Record<string, (...args: any[]) => unknown> {
  const out: Record<string, (...args: any[]) => unknown> = {};
  for (const [name, spec] of Object.entries(SPECS)) {
    out[name] = function (this: unknown, ...all: any[]) {
      const options = all.pop();
      if (all.length < spec.min || all.length > spec.max) {
        throw new HelperCallError(name, `${name} takes ${spec.min === spec.max ? spec.min : `${spec.min} to ${spec.max}`} argument(s), got ${all.length}; usage: {{${spec.usage}}}`, options.loc);
      }
      try {
        return spec.fn(all, options, this);
      } catch (e) {
        if (e instanceof ArgError) throw new HelperCallError(name, `${name}: ${e.message}`, options.loc);
        throw e;
      }
    };
  }
  return out;
}
