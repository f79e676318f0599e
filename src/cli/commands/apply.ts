/**
 * On a host: `dotfleet drift`, `apply`, `rollback` and `heal` (docs/host.md). The
 * render and the plan are the pure core's (src/core/drift.ts); the home directory, snapshots and
 * journal are src/host/home.ts.
 */
import { lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { computeDrift, desiredFromRecord, desiredState, planApply, sha256, touchedPaths, type AppliedRecord, type Desired, type DriftItem, type RecordEntry } from '../../core/drift.js';
import { Home, HostState, openTarget, runSteps } from '../../host/home.js';
import { defaultStateDir } from '../../host/state.js';
import { agentVersion, EXIT, openFleet, write } from '../io.js';
import { repoRoot, resolveCommit } from '../../host/git.js';

export interface HostOptions {
  repo: string;
  ref: string;
  host: string;
  target: string;
  stateDir: string;
  json?: boolean;
}

const hostOptions = (c: Command): Command =>
  c
    .option('--repo <dir>', 'the fleet repository (a clone on this host)', '.')
    .option('--ref <rev>', 'the commit to apply', 'HEAD')
    .requiredOption('--host <name>', 'this host')
    .option('--target <dir>', 'the home directory', homedir())
    .option('--state-dir <dir>', 'where the record of the last apply and the snapshots are kept', defaultStateDir());

/** Everything a host command starts from, after finishing what a killed apply left. */
export async function openHost(opts: HostOptions, log: (line: string) => void = (l) => process.stderr.write(`dotfleet: ${l}\n`)) {
  const { fleet, commit, root } = await openFleet(opts.repo, opts.ref);
  const [{ getHost }, { Renderer }, { renderHash }] = await Promise.all([import('../../core/fleet.js'), import('../../core/render.js'), import('../../core/render-hash.js')]);
  const host = getHost(fleet, opts.host);
  const rendered = new Renderer().renderHost(fleet, host);
  const errors = [...fleet.sources.errors, ...rendered.errors];
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(`dotfleet: ${e.describe()}\n`);
    throw new DotfleetError('usage', `${host.name} does not render at ${commit?.slice(0, 12) ?? 'the working tree'}: nothing applied`, { host: host.name, hint: 'fix the errors above (dotfleet render --host shows them)' });
  }
  const home = new Home(await openTarget(opts.target));
  const state = new HostState(opts.stateDir, host.name);
  const recovered = await state.recover(home);
  if (recovered) log(recovered);
  let record = await state.record();
  if (record && record.target !== home.root) {
    log(`the last apply recorded was to ${record.target}, not ${home.root}: treating ${home.root} as never applied`);
    record = undefined;
  }
  return { fleet, commit: commit ?? null, root, host, tree: rendered.tree, renderHash: renderHash(rendered.tree), desired: desiredState(rendered.tree), home, state, record };
}

export type OpenedHost = Awaited<ReturnType<typeof openHost>>;

/**
 * The drift without rendering, when the last apply was of this very commit by this very dotfleet
 * (the record then says what the render would); undefined when that is not so and a render is needed.
 */
export async function driftFromRecord(opts: HostOptions, log: (line: string) => void = (l) => process.stderr.write(`dotfleet: ${l}\n`)): Promise<{ items: DriftItem[]; commit: string; target: string } | undefined> {
  const root = await repoRoot(opts.repo);
  const commit = await resolveCommit(root, opts.ref);
  const home = new Home(await openTarget(opts.target));
  const state = new HostState(opts.stateDir, opts.host);
  const recovered = await state.recover(home);
  if (recovered) log(recovered);
  const record = await state.record();
  if (!record || record.commit !== commit || record.target !== home.root || record.agent !== agentVersion() || record.host !== opts.host) return undefined;
  const desired = desiredFromRecord(record);
  return { items: computeDrift(desired, record, await home.observeAll(desired.keys())), commit, target: home.root };
}

/** The drift of a host now: every rendered path and every path the last apply wrote, observed. */
export async function driftOf(h: OpenedHost): Promise<DriftItem[]> {
  const paths = new Set([...h.desired.keys(), ...Object.keys(h.record?.entries ?? {})]);
  return computeDrift(h.desired, h.record, await h.home.observeAll(paths));
}

const since = (d: DriftItem) =>
  !d.managed ? (d.local ? 'there, but not written by dotfleet' : 'not applied yet') : d.local && d.source ? 'changed here and in the source' : d.local ? 'changed here' : 'source changed';

export function printDrift(items: DriftItem[], json?: boolean): void {
  if (json) {
    write(JSON.stringify(items, null, 2));
    return;
  }
  if (items.length === 0) {
    write('no drift');
    return;
  }
  const w = Math.max(4, ...items.map((d) => d.path.length));
  write(`${'PATH'.padEnd(w)}  ${'DRIFT'.padEnd(10)}  ${'SINCE THE LAST APPLY'.padEnd(30)}  DETAIL`);
  for (const d of items) write(`${d.path.padEnd(w)}  ${d.type.padEnd(10)}  ${since(d).padEnd(30)}  ${d.detail}`);
}

export interface ApplyResult {
  written: number;
  removed: number;
  snapshot: string | null;
  record: AppliedRecord;
}

/**
 * Apply: plan; refuse (writing nothing) when a path would lose a local change; snapshot every path
 * the steps touch; journal; write; record. A kill at any point leaves each file old or new, and
 * the next start undoes the partial apply from the snapshot (HostState.recover).
 */
export async function applyHost(h: OpenedHost, options: { force?: boolean; dryRun?: boolean; log: (line: string) => void }): Promise<ApplyResult | { refused: { path: string; why: string }[]; dryRun?: boolean; steps?: number }> {
  const paths = new Set([...h.desired.keys(), ...Object.keys(h.record?.entries ?? {})]);
  const observed = await h.home.observeAll(paths);
  const plan = planApply(h.desired, h.record, observed, { force: options.force });
  if (plan.refusals.length > 0) return { refused: plan.refusals };
  const hash = h.renderHash;
  if (options.dryRun) {
    for (const s of plan.steps) options.log(`would ${s.op.padEnd(6)} ${s.path}`);
    return { refused: [], dryRun: true, steps: plan.steps.length };
  }
  // Decrypt before anything is written: a secret that cannot be decrypted stops the apply whole.
  const { decryptMarkers } = await import('../../host/secrets.js');
  const cache = new Map<string, Map<string, string>>();
  const contents = new Map<string, Uint8Array>();
  for (const s of plan.steps) {
    if (s.op !== 'write' || s.want.kind !== 'file') continue;
    contents.set(s.path, s.want.secret ? Buffer.from(await decryptMarkers(Buffer.from(s.want.content).toString('utf8'), h.root, cache)) : s.want.content);
  }
  let snapshot: string | null = h.record?.snapshot ?? null;
  if (plan.steps.length > 0) {
    const m = await h.state.takeSnapshot(h.home, touchedPaths(plan), h.record, h.commit);
    snapshot = m.id;
    await h.state.startJournal({ op: 'apply', snapshots: [m.id], renderHash: hash, startedAt: new Date().toISOString() });
    try {
      await runSteps(h.home, plan.steps, (s) => contents.get(s.path)!, options.log);
    } catch (e) {
      // A step the file system refused: undo the steps already taken, so nothing is left half applied.
      h.home.forget();
      await h.state.restore(h.home, m);
      await h.state.dropSnapshot(m.id);
      await h.state.endJournal();
      if (e instanceof DotfleetError) throw new DotfleetError(e.code, `${e.message}; the apply was undone, every path is as it was before it`, { file: e.file, hint: e.hint });
      throw e;
    }
  }
  const record: AppliedRecord = {
    version: 1,
    host: h.host.name,
    target: h.home.root,
    commit: h.commit,
    renderHash: hash,
    appliedAt: new Date().toISOString(),
    agent: agentVersion(),
    snapshot,
    entries: recordEntries(h.desired, h.record, contents),
  };
  // Unchanged apply of the same render: the record stays as it was (no write, no snapshot).
  if (plan.steps.length > 0 || !h.record || h.record.renderHash !== hash || h.record.commit !== h.commit) await h.state.saveRecord(record);
  if (plan.steps.length > 0) {
    await h.state.endJournal();
    await h.state.prune();
  }
  return { written: plan.steps.filter((s) => s.op !== 'remove').length, removed: plan.steps.filter((s) => s.op === 'remove').length, snapshot: plan.steps.length > 0 ? snapshot : null, record };
}

/** What the record says of each rendered path after an apply: the written bytes' hash, and for a secret file the rendered one. */
function recordEntries(desired: ReadonlyMap<string, Desired>, before: AppliedRecord | undefined, written: ReadonlyMap<string, Uint8Array>): Record<string, RecordEntry> {
  const out: Record<string, RecordEntry> = {};
  for (const [path, want] of desired) {
    if (want.kind !== 'file') out[path] = want.kind === 'dir' ? { kind: 'dir', mode: want.mode } : { kind: 'symlink', target: want.target };
    else if (!want.secret) out[path] = { kind: 'file', mode: want.mode, sha256: want.sha256 };
    else {
      const bytes = written.get(path);
      // A secret file not written this time was as desired: the record of its bytes stands.
      out[path] = bytes ? { kind: 'file', mode: want.mode, sha256: sha256(bytes), rendered: want.sha256 } : before!.entries[path]!;
    }
  }
  return out;
}

export function hostCommands(program: Command): void {
  hostOptions(program.command('drift').description('what in the home directory is not as the fleet renders it for this host'))
    .option('--json', 'print JSON')
    .option('--exit-code', 'exit 1 when there is drift')
    .action(async (opts: HostOptions & { exitCode?: boolean }) => {
      const items = (await driftFromRecord(opts))?.items ?? (await driftOf(await openHost(opts)));
      printDrift(items, opts.json);
      if (opts.exitCode && items.length > 0) process.exitCode = EXIT.differences;
    });

  hostOptions(program.command('apply').description("write this host's rendered configuration into the home directory, safely (snapshot, atomic writes, record)"))
    .option('--dry-run', 'print what would change; write nothing')
    .option('--force', 'overwrite local changes and files dotfleet never wrote (they are in the snapshot)')
    .action(async (opts: HostOptions & { dryRun?: boolean; force?: boolean }) => {
      // The same commit applied by this dotfleet, and nothing drifted: nothing to render, nothing to do.
      const quick = await driftFromRecord(opts);
      if (quick?.items.length === 0) {
        write(`nothing to do: ${quick.target} is as ${quick.commit.slice(0, 12)} renders it`);
        return;
      }
      const h = await openHost(opts);
      const r = await applyHost(h, { force: opts.force, dryRun: opts.dryRun, log: write });
      if ('refused' in r) {
        if (r.dryRun) {
          write(r.steps === 0 ? 'nothing to do' : `${r.steps} change${r.steps === 1 ? '' : 's'} (dry run: nothing written)`);
          return;
        }
        for (const x of r.refused) process.stderr.write(`dotfleet: ${x.path} ${x.why}\n`);
        throw new DotfleetError('refused', `nothing was written: ${r.refused.length} path${r.refused.length === 1 ? '' : 's'} would lose what is there now`, { host: h.host.name, hint: 'see each path above' });
      }
      write(
        r.snapshot
          ? `applied ${h.commit?.slice(0, 12) ?? 'the working tree'} to ${h.home.root}: ${r.written} written, ${r.removed} removed · snapshot ${r.snapshot} (dotfleet rollback undoes it)`
          : `nothing to do: ${h.home.root} is as ${h.commit?.slice(0, 12) ?? 'the working tree'} renders it`,
      );
    });

  program
    .command('rollback')
    .description('undo applies: put back every path as it was before them (bytes, modes, links)')
    .requiredOption('--host <name>', 'this host')
    .option('--target <dir>', 'the home directory', homedir())
    .option('--state-dir <dir>', 'where the snapshots are kept', defaultStateDir())
    .option('--to <snapshot>', 'undo every apply back to and including the one that took this snapshot (default: the last apply)')
    .option('--list', 'list the snapshots, newest first')
    .action(async (opts: { host: string; target: string; stateDir: string; to?: string; list?: boolean }) => {
      const home = new Home(await openTarget(opts.target));
      const state = new HostState(opts.stateDir, opts.host);
      const recovered = await state.recover(home);
      if (recovered) process.stderr.write(`dotfleet: ${recovered}\n`);
      const all = (await state.snapshots()).filter((m) => m.target === home.root);
      if (opts.list) {
        if (all.length === 0) write('no snapshots');
        for (const m of [...all].reverse()) write(`${m.id}  before applying ${m.applying?.slice(0, 12) ?? 'the working tree'}  ${Object.keys(m.entries).length} paths  (then: ${m.record?.commit?.slice(0, 12) ?? 'nothing applied'})`);
        return;
      }
      if (all.length === 0) throw new DotfleetError('usage', `no snapshot of ${home.root} for ${opts.host}: nothing to roll back`, { hint: 'dotfleet rollback --list shows the snapshots' });
      const at = opts.to === undefined ? all.length - 1 : all.findIndex((m) => m.id === opts.to);
      if (at < 0) throw new DotfleetError('usage', `no snapshot ${opts.to}`, { hint: 'dotfleet rollback --list shows the snapshots' });
      const undo = all.slice(at).reverse();
      await state.startJournal({ op: 'rollback', snapshots: undo.map((m) => m.id), startedAt: new Date().toISOString() });
      for (const m of undo) {
        for (const line of await state.restore(home, m)) write(line);
        await state.dropSnapshot(m.id);
      }
      await state.endJournal();
      const back = undo[undo.length - 1]!.record;
      write(`rolled back ${undo.length} apply${undo.length === 1 ? '' : 's'}: ${home.root} is as it was before ${undo[undo.length - 1]!.id}${back ? ` (the apply of ${back.commit?.slice(0, 12) ?? 'a working tree'})` : ' (nothing applied)'}`);
    });

  hostOptions(program.command('heal').description('keep changes made here: copy a changed plain file (or link) back into the source; for a template, show what differs and where it comes from'))
    .argument('[paths...]', 'only these target paths (default: every path changed here)')
    .action(async (paths: string[], opts: HostOptions) => {
      const h = await openHost(opts);
      const items = (await driftOf(h)).filter((d) => d.local && d.managed && (paths.length === 0 || paths.includes(d.path)));
      if (items.length === 0) {
        write(paths.length > 0 ? `none of ${paths.join(', ')} was changed here since the last apply` : 'nothing was changed here since the last apply');
        return;
      }
      const written: string[] = [];
      const { unifiedHunks } = await import('../../core/diff.js');
      for (const d of items) {
        for (const line of healOne(h, d, written, unifiedHunks)) write(line);
      }
      if (written.length > 0) write(`\nthe source changed (${written.join(', ')}): review and commit it (git -C ${h.root} diff), then dotfleet apply records it`);
    });
}

/** What heal does about one path changed here; source files it wrote are added to `written`. */
function healOne(h: OpenedHost, d: DriftItem, written: string[], unifiedHunks: (a: string, b: string) => string | undefined): string[] {
  const want = h.desired.get(d.path);
  const sources = h.fleet.sources.entries.filter((e) => e.target === d.path && e.kind !== 'dir');
  if (!want) return [`${d.path}: not rendered by the source any more; nothing to keep`];
  if (want.kind === 'dir') return [`${d.path}/: a directory whose mode changed here; the source's name decides it (private_, readonly_)`];
  if (sources.length !== 1) return [`${d.path}: ${sources.length} sources render it; heal it by hand`];
  const source = sources[0]!;
  if (want.kind === 'file' && want.secret) return [`${d.path}: holds secrets, so nothing of it is shown or copied; change a value with sops in the file its template names (${source.source})`];
  if (d.type === 'missing') return [`${d.path}: deleted here; to stop managing it, remove ${source.source} from the source`];
  if (d.type === 'permission') return [`${d.path}: its mode changed here; the source's name decides the mode (${source.source}: executable_, private_, readonly_)`];
  const abs = h.home.abs(d.path);
  const info = lstatSync(abs, { throwIfNoEntry: false });
  if (want.kind === 'symlink' || info?.isSymbolicLink()) {
    if (!info?.isSymbolicLink() || want.kind !== 'symlink' || source.template) return [`${d.path}: ${d.detail}; heal it by hand (${source.source})`];
    const target = readlinkSync(abs);
    writeFileSync(join(h.root, source.source), `${target}\n`);
    written.push(source.source);
    return [`${d.path}: the link now points to ${target}: wrote ${source.source}`];
  }
  if (!info?.isFile()) return [`${d.path}: ${d.detail}; heal it by hand (${source.source})`];
  const local = readFileSync(abs);
  if (!source.template) {
    writeFileSync(join(h.root, source.source), local);
    written.push(source.source);
    return [`${d.path}: changed here: wrote it to ${source.source}`];
  }
  // A template: show what differs, and where in the template each rendered line is; write nothing.
  const rendered = Buffer.from(want.content).toString('utf8');
  const template = Buffer.from(h.fleet.tree.get(source.source) ?? new Uint8Array()).toString('utf8').split('\n');
  const hunks = unifiedHunks(rendered, local.toString('utf8')) ?? '(too large to show here)';
  const from = (line: string) => {
    const at = template.indexOf(line.slice(1));
    return at >= 0 ? `   (${source.source}:${at + 1})` : '';
  };
  return [
    `${d.path}: changed here, and it is rendered from the template ${source.source}: nothing written; carry the change into the template by hand`,
    `--- ${d.path} as ${h.commit?.slice(0, 12) ?? 'the working tree'} renders it`,
    `+++ ${d.path} here`,
    ...hunks.split('\n').map((l) => (l.startsWith('-') ? l + from(l) : l)),
  ];
}
