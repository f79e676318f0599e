/**
 * Attestation intake: from a host's signed bytes to a commit on the state branch.
 *
 * Order of checks (cheap and unauthenticated first): the host name, the repository, the trust at
 * the default branch, the signature, payload and signer (issued-at must be a real instant), the
 * subject, a status its evidence contradicts, the host's own rate, then a look-up on the state
 * branch (an attestation already recorded is answered 200 whatever its age), freshness, replay,
 * the render check, and the writer. Every refusal is an `IntakeReply` with its
 * HTTP status and a stable `code`, and none of them reaches the writer.
 */
import { statusContradiction, subjectName, type Statement } from '../../core/attestation/format.js';
import { freshness, type VerdictCode } from '../../core/attestation/verify.js';
import { policyHash } from '../../core/attestation/policy.js';
import { isDotfleetError } from '../../core/errors.js';
import { loadFleet, type Fleet } from '../../core/fleet.js';
import { HOST_NAME } from '../../core/inventory.js';
import { parseAllowedSigners } from '../../core/ssh/allowed-signers.js';
import { canonicalArmour } from '../../core/ssh/sshsig.js';
import { defaultPoolSize, VerifyPool, type TrustSet } from './verify-pool.js';
import { hostRecord, sequenceMessage, type FleetState, type RenderCheck } from '../../core/state/fleet-state.js';
import { parseDuration } from '../../core/state/dashboard.js';
import { fleetStatus } from '../../core/state/status.js';
import type { HostHash, KnownHashes } from '../../core/state/render-check.js';
import { UnknownCommitError, type RepoRef, type StateGitHub } from '../../github/port.js';
import type { ComputeRenderHashes } from '../compute.js';
import { DashboardIssue, type Rider } from './dashboard.js';
import { RateLimiter, type RateLimit } from './rate-limit.js';
import { DEFAULT_WRITER, StateWriter, type Target, type WriterLog, type WriterOptions } from './writer.js';

export interface IntakeReply {
  status: number;
  body: { code: string; message: string; [k: string]: unknown };
  headers?: Record<string, string>;
}

export interface IntakeOptions {
  /** Largest request body (default 256 KiB). */
  maxBytes: number;
  /** Oldest acceptable issued-at (default 1 hour) and tolerated clock skew (default 5 minutes). */
  maxAgeSeconds: number;
  maxSkewSeconds: number;
  perHost: RateLimit;
  perAddress: RateLimit;
  /** Re-read the default branch's head at least this often, besides on push (default 5 minutes). */
  trustTtlMs: number;
  writer: Omit<WriterOptions, 'branch'>;
  /** Shortest time between two edits of the dashboard issue (default 10 s). */
  dashboardIntervalMs: number;
  /**
   * How long an edit of the dashboard waits for later news before it is made (default 2 s): an
   * attestation's commit and the rollout decision it leads to make one edit, not two.
   */
  dashboardDelayMs: number;
  renderHashes: ComputeRenderHashes;
  clock: () => Date;
  /** Verification workers (default: the machine's cores less one, 1 to 4; 0 verifies in-process). */
  verifyWorkers?: number;
}

export const DEFAULT_INTAKE: Omit<IntakeOptions, 'renderHashes'> = {
  maxBytes: 256 * 1024,
  maxAgeSeconds: 3600,
  maxSkewSeconds: 300,
  perHost: { perMinute: 12, burst: 6 },
  perAddress: { perMinute: 600, burst: 300 },
  trustTtlMs: 5 * 60_000,
  writer: DEFAULT_WRITER,
  dashboardIntervalMs: 10_000,
  dashboardDelayMs: 2_000,
  clock: () => new Date(),
};

export interface Submitted {
  owner: string;
  repo: string;
  host: string;
  payload: Buffer;
  signature: string;
}

/** The trust read from the default branch at one commit. */
export interface Trust {
  loadedAt: number;
  fleet: Fleet;
  signers: TrustSet;
  target: Target;
}

export interface IntakeStats {
  verified: number;
  verifyNs: bigint;
  rejected: Record<string, number>;
}

const reply = (status: number, code: string, message: string, extra: Record<string, unknown> = {}, headers?: Record<string, string>): IntakeReply => ({ status, body: { code, message, ...extra }, headers });

/** HTTP status for each verification verdict. */
export function statusForVerdict(code: VerdictCode): number {
  switch (code) {
    case 'payload-encoding':
    case 'payload-bom':
    case 'payload-crlf':
    case 'payload-json':
    case 'armour':
    case 'truncated':
    case 'malformed':
    case 'trailing-bytes':
    case 'version':
      return 400;
    case 'payload-schema':
    case 'payload-form':
      return 422;
    case 'signature':
    case 'key-type':
    case 'hash-algorithm':
    case 'unknown-key':
    case 'not-yet-valid':
    case 'expired':
    case 'cert-authority':
      return 401;
    case 'namespace':
    case 'namespace-not-allowed':
    case 'principal':
    case 'host-mismatch':
      return 403;
    case 'stale':
    case 'future':
    case 'sequence':
      return 409;
    case 'verified':
      return 200;
  }
}

/** Refusals about the signer's trust now, not about the bytes: a recorded attestation can meet them later. */
const TRUST_REFUSALS = new Set<VerdictCode>(['unknown-key', 'principal', 'expired', 'not-yet-valid', 'namespace-not-allowed', 'cert-authority']);

export class RepoIntake {
  private trustNow: Trust | undefined;
  private trustLoading: Promise<Trust> | undefined;
  private stale = false;
  /** The state branch's head as the last read of the heads found it, and when. */
  private stateSeen: { head: string | undefined; at: number } | undefined;

  /**
   * The state branch's head from a read of the heads at most `maxAgeMs` ago (a hint: a writer
   * using it still compares and swaps, so a head that moved since costs one retry).
   */
  recentStateHead(maxAgeMs: number): { head: string | undefined } | undefined {
    return this.stateSeen && Date.now() - this.stateSeen.at <= maxAgeMs ? { head: this.stateSeen.head } : undefined;
  }
  /** Per commit: every host's render hash, or why there are none. */
  private readonly renders = new Map<string, Promise<{ kind: 'hashes'; hashes: Record<string, HostHash> } | { kind: 'unknown-commit' | 'render-error' }>>();
  private writerFor: { branch: string; writer: StateWriter } | undefined;
  readonly dashboard: DashboardIssue;
  /** Told after the writer's commits land (the rollout's gates follow them). */
  onCommitted?: (state: FleetState) => void;
  /** The current rollout as markdown, for FLEET.md and the dashboard. */
  rolloutMarkdown?: (state: FleetState) => string | undefined;
  /** The current rollout for the dashboard issue: the markdown and its checkboxes (else rolloutMarkdown). */
  rolloutDashboard?: (state: FleetState) => string | undefined;
  /** Each host's target under the current rollout, for the status rows. */
  rolloutTargets?: () => ((host: string) => string | undefined) | undefined;

  constructor(
    readonly ref: RepoRef,
    private readonly port: () => Promise<StateGitHub>,
    private readonly options: IntakeOptions,
    private readonly log: WriterLog,
  ) {
    this.dashboard = new DashboardIssue(port, ref, log, options.dashboardIntervalMs, options.dashboardDelayMs);
  }

  /** A push to the default branch: the next submission re-reads the trust. */
  invalidate(): void {
    this.stale = true;
  }

  /** Re-read the trust unless it is at `commit` already, or being read (a push just asked for it). */
  invalidateUnlessAt(commit: string): void {
    if (!this.trustLoading && this.trustNow?.target.commit !== commit) this.stale = true;
  }

  async trust(): Promise<Trust> {
    if (this.trustLoading) return this.trustLoading;
    const t = this.trustNow;
    if (t && !this.stale && Date.now() - t.loadedAt < this.options.trustTtlMs) return t;
    this.stale = false;
    this.trustLoading = this.loadTrust().finally(() => (this.trustLoading = undefined));
    return this.trustLoading;
  }

  /** Work still under way (dashboard edits), so a server can stop cleanly. */
  async settle(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
    await this.dashboard.settle();
  }

  private async loadTrust(): Promise<Trust> {
    const port = await this.port();
    const stateBranch = this.trustNow?.fleet.settings.state_branch ?? 'dotfleet/state';
    const h = await port.heads(this.ref, stateBranch);
    const seen = { head: h.stateHead, at: Date.now() };
    const cur = this.trustNow;
    if (cur && cur.target.commit === h.defaultHead) {
      cur.loadedAt = Date.now();
      this.stateSeen = seen;
      return cur;
    }
    const tree = await port.readTree(this.ref, h.defaultHead);
    const fleet = loadFleet(tree);
    const file = fleet.settings.allowed_signers;
    const text = tree.get(file);
    const signersText = text ? Buffer.from(text).toString('utf8') : '';
    const signers: TrustSet = { key: `${this.ref.owner}/${this.ref.repo}@${h.defaultHead}:${file}`, text: signersText, signers: parseAllowedSigners(signersText) };
    const inventory = [...fleet.hosts.keys()];
    const policy: Record<string, string> = {};
    for (const host of inventory) policy[host] = policyHash(tree, host);
    const trust: Trust = { loadedAt: Date.now(), fleet, signers, target: { branch: h.defaultBranch, commit: h.defaultHead, policy, inventory } };
    this.trustNow = trust;
    // The head seen is the state branch's only if the new settings name the branch that was read.
    this.stateSeen = fleet.settings.state_branch === stateBranch ? seen : undefined;
    // Hosts attest the default branch's head after a merge: have its render hashes ready, from the
    // previous head's when they are known (only what the merge can reach is rendered).
    this.renderAt(h.defaultHead, cur?.target.commit).catch((e) => this.log.warn(`render of ${h.defaultHead.slice(0, 7)}: ${(e as Error).message}`));
    this.log.info(`${this.ref.owner}/${this.ref.repo}: trust from ${h.defaultBranch} at ${h.defaultHead.slice(0, 7)} (${signers.signers.entries.length} allowed signers)`);
    return trust;
  }

  /** The writer for the state branch the settings name (a new one if the setting changed). */
  writer(trust: Trust): StateWriter {
    const branch = trust.fleet.settings.state_branch;
    if (this.writerFor?.branch !== branch) {
      const writer = new StateWriter(this.port, this.ref, { ...this.options.writer, branch }, async () => (await this.trust()).target, this.log, this.options.clock);
      writer.onCommit = (state) => {
        void this.showDashboard(state);
        this.onCommitted?.(state);
      };
      writer.rolloutMarkdown = (state) => this.rolloutMarkdown?.(state);
      writer.rolloutTargets = () => this.rolloutTargets?.();
      this.writerFor = { branch, writer };
    }
    return this.writerFor.writer;
  }

  private readonly background = new Set<Promise<void>>();

  /**
   * Bring the dashboard issue up to date, and write `rider`'s views (the rollout's) with it
   * (never throws: a failure is logged).
   */
  showDashboard(state?: FleetState, rider?: Rider): Promise<void> {
    const p = this.dashboardNow(state, rider).finally(() => this.background.delete(p));
    this.background.add(p);
    return p;
  }

  private async dashboardNow(state?: FleetState, rider?: Rider): Promise<void> {
    try {
      const trust = await this.trust();
      const s = state ?? (await this.writer(trust).current()).state;
      const { branch, commit, policy } = trust.target;
      const view: FleetState = { ...s, target: { branch, commit }, policy };
      await this.dashboard.update({
        state: view,
        status: fleetStatus(view, trust.target.inventory, this.rolloutTargets?.()),
        inventory: trust.target.inventory,
        now: this.options.clock(),
        quietAfterSeconds: parseDuration(trust.fleet.settings.quiet_after),
        repoUrl: `https://github.com/${this.ref.owner}/${this.ref.repo}`,
        stateBranch: trust.fleet.settings.state_branch,
        rollout: this.rolloutDashboard?.(view) ?? this.rolloutMarkdown?.(view),
      }, rider);
    } catch (e) {
      this.log.warn(`dashboard: ${(e as Error).message}`);
      // The rollout's views go out all the same.
      if (rider) await this.dashboard.update(undefined, rider);
    }
  }

  /** How the app's own render of `host` at `commit` compares with `claimed`. */
  async renderCheck(commit: string, host: string, claimed: string): Promise<RenderCheck> {
    const result = await this.renderAt(commit);
    if (result.kind !== 'hashes') return result.kind;
    const mine = result.hashes[host];
    if (!mine || 'error' in mine) return 'render-error';
    return mine.hash === claimed ? 'match' : 'mismatch';
  }

  /**
   * Every host's render hash at `commit`, computed once per commit (in the report worker), shared
   * with the rollout planner. With `since` (an earlier commit whose hashes are known or under
   * way), only the hosts the change between them can reach are rendered.
   */
  renderAt(commit: string, since?: string) {
    let job = this.renders.get(commit);
    if (!job) {
      const earlier = since && since !== commit ? this.renders.get(since) : undefined;
      job = (async () => {
        const port = await this.port();
        let tree;
        try {
          tree = await port.readTree(this.ref, commit);
        } catch (e) {
          if (e instanceof UnknownCommitError) return { kind: 'unknown-commit' as const };
          throw e;
        }
        let known: KnownHashes | undefined;
        const before = earlier ? await earlier.catch(() => undefined) : undefined;
        if (before?.kind === 'hashes') known = { tree: await port.readTree(this.ref, since!), hashes: before.hashes };
        const out = await this.options.renderHashes(tree, known);
        if (!out.ok) this.log.warn(`${this.ref.owner}/${this.ref.repo}@${commit.slice(0, 7)}: ${out.reason}`);
        return out.ok ? { kind: 'hashes' as const, hashes: out.result } : { kind: 'render-error' as const };
      })();
      this.renders.set(commit, job);
      job.catch(() => this.renders.delete(commit));
      while (this.renders.size > 32) this.renders.delete(this.renders.keys().next().value!);
    }
    return job;
  }
}

export class Intake {
  private readonly repos = new Map<string, RepoIntake>();
  private readonly hostLimiter: RateLimiter;
  readonly addressLimiter: RateLimiter;
  readonly options: IntakeOptions;
  readonly stats: IntakeStats = { verified: 0, verifyNs: 0n, rejected: {} };
  /** Signature checks off the event loop. */
  readonly pool: VerifyPool;

  constructor(
    /** The GitHub port for a repository the app is installed on, or undefined when it is not. */
    private readonly portFor: (ref: RepoRef) => Promise<StateGitHub | undefined>,
    options: Partial<IntakeOptions> & { renderHashes: ComputeRenderHashes },
    private readonly log: WriterLog,
  ) {
    this.options = { ...DEFAULT_INTAKE, ...options, writer: { ...DEFAULT_WRITER, ...options.writer } };
    this.hostLimiter = new RateLimiter(this.options.perHost);
    this.pool = new VerifyPool(this.options.verifyWorkers ?? defaultPoolSize(), log);
    this.addressLimiter = new RateLimiter(this.options.perAddress);
  }

  /** Told of each repository the intake starts to serve (the rollouts attach to it). */
  onRepository?: (ref: RepoRef) => void;

  /** The intake for a repository (for the push handler, tests and benchmarks). */
  repository(ref: RepoRef): RepoIntake {
    const key = `${ref.owner}/${ref.repo}`.toLowerCase();
    let r = this.repos.get(key);
    if (!r) {
      let port: Promise<StateGitHub> | undefined;
      const get = async () => {
        port ??= this.portFor(ref).then((p) => {
          if (!p) throw new NotInstalledError(ref);
          return p;
        });
        return port.catch((e) => {
          port = undefined;
          throw e;
        });
      };
      r = new RepoIntake(ref, get, this.options, this.log);
      this.repos.set(key, r);
      this.onRepository?.(ref);
    }
    return r;
  }

  /** Wait for background work (dashboard edits) to finish. */
  async settle(): Promise<void> {
    await Promise.all([...this.repos.values()].map((r) => r.settle()));
  }

  /** Stop the verification workers (after settle, when the server stops). */
  async close(): Promise<void> {
    await this.pool.close();
  }

  /**
   * A push: refresh the trust when it went to the default branch, and the dashboard (unless the
   * rollout it plans will: `rolloutShows`, so the plan's views and the dashboard are one edit).
   */
  pushed(ref: RepoRef, branch: string, defaultBranch: string, rolloutShows = false): void {
    const r = this.repos.get(`${ref.owner}/${ref.repo}`.toLowerCase());
    if (!r || branch !== defaultBranch) return;
    r.invalidate();
    if (!rolloutShows) void r.showDashboard();
  }

  async submit(s: Submitted): Promise<IntakeReply> {
    const out = await this.decide(s);
    if (out.status >= 400) this.stats.rejected[out.body.code] = (this.stats.rejected[out.body.code] ?? 0) + 1;
    return out;
  }

  private async decide(s: Submitted): Promise<IntakeReply> {
    if (!HOST_NAME.test(s.host)) return reply(400, 'malformed', `"${s.host}" is not a host name`);
    const ref = { owner: s.owner, repo: s.repo };
    const repo = this.repository(ref);
    let trust: Trust;
    try {
      trust = await repo.trust();
    } catch (e) {
      if (e instanceof NotInstalledError) {
        this.repos.delete(`${ref.owner}/${ref.repo}`.toLowerCase());
        return reply(404, 'unknown-repository', e.message);
      }
      const why = isDotfleetError(e) ? e.describe() : (e as Error).message;
      this.log.warn(`${s.owner}/${s.repo}: cannot read the trust: ${why}`);
      return reply(503, 'trust-unavailable', `the app cannot read the fleet on the default branch: ${why}`, {}, { 'retry-after': '60' });
    }
    const host = trust.fleet.hosts.get(s.host);
    const unknownHost = () => reply(403, 'unknown-host', `"${s.host}" is not a host in ${trust.fleet.settings.inventory} on ${trust.target.branch}`);

    // Who signed, and whether they may: no freshness yet, so that a recorded attestation sent
    // again later is answered "already recorded", not "stale".
    const now = this.options.clock();
    const { verdict, ns } = await this.pool.verify(trust.signers, s.payload, s.signature, s.host, host?.principal);
    this.stats.verifyNs += BigInt(ns);
    if (!host || !verdict.ok) {
      // A good signature over a well-formed attestation whose key or host is no longer trusted
      // (rotated, expired since, the host retired): if these very bytes are on the branch, they
      // were verified when recorded.
      if (verdict.statement && verdict.key && (verdict.ok || TRUST_REFUSALS.has(verdict.code))) {
        const record = hostRecord(verdict.statement, s.payload, { render: 'unknown-commit', key: verdict.key, receivedAt: now.toISOString() });
        // If the branch cannot be read now, the refusal stands (and is true of the key today).
        const seen = await repo
          .writer(trust)
          .lookUp(record)
          .catch(() => undefined);
        if (seen?.found.kind === 'recorded') return reply(200, 'already-recorded', 'this attestation is already recorded', { commit: seen.head, path: record.path });
      }
      if (!host) return unknownHost();
      return reply(statusForVerdict(verdict.code), verdict.code, `${verdict.message}${verdict.code === 'unknown-key' || verdict.code === 'principal' ? ` (${trust.fleet.settings.allowed_signers} on ${trust.target.branch})` : ''}`);
    }
    this.stats.verified++;
    const st = verdict.statement as Statement;
    const subject = subjectName(s.owner, s.repo);
    if (st.subject[0]!.name !== subject) {
      return reply(403, 'wrong-repository', `the attestation's subject is ${JSON.stringify(st.subject[0]!.name)}; for this repository it must be exactly "${subject}"`);
    }
    const contradiction = statusContradiction(st.predicate);
    if (contradiction) return reply(422, 'contradiction', contradiction);
    const limited = this.hostLimiter.take(`${ref.owner}/${ref.repo}/${s.host}`.toLowerCase());
    if (!limited.ok) return reply(429, 'rate-limited', `too many submissions from ${s.host}`, {}, { 'retry-after': String(limited.retryAfter) });

    const writer = repo.writer(trust);
    const record = hostRecord(st, s.payload, { render: 'unknown-commit', key: verdict.key!, receivedAt: now.toISOString() });
    const { head, found } = await writer.lookUp(record);
    if (found.kind === 'recorded') return reply(200, 'already-recorded', 'this attestation is already recorded', { commit: head, path: record.path });
    const late = freshness(st.predicate.issuedAt, now, this.options);
    if (late) return reply(409, late.code, late.message);
    if (found.kind === 'replay') return reply(409, 'sequence', sequenceMessage(s.host, record.sequence, found.last));

    record.render = await repo.renderCheck(record.appliedCommit, s.host, record.renderHash);
    // Stored as ssh-keygen writes it: the blob that verified, in canonical armour.
    const outcome = await writer.submit({ record, payload: s.payload, signature: canonicalArmour(s.signature) });
    switch (outcome.kind) {
      case 'committed':
        return reply(201, 'accepted', `recorded on ${trust.fleet.settings.state_branch}`, { commit: outcome.commit, path: outcome.path, render: record.render });
      case 'recorded':
        return reply(200, 'already-recorded', 'this attestation is already recorded', { commit: outcome.commit, path: outcome.path });
      case 'rejected':
        return reply(409, outcome.code, outcome.message);
      case 'gave-up':
        return reply(503, 'not-recorded', outcome.message, {}, { 'retry-after': String(outcome.retryAfter) });
    }
  }
}

export class NotInstalledError extends Error {
  constructor(ref: RepoRef) {
    super(`the dotfleet app is not installed on ${ref.owner}/${ref.repo}`);
  }
}
