/**
 * The "Fleet dashboard" issue: the status table, the hosts that have gone quiet and links to
 * their history. Times are absolute, so the body changes only when the fleet does (or a host
 * crosses the quiet line) and the app edits the issue only then.
 */
import { DotfleetError } from '../errors.js';
import type { FleetState } from './fleet-state.js';
import { shortTime, statusTableMarkdown, targetLine, type FleetStatus } from './status.js';

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
  /** The current rollout, as markdown (rollout/report.ts). */
  rollout?: string;
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

/** GitHub's limit on an issue body, in characters. */
export const ISSUE_BODY_LIMIT = 65_536;

/**
 * The issue body: the whole table when it fits in GitHub's issue limit; otherwise a summary that
 * always fits (the hosts that are not aligned first, as many as fit, then counts), with the full
 * table one link away in FLEET.md.
 */
export function dashboardBody(input: DashboardInput, limit = ISSUE_BODY_LIMIT): string {
  const branch = encodeURI(input.stateBranch);
  const history = (host: string) => `${input.repoUrl}/commits/${branch}/attestations/${host}`;
  const quiet = quietHosts(input.state, input.inventory, input.now, input.quietAfterSeconds);
  const hours = input.quietAfterSeconds / 3600;
  const window = Number.isInteger(hours) ? `${hours} h` : `${Math.round(input.quietAfterSeconds / 60)} min`;
  const fleetMd = `${input.repoUrl}/blob/${branch}/FLEET.md`;
  const head = [
    DASHBOARD_MARKER,
    `**${input.status.line}**`,
    '',
    `${targetLine(input.state, input.rollout !== undefined)} · from [\`FLEET.md\`](${fleetMd}) on \`${input.stateBranch}\``,
    '',
    ...(input.rollout ? [input.rollout.replace(/^## /, '### '), ''] : []),
  ];
  const foot = ['', '<sub>Kept up to date by dotfleet; edits here are overwritten.</sub>', ''];
  const quietLine = (q: QuietHost) => (q.lastSeen ? `- **${q.host}**: last seen ${shortTime(q.lastSeen)} · [history](${history(q.host)})` : `- **${q.host}**: never attested`);
  const full = [...head, statusTableMarkdown(input.status, { historyUrl: history }), '', `### Quiet hosts (no attestation within ${window})`, '', ...(quiet.length === 0 ? ['None: every host has reported.'] : quiet.map(quietLine)), ...foot].join('\n');
  if (full.length <= limit) return full;

  // The summary: fill what is left, leaving room for the lines that say what was left out.
  const out = [...head];
  let room = limit - out.join('\n').length - foot.join('\n').length - 1_000;
  const take = (lines: string[]): number => {
    let n = 0;
    for (const l of lines) {
      if (l.length + 1 > room) break;
      out.push(l);
      room -= l.length + 1;
      n++;
    }
    return n;
  };
  const notAligned = input.status.rows.filter((r) => !r.aligned && !r.retired);
  out.push(`The fleet has ${input.status.total} hosts, too many for one issue: the full table is in [\`FLEET.md\`](${fleetMd}). ${input.status.aligned} aligned; the ${notAligned.length} that are not come first.`, '');
  room -= out.at(-2)!.length + 2;
  const table = statusTableMarkdown({ ...input.status, rows: notAligned }, { historyUrl: history }).split('\n');
  const shown = notAligned.length === 0 ? 0 : Math.max(0, take(table) - 2);
  if (shown < notAligned.length) out.push('', `…and ${notAligned.length - shown} more hosts that are not aligned: see FLEET.md.`);
  out.push('', `### Quiet hosts (no attestation within ${window})`, '');
  if (quiet.length === 0) out.push('None: every host has reported.');
  else {
    const listed = take(quiet.map(quietLine));
    if (listed < quiet.length) out.push(`…and ${quiet.length - listed} more quiet hosts.`);
  }
  out.push(...foot);
  return out.join('\n');
}
