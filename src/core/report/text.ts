/** The fleet diff for a terminal, `git diff`-like; colour only when asked (the CLI asks on a TTY). */
export { ansi, type Paint } from './paint.js';
import type { Change } from '../diff.js';
import type { FleetDiff } from '../fleet-diff.js';
import { ansi, type Paint } from './paint.js';
import { trustHeadline, trustText } from './trust.js';
import { visible } from '../visible.js';
import { changeLine, counts, describeFolded, representedNote, findingLine, foldByHost, headline, plural, secretChangeLine, STATUS_LABEL } from './common.js';

const plain: Paint = { bold: (s) => s, red: (s) => s, green: (s) => s, cyan: (s) => s, dim: (s) => s };

/** A patch for a terminal: its lines' control characters shown, never obeyed (tabs stay). */
export function patchText(patch: string, paint: Paint): string {
  return patch
    .split('\n')
    .map((line) => {
      const l = visible(line, '\t');
      return l.startsWith('@@') ? paint.cyan(l) : l.startsWith('+') ? paint.green(l) : l.startsWith('-') ? paint.red(l) : l;
    })
    .join('\n');
}

export function changesText(changes: Change[], paint: Paint = plain): string {
  const out: string[] = [];
  for (const c of changes) {
    out.push(paint.bold(visible(changeLine(c))));
    if (c.patch) out.push(patchText(c.patch, paint));
  }
  return out.join('\n');
}

/** `base` names what trust changes are counted against (the --base revision). */
export function fleetDiffText(diff: FleetDiff, paint: Paint = plain, base = 'the base'): string {
  const out: string[] = [paint.bold(headline(diff) + trustHeadline(diff.trust)), ''];
  const width = Math.max(4, ...diff.hosts.map((h) => h.host.length));
  const mwidth = Math.max(6, ...diff.hosts.map((h) => h.machine.length));
  out.push(paint.dim(`${'HOST'.padEnd(width)}  ${'PRESET'.padEnd(mwidth)}  WAVE  A  R  M  P  S  STATUS`));
  for (const h of diff.hosts) {
    const c = counts(h).map((n) => n.padEnd(2)).join(' ');
    out.push(`${h.host.padEnd(width)}  ${h.machine.padEnd(mwidth)}  ${String(h.wave).padEnd(4)}  ${c} ${STATUS_LABEL[h.status]}`);
  }
  const trust = trustText(diff.trust, paint, base);
  if (trust.length > 0) out.push('', ...trust);
  if (diff.secrets && (diff.secrets.changes.length > 0 || (diff.secrets.findings ?? []).length > 0)) {
    out.push('', paint.bold('── secrets (values never shown)'));
    for (const c of diff.secrets.changes) out.push(visible(secretChangeLine(c)));
    for (const f of diff.secrets.findings ?? []) out.push((f.severity === 'error' ? paint.red : (s: string) => s)(visible(findingLine(f), '\n')));
  }
  diff.groups.forEach((g, i) => {
    out.push('', paint.bold(`── group ${i + 1}: ${plural(g.hosts.length, 'host')} (${g.hosts.join(', ')})`));
    if (!g.exact) out.push(paint.dim(representedNote(g, 'dotfleet diff')));
    out.push(changesText(g.changes, paint));
  });
  // An error shared by several hosts (a template every host renders) is printed once.
  const errors = foldByHost([...diff.sourceErrors, ...diff.hosts.flatMap((h) => h.errors)]);
  if (errors.length > 0) {
    out.push('', paint.bold(paint.red(`${plural(errors.length, 'error')}:`)));
    for (const { e, hosts } of errors) out.push(paint.red(describeFolded(e, hosts)));
  }
  return out.join('\n') + '\n';
}
