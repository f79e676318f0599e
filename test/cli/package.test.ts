import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/fleet.js';

/**
 * The published package works on its own: `npm pack`, unpacked in an empty directory (its
 * dependencies linked from this checkout, so the test needs no registry), runs `dotfleet --help`
 * and `dotfleet demo`; and `files` names only what exists.
 */
describe('the npm package', () => {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { files: string[]; bin: Record<string, string> };

  it('names only files that exist', () => {
    expect(pkg.files.filter((f) => !existsSync(join(PROJECT_ROOT, f)))).toEqual([]);
  });

  it('packs, unpacks into an empty directory, and runs --help and demo from there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotfleet-pack-'));
    // dist is built by `npm test`; --ignore-scripts keeps pack from building again.
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [{ filename, files }] = JSON.parse(out) as [{ filename: string; files: { path: string }[] }];
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['dist/cli/dotfleet.mjs', 'examples/fleet/fleet/hosts.toml', 'README.md', 'LICENSE', 'package.json']));
    expect(paths.filter((p) => p.startsWith('test/') || p.startsWith('src/') || p.startsWith('node_modules/'))).toEqual([]);
    execFileSync('tar', ['xzf', join(dir, filename), '-C', dir]);
    const root = join(dir, 'package');
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'));
    const bin = join(root, pkg.bin.dotfleet!);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', cwd: dir });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: dotfleet/);
    const demo = spawnSync(process.execPath, [bin, 'demo', '--dir', join(dir, 'fleet')], { encoding: 'utf8', cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    expect(demo.stderr).toMatch(/The demo fleet repository is/);
    expect(demo.status).toBe(0);
    expect(demo.stdout).toMatch(/12 of 12 hosts change/);
  });
});
