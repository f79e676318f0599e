/** Pieces shared by the fleet-diff reports. */
import { DotfleetError } from '../errors.js';
import { CHANGE_LETTER, countByType, type Change } from '../diff.js';
import type { FleetDiff, HostDiff } from '../fleet-diff.js';
import { formatMode } from '../tree.js';
import type { SecretChange } from '../secrets/sops-diff.js';
import type { SecretFinding } from '../secrets/scope.js';
import { shortRecipient } from '../secrets/marker.js';
import { visible } from '../visible.js';

export function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "3 of 12 hosts change · 2 groups · 1 host fails to render" */
export function headline(diff: FleetDiff): string {
  const total = diff.hosts.length;
  const changing = diff.hosts.filter((h) => h.changes.length > 0).length;
  const failing = diff.hosts.filter((h) => h.status === 'error').length;
  const parts = [`${changing} of ${plural(total, 'host')} change${changing === 1 ? 's' : ''}`];
  if (diff.groups.length > 0) parts.push(plural(diff.groups.length, 'group'));
  if (failing > 0) parts.push(`${plural(failing, 'host')} fail${failing === 1 ? 's' : ''} to render`);
  if (diff.sourceErrors.length > 0) parts.push(plural(diff.sourceErrors.length, 'bad source name'));
  if (diff.secrets && diff.secrets.changes.length > 0) parts.push(plural(diff.secrets.changes.length, 'secret file') + ' changed');
  const secretErrors = diff.secrets?.findings?.filter((f) => f.severity === 'error').length ?? 0;
  if (secretErrors > 0) parts.push(plural(secretErrors, 'secret finding'));
  return parts.join(' · ');
}

export function counts(h: HostDiff): string[] {
  const c = countByType(h.changes);
  return [c.added, c.removed, c.modified, c.permission, c.symlink].map((n) => (n === 0 ? '·' : String(n)));
}

/** One line per change: `M .config/x (0644 → 0600)`. */
export function changeLine(c: Change): string {
  let line = `${CHANGE_LETTER[c.type]} ${c.path}${c.kind === 'dir' ? '/' : ''}`;
  if (c.type === 'permission') line += ` (${formatMode(c.fromMode!)} → ${formatMode(c.toMode!)})`;
  if (c.type === 'symlink') line += ` (→ ${c.fromTarget} ⇒ → ${c.toTarget})`;
  if (c.type === 'added' && c.kind === 'symlink') line += ` → ${c.toTarget}`;
  if (c.type === 'added' && c.toMode !== undefined && c.kind === 'file' && c.toMode !== 0o644) line += ` (${formatMode(c.toMode)})`;
  if (c.rewrite) {
    const f = c.rewrite.from;
    const t = c.rewrite.to;
    const side = (x: { lines: number; sha256: string }) => `${x.lines.toLocaleString('en-US')} lines ${x.sha256.slice(0, 12)}`;
    line += ` (too large to diff here:${f ? ` ${side(f)}` : ''}${f && t ? ' →' : ''}${t ? ` ${side(t)}` : ''}; --full-patch shows it)`;
  }
  if (c.binary) {
    const f = c.binary.from;
    const t = c.binary.to;
    line += ` (${c.encrypted ? 'encrypted, not shown' : 'binary'}${f ? ` ${f.size} B ${f.sha256.slice(0, 12)}` : ''}${f && t ? ' →' : ''}${t ? ` ${t.size} B ${t.sha256.slice(0, 12)}` : ''})`;
  }
  return line;
}

export const STATUS_LABEL: Record<HostDiff['status'], string> = {
  added: 'new host',
  removed: 'removed',
  changed: 'changes',
  unchanged: 'unchanged',
  error: 'render error',
};

/** One line per changed SOPS file: keys and recipients, never values. */
export function secretChangeLine(c: SecretChange): string {
  if (c.error) return `${c.path}: cannot be read (${c.error})`;
  const parts: string[] = [];
  const list = (label: string, xs: string[]) => xs.length > 0 && parts.push(`${label} ${xs.join(', ')}`);
  list('changed', c.keys.changed);
  list('added', c.keys.added);
  list('removed', c.keys.removed);
  list('recipients added', c.recipients.added.map(shortRecipient));
  list('recipients removed', c.recipients.removed.map(shortRecipient));
  if (c.mac) parts.push(`MAC ${c.mac}`);
  return `${c.path} (${c.status === 'modified' ? 'modified' : `${c.status} SOPS file`}): ${parts.join('; ') || 'metadata only'}`;
}

export function findingLine(f: SecretFinding): string {
  return `${f.severity === 'error' ? 'error' : 'warning'}: ${f.file}: ${f.message}`;
}

/** Untrusted text as a code span: no backtick can close it, no line break can end the line, control characters shown. */
export const codeSpan = (s: string): string => '`' + visible(s.replace(/`/g, "'").replace(/[\r\n]+/g, ' ')) + '`';
/** The same in a table cell, where a "|" would end the cell. */
export const codeCell = (s: string): string => codeSpan(s).replace(/\|/g, '\\|');

/**
 * Untrusted text (a file name from a pull request, a message quoting one) as inline markdown
 * that shows exactly those characters and does nothing else: no emphasis, link (a bare URL
 * included), image, table cell, HTML tag or entity; no @mention that notifies someone or #123
 * that links an issue; a newline shown as ␤ so that a list item, a table row or a <summary>
 * stays one line; a control character as \u001b, not left for the browser to drop silently.
 */
export function inline(s: string): string {
  return visible(s, '\r\n')
    .replace(/\r\n|\r|\n/g, '␤')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*[\]~|]/g, (c) => `\\${c}`)
    // Underscores emphasise only at a word's edge (GitHub leaves snake_case alone).
    .replace(/(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, '\\_')
    // One pass: the entity's own "#" must not be taken for an issue reference.
    .replace(/@(?=[A-Za-z0-9])|#(?=\d)/g, (c) => `${c}&#8203;`)
    // GitHub links a bare URL or www. name by itself (GFM's extended autolinks): not these.
    .replace(/:(?=\/\/)|(?<=\bwww)\./gi, (c) => `${c === '.' ? '&#8203;.' : ':&#8203;'}`);
}


/** Errors that are the same but for the host, once each with the hosts they happened on. */
export function foldByHost(errors: DotfleetError[]): { e: DotfleetError; hosts: string[] }[] {
  const byWhat = new Map<string, { e: DotfleetError; hosts: string[] }>();
  for (const e of errors) {
    const k = `${e.code}\u0000${e.where()}\u0000${e.message}\u0000${e.hint ?? ''}`;
    const g = byWhat.get(k) ?? { e, hosts: [] };
    if (e.host) g.hosts.push(e.host);
    byWhat.set(k, g);
  }
  return [...byWhat.values()];
}

/** One error as the CLI prints it, naming every host it happened on (`describe()` names one). */
export function describeFolded(e: DotfleetError, hosts: string[]): string {
  if (hosts.length <= 1) return e.describe();
  const named = hosts.length > 8 ? `${hosts.slice(0, 8).join(', ')} and ${hosts.length - 8} more` : hosts.join(', ');
  return new DotfleetError(e.code, e.message, { ...e.fields(), host: undefined }).describe().replace(/^/, `hosts ${named}: `);
}

/** Under a group whose hosts' patches differ only in context or position: whose patch is shown. */
export function representedNote(g: { hosts: string[]; shownFor: string; exact: boolean }, command: string): string {
  return `each host adds and removes these same lines, but the lines around them differ: this is ${g.shownFor}'s patch (${command} --host HOST shows any one host's)`;
}
