/**
 * Handlebars code generators for fleet templates.
 *
 * Handlebars' strict mode checks the last key of a path (analyze.ts marks parameters strict too),
 * but a missing key in the middle of `a.b.c.d` crashes with a TypeError that has no location.
 * - `fastCompiler` keeps Handlebars' checks and only understands the optional-key mark, so
 *   `{{#if hw.features.x}}` may test a missing key. Templates render with it.
 * - `strictCompiler` sends every key of every path through `container.strict`, which throws
 *   "KEY not defined" with the path's line and column. It is slower (a call and a location
 *   object per key), so it is used only to locate a failure the fast code could not.
 */
import Handlebars from 'handlebars';
import { OPTIONAL_KEY } from './analyze.js';

type Fragment = unknown[] | string;

/** Handlebars' typings do not declare the code generator; it is `JavaScriptCompiler` on an environment. */
export type CompilerClass = new () => unknown;

function subclass(hb: typeof Handlebars, strictEveryKey: boolean): CompilerClass {
  const Base = (hb as any).JavaScriptCompiler;
  function Compiler(this: any) {}
  Compiler.prototype = new Base();
  Compiler.prototype.compiler = Compiler;
  Compiler.prototype.nameLookup = function (this: any, parent: Fragment, name: string, type: string): Fragment {
    if (type !== 'context' && type !== 'data') return Base.prototype.nameLookup.call(this, parent, name, type);
    if (name.startsWith(OPTIONAL_KEY)) return Base.prototype.nameLookup.call(this, parent, name.slice(OPTIONAL_KEY.length), type);
    if (!strictEveryKey) return Base.prototype.nameLookup.call(this, parent, name, type);
    return [this.aliasable('container.strict'), '(', parent, ', ', JSON.stringify(name), ', ', JSON.stringify(this.source.currentLocation), ')'];
  };
  return Compiler as unknown as CompilerClass;
}

export const fastCompiler = (hb: typeof Handlebars): CompilerClass => subclass(hb, false);
export const strictCompiler = (hb: typeof Handlebars): CompilerClass => subclass(hb, true);
