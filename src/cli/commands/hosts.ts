import type { Command } from 'commander';
import { openFleet, write } from '../io.js';

export function hostsCommand(program: Command): void {
  program
    .command('hosts')
    .description('list the hosts of the fleet: name, preset, platform, wave')
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the fleet at this revision (default: the working tree)')
    .option('--json', 'print JSON')
    .action(async (opts: { repo: string; ref?: string; json?: boolean }) => {
      const { fleet } = await openFleet(opts.repo, opts.ref);
      const hosts = [...fleet.hosts.values()];
      if (opts.json) {
        write(JSON.stringify(hosts.map((h) => ({ ...h, error: fleet.hostErrors.get(h.name)?.toJSON() })), null, 2));
        return;
      }
      const rows = [['HOST', 'PRESET', 'PLATFORM', 'WAVE', 'DESCRIPTION'], ...hosts.map((h) => [h.name, h.machine + (fleet.hostErrors.has(h.name) ? ' (unknown preset!)' : ''), h.platform, String(h.wave), h.description ?? ''])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      write(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n'));
    });
}
