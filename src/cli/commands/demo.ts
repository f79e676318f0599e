/**
 * The README's first command: build a real git repository from the bundled sample fleet, make a
 * realistic change on a branch, and print the fleet diff a reviewer would see. No network.
 */
import { cp, lstat, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { diffFleets } from '../../core/fleet-diff.js';
import { Renderer } from '../../core/render.js';
import { diffFleetSecrets } from '../../core/secrets/report.js';
import { runGit } from '../../host/git.js';
import { openFleet, packageRoot, write, type ColorChoice, colorOption } from '../io.js';
import { diffExitCode, parseFormat, printFleetDiff, type Format } from './diff.js';

const GIT_ID = ['-c', 'user.name=dotfleet demo', '-c', 'user.email=demo@dotfleet.invalid', '-c', 'commit.gpgsign=false'];

async function git(cwd: string, ...args: string[]): Promise<void> {
  const r = await runGit(cwd, [...GIT_ID, ...args]);
  if (r.code !== 0) throw new DotfleetError('git', `git ${args[0]} failed: ${r.stderr.trim()}`);
}

async function edit(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  if (!text.includes(from)) throw new Error(`demo: ${file} no longer contains ${JSON.stringify(from)}`);
  await writeFile(file, text.replace(from, to));
}

/** The demo change: a bigger terminal font everywhere, a new niri binding, and one more SSH host. */
export async function makeDemoRepo(dir?: string): Promise<{ repo: string; base: string; head: string }> {
  if (dir !== undefined) {
    // The demo makes a git repository and commits: never in a directory that holds anything.
    const info = await lstat(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    if (info && !info.isDirectory()) throw new DotfleetError('usage', `--dir ${dir} is not a directory`, { file: dir, hint: 'pass --dir with a new or empty directory' });
    if (info && (await readdir(dir)).length > 0) {
      throw new DotfleetError('usage', `--dir ${dir} is not empty: the demo makes a git repository there and commits to it`, { file: dir, hint: 'pass --dir with a new or empty directory (or leave it out for a temporary one)' });
    }
  }
  const repo = dir ?? (await mkdtemp(join(tmpdir(), 'dotfleet-demo-')));
  await cp(join(packageRoot(), 'examples', 'fleet'), repo, { recursive: true });
  await git(repo, 'init', '-q', '-b', 'main');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'fleet: initial import');
  await git(repo, 'switch', '-q', '-c', 'bigger-terminal-font');
  await edit(join(repo, 'home/.chezmoidata.toml'), 'font_size = 11', 'font_size = 12');
  await edit(join(repo, 'home/dot_config/niri/config.kdl.hbs'), '    Mod+Q { close-window; }\n', '    Mod+Q { close-window; }\n    Mod+F { maximize-column; }\n');
  await edit(
    join(repo, 'home/.chezmoidata/ssh.toml'),
    '[[ssh.hosts]]\nalias = "github.com"',
    '[[ssh.hosts]]\nalias = "falcon"\nhostname = "falcon.lan.vale.example"\nuser = "robin"\n\n[[ssh.hosts]]\nalias = "github.com"',
  );
  await git(repo, 'commit', '-q', '-am', 'terminal: 12pt base font; niri: Mod+F maximizes; ssh: add falcon');
  return { repo, base: 'main', head: 'bigger-terminal-font' };
}

/** How the user ran us: `dotfleet` when installed on PATH, else `node dist/cli/dotfleet.mjs`. */
function invokedAs(): string {
  const script = process.argv[1] ?? '';
  if (basename(script) === 'dotfleet') return 'dotfleet';
  const rel = relative(process.cwd(), script);
  return `node ${rel.startsWith('..') ? script : rel}`;
}

export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description('build a git repository from the sample fleet, change it on a branch, and print the fleet diff')
    .option('--dir <dir>', 'where to create the repository (default: a new temporary directory)')
    .option('--format <format>', 'text, markdown or json', parseFormat, 'markdown' as Format)
    .addOption(colorOption())
    .action(async (opts: { dir?: string; format: Format; color: ColorChoice }) => {
      const { repo, base, head } = await makeDemoRepo(opts.dir);
      const b = await openFleet(repo, base);
      const h = await openFleet(repo, head);
      const renderer = new Renderer();
      const diff = diffFleets(b.fleet, h.fleet, {}, renderer);
      diff.secrets = diffFleetSecrets(b.fleet, h.fleet, renderer);
      printFleetDiff(diff, opts.format, opts.color, { base: b.commit, head: h.commit });
      const self = invokedAs();
      process.stderr.write(`\nThe demo fleet repository is ${repo}. Try:\n  ${self} diff --repo ${repo} --base ${base} --head ${head}\n  ${self} render --repo ${repo} --host kestrel\n  ${self} fleet diff --repo ${repo} kestrel tern\n`);
      process.exitCode = diffExitCode(diff, false);
    });
}
