/** Fitting atomic blocks of markdown into GitHub's size limits. */

export const COMMENT_LIMIT = 65_536; // characters in an issue comment
export const CHECK_LIMIT = 65_535; // bytes in a check run's summary, and in its text

export type Measure = (s: string) => number;
export const chars: Measure = (s) => s.length;
export const bytes: Measure = (s) => Buffer.byteLength(s, 'utf8');

/**
 * Choose a level of detail per item (0 = least) so the whole fits in `room`: every item at its
 * least first, then each item raised in order as far as it fits. An item whose least level
 * does not fit, and every item after it, is left out; returns how many were left out.
 */
export function fitLevels(levels: string[][], room: number, measure: Measure): { chosen: string[]; omitted: number } {
  const chosen: string[] = [];
  let used = 0;
  let omitted = 0;
  for (const options of levels) {
    const least = options[0]!;
    if (omitted > 0 || used + measure(least) > room) {
      omitted++;
      continue;
    }
    chosen.push(least);
    used += measure(least);
  }
  for (let level = 1; ; level++) {
    let raised = false;
    for (let i = 0; i < chosen.length; i++) {
      const better = levels[i]![level];
      if (better === undefined) continue;
      const delta = measure(better) - measure(chosen[i]!);
      if (used + delta <= room) {
        chosen[i] = better;
        used += delta;
        raised = true;
      }
    }
    if (!raised && levels.every((l) => l[level] === undefined)) break;
    if (level > 8) break;
  }
  return { chosen, omitted };
}

/** Blocks in order while they fit; returns the kept blocks and how many were dropped. */
export function fitBlocks(blocks: string[], room: number, measure: Measure): { kept: string[]; dropped: number } {
  const kept: string[] = [];
  let used = 0;
  for (const b of blocks) {
    if (used + measure(b) > room) return { kept, dropped: blocks.length - kept.length };
    kept.push(b);
    used += measure(b);
  }
  return { kept, dropped: 0 };
}
