/**
 * Everything a pull request gets, computed from trees: the fleet diff, secrets and trust, then
 * the sticky comment and the check run, inside GitHub's limits. Pure: the app reads the trees
 * and writes the results.
 */
import { DotfleetError } from './errors.js';
import { loadFleet, type Fleet } from './fleet.js';
import { diffFleets, type FleetDiff } from './fleet-diff.js';
import { Renderer } from './render.js';
import { diffFleetSecrets } from './secrets/report.js';
import { diffTrustTrees, trustChanged, type TrustReport } from './trust.js';
import type { RepoTree } from './tree.js';
import { emptyIndex } from './source-names.js';
import { CHECK_LIMIT, COMMENT_LIMIT, bytes, chars, fitBlocks, fitLevels } from './report/budget.js';
import { changeLine, codeSpan, counts, foldByHost, headline, representedNote, inline, plural, secretChangeLine, STATUS_LABEL } from './report/common.js';
import { errorLine, fenceFor, fleetDiffMarkdown, SUMMARY_LIMIT } from './report/markdown.js';
import { trustHeadline, trustMarkdown } from './report/trust.js';

export const COMMENT_MARKER = '<!-- dotfleet:fleet-diff -->';
export const CHECK_NAME = 'dotfleet/fleet-diff';
const HISTORY_MARK = '<!-- dotfleet:history ';
/** How the comment begins its note when groups did not fit. */
const COMMENT_CUT = 'GitHub limits a comment to 65,536 characters';
const MAX_HISTORY = 10;
const MAX_PATCH_IN_COMMENT = 12_000;

export interface PullRequestInput {
  base: RepoTree;
  head: RepoTree;
  /** The default branch's tree: trust (allowed_signers) is read from it only. */
  trust: RepoTree;
  baseSha: string;
  headSha: string;
  /** The sticky comment as it is now, for the history of earlier runs. */
  previousComment?: string;
  /** A local command that shows everything, for notes about what did not fit. */
  repoHint?: string;
  /** Also a job summary (the Action): the comment, then every group with its patches, within 1 MiB. */
  summary?: boolean;
}

export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: 'failure' | 'warning' | 'notice';
  title: string;
  message: string;
}

export interface CheckOutput {
  conclusion: 'success' | 'neutral' | 'failure' | 'action_required';
  title: string;
  summary: string;
  text: string;
  annotations: Annotation[];
}

export interface PullRequestResult {
  comment: string;
  check: CheckOutput;
  /** When asked for: the job summary, at most SUMMARY_LIMIT bytes. */
  summary?: string;
  stats: { hosts: number; changed: number; renders: number };
}

interface Computed {
  diff?: FleetDiff;
  headError?: DotfleetError;
  baseError?: DotfleetError;
  trust: TrustReport;
}

/** A fleet with the head's shape and no hosts: the base when the base cannot be read. */
function emptyLike(f: Fleet): Fleet {
  return { ...f, tree: new Map(), hosts: new Map(), hostErrors: new Map(), data: {}, presets: new Map(), dataFiles: [], sources: emptyIndex(f.sourceRoot) };
}

function compute(input: PullRequestInput): Computed {
  const trust = diffTrustTrees(input.trust, input.head);
  let head: Fleet;
  try {
    head = loadFleet(input.head);
  } catch (e) {
    if (e instanceof DotfleetError) return { headError: e, trust };
    throw e;
  }
  let base: Fleet;
  let baseError: DotfleetError | undefined;
  try {
    base = loadFleet(input.base);
  } catch (e) {
    if (!(e instanceof DotfleetError)) throw e;
    baseError = e;
    base = emptyLike(head);
  }
  const renderer = new Renderer();
  const diff = diffFleets(base, head, {}, renderer);
  diff.secrets = diffFleetSecrets(base, head, renderer);
  return { diff, baseError, trust };
}

const short = (sha: string) => sha.slice(0, 7);
const code = codeSpan;
const cell = inline;

function headlineOf(c: Computed): string {
  if (c.headError) return 'the fleet does not load at head';
  return headline(c.diff!) + trustHeadline(c.trust);
}

/** The summary table: one row per host that changes or fails; compact (one row per group) when large. */
function table(diff: FleetDiff, compact: boolean): string {
  const shown = diff.hosts.filter((h) => h.status !== 'unchanged');
  const unchanged = diff.hosts.filter((h) => h.status === 'unchanged');
  const out: string[] = [];
  if (shown.length > 0 && !compact) {
    out.push('| Host | Preset | Wave | A | R | M | P | S | Status |', '|---|---|--:|--:|--:|--:|--:|--:|---|');
    for (const h of shown) out.push(`| ${h.host} | ${h.machine} | ${h.wave} | ${counts(h).join(' | ')} | ${STATUS_LABEL[h.status]} |`);
  } else if (shown.length > 0) {
    // Hosts with identical rows share one; every host is still named.
    const rows = new Map<string, string[]>();
    for (const h of shown) {
      const key = `${counts(h).join(' | ')} | ${STATUS_LABEL[h.status]}`;
      rows.set(key, [...(rows.get(key) ?? []), h.host]);
    }
    out.push('| Hosts | A | R | M | P | S | Status |', '|---|--:|--:|--:|--:|--:|---|');
    for (const [key, hosts] of rows) out.push(`| ${plural(hosts.length, 'host')}: ${hosts.join(', ')} | ${key} |`);
  }
  if (unchanged.length > 20) out.push('', `<details>\n<summary>Unchanged (${unchanged.length})</summary>\n\n${unchanged.map((h) => h.host).join(', ')}\n\n</details>`);
  else if (unchanged.length > 0) out.push('', `_Unchanged (${unchanged.length}): ${unchanged.map((h) => h.host).join(', ')}_`);
  return out.join('\n');
}

const trustSection = (c: Computed) => trustMarkdown(c.trust, `_The **${CHECK_NAME}** check is "action required" while trust changes: see docs/app.md, "Trust changes"._`);

function secretsSection(diff: FleetDiff): string {
  const s = diff.secrets;
  if (!s || (s.changes.length === 0 && (s.findings ?? []).length === 0)) return '';
  const out = ['#### Secrets', '', '_Values are never shown: a key is "changed" when its ciphertext is._', ''];
  for (const c of s.changes) out.push(`- ${cell(secretChangeLine(c))}`);
  for (const f of s.findings ?? []) out.push(`- **${f.severity}** ${code(f.file)} — ${cell(f.message)}${f.hint ? `<br>_${cell(f.hint)}_` : ''}`);
  return out.join('\n');
}

function allErrors(c: Computed): DotfleetError[] {
  if (c.headError) return [c.headError];
  return [...c.diff!.sourceErrors, ...c.diff!.hosts.flatMap((h) => h.errors)];
}

/** One line per error, naming the hosts it happened on. */
function errorLines(errors: DotfleetError[]): string[] {
  return foldByHost(errors).map(({ e, hosts }) => {
    const line = errorLine(new DotfleetError(e.code, e.message, { ...e.fields(), host: undefined }));
    return hosts.length > 0 ? line.replace(/^- /, `- **${hosts.length > 3 ? `${hosts.slice(0, 3).join(', ')} +${hosts.length - 3}` : hosts.join(', ')}** `) : line;
  });
}

/** A patch larger than this does not go into the check run's text either (65,535 bytes in all). */
const MAX_PATCH_IN_CHECK = 48_000;

interface GroupPlace {
  /** Where the text goes: the comment, or the check run's text. */
  where: 'comment' | 'check';
  /** Groups (by index) whose full text made it into the check run. */
  inCheck?: Set<number>;
  /** The command that prints everything (`dotfleet diff --base … --head …`). */
  hint?: string;
}

function groupLevels(diff: FleetDiff, place: GroupPlace): string[][] {
  return diff.groups.map((g, i) => {
    const title = `#### Group ${i + 1} · ${plural(g.hosts.length, 'host')}: ${g.hosts.map(code).join(', ')}`;
    const cli = place.hint ? `\`${place.hint} --host ${g.hosts[0]}\`` : `\`dotfleet diff --host ${g.hosts[0]}\``;
    const inCheck = place.where === 'check' || (place.inCheck?.has(i) ?? false);
    const shown = g.exact ? '' : `\n\n_${cell(representedNote(g, place.hint ?? 'dotfleet diff'))}_`;
    const header = `${title}${shown}\n\n_${plural(g.changes.length, 'change')}: ${inCheck ? 'details in the check run' : `run ${cli}`}._`;
    const lines = `${title}${shown}\n\n${g.changes.map((c) => `- ${cell(changeLine(c))}`).join('\n')}`;
    const body = g.changes.map((c) => {
      const head = `**${cell(changeLine(c))}**`;
      if (!c.patch) return head;
      const size = `patch of ${c.patch.length.toLocaleString('en')} characters`;
      if (place.where === 'check' && c.patch.length > MAX_PATCH_IN_CHECK) return `${head}\n\n_${size}: too large for GitHub; run ${cli}_`;
      if (place.where === 'comment' && c.patch.length > MAX_PATCH_IN_COMMENT) {
        return `${head}\n\n_${size}: ${inCheck && c.patch.length <= MAX_PATCH_IN_CHECK ? 'in the check run' : `too large for this comment; run ${cli}`}_`;
      }
      const fence = fenceFor(c.patch);
      return `${head}\n\n${fence}diff\n${c.patch}\n${fence}`;
    });
    const summary = `${plural(g.changes.length, 'change')}: ${g.changes.slice(0, 4).map((c) => cell(changeLine(c))).join(', ')}${g.changes.length > 4 ? ', …' : ''}`;
    const full = `${title}${shown}\n\n<details>\n<summary>${summary}</summary>\n\n${body.join('\n\n')}\n\n</details>`;
    return [header, lines, full];
  });
}

interface HistoryEntry {
  sha: string;
  headline: string;
}

function readHistory(previous: string | undefined): HistoryEntry[] {
  if (!previous) return [];
  const at = previous.indexOf(HISTORY_MARK);
  if (at < 0) return [];
  try {
    const json = previous.slice(at + HISTORY_MARK.length, previous.indexOf(' -->', at)).replace(/\\u002d\\u002d/g, '--');
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((x): x is HistoryEntry => typeof x?.sha === 'string' && typeof x?.headline === 'string') : [];
  } catch {
    return [];
  }
}

function historyBlocks(entries: HistoryEntry[]): { visible: string; hidden: string } {
  const hidden = `${HISTORY_MARK}${JSON.stringify(entries).replace(/--/g, '\\u002d\\u002d')} -->`;
  if (entries.length <= 1) return { visible: '', hidden };
  const rows = entries.slice(1).map((e) => `- ${code(short(e.sha))} ${cell(e.headline)}`);
  return { visible: `<details>\n<summary>Earlier runs (${entries.length - 1})</summary>\n\n${rows.join('\n')}\n\n</details>`, hidden };
}

/** This run first, then the earlier runs the previous comment remembered. */
function nextHistory(input: Pick<PullRequestInput, 'headSha' | 'previousComment'>, title: string): HistoryEntry[] {
  return [{ sha: input.headSha, headline: title }, ...readHistory(input.previousComment).filter((e) => e.sha !== input.headSha)].slice(0, MAX_HISTORY);
}

function commentBody(c: Computed, input: PullRequestInput, title: string, inCheck: Set<number>): string {
  const { visible: historyText, hidden } = historyBlocks(nextHistory(input, title));
  const top = [COMMENT_MARKER, `### dotfleet · fleet diff`, '', `**${title}** · ${code(short(input.baseSha))} → ${code(short(input.headSha))}`];
  const notes: string[] = [];
  const blocks: string[] = [];
  if (c.headError) {
    blocks.push(`#### The fleet does not load\n\n${errorLines([c.headError]).join('\n')}\n\nNo host could be rendered at ${code(short(input.headSha))}; fix this first.`);
  } else {
    const diff = c.diff!;
    if (c.baseError) notes.push(`The base does not load (${cell(c.baseError.describe().split('\n')[0]!)}): every host is shown as new.`);
    let t = table(diff, false);
    if (chars(t) > COMMENT_LIMIT / 2) {
      t = table(diff, true);
      notes.push('The table is compact (hosts with identical counts share a row) to fit GitHub\'s comment limit.');
    }
    blocks.push(t);
  }
  const trust = trustSection(c);
  if (trust) blocks.push(trust);
  if (c.diff) {
    const secrets = secretsSection(c.diff);
    if (secrets) blocks.push(secrets);
  }
  const errs = errorLines(allErrors(c));
  const fixed = [...top, ...blocks].join('\n\n');
  // Room for what can shrink: groups, errors, history; 600 characters for notes.
  let room = COMMENT_LIMIT - chars(fixed) - chars(hidden) - 600;
  const errorFit = c.headError ? { kept: [], dropped: 0 } : fitBlocks(errs, Math.min(room / 3, 20_000), (s) => chars(s) + 1);
  const errorText = errorFit.kept.length > 0 ? `#### Render errors\n\n${errorFit.kept.join('\n')}${errorFit.dropped ? `\n- … ${plural(errorFit.dropped, 'more error')} in the check run` : ''}` : '';
  room -= chars(errorText) + 2;
  const historyFits = chars(historyText) + 2 <= room / 4;
  if (historyFits) room -= chars(historyText) + 2;
  const groups = c.diff ? fitLevels(groupLevels(c.diff, { where: 'comment', inCheck, hint: input.repoHint }), room, (s) => chars(s) + 2) : { chosen: [], omitted: 0 };
  const detailed = groups.chosen.filter((g) => g.includes('<details>')).length;
  if (c.diff && (groups.omitted > 0 || detailed < groups.chosen.length)) {
    const total = c.diff.groups.length;
    const where = inCheck.size === total ? `every group is in the **${CHECK_NAME}** check run` : inCheck.size > 0 ? `groups 1–${inCheck.size} of ${total} are in the **${CHECK_NAME}** check run, the rest only` : 'the check run has no room for them either; all of it is';
    notes.push(`${COMMENT_CUT}: ${groups.omitted > 0 ? `${plural(groups.omitted, 'group')} left out, ` : ''}${groups.chosen.length - detailed > 0 ? `${plural(groups.chosen.length - detailed, 'group')} without patches; ` : ''}${where}${input.repoHint ? ` with \`${input.repoHint}\`` : ''}.`);
  }
  const parts = [fixed, ...groups.chosen, errorText, notes.map((n) => `> ${n}`).join('\n'), historyFits ? historyText : '', hidden].filter((p) => p !== '');
  return parts.join('\n\n') + '\n';
}

function annotations(c: Computed): Annotation[] {
  const out: Annotation[] = [];
  for (const { e, hosts } of foldByHost(allErrors(c).filter((e) => e.file))) {
    out.push({
      path: e.file!,
      start_line: e.line ?? 1,
      end_line: e.line ?? 1,
      annotation_level: 'failure',
      title: hosts.length > 0 ? `${e.code} on ${plural(hosts.length, 'host')}` : e.code,
      message: `${e.message}${hosts.length > 0 ? `\nhosts: ${hosts.join(', ')}` : ''}${e.hint ? `\nhint: ${e.hint}` : ''}`,
    });
  }
  for (const f of c.diff?.secrets?.findings ?? []) {
    out.push({ path: f.file, start_line: 1, end_line: 1, annotation_level: f.severity === 'error' ? 'failure' : 'warning', title: `secrets: ${f.code}`, message: `${f.message}${f.hint ? `\nhint: ${f.hint}` : ''}` });
  }
  return out;
}

function checkOutput(c: Computed, input: PullRequestInput, title: string): CheckOutput & { groupsInText: number } {
  const hostErrors = c.headError || (c.diff && (c.diff.sourceErrors.length > 0 || c.diff.hosts.some((h) => h.status === 'error')));
  const secretErrors = c.diff?.secrets?.findings?.some((f) => f.severity === 'error');
  const changed = (c.diff?.hosts.some((h) => h.changes.length > 0) ?? false) || (c.diff?.secrets?.changes.length ?? 0) > 0;
  // A trust change is never a success: it needs a person (docs/app.md, "Trust changes").
  const conclusion = hostErrors || secretErrors ? 'failure' : trustChanged(c.trust) ? 'action_required' : changed ? 'success' : 'neutral';

  const summaryBlocks = [`**${title}** · ${code(short(input.baseSha))} → ${code(short(input.headSha))}`];
  if (c.diff) summaryBlocks.push(bytes(table(c.diff, false)) > CHECK_LIMIT / 2 ? table(c.diff, true) : table(c.diff, false));
  for (const s of [trustSection(c), c.diff ? secretsSection(c.diff) : '']) if (s) summaryBlocks.push(s);
  const errs = errorLines(allErrors(c));
  if (errs.length > 0) summaryBlocks.push(`#### Render errors\n\n${errs.join('\n')}`);
  const summaryFit = fitBlocks(summaryBlocks.map((b) => b + '\n\n'), CHECK_LIMIT - 300, bytes);
  let summary = summaryFit.kept.join('');
  if (summaryFit.dropped > 0) summary += `> ${plural(summaryFit.dropped, 'section')} did not fit GitHub's 65,535-byte limit${input.repoHint ? `; run \`${input.repoHint}\`` : ''}.\n`;

  const textBlocks = (c.diff ? groupLevels(c.diff, { where: 'check', hint: input.repoHint }).map((l) => l[2]!) : []).map((b) => b + '\n\n');
  const textFit = fitBlocks(textBlocks, CHECK_LIMIT - 300, bytes);
  let text = textFit.kept.join('');
  if (textFit.dropped > 0) text += `> ${plural(textFit.dropped, 'more group')} did not fit GitHub's 65,535-byte limit${input.repoHint ? `; run \`${input.repoHint}\` to see everything` : ''}.\n`;
  return { conclusion, title: title.length > 255 ? title.slice(0, 254) + '…' : title, summary, text, annotations: annotations(c), groupsInText: textFit.kept.length };
}

export function pullRequestReport(input: PullRequestInput): PullRequestResult {
  const c = compute(input);
  const title = headlineOf(c);
  // The check run first: the comment then says truly what the check run holds.
  const { groupsInText, ...check } = checkOutput(c, input, title);
  const comment = commentBody(c, input, title, new Set(Array.from({ length: groupsInText }, (_, i) => i)));
  return {
    comment,
    check,
    ...(input.summary ? { summary: jobSummary(c, comment) } : {}),
    stats: { hosts: c.diff?.hosts.length ?? 0, changed: c.diff?.hosts.filter((h) => h.changes.length > 0).length ?? 0, renders: c.diff?.renders ?? 0 },
  };
}

/**
 * The Action's job summary: the comment (trust, secrets, the table, what fits), then every group
 * with its patches as `dotfleet diff --format markdown` shows them, all within SUMMARY_LIMIT.
 */
function jobSummary(c: Computed, comment: string): string {
  // The comment without its hidden lines (markers, history) and without its history block; blank
  // lines left behind are folded, outside code fences only.
  const kept: string[] = [];
  let fenced = false;
  for (const line of comment.replace(/<details>\n<summary>Earlier runs \(\d+\)<\/summary>[\s\S]*?<\/details>/, '').split('\n')) {
    if (!fenced && (line.startsWith('<!-- dotfleet:') || (line === '' && (kept.length === 0 || kept.at(-1) === '')))) continue;
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    kept.push(line);
  }
  const head = kept.join('\n').trimEnd() + '\n';
  // The comment already holds every group with its patches: nothing to add.
  if (!c.diff || c.diff.groups.length === 0 || !comment.includes(COMMENT_CUT)) return head;
  const room = SUMMARY_LIMIT - bytes(head) - 200;
  if (room < 2_000) return head;
  return `${head}\n---\n\n${fleetDiffMarkdown(c.diff, { title: 'Every change, group by group', maxBytes: room })}`;
}

/** The comment and check when rendering had to be stopped (time or memory limit). */
export function pullRequestFailure(reason: string, input: Pick<PullRequestInput, 'baseSha' | 'headSha' | 'previousComment'>): PullRequestResult {
  const title = 'the fleet could not be rendered';
  const { visible, hidden } = historyBlocks(nextHistory(input, title));
  const body = `The bot stopped rendering this pull request: ${reason}.\n\nA template that loops over very large data, or produces huge output, is the usual cause. \`dotfleet diff\` on your machine shows where.`;
  const comment = [COMMENT_MARKER, '### dotfleet · fleet diff', '', `**${title}** · ${code(short(input.baseSha))} → ${code(short(input.headSha))}`, body, visible, hidden].filter((p) => p !== '').join('\n\n') + '\n';
  return { comment, check: { conclusion: 'failure', title, summary: body, text: '', annotations: [] }, stats: { hosts: 0, changed: 0, renders: 0 } };
}
