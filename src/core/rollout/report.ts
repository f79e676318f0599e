/**
 * A rollout as people read it: the check run, the merged pull request's comment, FLEET.md and
 * the dashboard issue all print this markdown. Hosts that need a look come first; hosts that are
 * done are counted per wave, so 1,000 hosts stay far inside GitHub's 65,536-character bodies.
 */
import { codeCell, inline, plural } from '../report/common.js';
import type { RolloutView } from './state.js';
import { STATE_LABEL, type HostStateName } from './state.js';

/** Host rows at most; the rest are counted. */
export const HOST_ROWS = 100;

/**
 * Text a host or a person wrote (a drift path, a tool version, a reason, a login), as inert
 * inline markdown: a host with a stolen key can report anything, and none of it may ping
 * someone, link, load an image or break a table.
 */
const cell = inline;
const short = (sha: string) => `\`${sha.slice(0, 7)}\``;

const ICON: Partial<Record<HostStateName, string>> = { SUCCESS: '✅', FAILED: '❌', TIMED_OUT: '⏰', BLOCKED: '⛔', PARTIAL: '⚠️', RUNNING: '🔄', VALIDATING_POST: '🔎', QUEUED: '⏳', SKIPPED: '⏭️' };

/** What the rollout is doing, in one line with its phase first. */
export function rolloutHeadline(view: RolloutView): string {
  const m = view.manifest;
  const phase = { running: 'running', halted: '**halted**', complete: 'complete', blocked: '**blocked**' }[m.phase];
  return `Rollout \`${m.id}\` of ${short(m.target.commit)} is ${phase}: ${m.phase === 'running' ? view.line : view.counts}`;
}

const SIGNATURE_WORDS = { ssh: 'signed (SSH)', 'web-flow': "signed by GitHub's web-flow key", none: 'not signed', untrusted: 'signed by an untrusted key' } as const;

export function rolloutMarkdown(view: RolloutView, options: { heading?: string; commands?: boolean } = {}): string {
  const m = view.manifest;
  const out: string[] = [];
  out.push(`${options.heading ?? '##'} Rollout \`${m.id}\``, '');
  out.push(rolloutHeadline(view), '');
  out.push(
    `Target ${short(m.target.commit)} on ${codeCell(m.target.branch)} (${SIGNATURE_WORDS[m.target.signature.kind]}${m.target.signature.kind === 'ssh' || m.target.signature.kind === 'untrusted' ? `: ${cell(m.target.signature.detail)}` : ''}${m.target.required ? '; signed targets required' : ''})` +
      `${m.previous ? ` · previous ${short(m.previous)}` : ''}${m.supersedes ? ` · supersedes \`${m.supersedes}\`` : ''} · manifest #${m.sequence}, updated ${m.updatedAt}`,
    '',
  );
  if (m.reasons.length > 0) {
    out.push(m.phase === 'blocked' ? '**Blocked:**' : '**Halted:**', '');
    for (const r of m.reasons.slice(0, HOST_ROWS)) out.push(`- ${r.host ? `**${cell(r.host)}**: ` : ''}${cell(r.reason)}`);
    if (m.reasons.length > HOST_ROWS) out.push(`- … and ${m.reasons.length - HOST_ROWS} more`);
    out.push('');
  }
  if (m.waves.length > 0) {
    out.push('| Wave | Hosts | Done | Failed | Opened | Deadline |', '|---|---|---|---|---|---|');
    for (const w of view.waves) {
      const wave = m.waves[w.number - 1]!;
      out.push(`| ${w.number}${w.number === m.wave && m.phase === 'running' ? ' (open)' : ''} | ${w.hosts} | ${w.done} | ${w.failed} | ${wave.openedAt ?? '—'} | ${wave.deadline ?? '—'} |`);
    }
    out.push('');
  }
  const affected = view.states.filter((s) => s.wave !== null);
  const attention = affected.filter((s) => s.state !== 'SUCCESS' && s.state !== 'QUEUED');
  if (attention.length > 0) {
    out.push('| Host | Wave | State | Why |', '|---|---|---|---|');
    for (const s of attention.slice(0, HOST_ROWS)) out.push(`| ${cell(s.host)} | ${s.wave} | ${ICON[s.state] ?? ''} ${STATE_LABEL[s.state]} | ${cell(s.reasons.join('; ')) || '—'} |`);
    if (attention.length > HOST_ROWS) out.push(`| … | | | and ${attention.length - HOST_ROWS} more hosts |`);
    out.push('');
  }
  const counts = new Map<string, number>();
  for (const s of view.states) counts.set(STATE_LABEL[s.state], (counts.get(STATE_LABEL[s.state]) ?? 0) + 1);
  out.push(`Hosts: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}${view.states.some((s) => s.state === 'UNCHANGED') ? ' (unchanged hosts move to the target without work)' : ''}.`, '');
  if (options.commands && (m.phase === 'running' || m.phase === 'halted')) {
    out.push('Commands (people with write access, in a comment here or on the merged pull request): `/dotfleet rollout halt`, `/dotfleet rollout resume`, `/dotfleet rollout retry HOST`, `/dotfleet rollout skip HOST`.', '');
  }
  const log = m.log.slice(-8);
  out.push('<details><summary>History</summary>', '', ...log.map((l) => `- ${l.at} · ${cell(l.by === 'app' ? 'dotfleet' : `@${l.by}`)} · ${cell(l.action)}`), m.log.length > log.length ? `- (${plural(m.log.length - log.length, 'earlier entry', 'earlier entries')} in \`rollout/current.json\`'s history)` : '', '</details>', '');
  return out.filter((l, i, a) => !(l === '' && a[i - 1] === '')).join('\n');
}

/** A dashboard checkbox's command, in a marker GitHub does not render: `<!-- dotfleet:rollout retry heron -->`. */
const BOX = /^- \[([ xX])\] <!-- dotfleet:rollout (halt|resume|(?:retry|skip) [A-Za-z0-9][A-Za-z0-9._-]{0,62}) -->/gm;
const NEEDS_HAND = new Set(['FAILED', 'TIMED_OUT', 'PARTIAL', 'BLOCKED']);

/**
 * The commands as checkboxes for the Fleet dashboard issue (as Renovate's Dependency Dashboard
 * offers its actions): halt while running, resume while halted, retry and skip for each host
 * that needs a hand. Ticking one is the same as commenting the command (write access checked).
 */
export function rolloutCheckboxes(view: RolloutView): string {
  const m = view.manifest;
  if (m.phase !== 'running' && m.phase !== 'halted') return '';
  const box = (command: string, words: string) => `- [ ] <!-- dotfleet:rollout ${command} --> ${words}`;
  const out = [m.phase === 'running' ? box('halt', 'Halt the rollout') : box('resume', 'Resume the rollout')];
  for (const s of view.states.filter((x) => NEEDS_HAND.has(x.state)).slice(0, HOST_ROWS)) {
    out.push(box(`retry ${s.host}`, `Retry **${cell(s.host)}** (${STATE_LABEL[s.state]})`), box(`skip ${s.host}`, `Skip **${cell(s.host)}**`));
  }
  return ['Tick a box to act (people with write access; the box clears when done):', '', ...out, ''].join('\n');
}

/** The commands whose boxes are ticked in `after` and were not in `before` (`/dotfleet rollout …` text). */
export function tickedCommands(before: string, after: string): string[] {
  const ticked = (text: string) => new Set([...text.matchAll(BOX)].filter((x) => x[1] !== ' ').map((x) => x[2]!));
  const was = ticked(before);
  return [...ticked(after)].filter((c) => !was.has(c)).map((c) => `/dotfleet rollout ${c}`);
}
