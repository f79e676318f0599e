/** Turning zod issues into located DotfleetErrors. */
import type { z } from 'zod';
import { DotfleetError } from './errors.js';
import { findLine, locateDataPath } from './data.js';
import { escapeRegExp } from './regexp.js';


/**
 * Best-effort line for a key path in a TOML file: the `[a.b]` table header for the longest
 * prefix that has one, then the `key =` line after it.
 */
export function locateTomlPath(text: string, path: PropertyKey[]): number | undefined {
  const keys = path.map(String);
  for (let n = keys.length; n > 0; n--) {
    const header = keys.slice(0, n).map((k) => `(?:"${escapeRegExp(k)}"|${escapeRegExp(k)})`).join('\\s*\\.\\s*');
    const at = findLine(text, new RegExp(`^\\s*\\[\\s*${header}\\s*\\]`));
    if (at === undefined) continue;
    const rest = keys.slice(n);
    if (rest.length === 0) return at;
    // The key inside this table only: up to the next table header.
    const keyLine = findLine(text, new RegExp(`^\\s*(?:"${escapeRegExp(rest[0]!)}"|${escapeRegExp(rest[0]!)})\\s*[=.]`), at + 1);
    const nextTable = findLine(text, /^\s*\[/, at + 1);
    return keyLine !== undefined && (nextTable === undefined || keyLine < nextTable) ? keyLine : at;
  }
  const first = keys[keys.length - 1];
  return first === undefined ? undefined : findLine(text, new RegExp(`^\\s*${escapeRegExp(first)}\\s*=`));
}

export function schemaError(
  issue: z.core.$ZodIssue,
  file: string,
  text: string | undefined,
  hint: string,
): DotfleetError {
  const field = issue.path.map(String).join('.');
  const line = text === undefined ? undefined : locateDataPath(text, file, issue.path, locateTomlPath);
  return new DotfleetError('schema', `${field ? `${field}: ` : ''}${issue.message}`, { file, line, hint });
}
