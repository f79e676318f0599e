/**
 * Fleet status: one row per host (Host, Git SHA, Policy, Tools OK, Drift, Verified, Last seen)
 * and the line `FLEET STATUS: n/m aligned; drift on …`. A host is aligned when its latest
 * attestation is on the target commit, ran the target's policy, has its tools, no failing host
 * test, no drift, a render the app verified, and status SUCCESS. FLEET.md, the dashboard issue and
 * `dotfleet fleet status` all print these rows.
 */
import { codeCell, inline, plural } from '../report/common.js';
import type { FleetState, HostRecord } from './fleet-state.js';

export interface StatusRow {
  host: string;
  record?: HostRecord;
  onTarget: boolean;
  policyMatches: boolean;
  aligned: boolean;
  /** Why not aligned, in words ("behind", "drift", "never attested"). */
  reasons: string[];
  /** In the state but no longer in the inventory. */
  retired: boolean;
}

export interface FleetStatus {
  rows: StatusRow[];
  aligned: number;
  total: number;
  drift: string[];
  /** `FLEET STATUS: 9/12 aligned; drift on heron, osprey` */
  line: string;
}

const RENDER_WORDS: Record<HostRecord['render'], string> = {
  match: 'yes',
  mismatch: 'render differs',
  'unknown-commit': 'unknown commit',
  'render-error': 'render error',
};

function reasonsFor(r: HostRecord | undefined, onTarget: boolean, policyMatches: boolean): string[] {
  if (!r) return ['never attested'];
  const out: string[] = [];
  if (!onTarget) out.push('not on target');
  if (!policyMatches) out.push('policy differs');
  if (!r.toolsOk) out.push('tools');
  if (r.testsFailed > 0) out.push(r.testsFailed === 1 ? '1 test failing' : `${r.testsFailed} tests failing`);
  if (r.drift.length > 0) out.push('drift');
  if (r.render !== 'match') out.push(RENDER_WORDS[r.render]);
  if (r.status !== 'SUCCESS') out.push(r.status);
  return out;
}

/** Hosts the status line names before it counts the rest ("drift on a, b, … and 40 more"). */
const DRIFT_NAMED = 10;

/**
 * Rows for the inventory's hosts (in inventory order), then hosts only the state still knows.
 * `targetOf` gives a host's own target when a rollout sets one (expectedCommit); otherwise, and
 * for hosts it does not name, the target is the state's (the default branch's head).
 */
export function fleetStatus(state: FleetState, inventory: string[], targetOf?: (host: string) => string | undefined): FleetStatus {
  const rowFor = (host: string, retired: boolean): StatusRow => {
    const record = state.hosts[host];
    const target = targetOf?.(host) ?? state.target?.commit;
    const onTarget = record !== undefined && target !== undefined && record.appliedCommit === target;
    const expected = state.policy[host];
    const policyMatches = record !== undefined && expected !== undefined && record.policyHash === expected;
    const reasons = retired ? ['not in the inventory'] : reasonsFor(record, onTarget, policyMatches);
    return { host, record, onTarget, policyMatches, aligned: reasons.length === 0, reasons, retired };
  };
  const known = new Set(inventory);
  const rows = [...inventory.map((h) => rowFor(h, false)), ...Object.keys(state.hosts).sort().filter((h) => !known.has(h)).map((h) => rowFor(h, true))];
  const aligned = rows.filter((r) => r.aligned).length;
  const drift = rows.filter((r) => !r.retired && (r.record?.drift.length ?? 0) > 0).map((r) => r.host);
  const named = drift.length > DRIFT_NAMED ? `${drift.slice(0, DRIFT_NAMED).join(', ')} and ${drift.length - DRIFT_NAMED} more` : drift.join(', ');
  const line = `FLEET STATUS: ${aligned}/${inventory.length} aligned; ${drift.length > 0 ? `drift on ${named}` : 'no drift'}`;
  return { rows, aligned, total: inventory.length, drift, line };
}

/** "2026-11-22 10:04 UTC" */
export function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/:\d{2}(\.\d+)?Z$/, ' UTC');
}

export interface StatusCells {
  host: string;
  sha: string;
  policy: string;
  tools: string;
  drift: string;
  verified: string;
  lastSeen: string;
}

export const STATUS_HEADERS: StatusCells = { host: 'Host', sha: 'Git SHA', policy: 'Policy', tools: 'Tools OK', drift: 'Drift', verified: 'Verified', lastSeen: 'Last seen' };

/** The cells of a row, as plain words (the markdown and text tables both use them). */
export function statusCells(row: StatusRow): StatusCells {
  const r = row.record;
  if (!r) return { host: row.host, sha: '—', policy: '—', tools: '—', drift: '—', verified: '—', lastSeen: 'never' };
  return {
    host: row.host,
    sha: r.appliedCommit.slice(0, 7) + (row.onTarget ? '' : ' (not target)'),
    policy: row.policyMatches ? 'matches' : 'differs',
    tools: r.toolsOk ? 'yes' : `no: ${r.toolsFailing.join(', ')}`,
    drift: r.drift.length === 0 ? 'none' : plural(r.drift.length, 'path'),
    verified: RENDER_WORDS[r.render],
    lastSeen: shortTime(r.receivedAt) + (r.status === 'SUCCESS' ? '' : ` · ${r.status}`),
  };
}

/** Text a host reported (a tool version), as inert inline markdown that keeps the table whole. */
const cell = inline;

export interface MarkdownStatusOptions {
  /** Link each host to its history (`https://github.com/o/r/commits/dotfleet/state/attestations/<host>`). */
  historyUrl?: (host: string) => string;
}

export function statusTableMarkdown(status: FleetStatus, options: MarkdownStatusOptions = {}): string {
  const h = STATUS_HEADERS;
  const out = [`| ${h.host} | ${h.sha} | ${h.policy} | ${h.tools} | ${h.drift} | ${h.verified} | ${h.lastSeen} |`, '|---|---|---|---|---|---|---|'];
  for (const row of status.rows) {
    const c = statusCells(row);
    const name = options.historyUrl && row.record ? `[${cell(c.host)}](${options.historyUrl(row.host)})` : cell(c.host);
    const mark = row.aligned ? '✅ ' : row.retired ? '' : '⚠️ ';
    const sha = c.sha === '—' ? '—' : `\`${c.sha.slice(0, 7)}\`${c.sha.slice(7)}`;
    out.push(`| ${mark}${name}${row.retired ? ' (retired)' : ''} | ${sha} | ${c.policy} | ${cell(c.tools)} | ${c.drift} | ${c.verified} | ${c.lastSeen} |`);
  }
  return out.join('\n');
}

/**
 * The line above the table: the target, or, under a rollout (whose hosts each have their own
 * target), where the default branch is and that the rollout sets the targets.
 */
export function targetLine(state: FleetState, rollout: boolean): string {
  if (!state.target) return 'Target: unknown';
  const at = `\`${state.target.commit.slice(0, 7)}\``;
  return rollout ? `${codeCell(state.target.branch)} is at ${at}; each host's target is the rollout's (below)` : `Target: ${at} (${cell(state.target.branch)})`;
}

/** FLEET.md on the state branch. */
export function fleetMarkdown(state: FleetState, status: FleetStatus, rollout?: string): string {
  const lines = ['# Fleet status', '', status.line, '', `${targetLine(state, rollout !== undefined)} · updated ${state.updatedAt ? shortTime(state.updatedAt) : 'never'}`, '', ...(rollout ? [rollout, ''] : []), statusTableMarkdown(status), ''];
  const notAligned = status.rows.filter((r) => !r.aligned && !r.retired);
  if (notAligned.length > 0) {
    lines.push('Not aligned:', '');
    for (const r of notAligned) lines.push(`- ${r.host}: ${r.reasons.join(', ')}`);
    lines.push('');
  }
  lines.push('Each host\'s attestations are under `attestations/<host>/`, each with its SSH signature (`.json.sig`).', '');
  return lines.join('\n');
}

/** The same table in plain text, columns padded (for `dotfleet fleet status`). */
export function statusTableText(status: FleetStatus): string {
  const rows = [STATUS_HEADERS, ...status.rows.map((r) => ({ ...statusCells(r), host: (r.aligned ? '✓ ' : r.retired ? '- ' : '✗ ') + r.host }))];
  rows[0] = { ...STATUS_HEADERS, host: '  Host' };
  const keys = Object.keys(STATUS_HEADERS) as (keyof StatusCells)[];
  const widths = keys.map((k) => Math.max(...rows.map((r) => [...r[k]].length)));
  return rows.map((r) => keys.map((k, i) => (i === keys.length - 1 ? r[k] : r[k] + ' '.repeat(widths[i]! - [...r[k]].length))).join('  ')).join('\n');
}
