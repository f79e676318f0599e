/**
 * A host's configuration against its home directory, as pure functions: what the render wants
 * (desired), what the last apply wrote (the record), what is there now (observed). From the three:
 * the drift (five types, and whether each changed here since the last apply, in the source, or
 * both, as `chezmoi status` tells them apart) and the plan an apply carries out.
 *
 * Files whose rendered text holds secret markers are written decrypted, mode 0600. The bot never
 * decrypts, and a drift check does not either: such a file is as desired when the source renders
 * the same markers the last apply decrypted and the bytes on disk are the ones it wrote.
 */
import { createHash } from 'node:crypto';
import { MARKER } from './secrets/marker.js';
import type { RenderedTree } from './tree.js';

export const SECRET_FILE_MODE = 0o600;

/** What is at a path, as far as drift is concerned: kind, permission bits, content hash, link target. */
export type Observed =
  | { kind: 'file'; mode: number; sha256: string }
  | { kind: 'symlink'; target: string }
  | { kind: 'dir'; mode: number }
  /** A socket, device or pipe, or a path behind a link: never read, never written over. */
  | { kind: 'other'; what: string };

/** What the render wants at a path. `sha256` is of the rendered bytes (with markers, for a secret file). */
export type Desired =
  | { kind: 'file'; mode: number; sha256: string; secret: boolean; content: Uint8Array }
  | { kind: 'symlink'; target: string }
  | { kind: 'dir'; mode: number };

/** One path as the last apply left it: what it wrote, and for a secret file the rendered bytes' hash too. */
export type RecordEntry = Observed & { rendered?: string };

/** What the last apply did, kept under the state directory. */
export interface AppliedRecord {
  version: 1;
  host: string;
  /** The home directory applied to (absolute). */
  target: string;
  commit: string | null;
  renderHash: string;
  appliedAt: string;
  /** The dotfleet that rendered it (`dotfleet/0.1.0`): another version may render the same commit otherwise. */
  agent?: string;
  /** The snapshot taken before it (rollback restores it). */
  snapshot: string | null;
  entries: Record<string, RecordEntry>;
}

export type DriftType = 'missing' | 'modified' | 'permission' | 'symlink' | 'unmanaged';

export interface DriftItem {
  path: string;
  type: DriftType;
  /** Changed here since the last apply (or never applied by dotfleet and different). */
  local: boolean;
  /** The source renders something else than the last apply wrote (or was never applied). */
  source: boolean;
  /** dotfleet wrote this path before (false: a file it never managed is in the way). */
  managed: boolean;
  /** One line for people: what differs. */
  detail: string;
}

export const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

const hasMarker = (content: Uint8Array): boolean => {
  MARKER.lastIndex = 0;
  return MARKER.test(Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('latin1'));
};

/** The desired state of every rendered path. */
export function desiredState(tree: RenderedTree): Map<string, Desired> {
  const out = new Map<string, Desired>();
  for (const [path, e] of tree) {
    if (e.kind === 'file') {
      const secret = hasMarker(e.content);
      out.set(path, { kind: 'file', mode: secret ? SECRET_FILE_MODE : e.mode, sha256: sha256(e.content), secret, content: e.content });
    } else out.set(path, e.kind === 'dir' ? { kind: 'dir', mode: e.mode } : { kind: 'symlink', target: e.target });
  }
  return out;
}

/**
 * What the source wants, read back from the record of an apply of the same commit by the same
 * dotfleet: a render is a pure function of the commit, so it would give exactly this. Enough for a
 * drift check (hashes and modes); not for writing (there are no bytes).
 */
export function desiredFromRecord(record: AppliedRecord): Map<string, Desired> {
  const out = new Map<string, Desired>();
  for (const [path, e] of Object.entries(record.entries)) {
    if (e.kind === 'file') out.set(path, { kind: 'file', mode: e.mode, sha256: e.rendered ?? e.sha256, secret: e.rendered !== undefined, content: new Uint8Array() });
    else if (e.kind === 'dir') out.set(path, { kind: 'dir', mode: e.mode });
    else if (e.kind === 'symlink') out.set(path, { kind: 'symlink', target: e.target });
  }
  return out;
}

/** Two observations of one path are the same. */
export function sameObserved(a: Observed | undefined, b: Observed | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'file':
      return a.sha256 === (b as typeof a).sha256 && a.mode === (b as typeof a).mode;
    case 'dir':
      return a.mode === (b as typeof a).mode;
    case 'symlink':
      return a.target === (b as typeof a).target;
    default:
      return false;
  }
}

/** The source wants what the last apply wrote at this path. */
function sourceUnchanged(want: Desired | undefined, rec: RecordEntry | undefined): boolean {
  if (!want || !rec) return want === undefined && rec === undefined;
  if (want.kind === 'file') return rec.kind === 'file' && rec.mode === want.mode && (want.secret ? rec.rendered === want.sha256 : rec.sha256 === want.sha256);
  return sameObserved(want, rec);
}

/** The bytes on disk are what the source wants (for a secret file: what the last apply decrypted from the same markers). */
function satisfied(want: Desired, have: Observed | undefined, rec: RecordEntry | undefined): boolean {
  if (!have) return false;
  if (want.kind === 'file' && want.secret) return sourceUnchanged(want, rec) && sameObserved(have, rec);
  if (want.kind === 'file') return have.kind === 'file' && have.sha256 === want.sha256 && have.mode === want.mode;
  return sameObserved(want, have);
}

const describe = (o: Observed | Desired | undefined): string => {
  if (!o) return 'nothing';
  if (o.kind === 'symlink') return `a link to ${o.target}`;
  if (o.kind === 'other') return o.what;
  return `a ${o.kind === 'dir' ? 'directory' : 'file'}`;
};
const octal = (m: number) => m.toString(8).padStart(4, '0');

function classify(want: Desired | undefined, have: Observed | undefined): { type: DriftType; detail: string } {
  if (!want) return { type: 'unmanaged', detail: `${describe(have)} dotfleet wrote, which the source no longer renders` };
  if (!have) return { type: 'missing', detail: `${describe(want)} is rendered but missing` };
  if (want.kind === 'symlink' || have.kind === 'symlink') {
    return { type: 'symlink', detail: `${describe(have)} where the source wants ${describe(want)}` };
  }
  if (want.kind !== have.kind) return { type: 'modified', detail: `${describe(have)} where the source wants ${describe(want)}` };
  if (want.kind === 'file' && have.kind === 'file' && (want.secret || want.sha256 !== have.sha256)) {
    return { type: 'modified', detail: want.secret ? 'content differs from what the last apply decrypted' : 'content differs' };
  }
  return { type: 'permission', detail: `mode ${octal((have as { mode: number }).mode)}, the source wants ${octal(want.mode)}` };
}

/**
 * Every path that is not as the source wants it: rendered paths, and paths the last apply wrote
 * that the source no longer renders (still there: an apply removes them). A path dotfleet never
 * wrote and the source does not render is none of its business.
 */
export function computeDrift(desired: ReadonlyMap<string, Desired>, record: AppliedRecord | undefined, observed: ReadonlyMap<string, Observed>): DriftItem[] {
  const entries = record?.entries ?? {};
  const paths = new Set<string>([...desired.keys(), ...Object.keys(entries)]);
  const out: DriftItem[] = [];
  for (const path of [...paths].sort()) {
    const want = desired.get(path);
    const have = observed.get(path);
    const rec = Object.hasOwn(entries, path) ? entries[path] : undefined;
    if (want ? satisfied(want, have, rec) : !have) continue;
    // A directory that is not rendered any more but still holds files is left in place by apply.
    if (!want && have?.kind === 'dir') continue;
    const { type, detail } = classify(want, have);
    out.push({ path, type, local: rec ? !sameObserved(have, rec) : have !== undefined, source: !sourceUnchanged(want, rec), managed: rec !== undefined, detail });
  }
  return out;
}

export type Step =
  | { op: 'write'; path: string; want: Exclude<Desired, { kind: 'dir' }> }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'remove'; path: string; kind: Observed['kind'] };

export interface Refusal {
  path: string;
  why: string;
}

export interface ApplyPlan {
  steps: Step[];
  /** Paths an apply will not touch without --force, and why; nothing is written while there are any. */
  refusals: Refusal[];
  drift: DriftItem[];
}

/**
 * What an apply does about the drift: writes, directories, modes and removals, in an order that
 * makes parents before children and removes children before parents. It refuses, unless forced,
 * to overwrite or remove what it never wrote or what was changed here since it wrote it (the
 * local change would be lost: `dotfleet heal` can keep it), and never writes over a socket,
 * device or pipe.
 */
export function planApply(desired: ReadonlyMap<string, Desired>, record: AppliedRecord | undefined, observed: ReadonlyMap<string, Observed>, options: { force?: boolean } = {}): ApplyPlan {
  const drift = computeDrift(desired, record, observed);
  const steps: Step[] = [];
  const refusals: Refusal[] = [];
  const removals: Step[] = [];
  for (const d of drift) {
    const want = desired.get(d.path);
    const have = observed.get(d.path);
    if (have?.kind === 'other') {
      refusals.push({ path: d.path, why: `is ${have.what}; dotfleet never writes there (move it away)` });
      continue;
    }
    const dirOverDir = want?.kind === 'dir' && have?.kind === 'dir';
    if (have && d.local && !options.force && !dirOverDir) {
      refusals.push({ path: d.path, why: d.managed ? 'was changed here since the last apply (keep it with dotfleet heal, or pass --force to overwrite it)' : `is ${describe(have)} dotfleet never wrote (move it away, or pass --force to replace it)` });
      continue;
    }
    if (!want) removals.push({ op: 'remove', path: d.path, kind: have!.kind });
    else if (want.kind === 'dir') steps.push(have?.kind === 'dir' ? { op: 'chmod', path: d.path, mode: want.mode } : { op: 'mkdir', path: d.path, mode: want.mode });
    else steps.push({ op: 'write', path: d.path, want });
  }
  // Something in the way of a directory goes first (a file where a directory must be).
  const inWay = steps.filter((s) => s.op === 'mkdir' && observed.get(s.path)).map((s) => ({ op: 'remove' as const, path: s.path, kind: observed.get(s.path)!.kind }));
  steps.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  removals.sort((a, b) => (a.path < b.path ? 1 : a.path > b.path ? -1 : 0));
  return { steps: [...inWay, ...removals, ...steps], refusals, drift };
}

/** Every path an apply's steps touch, and their parents inside the target, for the snapshot. */
export function touchedPaths(plan: ApplyPlan): string[] {
  return [...new Set(plan.steps.map((s) => s.path))].sort();
}
