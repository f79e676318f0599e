import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { diffFleets, type FleetDiff } from '../../core/fleet-diff.js';
import { fleetDiffJson } from '../../core/report/json.js';
import { fleetDiffMarkdown } from '../../core/report/markdown.js';
import { fleetDiffText } from '../../core/report/text.js';
import { getHost } from '../../core/fleet.js';
import { Renderer } from '../../core/render.js';
import { diffFleetSecrets } from '../../core/secrets/report.js';
import { diffTrustTrees, trustChanged } from '../../core/trust.js';
import { EXIT, openFleet, paintFor, write, type ColorChoice, colorOption } from '../io.js';

export type Format = 'text' | 'markdown' | 'json';

export function parseFormat(value: string): Format {
  if (value === 'text' || value === 'markdown' || value === 'json') return value;
  throw new DotfleetError('usage', `unknown format "${value}"`, { hint: 'use --format text, markdown or json' });
}

export function printFleetDiff(diff: FleetDiff, format: Format, color: ColorChoice, refs: { base?: string; head?: string; baseName?: string }): void {
  if (format === 'json') write(fleetDiffJson(diff, { base: refs.base, head: refs.head }));
  else if (format === 'markdown') write(fleetDiffMarkdown(diff, { title: `dotfleet · fleet diff ${refs.base?.slice(0, 12) ?? ''}…${refs.head?.slice(0, 12) ?? 'working tree'}` }));
  else write(fleetDiffText(diff, paintFor(color), refs.baseName ?? 'the base'));
}

export function diffExitCode(diff: FleetDiff, exitCode: boolean): number {
  if (diff.sourceErrors.length > 0 || diff.hosts.some((h) => h.status === 'error')) return EXIT.renderErrors;
  if (diff.secrets?.findings?.some((f) => f.severity === 'error')) return EXIT.renderErrors;
  if (exitCode && (diff.hosts.some((h) => h.changes.length > 0) || (diff.trust !== undefined && trustChanged(diff.trust)))) return EXIT.differences;
  return EXIT.ok;
}

export function diffCommand(program: Command): void {
  program
    .command('diff')
    .description('what a change does to every host: the rendered configuration at --base against --head')
    .option('--repo <dir>', 'fleet repository', '.')
    .requiredOption('--base <rev>', 'the revision before the change')
    .option('--head <rev>', 'the revision after the change (default: the working tree)')
    .option('--host <name...>', 'only these hosts')
    .option('--format <format>', 'text, markdown or json', parseFormat, 'text' as Format)
    .option('--exit-code', 'exit 1 when any host or trust changes (as git diff --exit-code)')
    .option('--full', 'render every host completely on both sides instead of only what the change can affect')
    .option('--full-patch', 'exact patches however large (otherwise a text over 50,000 lines, or more than 5,000 lines apart, is summarised)')
    .addOption(colorOption())
    .action(async (opts: { repo: string; base: string; head?: string; host?: string[]; format: Format; exitCode?: boolean; full?: boolean; fullPatch?: boolean; color: ColorChoice }) => {
      const base = await openFleet(opts.repo, opts.base);
      const head = await openFleet(opts.repo, opts.head);
      for (const h of opts.host ?? []) if (!base.fleet.hosts.has(h)) getHost(head.fleet, h);
      const renderer = new Renderer();
      const diff = diffFleets(base.fleet, head.fleet, { hosts: opts.host, full: opts.full, fullPatch: opts.fullPatch, allErrors: true }, renderer);
      diff.secrets = diffFleetSecrets(base.fleet, head.fleet, renderer);
      // The base plays the default branch: what would be trusted at head, against what is at the base.
      diff.trust = diffTrustTrees(base.fleet.tree, head.fleet.tree);
      printFleetDiff(diff, opts.format, opts.color, { base: base.commit, head: head.commit, baseName: opts.base });
      process.exitCode = diffExitCode(diff, !!opts.exitCode);
    });
}
