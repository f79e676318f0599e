import { structuredPatch } from 'diff';
import { oneBlockHunk, unifiedHunks } from '../../src/core/diff.js';
import { rng } from '../helpers/generate.js';

/** The reference: jsdiff's unified hunks, as dotfleet printed them before the quick path. */
function reference(from: string, to: string): string {
  const out: string[] = [];
  for (const h of structuredPatch('a', 'b', from, to, '', '', { context: 3 }).hunks) {
    out.push(`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`);
    for (const l of h.lines) out.push(l);
  }
  return out.join('\n');
}

describe('unified hunks', () => {
  it('the one-block quick path gives exactly what the general diff gives (5,000 random texts, repeated lines included)', () => {
    const rand = rng(20261123);
    let quick = 0;
    for (let run = 0; run < 5000; run++) {
      // Half with few distinct lines (repeats everywhere), half with mostly distinct ones.
      const alphabet = run % 2 ? 2 + rand(6) : 1000;
      const line = () => `l${rand(alphabet)}`;
      const a = Array.from({ length: rand(30) + 1 }, line);
      const b = [...a];
      // One edit block: replace, insert or delete a few lines somewhere.
      const at = rand(a.length + 1);
      b.splice(at, rand(4), ...Array.from({ length: rand(4) }, line));
      const from = a.join('\n') + '\n';
      const to = b.join('\n') + (b.length ? '\n' : '');
      if (from === to) continue;
      if (oneBlockHunk(from, to) !== undefined) quick++;
      expect([run, unifiedHunks(from, to)]).toEqual([run, reference(from, to)]);
    }
    expect(quick).toBeGreaterThan(2000);
  });
});
