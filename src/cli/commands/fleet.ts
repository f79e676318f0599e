import type { Command } from 'commander';
import { diffHosts } from '../../core/fleet-diff.js';
import { getHost } from '../../core/fleet.js';
import { changesText } from '../../core/report/text.js';
import { changeLine } from '../../core/report/common.js';
import { fenceFor } from '../../core/report/markdown.js';
import { EXIT, openFleet, paintFor, write, type ColorChoice } from '../io.js';
import { parseFormat, type Format } from './diff.js';

export function fleetCommand(program: Command): void {
  const fleet = program.command('fleet').description('commands over the whole fleet');
  fleet
    .command('diff')
    .description("compare two hosts' rendered configuration at one revision")
    .argument('<host-a>')
    .argument('<host-b>')
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the fleet at this revision (default: the working tree)')
    .option('--format <format>', 'text, markdown or json', parseFormat, 'text' as Format)
    .option('--exit-code', 'exit 1 when the two hosts differ')
    .option('--color <when>', 'auto, always or never', 'auto')
    .action(async (a: string, b: string, opts: { repo: string; ref?: string; format: Format; exitCode?: boolean; color: ColorChoice }) => {
      const { fleet: f, commit } = await openFleet(opts.repo, opts.ref);
      const { changes, errors } = diffHosts(f, getHost(f, a), getHost(f, b));
      if (opts.format === 'json') {
        write(JSON.stringify({ version: 1, commit, from: a, to: b, changes, errors: errors.map((e) => e.toJSON()) }, null, 2));
      } else if (opts.format === 'markdown') {
        const out = [`### ${a} → ${b}`, '', `${changes.length} difference${changes.length === 1 ? '' : 's'}`, ''];
        for (const c of changes) {
          out.push(`**${changeLine(c)}**`, '');
          if (c.patch) out.push(`${fenceFor(c.patch)}diff`, c.patch, fenceFor(c.patch), '');
        }
        write(out.join('\n'));
      } else {
        write(changes.length === 0 ? `${a} and ${b} render identically` : `${a} → ${b}: ${changes.length} difference${changes.length === 1 ? '' : 's'}\n` + changesText(changes, paintFor(opts.color)));
      }
      for (const e of errors) process.stderr.write(`dotfleet: ${e.describe()}\n`);
      process.exitCode = errors.length > 0 ? EXIT.renderErrors : opts.exitCode && changes.length > 0 ? EXIT.differences : EXIT.ok;
    });
}
