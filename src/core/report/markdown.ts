/** The fleet diff as GitHub-flavoured Markdown: what a reviewer reads. */
import type { FleetDiff } from '../fleet-diff.js';
import { DotfleetError } from '../errors.js';
import { bytes, fitBlocks, fitLevels } from './budget.js';
import { trustHeadline, trustMarkdown } from './trust.js';
import { visible } from '../visible.js';
import { changeLine, counts, foldByHost, representedNote, headline, inline, plural, secretChangeLine, STATUS_LABEL } from './common.js';

/** A code fence longer than any run of backticks in `text`. */
export function fenceFor(text: string): string {
  let longest = 0;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  return '`'.repeat(Math.max(3, longest + 1));
}

function code(text: string): string {
  const ticks = fenceFor(text).length > 3 ? '``' : '`';
  return `${ticks}${visible(text, '\n').replace(/\n/g, ' ')}${ticks}`;
}

const escapeCell = inline;

export function errorLine(e: DotfleetError): string {
  const where = e.where();
  return `- ${e.host ? `**${e.host}** ` : ''}${where ? `${code(where)} ` : ''}— ${escapeCell(e.message)}${e.hint ? `<br>_${escapeCell(e.hint)}_` : ''}`;
}

export interface MarkdownOptions {
  title?: string;
  /** The most bytes the report may take (GitHub's job summary holds 1 MiB); default 1,000,000. */
  maxBytes?: number;
}

/** A job summary holds 1 MiB: leave room for what else a workflow writes there. */
export const SUMMARY_LIMIT = 1_000_000;

export function fleetDiffMarkdown(diff: FleetDiff, options: MarkdownOptions = {}): string {
  const out: string[] = [];
  out.push(`### ${options.title ?? 'dotfleet · fleet diff'}`, '', `**${headline(diff)}${trustHeadline(diff.trust)}**`, '');
  const shown = diff.hosts.filter((h) => h.status !== 'unchanged');
  const unchanged = diff.hosts.filter((h) => h.status === 'unchanged');
  if (shown.length > 0) {
    out.push('| Host | Preset | Wave | A | R | M | P | S | Status |', '|---|---|--:|--:|--:|--:|--:|--:|---|');
    for (const h of shown) {
      out.push(`| ${h.host} | ${h.machine} | ${h.wave} | ${counts(h).join(' | ')} | ${STATUS_LABEL[h.status]} |`);
    }
    out.push('');
  }
  if (unchanged.length > 0) out.push(`_Unchanged (${unchanged.length}): ${unchanged.map((h) => h.host).join(', ')}_`, '');

  const trust = trustMarkdown(diff.trust);
  if (trust) out.push(trust, '');
  if (diff.secrets && (diff.secrets.changes.length > 0 || (diff.secrets.findings ?? []).length > 0)) {
    out.push('#### Secrets', '', '_Values are never shown: a key is "changed" when its ciphertext is._', '');
    for (const c of diff.secrets.changes) out.push(`- ${escapeCell(secretChangeLine(c))}`);
    for (const f of diff.secrets.findings ?? []) out.push(`- **${f.severity}** ${code(f.file)} — ${escapeCell(f.message)}${f.hint ? `<br>_${escapeCell(f.hint)}_` : ''}`);
    out.push('');
  }

  // Each group at three levels of detail; the richest that fits in the byte budget is used.
  const groupLevels = diff.groups.map((g, i) => {
    const title = [`#### Group ${i + 1} · ${plural(g.hosts.length, 'host')}: ${g.hosts.map(code).join(', ')}`, ''];
    if (!g.exact) title.push(`_${escapeCell(representedNote(g, 'dotfleet diff'))}_`, '');
    const full = [...title, '<details>', `<summary>${plural(g.changes.length, 'change')}: ${g.changes.slice(0, 6).map((c) => escapeCell(changeLine(c))).join(', ')}${g.changes.length > 6 ? ', …' : ''}</summary>`, ''];
    for (const c of g.changes) {
      full.push(`**${escapeCell(changeLine(c))}**`, '');
      if (c.patch) {
        const fence = fenceFor(c.patch);
        full.push(`${fence}diff`, c.patch, fence, '');
      }
    }
    full.push('</details>', '');
    const lines = [...title, ...g.changes.map((c) => `- ${escapeCell(changeLine(c))}`), ''];
    const header = [...title, `_${plural(g.changes.length, 'change')}: \`dotfleet diff --host ${g.hosts[0]}\`_`, ''];
    return [header, lines, full].map((l) => l.join('\n') + '\n');
  });

  const errors = [...diff.sourceErrors, ...diff.hosts.flatMap((h) => h.errors)];
  const errorLines = foldByHost(errors).map(({ e, hosts }) => {
    const line = errorLine(new DotfleetError(e.code, e.message, { ...e.fields(), host: undefined }));
    return (hosts.length > 0 ? line.replace(/^- /, `- **${hosts.map(inline).join(', ')}** `) : line) + '\n';
  });

  const head = out.join('\n') + '\n';
  const room = (options.maxBytes ?? SUMMARY_LIMIT) - bytes(head) - 600;
  const errorFit = fitBlocks(errorLines, Math.max(0, Math.floor(room / 4)), bytes);
  const errorText = errorFit.kept.length > 0 ? `#### Render errors\n\n${errorFit.kept.join('')}${errorFit.dropped ? `- … ${plural(errorFit.dropped, 'more error')}: \`--format text\` lists them all\n` : ''}\n` : '';
  const groups = fitLevels(groupLevels, room - bytes(errorText), bytes);
  const detailed = groups.chosen.filter((g) => g.includes('<details>')).length;
  const note = groups.omitted > 0 || detailed < groups.chosen.length
    ? `> This report is cut to ${(options.maxBytes ?? SUMMARY_LIMIT).toLocaleString('en-US')} bytes (GitHub's job summary holds 1 MiB): ${groups.omitted > 0 ? `${plural(groups.omitted, 'group')} left out, ` : ''}${plural(groups.chosen.length - detailed, 'group')} without patches. \`dotfleet diff --format text\` shows everything.\n\n`
    : '';
  return head + groups.chosen.join('\n') + (groups.chosen.length ? '\n' : '') + errorText + note;
}
