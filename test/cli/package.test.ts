import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/fleet.js';

/**
 * The published package works on its own: `npm pack`, unpacked in an empty directory (its
 * dependencies linked from this checkout, so the test needs no registry), runs `dotfleet --help`
 * `dotfleet demo` and `dotfleet init` (then `diff` in the new fleet); and `files` names only what exists.
 */
describe('the npm package', () => {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { files: string[]; bin: Record<string, string> };

  it('names only files that exist', () => {
    expect(pkg.files.filter((f) => !existsSync(join(PROJECT_ROOT, f)))).toEqual([]);
  });

  it('packs, unpacks into an empty directory, and runs --help, demo, and init then diff from there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotfleet-pack-'));
    // dist is built by `npm test`; --ignore-scripts keeps pack from building again.
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [{ filename, files }] = JSON.parse(out) as [{ filename: string; files: { path: string }[] }];
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['dist/cli/dotfleet.mjs', 'examples/fleet/fleet/hosts.toml', 'templates/fleet/home/.chezmoidata/hardware.toml', 'templates/fleet/.github/workflows/dotfleet.yml', 'README.md', 'LICENSE', 'package.json']));
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
    // A new fleet from the packed templates, then its own diff: clean.
    const fleet = join(dir, 'mine');
    const init = spawnSync(process.execPath, [bin, 'init', fleet, '--yes', '--host', 'first', '--preset', 'linux-laptop', '--platform', 'linux', '--no-key'], { encoding: 'utf8', cwd: dir });
    expect([init.status, init.stderr]).toEqual([0, '']);
    expect(init.stdout).toMatch(/^A new fleet in .*mine: host first \(linux-laptop, linux\) renders 6 files\./);
    execFileSync('git', ['add', '-A'], { cwd: fleet });
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false', 'commit', '-qm', 'start'], { cwd: fleet });
    const diff = spawnSync(process.execPath, [bin, 'diff', '--base', 'HEAD', '--exit-code'], { encoding: 'utf8', cwd: fleet });
    expect([diff.status, diff.stdout.split('\n')[0]]).toEqual([0, '0 of 1 host change']);
  });
});
