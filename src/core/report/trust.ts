/**
 * Trust changes (src/core/trust.ts) for people: the pull-request comment and check run, and
 * `dotfleet diff` in every format, say the same thing — who may sign rollout manifests and target
 * commits for the whole fleet and attestations for each host once the change is merged, the
 * inputs that decide trust, the allowed_signers lines, and the head's allowed_signers lint.
 * Principals, options and file names come from the change (maybe a fork's): markdown shows them
 * inert, and both show control characters as escapes.
 */
import { trustChangeCount, trustChanged, type HostTrustChange, type TrustReport } from '../trust.js';
import { codeSpan, inline, plural } from './common.js';
import type { Paint } from './paint.js';
import { visible } from '../visible.js';

/** Is there anything to show (a change, or lint of the head's allowed_signers)? */
export const trustShown = (t: TrustReport | undefined): t is TrustReport => t !== undefined && (trustChanged(t) || t.problems.length > 0);

/** "· 2 trust changes" for a headline, or nothing. */
export const trustHeadline = (t: TrustReport | undefined): string => (t && trustChanged(t) ? ` · ${plural(trustChangeCount(t), 'trust change')}` : '');

interface Say {
  /** Untrusted text, shown as exactly those characters. */
  quote(s: string): string;
  /** Untrusted text in running prose (options, lint messages). */
  cell(s: string): string;
  strong(s: string): string;
}

const ROLE = {
  'rollout-manifests': 'rollout manifests (what every host follows)',
  'target-commits': 'target commits (git verify-commit, require_signed_target)',
} as const;

function lines(t: TrustReport, say: Say): { hosts: string[]; inputs: string[]; changes: string[]; problems: string[] } {
  const signer = (s: { keyType: string; key: string }) => `${s.keyType} ${say.quote(s.key)}`;
  const keys = (c: Pick<HostTrustChange, 'added' | 'removed' | 'changed'>, what: string[]) => {
    for (const s of c.added) what.push(`${say.strong('may now sign')}: ${signer(s)} ${say.cell(s.options)}`);
    for (const s of c.removed) what.push(`no longer: ${signer(s)}`);
    for (const s of c.changed) what.push(`${signer(s)}: ${say.cell(s.before)} → ${say.cell(s.after)}`);
    return what.join('; ');
  };
  const hosts = t.hosts.map((h) => {
    const what: string[] = [];
    if (h.host_change === 'added') what.push('a new host');
    if (h.host_change === 'removed') what.push('leaves the inventory: its keys can no longer attest');
    if (h.principal) what.push(`signs as ${say.quote(h.principal.after)} instead of ${say.quote(h.principal.before)}`);
    return `${say.strong(say.cell(h.host))}: ${keys(h, what)}`;
  });
  // The fleet-wide roles come first: a key that may sign them speaks for every host.
  const roles = t.roles.map((r) => {
    const what: string[] = [];
    if (r.principal) what.push(`signed as ${say.quote(r.principal.after)} instead of ${say.quote(r.principal.before)} (settings rollout.signer)`);
    return `${say.strong(ROLE[r.role])}: ${keys(r, what)}`;
  });
  const changes = t.changes.map(
    (c) => `${say.strong(c.change)} ${say.quote(c.principals)}: ${c.keyType} ${say.quote(c.key)} ${c.change === 'changed' ? `${say.cell(c.before!)} → ${say.cell(c.after!)}` : say.cell((c.after ?? c.before)!)}`,
  );
  const problems = t.problems.map((p) => `${p.severity}: line ${p.line}: ${say.cell(p.message)}`);
  return { hosts: [...roles, ...hosts], inputs: t.inputs, changes, problems };
}

const linesHeading = (t: TrustReport) => `allowed_signers lines${t.hosts.length > 0 || t.roles.length > 0 ? '' : ' (no host of the inventory is affected now; a host that later takes such a name would be)'}:`;

/** The markdown section; `footer` is said after it when trust changes (the check run's conclusion). Empty when there is nothing to show. */
export function trustMarkdown(t: TrustReport | undefined, footer?: string): string {
  if (!trustShown(t)) return '';
  // Control characters are shown (\u001b), not left for a browser to hide.
  const l = lines(t, { quote: codeSpan, cell: inline, strong: (s) => `**${s}**` });
  const out = ['#### ⚠️ Trust changes — need review', '', '_Who may sign attestations for which host, and rollout manifests and target commits for the whole fleet, once this is merged, against the default branch now; nothing here is trusted until it is merged._', ''];
  out.push(...l.hosts.map((s) => `- ${s}`), ...l.inputs.map((s) => `- ${s}`));
  if (l.changes.length > 0) {
    const items = l.changes.map((s) => `- ${s}`);
    if (items.length <= 20) out.push('', linesHeading(t), '', ...items);
    else out.push('', '<details>', `<summary>allowed_signers lines (${items.length})</summary>`, '', ...items, '', '</details>');
  }
  out.push(...l.problems.map((s) => `- ${s}`));
  if (footer && trustChanged(t)) out.push('', footer);
  return out.join('\n');
}

/** The section for a terminal, as lines; none when there is nothing to show. `base` names what the change is compared against. */
export function trustText(t: TrustReport | undefined, paint: Paint, base: string): string[] {
  if (!trustShown(t)) return [];
  // The inputs are markdown whose untrusted parts are code spans (backticks inside them were made quotes).
  const l = lines(t, { quote: (s) => `"${visible(s)}"`, cell: visible, strong: paint.bold });
  const out = [paint.bold(paint.red(`── trust changes (need review): who may sign attestations, rollout manifests and target commits once merged, against ${base}`))];
  out.push(...l.hosts.map((s) => `  ${s}`), ...l.inputs.map((s) => `  ${visible(s)}`));
  if (l.changes.length > 0) out.push(`  ${linesHeading(t)}`, ...l.changes.map((s) => `    ${s}`));
  out.push(...l.problems.map((s) => `  ${s}`));
  return out;
}
