import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/fleet.js';

/**
 * docs/security.md says which test holds each line: every test file it names exists, and every
 * test name it quotes right after a file (`test/x.test.ts` "name…") is a describe, an it, or a
 * named case of a table test in that file (a quote ending in … is a prefix). A renamed or deleted test fails here, not in a reader.
 */
describe('docs/security.md names tests that exist', () => {
  const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'security.md'), 'utf8').replace(/\s*\n\s*/g, ' ');
  const files = [...new Set([...doc.matchAll(/`(test\/[\w./-]+\.ts)`/g)].map((m) => m[1]!))];
  const quoted = [...doc.matchAll(/`(test\/[\w./-]+\.ts)`((?:\s*\(?\s*"[^"]+"[,;)]?)+)/g)].flatMap((m) => [...m[2]!.matchAll(/"([^"]+)"/g)].map((q) => [m[1]!, q[1]!] as const));

  it('names at least a dozen test files, each of which exists', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
    expect(files.filter((f) => !existsSync(join(PROJECT_ROOT, f)))).toEqual([]);
  });

  it('quotes test names that are in the file it names', () => {
    expect(quoted.length).toBeGreaterThanOrEqual(20);
    const missing = quoted.filter(([file, name]) => {
      const text = readFileSync(join(PROJECT_ROOT, file), 'utf8').replace(/\\'/g, "'");
      const prefix = name.replace(/…$/, '');
      // A test's own name, or a named case of a table test.
      return !["('", '("', "['", '["'].some((open) => text.includes(open + prefix));
    });
    expect(missing).toEqual([]);
  });
});
