/** dotfleet's own package: where it is installed and its version (the CLI, the app and the container read the same file). */
import { readFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's root: the nearest directory above this module with dotfleet's
 * package.json (this module may be dist/host/package.js, or inside the CLI bundle under dist/cli/).
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'dotfleet') return dir + sep;
    } catch {
      // Not here: one level up.
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('dotfleet cannot find its own package.json');
    dir = up;
  }
}

/** The package's version, from its package.json (the same file whether the CLI runs bundled or not). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

