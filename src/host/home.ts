/**
 * The home directory as dotfleet reads and writes it: paths confined to the target (no `..`, no
 * absolute path, never through a symbolic link), observations without following links, atomic
 * writes (a temporary file in the same directory, fsync, rename), snapshots of every path an apply
 * touches, a journal that lets the next start finish what a killed apply began (by undoing it), and
 * the record of what was applied. Everything lives under the state directory:
 *
 *   <state>/<host>/applied.json          the last apply (AppliedRecord)
 *   <state>/<host>/journal.json          present only while an apply or rollback is under way
 *   <state>/<host>/snapshots/<id>/       manifest.json and files/N: the paths before an apply
 */
import { randomBytes } from 'node:crypto';
import { constants, lstatSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, open, readdir, readFile, realpath, rename, rm, rmdir, symlink, unlink } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { DotfleetError } from '../core/errors.js';
import { sha256, type AppliedRecord, type Observed, type Step } from '../core/drift.js';

/** Snapshots kept after an apply: the newest ones (docs/host.md). */
export const SNAPSHOTS_KEPT = 10;

/** A file-system failure, named by path, as a user error (never a stack trace). */
export function fsFailure(e: unknown, path: string, doing: string): never {
  const err = e as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    ENOTDIR: 'a parent is not a directory',
    EISDIR: 'is a directory',
    ENOTEMPTY: 'is a directory that is not empty',
    ELOOP: 'too many symbolic links',
    EEXIST: 'something is in the way',
  };
  if (err?.code && why[err.code]) throw new DotfleetError('usage', `cannot ${doing} ${path}: ${why[err.code]}`);
  throw e;
}

/** A rendered path as it may be written: relative, no empty, `.` or `..` component, no NUL. */
export function checkRelative(path: string): void {
  const bad = path === '' || path.startsWith('/') || path.includes('\0') || path.split('/').some((c) => c === '' || c === '.' || c === '..');
  if (bad) throw new DotfleetError('usage', `refusing the path "${path.replace(/\0/g, '\\0')}": it must stay inside the target directory`, { file: path });
}

/** The home directory, resolved once (it may itself be reached through a link, like /home on some systems). */
export async function openTarget(dir: string): Promise<string> {
  try {
    const real = await realpath(dir);
    if (!(await lstat(real)).isDirectory()) throw new DotfleetError('usage', `the target ${dir} is not a directory`, { file: dir });
    return real;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DotfleetError('usage', `the target ${dir} does not exist`, { file: dir, hint: 'pass --target with your home directory (the default)' });
    return fsFailure(e, dir, 'open');
  }
}

/**
 * Reads what is at paths under a target without following links, and says which parent of a
 * path is a link (dotfleet never reads or writes through one). Parent checks are cached.
 */
export class Home {
  private readonly parents = new Map<string, string | null>();
  constructor(readonly root: string) {}

  abs(path: string): string {
    checkRelative(path);
    return join(this.root, ...path.split('/'));
  }

  /** The first parent of `path` inside the target that is a symbolic link, or null. */
  async blockedParent(path: string): Promise<string | null> {
    return this.blockedParentSync(path);
  }

  /** Synchronous: a drift check reads hundreds of paths, and one event-loop turn per lstat costs more than the lstat. */
  private blockedParentSync(path: string): string | null {
    const parts = path.split('/');
    let at = '';
    for (let i = 0; i < parts.length - 1; i++) {
      at = at ? `${at}/${parts[i]}` : parts[i]!;
      let known = this.parents.get(at);
      if (known === undefined) {
        let info: Stats | undefined;
        try {
          info = lstatSync(join(this.root, ...at.split('/')));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') fsFailure(e, at, 'read');
        }
        // A missing parent stays unknown: it may be made later.
        if (!info) return null;
        // A file where a directory should be is not a link: what is under it is simply missing.
        known = info.isSymbolicLink() ? `${at} is a symbolic link` : null;
        this.parents.set(at, known);
      }
      if (known) return known;
    }
    return null;
  }

  forget(): void {
    this.parents.clear();
  }

  /** What is at `path`, or undefined. A path behind a link is `other`: never read, never written. */
  async observe(path: string): Promise<Observed | undefined> {
    return this.observeSync(path);
  }

  private observeSync(path: string): Observed | undefined {
    const blocked = this.blockedParentSync(path);
    if (blocked) return { kind: 'other', what: `behind a link: ${blocked}` };
    const abs = this.abs(path);
    let info: Stats;
    try {
      info = lstatSync(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      return fsFailure(e, abs, 'read');
    }
    if (info.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(abs) };
    if (info.isDirectory()) return { kind: 'dir', mode: info.mode & 0o7777 };
    if (!info.isFile()) return { kind: 'other', what: 'a socket, device or pipe' };
    let bytes: Buffer;
    try {
      bytes = readFileSync(abs);
    } catch (e) {
      return fsFailure(e, abs, 'read');
    }
    return { kind: 'file', mode: info.mode & 0o7777, sha256: sha256(bytes) };
  }

  async observeAll(paths: Iterable<string>): Promise<Map<string, Observed>> {
    const out = new Map<string, Observed>();
    for (const p of paths) {
      const o = this.observeSync(p);
      if (o) out.set(p, o);
    }
    return out;
  }

  /** mkdir -p for the parents of `path` inside the target (mode 0755 less the umask). */
  async makeParents(path: string): Promise<void> {
    const parts = path.split('/');
    let at = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      at = join(at, parts[i]!);
      try {
        await mkdir(at);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') fsFailure(e, at, 'make the directory');
        const info = await lstat(at);
        if (!info.isDirectory()) throw new DotfleetError('usage', `cannot write ${path}: ${at} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}`, { file: at });
      }
    }
  }

  /** Replace `path` with `bytes` (mode) or a link, atomically: a temporary name in the same directory, then rename. */
  async put(path: string, what: { bytes: Uint8Array; mode: number } | { target: string }): Promise<void> {
    const blocked = await this.blockedParent(path);
    if (blocked) throw new DotfleetError('usage', `refusing to write ${path}: ${blocked} (dotfleet never writes through a link)`, { file: path });
    await this.makeParents(path);
    const abs = this.abs(path);
    const tmp = join(dirname(abs), `.${abs.slice(abs.lastIndexOf(sep) + 1)}.dotfleet-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      if ('target' in what) await symlink(what.target, tmp);
      else {
        // Created 0600 and never wider than asked: a secret is never readable by others, not even for a moment.
        const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        try {
          await fh.writeFile(what.bytes);
          await fh.chmod(what.mode);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      const there = await lstat(abs).catch(() => undefined);
      if (there?.isDirectory()) await rmdir(abs);
      await rename(tmp, abs);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      if (e instanceof DotfleetError) throw e;
      fsFailure(e, abs, 'write');
    }
  }

  async makeDir(path: string, mode: number): Promise<void> {
    const blocked = await this.blockedParent(path);
    if (blocked) throw new DotfleetError('usage', `refusing to make ${path}: ${blocked} (dotfleet never writes through a link)`, { file: path });
    await this.makeParents(path);
    const abs = this.abs(path);
    await mkdir(abs).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : fsFailure(e, abs, 'make the directory')));
    await chmod(abs, mode).catch((e) => fsFailure(e, abs, 'set the mode of'));
  }

  /** Remove a file or link; a directory only when empty (true when something was removed). */
  async remove(path: string): Promise<boolean> {
    if (await this.blockedParent(path)) return false;
    const abs = this.abs(path);
    const info = await lstat(abs).catch(() => undefined);
    if (!info) return false;
    if (info.isDirectory()) {
      try {
        await rmdir(abs);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        return fsFailure(e, abs, 'remove');
      }
    }
    await unlink(abs).catch((e) => fsFailure(e, abs, 'remove'));
    return true;
  }

  /** Remove the temporary files of writes that never finished, next to these paths. */
  async removeTemporaries(paths: Iterable<string>): Promise<void> {
    const dirs = new Set<string>();
    for (const p of paths) if (!(await this.blockedParent(p))) dirs.add(dirname(this.abs(p)));
    for (const d of dirs) {
      for (const name of await readdir(d).catch(() => [] as string[])) {
        if (/^\..+\.dotfleet-\d+-[0-9a-f]{8}$/.test(name)) await rm(join(d, name), { force: true });
      }
    }
  }

  /** fsync the directories that hold these paths, so the renames themselves survive a power cut. */
  async syncDirs(paths: Iterable<string>): Promise<void> {
    const dirs = new Set<string>();
    for (const p of paths) dirs.add(dirname(this.abs(p)));
    for (const d of dirs) {
      const fh = await open(d, constants.O_RDONLY).catch(() => undefined);
      if (!fh) continue;
      await fh.sync().catch(() => undefined);
      await fh.close();
    }
  }
}

/** A path before an apply: what a rollback puts back. */
export type SnapshotEntry = { kind: 'absent' } | { kind: 'file'; mode: number; blob: string } | { kind: 'symlink'; target: string } | { kind: 'dir'; mode: number };

export interface SnapshotManifest {
  version: 1;
  id: string;
  host: string;
  target: string;
  createdAt: string;
  /** The commit the apply that took it was about to write. */
  applying: string | null;
  /** The record before the apply (null: nothing was applied before). */
  record: AppliedRecord | null;
  entries: Record<string, SnapshotEntry>;
}

interface Journal {
  op: 'apply' | 'rollback';
  /** The snapshots to restore, newest first, when the operation is found unfinished. */
  snapshots: string[];
  /** For an apply: the record it writes last; if that record is in place, the apply finished. */
  renderHash?: string;
  startedAt: string;
}

async function writeAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    const dir = await open(dirname(file), constants.O_RDONLY);
    await dir.sync().catch(() => undefined);
    await dir.close();
  } catch (e) {
    // The state directory is the user's to fix (--state-dir): say which file, never a stack trace.
    fsFailure(e, file, 'write the state file');
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return fsFailure(e, file, 'read');
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new DotfleetError('usage', `${file} is not valid JSON: the state directory was edited or damaged`, { file, hint: 'move it away; dotfleet treats the host as never applied then' });
  }
}

/** A snapshot id: a sequence number (so ids sort in the order applies ran) and the UTC time. */
export function snapshotId(sequence: number, now = new Date()): string {
  return `${String(sequence).padStart(6, '0')}-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

/** The host's state under the state directory: record, journal, snapshots. */
export class HostState {
  readonly dir: string;
  constructor(stateDir: string, readonly host: string) {
    this.dir = join(stateDir, host);
  }
  private get recordFile() {
    return join(this.dir, 'applied.json');
  }
  private get journalFile() {
    return join(this.dir, 'journal.json');
  }
  snapshotDir(id: string): string {
    return join(this.dir, 'snapshots', id);
  }

  async record(): Promise<AppliedRecord | undefined> {
    return readJson<AppliedRecord>(this.recordFile);
  }
  async saveRecord(record: AppliedRecord | null): Promise<void> {
    if (record) await writeAtomic(this.recordFile, JSON.stringify(record, null, 2) + '\n');
    else await rm(this.recordFile, { force: true });
  }
  async journal(): Promise<Journal | undefined> {
    return readJson<Journal>(this.journalFile);
  }
  async startJournal(j: Journal): Promise<void> {
    await writeAtomic(this.journalFile, JSON.stringify(j) + '\n');
  }
  async endJournal(): Promise<void> {
    await rm(this.journalFile, { force: true });
  }

  /** Snapshot ids, oldest first (only complete ones: a manifest is written last). */
  async snapshots(): Promise<SnapshotManifest[]> {
    const root = join(this.dir, 'snapshots');
    const ids = await readdir(root).catch(() => [] as string[]);
    const out: SnapshotManifest[] = [];
    for (const id of ids.sort()) {
      // An unreadable manifest is an error naming it: a snapshot may be all that is left of a file.
      const m = await readJson<SnapshotManifest>(join(root, id, 'manifest.json'));
      if (m) out.push(m);
      // A snapshot without its manifest was cut off before the apply began: nothing refers to it.
      else await rm(join(root, id), { recursive: true, force: true });
    }
    return out;
  }

  /** Copy what is at each path now into a new snapshot (files 0600 in a 0700 directory: they may hold secrets). */
  async takeSnapshot(home: Home, paths: string[], record: AppliedRecord | undefined, applying: string | null): Promise<SnapshotManifest> {
    const taken = await readdir(join(this.dir, 'snapshots')).catch(() => [] as string[]);
    const id = snapshotId(1 + Math.max(0, ...taken.map((n) => Number.parseInt(n, 10)).filter(Number.isFinite)));
    const dir = this.snapshotDir(id);
    await mkdir(join(dir, 'files'), { recursive: true, mode: 0o700 }).catch((e) => fsFailure(e, dir, 'make the snapshot directory'));
    const entries: Record<string, SnapshotEntry> = {};
    let n = 0;
    for (const path of paths) {
      const o = await home.observe(path);
      if (!o) entries[path] = { kind: 'absent' };
      else if (o.kind === 'file') {
        const blob = `files/${n++}`;
        await copyFile(home.abs(path), join(dir, blob)).catch((e) => fsFailure(e, home.abs(path), 'snapshot'));
        await chmod(join(dir, blob), 0o600);
        entries[path] = { kind: 'file', mode: o.mode, blob };
      } else if (o.kind === 'symlink') entries[path] = { kind: 'symlink', target: o.target };
      else if (o.kind === 'dir') entries[path] = { kind: 'dir', mode: o.mode };
      else throw new DotfleetError('usage', `cannot snapshot ${path}: ${o.what}`, { file: path });
    }
    const manifest: SnapshotManifest = { version: 1, id, host: this.host, target: home.root, createdAt: new Date().toISOString(), applying, record: record ?? null, entries };
    await writeAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  }

  /** Put every path of a snapshot back as it was: bytes, modes, links; remove what was absent. */
  async restore(home: Home, m: SnapshotManifest): Promise<string[]> {
    const done: string[] = [];
    const paths = Object.keys(m.entries).sort();
    // Temporary files a killed write left behind (they were never renamed into place).
    await home.removeTemporaries(paths);
    // Remove what was not there, children before parents.
    for (const p of [...paths].reverse()) {
      if (m.entries[p]!.kind !== 'absent') continue;
      const o = await home.observe(p);
      if (o && o.kind !== 'other' && (await home.remove(p))) done.push(`removed ${p}`);
    }
    home.forget();
    for (const p of paths) {
      const e = m.entries[p]!;
      if (e.kind === 'absent') continue;
      if (e.kind === 'dir') await home.makeDir(p, e.mode);
      else if (e.kind === 'symlink') await home.put(p, { target: e.target });
      else {
        const blob = join(this.snapshotDir(m.id), e.blob);
        await home.put(p, { bytes: await readFile(blob).catch((err) => fsFailure(err, blob, 'read the snapshot file')), mode: e.mode });
      }
      done.push(`restored ${p}`);
    }
    await home.syncDirs(paths);
    await this.saveRecord(m.record);
    return done;
  }

  async dropSnapshot(id: string): Promise<void> {
    await rm(this.snapshotDir(id), { recursive: true, force: true });
  }

  /** Keep the newest SNAPSHOTS_KEPT snapshots. */
  async prune(keep = SNAPSHOTS_KEPT): Promise<number> {
    const all = await this.snapshots();
    const old = all.slice(0, Math.max(0, all.length - keep));
    for (const m of old) await this.dropSnapshot(m.id);
    return old.length;
  }

  /**
   * Finish what a killed apply or rollback left: an apply whose record is in place finished (only
   * the journal is left to remove); any other is undone from its snapshot. Returns what was done.
   */
  async recover(home: Home): Promise<string | undefined> {
    const j = await this.journal();
    if (!j) return undefined;
    const record = await this.record();
    if (j.op === 'apply' && record && record.renderHash === j.renderHash && record.snapshot === j.snapshots[0]) {
      await this.endJournal();
      return `an apply started ${j.startedAt} was cut off after it finished writing; its record is in place`;
    }
    const all = new Map((await this.snapshots()).map((m) => [m.id, m]));
    for (const id of j.snapshots) {
      const m = all.get(id);
      // A rollback drops each snapshot once it is restored: a missing one was done.
      if (!m && j.op === 'rollback') continue;
      if (!m) throw new DotfleetError('usage', `an ${j.op} started ${j.startedAt} was cut off, and its snapshot ${id} is gone`, { file: this.journalFile, hint: 'check the files it names by hand, then remove the journal file' });
      await this.restore(home, m);
      await this.dropSnapshot(id);
    }
    await this.endJournal();
    return `an ${j.op} started ${j.startedAt} was cut off: ${j.op === 'apply' ? 'undone, every path it touched is as before it' : 'finished'}`;
  }
}

/** Carry out a plan's steps; `contentOf` gives a file's bytes (decrypted on the host for secret files). */
export async function runSteps(home: Home, steps: Step[], contentOf: (step: Extract<Step, { op: 'write' }>) => Promise<Uint8Array> | Uint8Array, log: (line: string) => void): Promise<void> {
  for (const s of steps) {
    if (s.op === 'remove') {
      if (await home.remove(s.path)) log(`removed  ${s.path}`);
      else if (s.kind === 'dir') log(`kept     ${s.path}/ (not empty)`);
    } else if (s.op === 'mkdir') {
      await home.makeDir(s.path, s.mode);
      log(`made     ${s.path}/`);
    } else if (s.op === 'chmod') {
      await home.makeDir(s.path, s.mode);
      log(`mode     ${s.path}/ ${s.mode.toString(8).padStart(4, '0')}`);
    } else if (s.want.kind === 'symlink') {
      await home.put(s.path, { target: s.want.target });
      log(`linked   ${s.path} -> ${s.want.target}`);
    } else {
      await home.put(s.path, { bytes: await contentOf(s), mode: s.want.mode });
      log(`wrote    ${s.path}${s.want.secret ? ' (secret, 0600)' : ''}`);
    }
  }
  await home.syncDirs(steps.map((s) => s.path));
}
