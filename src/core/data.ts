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

export type DataFormat = 'toml' | 'json' | 'jsonc' | 'yaml';

/** The format a data file's extension names (chezmoi's list: json, jsonc, toml, yaml, yml). */
export function dataFormatOf(file: string): DataFormat | undefined {
  const ext = file.slice(file.lastIndexOf('.') + 1);
  if (ext === 'yml') return 'yaml';
  return ext === 'toml' || ext === 'json' || ext === 'jsonc' || ext === 'yaml' ? ext : undefined;
}

/**
 * JSONC as chezmoi reads it (JSON with comments and trailing commas): comments and trailing
 * commas become spaces, so offsets (and so lines and columns) stay those of the file.
 */
export function jsoncToJson(text: string): string {
  const out = text.split('');
  let i = 0;
  let lastSignificant = -1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      i++;
      lastSignificant = start;
      continue;
    }
    if (c === '/' && text[i + 1] === '/') {
      for (; i < text.length && text[i] !== '\n'; i++) out[i] = ' ';
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      for (; i < stop; i++) if (text[i] !== '\n') out[i] = ' ';
      continue;
    }
    if ((c === '}' || c === ']') && lastSignificant >= 0 && text[lastSignificant] === ',') out[lastSignificant] = ' ';
    if (!/\s/.test(c)) lastSignificant = i;
    i++;
  }
  return out.join('');
}

/** Where a parse of JSON text failed, found by a YAML parser (JSON is YAML's flow subset). */
function jsonErrorAt(json: string): { line?: number; column?: number; what?: string } {
  const doc = YAML.parseDocument(json, { schema: 'json', prettyErrors: false, uniqueKeys: false, logLevel: 'silent' });
  const err = doc.errors[0];
  if (!err?.pos) return {};
  return { ...lineColumnAt(json, err.pos[0]), what: err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') };
}

/** A key path's line in a YAML or JSON(C) file (best effort, for errors). */
function locateTreePath(text: string, path: PropertyKey[]): number | undefined {
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: false, logLevel: 'silent' });
  for (let n = path.length; n > 0; n--) {
    // The line of the key (a null value has no position of its own), else of the value.
    const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1).map(String), true);
    const key = String(path[n - 1]);
    if (YAML.isMap(parent)) {
      const pair = parent.items.find((p) => (YAML.isScalar(p.key) ? String(p.key.value) : String(p.key)) === key);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return lineColumnAt(text, range[0]).line;
    }
    const node = doc.getIn(path.slice(0, n).map(String), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return lineColumnAt(text, node.range[0]).line;
  }
  return undefined;
}

/** Best-effort line of a key path in a data file of any format. */
export function locateDataPath(text: string, file: string, path: PropertyKey[], locateToml: (text: string, path: PropertyKey[]) => number | undefined): number | undefined {
  const format = dataFormatOf(file) ?? 'toml';
  if (format === 'toml') return locateToml(text, path);
  return locateTreePath(format === 'jsonc' ? jsoncToJson(text) : text, path);
}

/** Nulls (YAML `key:`, JSON `null`) have no TOML equivalent; templates could not test them. */
function refuseNulls(v: unknown, file: string, text: string, path: string[] = []): void {
  if (v === null || v === undefined) {
    throw new DotfleetError('schema', `${path.join('.') || 'the file'} is null`, {
      file,
      line: path.length ? locateTreePath(text, path) : 1,
      hint: 'give it a value ("" for an empty string) or remove the key; dotfleet data has no null',
    });
  }
  if (Array.isArray(v)) v.forEach((x, i) => refuseNulls(x, file, text, [...path, String(i)]));
  else if (typeof v === 'object') for (const [k, x] of Object.entries(v as object)) refuseNulls(x, file, text, [...path, k]);
}

/** A data file (`.chezmoidata.*`, `.chezmoidata/*`): a table, in the format its extension names. */
export function parseDataFile(text: string, file: string): PlainObject {
  const format = dataFormatOf(file);
  let value: unknown;
  let located = text;
  switch (format) {
    case 'toml':
      return parseToml(text, file);
    case 'yaml':
      value = text.trim() === '' ? {} : parseYaml(text, file);
      break;
    case 'json':
    case 'jsonc': {
      located = format === 'jsonc' ? jsoncToJson(text) : text;
      try {
        value = JSON.parse(located);
      } catch {
        const at = jsonErrorAt(located);
        throw new DotfleetError('json-syntax', `invalid ${format.toUpperCase()}${at.what ? `: ${at.what}` : ''}`, {
          file,
          line: at.line,
          column: at.column,
          hint: format === 'jsonc' ? 'fix the syntax at that line (JSON with // and /* */ comments and trailing commas)' : 'fix the JSON syntax at that line (a .jsonc file may have comments)',
        });
      }
      break;
    }
    default:
      throw new DotfleetError('schema', `a data file must end in .toml, .yaml, .yml, .json or .jsonc`, {
        file,
        hint: 'rename it with the extension of its format, or move it out of .chezmoidata/',
      });
  }
  if (!isPlainObject(value)) {
    throw new DotfleetError('schema', 'a data file must hold a table (a mapping of keys to values) at the top', { file, line: 1, hint: 'wrap the values in a table' });
  }
  refuseNulls(value, file, located);
  return normalise(value) as PlainObject;
}
