import type { Command } from 'commander';
import { diffHosts } from '../../core/fleet-diff.js';
import { getHost } from '../../core/fleet.js';
import { changesText } from '../../core/report/text.js';
import { changeLine } from '../../core/report/common.js';
import { fenceFor } from '../../core/report/markdown.js';
import { EXIT, openFleet, paintFor, write, type ColorChoice, colorOption } from '../io.js';
import { MANIFEST_PATH, parseManifest, type Manifest } from '../../core/rollout/manifest.js';
import { expectedCommit } from '../../core/rollout/state.js';
import { DotfleetError, isDotfleetError } from '../../core/errors.js';
import { FLEET_JSON, parseFleetState, type FleetState } from '../../core/state/fleet-state.js';
import { fleetStatus, shortTime, statusTableText } from '../../core/state/status.js';
import { runGit } from '../../host/git.js';
import { parseFormat, type Format } from './diff.js';
import { fleetSshCommands } from './fleet-ssh.js';

interface StateOptions {
  repo: string;
  ref?: string;
  branch?: string;
  json?: boolean;
}

/** fleet.json from the state branch of a local clone (the branch itself or origin's copy). */
async function readState(opts: StateOptions): Promise<{ state: FleetState; inventory: string[]; ref: string; branch: string; manifest?: Manifest }> {
  const { fleet: f, root } = await openFleet(opts.repo, opts.ref);
  const branch = opts.branch ?? f.settings.state_branch;
  for (const ref of [`refs/heads/${branch}`, `refs/remotes/origin/${branch}`]) {
    const r = await runGit(root, ['cat-file', 'blob', `${ref}:${FLEET_JSON}`]);
    if (r.code !== 0) continue;
    // The rollout's manifest, when there is one, sets each host's target (as on FLEET.md).
    const m = await runGit(root, ['cat-file', 'blob', `${ref}:${MANIFEST_PATH}`]);
    const manifest = m.code === 0 ? parseManifest(m.stdout, `${MANIFEST_PATH} on ${ref}`) : undefined;
    return { state: parseFleetState(r.stdout, `${FLEET_JSON} on ${ref}`), inventory: [...f.hosts.keys()], ref, branch, manifest };
  }
  throw new DotfleetError('usage', `no ${FLEET_JSON} on the state branch "${branch}" in ${root}`, {
    hint: `fetch it first (git fetch origin ${branch}); the app creates it when the first attestation arrives`,
  });
}

export function fleetCommand(program: Command): void {
  const fleet = program.command('fleet').description('commands over the whole fleet (alone: the hosts and when each last reported)');
  fleet
    .command('hosts', { isDefault: true })
    .description('the hosts of the inventory and when each last reported (from the state branch)')
    // `dotfleet fleet bogus` lands here as an argument: name it, and what fleet offers.
    .argument('[command]')
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the inventory at this revision (default: the working tree)')
    .option('--branch <name>', 'the state branch (default: state_branch in the settings)')
    .option('--json', 'print JSON')
    .action(async (unknown: string | undefined, opts: StateOptions) => {
      if (unknown !== undefined) {
        throw new DotfleetError('usage', `"${unknown}" is not a fleet command`, { hint: `dotfleet fleet has: ${fleet.commands.map((c) => c.name()).join(', ')} (dotfleet fleet --help)` });
      }
      const { fleet: f } = await openFleet(opts.repo, opts.ref);
      let state: FleetState | undefined;
      try {
        state = (await readState(opts)).state;
      } catch (e) {
        if (!isDotfleetError(e)) throw e;
        process.stderr.write(`dotfleet: ${e.message}: last seen is unknown\n`);
      }
      const rows = [...f.hosts.values()].map((h) => ({ host: h.name, machine: h.machine, platform: h.platform, wave: h.wave, lastSeen: state?.hosts[h.name]?.receivedAt ?? null, status: state?.hosts[h.name]?.status ?? null }));
      if (opts.json) return write(JSON.stringify({ version: 1, hosts: rows }, null, 2));
      const cells = [['HOST', 'MACHINE', 'PLATFORM', 'WAVE', 'LAST SEEN'], ...rows.map((r) => [r.host, r.machine, r.platform, String(r.wave), r.lastSeen ? `${shortTime(r.lastSeen)}${r.status === 'SUCCESS' ? '' : ` · ${r.status}`}` : state ? 'never' : '?'])];
      const widths = cells[0]!.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
      write(cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ')).join('\n'));
    });
  fleet
    .command('status')
    .description('the fleet status table (Host, Git SHA, Policy, Tools OK, Drift, Verified, Last seen) from the state branch')
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the inventory at this revision (default: the working tree)')
    .option('--branch <name>', 'the state branch (default: state_branch in the settings)')
    .option('--json', 'print JSON')
    .option('--exit-code', 'exit 1 unless every host is aligned')
    .action(async (opts: StateOptions & { exitCode?: boolean }) => {
      const { state, inventory, ref, manifest } = await readState(opts);
      const status = fleetStatus(state, inventory, manifest && ((h) => expectedCommit(manifest, h)));
      if (opts.json) {
        write(JSON.stringify({ version: 1, line: status.line, aligned: status.aligned, total: status.total, target: state.target, hosts: status.rows.map((r) => ({ host: r.host, aligned: r.aligned, reasons: r.reasons, retired: r.retired, ...(r.record ?? {}) })) }, null, 2));
      } else {
        const rollout = manifest ? ` · rollout ${manifest.id} of ${manifest.target.commit.slice(0, 12)}: ${manifest.phase}, wave ${manifest.wave}/${manifest.waves.length} (each host's target is the rollout's)` : '';
        write(`${status.line}\ntarget ${state.target ? `${state.target.commit.slice(0, 12)} (${state.target.branch})` : 'unknown'}${rollout} · from ${ref}\n\n${statusTableText(status)}`);
      }
      process.exitCode = opts.exitCode && status.aligned < status.total ? EXIT.differences : EXIT.ok;
    });
  fleet
    .command('diff')
    .description("compare two hosts' rendered configuration at one revision")
    .argument('<host-a>')
    .argument('<host-b>')
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the fleet at this revision (default: the working tree)')
    .option('--format <format>', 'text, markdown or json', parseFormat, 'text' as Format)
    .option('--exit-code', 'exit 1 when the two hosts differ')
    .addOption(colorOption())
    .action(async (a: string, b: string, opts: { repo: string; ref?: string; format: Format; exitCode?: boolean; color: ColorChoice }) => {
      const { fleet: f, commit } = await openFleet(opts.repo, opts.ref);
      const { changes, errors, failed } = diffHosts(f, getHost(f, a), getHost(f, b));
      const cannot = `cannot compare ${a} and ${b}: ${failed.join(' and ')} ${failed.length === 1 ? 'fails' : 'fail'} to render`;
      if (opts.format === 'json') {
        write(JSON.stringify({ version: 1, commit, from: a, to: b, failed, changes: failed.length > 0 ? null : changes, errors: errors.map((e) => e.toJSON()) }, null, 2));
      } else if (failed.length > 0) {
        write(opts.format === 'markdown' ? `### ${a} → ${b}\n\n${cannot}` : cannot);
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
  fleetSshCommands(fleet);
}
