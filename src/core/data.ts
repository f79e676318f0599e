/** Parsing data files (TOML, YAML) into plain values with located errors, and merging data layers. */
import { parse as parseTomlText, TomlError, TomlDate } from 'smol-toml';
import YAML from 'yaml';
import { DotfleetError, lineColumnAt } from './errors.js';

export type PlainValue = string | number | boolean | PlainValue[] | PlainObject;
export type PlainObject = { [key: string]: PlainValue };

export function isPlainObject(v: unknown): v is PlainObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** smol-toml gives null-prototype objects and TomlDate; templates and schemas want plain values. */
function normalise(v: unknown): PlainValue {
  if (v instanceof TomlDate) return v.toISOString();
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(normalise);
  if (typeof v === 'object' && v !== null) {
    const out: PlainObject = {};
    for (const [k, val] of Object.entries(v)) out[k] = normalise(val);
    return out;
  }
  return v as PlainValue;
}

export function parseToml(text: string, file: string): PlainObject {
  try {
    return normalise(parseTomlText(text)) as PlainObject;
  } catch (e) {
    if (e instanceof TomlError) {
      const reason = e.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      throw new DotfleetError('toml-syntax', `invalid TOML: ${reason}`, {
        file,
        line: e.line,
        column: e.column,
        hint: 'fix the TOML syntax at that line (https://toml.io/en/v1.0.0)',
      });
    }
    throw e;
  }
}

export function parseYaml(text: string, file: string): unknown {
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true, logLevel: 'silent' });
  const err = doc.errors[0];
  if (err) {
    // The parser's first line says what is wrong; the position comes from its offset.
    const { line, column } = err.pos ? lineColumnAt(text, err.pos[0]) : { line: undefined, column: undefined };
    const what = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new DotfleetError('yaml-syntax', `invalid YAML: ${what}`, { file, line, column, hint: 'fix the YAML syntax at that line' });
  }
  return doc.toJS() ?? {};
}

/**
 * Merge data layers: tables merge key by key, anything else (arrays included) is replaced by the
 * later layer. Inputs are never mutated.
 */
export function mergeData(base: PlainObject, over: PlainObject): PlainObject {
  const out: PlainObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? mergeData(prev, v) : v;
  }
  return out;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The key paths at which two values differ: recursing into tables, stopping at the first level
 * where a value (scalar, array, or a table on one side only) differs.
 */
export function changedPaths(a: unknown, b: unknown, prefix: string[] = []): string[][] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const out: string[][] = [];
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) out.push(...changedPaths(a[k], b[k], [...prefix, k]));
    return out;
  }
  return deepEqual(a, b) ? [] : [prefix];
}

/** 1-based line of the first line matching `re` at or after line `from` (best effort, for errors). */
export function findLine(text: string, re: RegExp, from = 1): number | undefined {
  const lines = text.split('\n');
  for (let i = from - 1; i < lines.length; i++) if (re.test(lines[i]!)) return i + 1;
  return undefined;
}
