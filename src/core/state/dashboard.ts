/**
 * The "Fleet dashboard" issue: the status table, the hosts that have gone quiet and links to
 * their history. Times are absolute, so the body changes only when the fleet does (or a host
 * crosses the quiet line) and the app edits the issue only then.
 */
import { DotfleetError } from '../errors.js';
import type { FleetState } from './fleet-state.js';
import { shortTime, statusTableMarkdown, type FleetStatus } from './status.js';

export const DASHBOARD_MARKER = '<!-- dotfleet:dashboard -->';
export const DASHBOARD_TITLE = 'Fleet dashboard';

/** "30m", "24h", "7d" → seconds. */
export function parseDuration(text: string, field = 'quiet_after'): number {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new DotfleetError('schema', `${field}: "${text}" is not a duration`, { hint: 'write a number and a unit: 45m, 24h, 7d' });
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export interface DashboardInput {
  state: FleetState;
  status: FleetStatus;
  /** Hosts of the inventory. */
  inventory: string[];
  now: Date;
  quietAfterSeconds: number;
  /** `https://github.com/o/r` */
  repoUrl: string;
  stateBranch: string;
}

export interface QuietHost {
  host: string;
  lastSeen?: string;
}

export function quietHosts(state: FleetState, inventory: string[], now: Date, quietAfterSeconds: number): QuietHost[] {
  const limit = now.getTime() - quietAfterSeconds * 1000;
  return inventory
    .filter((h) => {
      const r = state.hosts[h];
      return !r || Date.parse(r.receivedAt) < limit;
    })
    .map((h) => ({ host: h, lastSeen: state.hosts[h]?.receivedAt }));
}

export function dashboardBody(input: DashboardInput): string {
  const branch = encodeURI(input.stateBranch);
  const history = (host: string) => `${input.repoUrl}/commits/${branch}/attestations/${host}`;
  const quiet = quietHosts(input.state, input.inventory, input.now, input.quietAfterSeconds);
  const hours = input.quietAfterSeconds / 3600;
  const window = Number.isInteger(hours) ? `${hours} h` : `${Math.round(input.quietAfterSeconds / 60)} min`;
  const out = [
    DASHBOARD_MARKER,
    `**${input.status.line}**`,
    '',
    `Target: ${input.state.target ? `\`${input.state.target.commit.slice(0, 7)}\` (${input.state.target.branch})` : 'unknown'} · from [\`FLEET.md\`](${input.repoUrl}/blob/${branch}/FLEET.md) on \`${input.stateBranch}\``,
    '',
    statusTableMarkdown(input.status, { historyUrl: history }),
    '',
    `### Quiet hosts (no attestation within ${window})`,
    '',
  ];
  if (quiet.length === 0) out.push('None: every host has reported.');
  for (const q of quiet) out.push(q.lastSeen ? `- **${q.host}**: last seen ${shortTime(q.lastSeen)} · [history](${history(q.host)})` : `- **${q.host}**: never attested`);
  out.push('', '<sub>Kept up to date by dotfleet; edits here are overwritten.</sub>', '');
  return out.join('\n');
}
