/**
 * Typed errors for user mistakes. Each carries where the mistake is (file, line, column, host)
 * and a hint saying what to do, so every delivery can show it as an annotation, a 4xx or one CLI
 * line instead of a stack trace. Programming errors stay plain `Error`s.
 */
import { visible } from './visible.js';

export interface ErrorLocation {
  /** Repository-relative path of the file at fault. */
  file?: string;
  /** 1-based line. */
  line?: number;
  /** 1-based column. */
  column?: number;
}

/** The 1-based line and column of a character offset in `text`. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  return { line: before.split('\n').length, column: before.length - before.lastIndexOf('\n') };
}

export interface DotfleetErrorFields extends ErrorLocation {
  host?: string;
  hint?: string;
}

export type ErrorCode =
  | 'toml-syntax'
  | 'yaml-syntax'
  | 'json-syntax'
  | 'schema'
  | 'unknown-preset'
  | 'template-syntax'
  | 'template-missing-key'
  | 'template-helper'
  | 'template-forbidden'
  | 'template-runtime'
  | 'path-escape'
  | 'target-conflict'
  | 'bad-symlink'
  | 'bad-source-name'
  | 'unknown-host'
  | 'git'
  /** A host command that would lose what is on disk, and so did nothing. */
  | 'refused'
  | 'usage';

export class DotfleetError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly host?: string;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, fields: DotfleetErrorFields = {}) {
    super(message);
    this.name = 'DotfleetError';
    this.code = code;
    this.file = fields.file;
    this.line = fields.line;
    this.column = fields.column;
    this.host = fields.host;
    this.hint = fields.hint;
  }

  /** A copy naming the host the error happened for (errors are raised before the host is known). */
  forHost(host: string): DotfleetError {
    return new DotfleetError(this.code, this.message, { ...this.fields(), host });
  }

  fields(): DotfleetErrorFields {
    return { file: this.file, line: this.line, column: this.column, host: this.host, hint: this.hint };
  }

  /** `file:line:col` as compilers print it; empty when the error has no file. */
  where(): string {
    if (!this.file) return '';
    let at = this.file;
    if (this.line !== undefined) at += `:${this.line}`;
    if (this.line !== undefined && this.column !== undefined) at += `:${this.column}`;
    return at;
  }

  /** One line for a person: `host mbp: home/dot_zshrc.hbs:3:5: "foo" is not defined (hint: …)`. */
  describe(): string {
    const parts: string[] = [];
    if (this.host) parts.push(`host ${visible(this.host)}`);
    const at = this.where();
    if (at) parts.push(visible(at));
    // Names in a message come from the repository: shown, never obeyed by a terminal.
    parts.push(visible(this.message, '\n\t'));
    let text = parts.join(': ');
    if (this.hint) text += `\n  hint: ${visible(this.hint, '\n\t')}`;
    return text;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.fields() };
  }
}

export function isDotfleetError(e: unknown): e is DotfleetError {
  return e instanceof DotfleetError;
}

interface Cache<K, V> {
  get(key: K): V | DotfleetError | undefined;
  set(key: K, value: V | DotfleetError): unknown;
}

/**
 * `compute(key)` once per key, remembering a DotfleetError as well as a value (a template that
 * does not compile fails the same way for every host); other errors are not cached.
 */
export function memoised<K, V>(cache: Cache<K, V>, key: K, compute: () => V): V {
  let hit = cache.get(key);
  if (hit === undefined) {
    try {
      hit = compute();
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      hit = e;
    }
    cache.set(key, hit);
  }
  if (hit instanceof DotfleetError) throw hit;
  return hit;
}
