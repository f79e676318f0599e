/**
 * The state-branch writer: accepted attestations wait up to a window (default 2 s), then go into
 * one commit made with createCommitOnBranch and expectedHeadOid. When the head moved (another
 * replica, a person), it re-reads the branch, rebuilds the commit and tries again with backoff.
 * A submission is answered only once its commit exists. When the writer gives up, it first looks
 * whether its last commit landed after all; each host still waiting is told to come back later,
 * and told that nothing was recorded only when that is certain.
 */
import { digestOf, hostOf, nextState, parseFleetState, serialiseFleetState, sequenceMessage, standing, batchFiles, FLEET_JSON, FLEET_MD, STATE_README, STATE_README_TEXT, type FleetState, type HostRecord, type Submission } from '../../core/state/fleet-state.js';
import { fleetMarkdown, fleetStatus } from '../../core/state/status.js';
import { plural } from '../../core/report/common.js';
import type { RepoRef, StateGitHub } from '../../github/port.js';

export type WriteOutcome =
  | { kind: 'committed'; commit: string; path: string }
  | { kind: 'recorded'; commit: string; path: string }
  | { kind: 'rejected'; code: 'sequence'; message: string }
  | { kind: 'gave-up'; retryAfter: number; message: string };

/** What the commit needs from the default branch at its head. */
export interface Target {
  branch: string;
  commit: string;
  /** Policy hash per inventory host at that commit. */
  policy: Record<string, string>;
  /** Inventory host names, in inventory order. */
  inventory: string[];
}

export interface WriterOptions {
  branch: string;
  /** How long the first submission of a batch waits for others (default 2,000 ms). */
  windowMs: number;
  /** Attestations per commit at most (default 200). */
  maxBatch: number;
  /** Commit attempts before giving up (default 8). */
  maxAttempts: number;
  /** First backoff after a moved head or a failure; doubled each time, with jitter (default 250 ms). */
  backoffMs: number;
  /** Longest single backoff (default 4,000 ms). */
  maxBackoffMs: number;
  /** Retry-After (seconds) given to hosts when the writer gives up (default 30). */
  retryAfterSeconds: number;
  /**
   * Octokit's throttling lets one write (or GraphQL call) through per second. The writer waits
   * this long after its own last commit request before it reads the head, so that the commit
   * follows the read at once instead of a second later (default 1,000 ms; 0 where there is no
   * throttling).
   */
  writeSpacingMs: number;
}

export const DEFAULT_WRITER: Omit<WriterOptions, 'branch'> = { windowMs: 2000, maxBatch: 200, maxAttempts: 8, backoffMs: 250, maxBackoffMs: 4000, retryAfterSeconds: 30, writeSpacingMs: 1000 };

/** Longest time followers of the branch go without hearing of a commit while commits keep coming. */
const ANNOUNCE_MS = 30_000;

/** Tries to start the state branch when GitHub says it exists but reading it finds nothing. */
const ORPHAN_TRIES = 3;

interface Pending {
  sub: Submission;
  arrived: number;
  /** Part of a commit request already: if that request landed unanswered, it is ours. */
  attempted: boolean;
  promise: Promise<WriteOutcome>;
  resolve: (o: WriteOutcome) => void;
}

export interface WriterLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface WriterStats {
  commits: number;
  staleHeads: number;
  failures: number;
  attestations: number;
  /** Commit requests per batch that landed, by how many requests it took (1 = first try). */
  triesPerBatch: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class StateWriter {
  private queue: Pending[] = [];
  private byPath = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private viewing: Promise<{ head?: string; state: FleetState }> | undefined;
  /** The branch as last read or written. */
  view: { head?: string; state: FleetState } | undefined;
  readonly stats: WriterStats = { commits: 0, staleHeads: 0, failures: 0, attestations: 0, triesPerBatch: [] };
  private lastWriteAt = 0;
  private unannounced: FleetState | undefined;
  private announcedAt = Date.now();
  private tries = 0;
  /** Called after the last commit of a burst, and at least every 30 s under steady traffic (the dashboard follows it). */
  onCommit?: (state: FleetState) => void;
  /** Our recent commits and the head each was made on: a stretch of the branch only we moved. */
  readonly ownCommits = new Map<string, string>();
  /** The current rollout as markdown for FLEET.md, when there is one. */
  rolloutMarkdown?: (state: FleetState) => string | undefined;
  /** Each host's target under the current rollout (the default branch's head when there is none). */
  rolloutTargets?: () => ((host: string) => string | undefined) | undefined;

  constructor(
    private readonly port: () => Promise<StateGitHub>,
    private readonly ref: RepoRef,
    private readonly options: WriterOptions,
    /** The default branch's head and what the commit records about it (the trust the attestations were verified against). */
    private readonly target: () => Promise<Target>,
    private readonly log: WriterLog,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** The branch's state, read once and then kept up to date by our own commits. */
  async current(): Promise<{ head?: string; state: FleetState }> {
    if (this.view) return this.view;
    this.viewing ??= (async () => {
      try {
        const port = await this.port();
        const head = await port.branchHead(this.ref, this.options.branch);
        const state = head ? parseFleetState(await port.readFile(this.ref, head, FLEET_JSON)) : parseFleetState(undefined);
        this.view ??= { head, state };
        return this.view;
      } finally {
        this.viewing = undefined;
      }
    })();
    return this.viewing;
  }

  /** Where a record stands on the branch as we know it (before it is queued). */
  async lookUp(record: HostRecord): Promise<{ head?: string; found: Found }> {
    const view = await this.current();
    return { head: view.head, found: await lookUp(this.port, this.ref, view.head, view.state, record) };
  }

  /** Queue an accepted attestation; the answer comes once it is in a commit (or never will be). */
  submit(sub: Submission): Promise<WriteOutcome> {
    const same = this.byPath.get(sub.record.path);
    if (same && same.sub.record.digest === sub.record.digest) return same.promise;
    let resolve!: (o: WriteOutcome) => void;
    const promise = new Promise<WriteOutcome>((r) => (resolve = r));
    const p: Pending = { sub, arrived: Date.now(), attempted: false, promise, resolve };
    if (!same) this.byPath.set(sub.record.path, p);
    this.queue.push(p);
    // A full batch need not wait out the window.
    if (this.timer && this.queue.length >= this.options.maxBatch) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.schedule();
    return promise;
  }

  /** Waiting submissions (for tests and the benchmark). */
  get pending(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.timer || this.running || this.queue.length === 0) return;
    // A full batch goes at once; otherwise the first waits up to the window for company.
    const wait = this.queue.length >= this.options.maxBatch ? 0 : Math.max(0, this.queue[0]!.arrived + this.options.windowMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
  }

  private async flush(): Promise<void> {
    this.running = true;
    const batch = this.queue.splice(0, this.options.maxBatch);
    try {
      await this.commitBatch(batch);
    } catch (e) {
      // A programming error: answer every waiting host rather than leave it hanging.
      this.log.warn(`state writer: ${(e as Error).stack ?? e}`);
      for (const p of batch) this.settle(p, { kind: 'gave-up', retryAfter: this.options.retryAfterSeconds, message: 'the app could not record the attestation' });
    } finally {
      this.running = false;
      // Followers (the dashboard) hear of the last commit of a burst: a write of theirs would take
      // the write slot (Octokit spaces writes a second apart) the next batch's commit waits for.
      // Under steady traffic they still hear at least every ANNOUNCE_MS.
      if (this.unannounced && (this.queue.length === 0 || Date.now() - this.announcedAt > ANNOUNCE_MS)) {
        const state = this.unannounced;
        this.unannounced = undefined;
        this.announcedAt = Date.now();
        this.onCommit?.(state);
      }
      this.schedule();
    }
  }

  private settle(p: Pending, o: WriteOutcome): void {
    if (this.byPath.get(p.sub.record.path) === p) this.byPath.delete(p.sub.record.path);
    p.resolve(o);
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    let open = batch;
    let lastError = '';
    this.tries = 0;
    for (let attempt = 0; open.length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt >= this.options.maxAttempts) break;
        const cap = Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** (attempt - 1));
        await sleep(cap / 2 + Math.random() * (cap / 2));
      }
      try {
        open = await this.attempt(open);
      } catch (e) {
        this.stats.failures++;
        lastError = (e as Error).message;
        this.log.warn(`state writer: attempt ${attempt + 1} failed: ${lastError}`);
        this.view = undefined;
      }
    }
    if (open.length === 0) return;
    // The last commit request may have landed although its answer was lost: look before saying
    // that nothing was recorded.
    let unsure = open.some((p) => p.attempted);
    if (unsure) {
      try {
        open = await this.settleRecorded(open);
        unsure = false;
      } catch (e) {
        this.log.warn(`state writer: cannot read ${this.options.branch} to see whether the last commit landed: ${(e as Error).message}`);
      }
    }
    if (open.length === 0) return;
    this.log.warn(`state writer: gave up on ${plural(open.length, 'attestation')} after ${this.options.maxAttempts} attempts`);
    const why = lastError || 'the branch kept moving';
    for (const p of open) {
      this.settle(p, {
        kind: 'gave-up',
        retryAfter: this.options.retryAfterSeconds,
        message:
          unsure && p.attempted
            ? `the app could not confirm its commit to ${this.options.branch} (${why}); the attestation may have been recorded: send the same attestation again later (it is answered "already-recorded" if it was)`
            : `the app could not commit to ${this.options.branch} (${why}); nothing was recorded, send it again later`,
      });
    }
  }

  /** Answer those of `open` that are on the branch now; returns the rest. */
  private async settleRecorded(open: Pending[]): Promise<Pending[]> {
    const port = await this.port();
    const head = await port.branchHead(this.ref, this.options.branch);
    if (!head) return open;
    const state = parseFleetState(await port.readFile(this.ref, head, FLEET_JSON));
    this.view = { head, state };
    const rest: Pending[] = [];
    for (const p of open) {
      const found = await lookUp(async () => port, this.ref, head, state, p.sub.record);
      if (found.kind === 'recorded') this.settle(p, { kind: p.attempted ? 'committed' : 'recorded', commit: head, path: p.sub.record.path });
      else rest.push(p);
    }
    return rest;
  }

  /** One try: read the branch, sort the batch against it, commit. Returns what is still open. */
  private async attempt(open: Pending[]): Promise<Pending[]> {
    const port = await this.port();
    // Let the throttle's write slot come free first, so that nothing sits between read and commit.
    const wait = this.lastWriteAt + this.options.writeSpacingMs - Date.now();
    if (wait > 0) await sleep(wait);
    let stateHead = await port.branchHead(this.ref, this.options.branch);
    for (let i = 0; !stateHead; i++) {
      if (i >= ORPHAN_TRIES) throw new Error(`GitHub says ${this.options.branch} exists, but it cannot be read`);
      const made = await port.createOrphanBranch(this.ref, this.options.branch, 'dotfleet: start the state branch', [{ path: STATE_README, contents: Buffer.from(STATE_README_TEXT) }]);
      this.lastWriteAt = Date.now();
      this.log.info(made === 'exists' ? `${this.options.branch} was created meanwhile` : `created ${this.options.branch} at ${made}`);
      stateHead = made === 'exists' ? await port.branchHead(this.ref, this.options.branch) : made;
    }
    const head = stateHead;
    // fleet.json's bytes at the head (undefined when it has none yet): ours when we wrote it last.
    const base = this.view?.head === head ? serialiseFleetState(this.view.state) : await port.readFile(this.ref, head, FLEET_JSON);
    const state = this.view?.head === head ? this.view.state : parseFleetState(base);
    this.view = { head, state };

    const toAdd: Pending[] = [];
    const sequences = new Set<string>();
    for (const p of open) {
      const r = p.sub.record;
      const found = await lookUp(async () => port, this.ref, head, state, r);
      const key = `${hostOf(r)}#${r.sequence}`;
      if (found.kind === 'recorded') this.settle(p, { kind: p.attempted ? 'committed' : 'recorded', commit: head, path: r.path });
      else if (found.kind === 'replay') this.settle(p, { kind: 'rejected', code: 'sequence', message: sequenceMessage(hostOf(r), r.sequence, found.last) });
      else if (sequences.has(key)) this.settle(p, { kind: 'rejected', code: 'sequence', message: `another attestation with sequence ${r.sequence} for ${hostOf(r)} is being recorded` });
      else {
        sequences.add(key);
        toAdd.push(p);
      }
    }
    if (toAdd.length === 0) return [];

    const target = await this.target();
    const now = this.clock().toISOString();
    const next = nextState(state, toAdd.map((p) => p.sub.record), { branch: target.branch, commit: target.commit }, target.policy, now);
    const status = fleetStatus(next, target.inventory, this.rolloutTargets?.());
    const files = [...batchFiles(toAdd.map((p) => p.sub), next), { path: FLEET_MD, contents: Buffer.from(fleetMarkdown(next, status, this.rolloutMarkdown?.(next))) }];
    const hosts = [...new Set(toAdd.map((p) => hostOf(p.sub.record)))];
    const headline = toAdd.length === 1 ? `attest: ${hosts[0]} #${toAdd[0]!.sub.record.sequence}` : `attest: ${plural(toAdd.length, 'attestation')} from ${plural(hosts.length, 'host')}`;
    const body = [status.line, '', ...toAdd.map((p) => `${p.sub.record.path} ${p.sub.record.status} ${p.sub.record.appliedCommit.slice(0, 12)}`)].join('\n');
    // Building the commit took time; another writer may have moved the head meanwhile. If all it
    // changed is beside fleet.json (a person's note, a README), our files are as right on its new
    // head as on the old: commit on that one rather than lose the race again.
    let expected = head;
    const now2 = await port.branchHead(this.ref, this.options.branch);
    if (now2 !== head) {
      const theirs = now2 ? await port.readFile(this.ref, now2, FLEET_JSON) : undefined;
      const same = theirs === undefined || base === undefined ? theirs === base : Buffer.from(theirs).equals(Buffer.from(base));
      if (!now2 || !same) {
        this.stats.staleHeads++;
        this.view = undefined;
        return toAdd;
      }
      expected = now2;
    }
    for (const p of toAdd) p.attempted = true;
    this.tries++;
    const made = await port.commitOnBranch(this.ref, this.options.branch, expected, { headline, body }, files);
    // The throttle spaces the starts of writes; when this one started inside Octokit is unknown,
    // but it was before its answer came.
    this.lastWriteAt = Date.now();
    if (made === 'stale') {
      this.stats.staleHeads++;
      this.log.info(`state writer: ${this.options.branch} moved from ${head.slice(0, 7)}; rebuilding`);
      this.view = undefined;
      return toAdd;
    }
    this.stats.commits++;
    this.stats.triesPerBatch.push(this.tries);
    this.stats.attestations += toAdd.length;
    this.view = { head: made, state: next };
    this.ownCommits.set(made, expected);
    while (this.ownCommits.size > 256) this.ownCommits.delete(this.ownCommits.keys().next().value!);
    for (const p of toAdd) this.settle(p, { kind: 'committed', commit: made, path: p.sub.record.path });
    this.unannounced = next;
    return [];
  }
}

/** `recorded`: this very attestation is on the branch; `replay`: the host's sequence is past it; `new`. */
export type Found = { kind: 'recorded' } | { kind: 'replay'; last: number } | { kind: 'new' };

/**
 * Where a record stands at `head` of the branch whose fleet.json is `state`. Only an older
 * sequence costs a read: its file is either this attestation (already recorded) or a replay.
 */
async function lookUp(port: () => Promise<StateGitHub>, ref: RepoRef, head: string | undefined, state: FleetState, record: HostRecord): Promise<Found> {
  const where = standing(state, record);
  if (where !== 'maybe-recorded') return { kind: where };
  const bytes = head ? await (await port()).readFile(ref, head, record.path) : undefined;
  if (bytes !== undefined && digestOf(bytes) === record.digest) return { kind: 'recorded' };
  return { kind: 'replay', last: state.hosts[hostOf(record)]!.sequence };
}
