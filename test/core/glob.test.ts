import { readFileSync } from 'node:fs';
import { compileGlob, GlobSyntaxError } from '../../src/core/ignore.js';

/**
 * Globs (.chezmoiignore, secrets.scopes) match as doublestar matches, the library chezmoi uses:
 * held to doublestar's own match table, copied into test/fixtures/doublestar/.
 */
interface Case {
  pattern: string;
  path: string;
  match: boolean;
  badPattern: boolean;
}
const table = JSON.parse(readFileSync(new URL('../fixtures/doublestar/match-cases.json', import.meta.url), 'utf8')) as { source: string; cases: Case[] };

function verdict(c: Case): boolean | 'bad' {
  try {
    return compileGlob(c.pattern).test(c.path);
  } catch (e) {
    if (e instanceof GlobSyntaxError) return 'bad';
    throw e;
  }
}

describe('globs match as doublestar (chezmoi’s matcher)', () => {
  it(`agrees with every case of doublestar's table`, () => {
    const differ = table.cases.filter((c) => verdict(c) !== (c.badPattern ? 'bad' : c.match));
    process.stdout.write(`doublestar parity: ${table.cases.length - differ.length}/${table.cases.length} cases agree\n`);
    expect(table.cases.length).toBeGreaterThanOrEqual(150);
    expect(differ.map((c) => `${c.pattern} ~ ${c.path}: doublestar ${c.badPattern ? 'bad pattern' : c.match}, dotfleet ${verdict(c)}`)).toEqual([]);
  });

  it.each([
    ['**/config', '.gitconfig', false],
    ['**/config', '.config', false],
    ['**/config', 'config', true],
    ['**/config', '.config/git/config', true],
    ['.config/**', '.config', true],
    ['*.bak', 'a/x.bak', false],
    ['**/*.bak', 'x.bak', true],
  ])('%s against %s: %s (path components, not characters)', (glob, path, expected) => {
    expect(compileGlob(glob).test(path)).toBe(expected);
  });
});
