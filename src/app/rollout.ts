/**
 * Rollouts in the app: a push to the default branch plans one, attestations and a periodic tick
 * move it through the gates, people's commands steer it. Every decision is a new signed
 * manifest committed to the state branch with expectedHeadOid: when two replicas decide at once,
 * one commit lands and the other re-reads the branch and finds nothing left to do. Nothing is
 * kept only in memory: after a restart the manifest, the attestations and the time are enough.
 *
 * What people see follows each decision this process landed: the check run `dotfleet/rollout` on
 * the target, one Deployment per rollout (environment `fleet`), a comment on the merged pull
 * request when the rollout completes, halts or is blocked, and (with `revert: true`) a revert
 * pull request when it halts.
 */
import { readFileSync } from 'node:fs';
import { isDotfleetError } from '../core/errors.js';
import { MANIFEST_PATH, MANIFEST_SIG_PATH, parseManifest, ROLLOUT_NAMESPACE, serialiseManifest, signManifest, type Manifest } from '../core/rollout/manifest.js';
import { planRollout, targetSignature, type Plan } from '../core/rollout/plan.js';
import { rolloutCheckboxes, rolloutHeadline, rolloutMarkdown } from '../core/rollout/report.js';
import { advance, command, expectedCommit, hostStates, parseCommand, reasonLines, rolloutView, type Command, type HostStateName, type RolloutView } from '../core/rollout/state.js';
import { FLEET_JSON, FLEET_MD, parseFleetState, STATE_README, STATE_README_TEXT, type FleetState } from '../core/state/fleet-state.js';
import { fleetMarkdown, fleetStatus } from '../core/state/status.js';
import { parseOpenSshPrivateKey, type SshPrivateKey } from '../core/ssh/keys.js';
import { lookupSigner } from '../core/ssh/allowed-signers.js';
import type { RepoRef, RolloutGitHub } from '../github/port.js';
import type { RepoIntake, Trust } from './intake/service.js';
import type { Rider } from './intake/dashboard.js';
import type { WriterLog } from './intake/writer.js';

export const ROLLOUT_CHECK = 'dotfleet/rollout';
export const ENVIRONMENT = 'fleet';
const WRITE_ROLES = new Set(['admin', 'maintain', 'write']);
/** A host in these states has reported on the rollout (RUNNING is released, not yet heard from): its deployment is under way. */
const REPORTED = new Set<HostStateName>(['VALIDATING_POST', 'SUCCESS', 'PARTIAL', 'FAILED']);
/** Tries of one decision against a moving state branch. */
const ATTEMPTS = 5;

/** The app's signing key from DOTFLEET_SIGNING_KEY: the OpenSSH private key itself, or a path to it. */
export function signingKeyFromEnv(value = process.env.DOTFLEET_SIGNING_KEY): SshPrivateKey | undefined {
  if (!value) return undefined;
  const inline = value.includes('-----BEGIN');
  let text: string;
  try {
    text = inline ? value.replace(/\\n/g, '\n') : readFileSync(value, 'utf8');
  } catch (e) {
    throw new Error(`DOTFLEET_SIGNING_KEY: cannot read ${value}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (give the app's OpenSSH ed25519 private key, or the path to it; docs/rollout.md)`);
  }
  try {
    return parseOpenSshPrivateKey(text, inline ? 'DOTFLEET_SIGNING_KEY' : value);
  } catch (e) {
    // A start-up error for the operator: the reason, never the key's text.
    throw new Error(`DOTFLEET_SIGNING_KEY: ${isDotfleetError(e) ? e.describe() : (e as Error).message} (an OpenSSH ed25519 private key without a passphrase; docs/rollout.md)`);
  }
}

export interface RolloutOptions {
  signingKey?: SshPrivateKey;
  clock: () => Date;
}

interface Current {
  head?: string;
  manifest?: Manifest;
  bytes?: Buffer;
  signature?: string;
}

/** One repository's rollouts; its work runs one step at a time in this process. */
export class RepoRollout {
  private chain: Promise<unknown> = Promise.resolve();
  /** The check run `report` made (a fleet that does not load). */
  private checkRun: { sha: string; id: number } | undefined;
  /** The rollout check run as last shown (its commit, title and summary), so progress that changes nothing writes nothing. */
  private shown = '';
  /** The rollout whose deployment is in_progress. */
  private started = '';
  private published = 0;
  /** The manifest as last read or written (the intake's FLEET.md shows it). */
  view: Current | undefined;

  constructor(
    readonly ref: RepoRef,
    private readonly port: () => Promise<RolloutGitHub>,
    private readonly intake: RepoIntake,
    private readonly options: RolloutOptions,
    private readonly log: WriterLog,
  ) {}

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const p = this.chain.catch(() => undefined).then(work);
    this.chain = p;
    return p;
  }

  /** Wait for the steps under way, and the views they asked for. */
  async settle(): Promise<void> {
    while (true) {
      const c = this.chain;
      await c.catch(() => undefined);
      await this.intake.settle();
      if (c === this.chain) return;
    }
  }

  /**
   * The manifest at the state branch's head now; `seen`: the head as a read of the heads just
   * found it (no request; whatever lands from it compares and swaps, so a head that moved since
   * costs a retry, never a wrong write).
   */
  async read(seen?: { head: string | undefined }): Promise<Current> {
    const port = await this.port();
    const trust = await this.intake.trust();
    const head = seen ? seen.head : await port.branchHead(this.ref, trust.fleet.settings.state_branch);
    if (head && this.view?.head === head) return this.view;
    // Only the intake's own attestation commits came since: the manifest is the one we hold.
    const writer = this.intake.writer(trust);
    if (head && this.view?.head) {
      let h: string | undefined = head;
      while (h !== undefined && h !== this.view.head) h = writer.ownCommits.get(h);
      if (h === this.view.head) {
        this.view = { ...this.view, head };
        return this.view;
      }
    }
    const [bytes, sig] = head ? await Promise.all([port.readFile(this.ref, head, MANIFEST_PATH), port.readFile(this.ref, head, MANIFEST_SIG_PATH)]) : [undefined, undefined];
    // Another writer (a replica, the intake here) moved the branch: its fleet.json is the one the
    // gates read. (Not from a head seen earlier: the intake may have moved past it since.)
    if (!seen && head && writer.view && writer.view.head !== head) writer.view = { head, state: parseFleetState(await port.readFile(this.ref, head, FLEET_JSON)) };
    this.view = { head, manifest: bytes ? parseManifest(bytes) : undefined, bytes: bytes ? Buffer.from(bytes) : undefined, signature: sig ? Buffer.from(sig).toString('utf8') : undefined };
    return this.view;
  }

  private readAt = 0;

  /**
   * The manifest and signature as hosts fetch them over HTTP: from memory when read or written
   * within `ttlMs` (another replica's commit shows within that time), else from the branch.
   */
  async served(ttlMs = 30_000): Promise<Current> {
    if (this.view && Date.now() - this.readAt < ttlMs) return this.view;
    const cur = await this.serial(() => this.read());
    this.readAt = Date.now();
    return cur;
  }

  /** Each host's target under the current manifest (undefined when there is none). */
  targetOf(): ((host: string) => string | undefined) | undefined {
    const m = this.view?.manifest;
    return m ? (host) => expectedCommit(m, host) : undefined;
  }

  /** The view for people of the current manifest against `state` (undefined when there is none). */
  viewOf(state: FleetState): RolloutView | undefined {
    const m = this.view?.manifest;
    return m ? rolloutView(m, state.hosts, this.options.clock()) : undefined;
  }

  /** A push to the default branch: plan a rollout of `after`. */
  pushed(after: string, before: string | undefined): Promise<string> {
    if (!this.options.signingKey) return Promise.resolve('rollouts are off: DOTFLEET_SIGNING_KEY is not set (docs/rollout.md)');
    return this.serial(async () => {
      const published = this.published;
      try {
        return await this.plannedFrom(after, before);
      } finally {
        // The push's dashboard edit was left to the plan: make it when nothing was shown.
        if (this.published === published) void this.intake.showDashboard();
      }
    });
  }

  /** Plan a rollout of `after` (one step of the serial work). */
  private async plannedFrom(after: string, before: string | undefined): Promise<string> {
    // One read of the heads (the push's handler may have started it already).
    this.intake.invalidateUnlessAt(after);
    let trust: Trust;
    try {
      trust = await this.intake.trust();
      // A read that began before the push landed: read again.
      if (trust.target.commit !== after) {
        this.intake.invalidate();
        trust = await this.intake.trust();
      }
    } catch (e) {
      const why = isDotfleetError(e) ? e.describe() : (e as Error).message;
      await this.report(after, { status: 'completed', conclusion: 'failure', title: 'No rollout: the fleet does not load', summary: `dotfleet could not read the fleet at \`${after.slice(0, 7)}\`:\n\n\`\`\`\n${why}\n\`\`\`\n` });
      return `the fleet does not load at ${after.slice(0, 7)}: ${why}`;
    }
    if (trust.target.commit !== after) return `${trust.target.branch} is at ${trust.target.commit.slice(0, 7)} now, not ${after.slice(0, 7)}: that push plans its own rollout`;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      // The push's read of the heads (a moment ago) saw the state branch too.
      const cur = await this.read(attempt === 0 ? this.intake.recentStateHead(2_000) : undefined);
      if (cur.manifest?.target.commit === after) return `rollout ${cur.manifest.id} already targets ${after.slice(0, 7)}`;
      const plan = await this.plan(trust, after, before, cur);
      const landed = await this.commit(trust, cur, plan.manifest, `rollout: ${plan.manifest.phase === 'complete' ? 'nothing to roll out at' : `plan ${plan.manifest.id} of`} ${after.slice(0, 7)}`);
      if (!landed) continue;
      await this.publish(trust, plan.manifest, plan.manifest.phase === 'running' ? [] : [plan.manifest.phase === 'blocked' ? 'blocked' : plan.manifest.phase === 'halted' ? 'halt' : 'complete'], true);
      return rolloutHeadline(this.viewOf((await this.intake.writer(trust).current()).state)!);
    }
    return `the state branch kept moving: rollout of ${after.slice(0, 7)} not planned after ${ATTEMPTS} tries`;
  }

  private async plan(trust: Trust, after: string, before: string | undefined, cur: Current): Promise<Plan> {
    const port = await this.port();
    const now = this.options.clock();
    const state = (await this.intake.writer(trust).current()).state;
    const m = cur.manifest;
    const previous = m ? (m.phase === 'blocked' ? m.previous : m.target.commit) : (state.target?.commit ?? (before && !/^0+$/.test(before) ? before : null));
    // The new commit's hashes start from the previous target's: only what changed is rendered.
    const beforeJob = previous ? this.intake.renderAt(previous) : undefined;
    const [beforeHashes, afterHashes, info] = await Promise.all([beforeJob, this.intake.renderAt(after, previous ?? undefined), port.commitSignature(this.ref, after)]);
    const settings = trust.fleet.settings;
    const problems: string[] = [];
    const key = this.options.signingKey!;
    const self = lookupSigner(trust.signers.signers, key.public, settings.rollout.signer, ROLLOUT_NAMESPACE, Math.floor(now.getTime() / 1000));
    if (!self.ok) problems.push(`hosts cannot verify the app's manifests: ${self.message}; add \`${settings.rollout.signer} namespaces="${ROLLOUT_NAMESPACE}" ${key.public.type} ${key.public.blob.toString('base64')}\` to ${settings.allowed_signers}`);
    return planRollout({
      repository: `github.com/${this.ref.owner}/${this.ref.repo}`,
      branch: trust.target.branch,
      target: after,
      previous,
      before: beforeHashes?.kind === 'hashes' ? beforeHashes.hashes : undefined,
      after: afterHashes.kind === 'hashes' ? afterHashes.hashes : {},
      hosts: [...trust.fleet.hosts.values()],
      settings,
      signature: targetSignature(info, trust.signers.signers, now),
      signers: trust.signers.signers,
      lastSequence: m?.sequence ?? 0,
      now,
      problems,
      current: m ? { manifest: m, states: hostStates(m, state.hosts, now) } : undefined,
    });
  }

  /** Commit `next` (signed) on the head `cur` was read at; false when the head moved. */
  private async commit(trust: Trust, cur: Current, next: Manifest, headline: string): Promise<boolean> {
    const port = await this.port();
    const branch = trust.fleet.settings.state_branch;
    let head = cur.head;
    if (!head) {
      const made = await port.createOrphanBranch(this.ref, branch, 'dotfleet: start the state branch', [{ path: STATE_README, contents: Buffer.from(STATE_README_TEXT) }]);
      if (made === 'exists') return false;
      head = made;
    }
    const bytes = serialiseManifest(next);
    const signature = signManifest(bytes, this.options.signingKey!);
    const state = (await this.intake.writer(trust).current()).state;
    const view = rolloutView(next, state.hosts, this.options.clock());
    const files = [
      { path: MANIFEST_PATH, contents: bytes },
      { path: MANIFEST_SIG_PATH, contents: Buffer.from(signature) },
      { path: FLEET_MD, contents: Buffer.from(fleetMarkdown(state, fleetStatus(state, trust.target.inventory, (h) => expectedCommit(next, h)), rolloutMarkdown(view))) },
    ];
    const body = [view.line, '', ...next.log.slice(-3).map((l) => `${l.at} ${l.by}: ${l.action}`)].join('\n');
    const made = await port.commitOnBranch(this.ref, branch, head, { headline, body }, files);
    if (made === 'stale') {
      this.view = undefined;
      return false;
    }
    this.view = { head: made, manifest: next, bytes, signature };
    this.readAt = Date.now();
    this.log.info(`${this.ref.owner}/${this.ref.repo}: ${headline} (#${next.sequence}) → ${made.slice(0, 7)}`);
    return true;
  }

  /**
   * Attestations landed, or the clock moved: apply the gates. `afterOwnCommit`: the intake here
   * has just committed, so the first try starts from the head it made (no read; a head moved
   * since loses the compare-and-swap and the next try reads it).
   */
  evaluate(afterOwnCommit = false): Promise<string[]> {
    return this.serial(async () => {
      const trust = await this.intake.trust();
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        // The branch's head now (one read): the intake commits attestations on it meanwhile.
        const own = attempt === 0 && afterOwnCommit ? this.intake.writer(trust).view?.head : undefined;
        const cur = await this.read(own ? { head: own } : undefined);
        const m = cur.manifest;
        if (!m) return [];
        const state = (await this.intake.writer(trust).current()).state;
        const step = m.phase === 'running' ? advance(m, state.hosts, this.options.clock()) : { manifest: m, actions: [] };
        if (step.actions.length === 0) {
          // Another replica's decision (or ours, before a restart) that nobody here has shown yet;
          // else the hosts' progress, riding with the dashboard edit their commit asked for.
          if (this.published !== m.sequence) await this.publish(trust, m, []);
          else if (m.phase === 'running') await this.publish(trust, m, [], false, true);
          return [];
        }
        if (await this.commit(trust, cur, step.manifest, `rollout: ${step.actions.join(', ')} (${m.id})`)) {
          await this.publish(trust, step.manifest, step.actions);
          return step.actions;
        }
      }
      return [];
    });
  }

  /** A `/dotfleet rollout …` comment (`commentId`), or a ticked dashboard box (a delivery-made id), by `login` on issue or pull request `issue`. */
  commented(text: string, login: string, issue: number, commentId: number | string): Promise<string | undefined> {
    const parsed = parseCommand(text);
    if (parsed === undefined) return Promise.resolve(undefined);
    return this.serial(async () => {
      const port = await this.port();
      const answer = async (body: string) => {
        // The first line is the reply's own marker (a retried create looks for it): one per command comment.
        await port.createComment(this.ref, issue, `<!-- dotfleet:command ${commentId} -->\n@${login} ${body}`);
        return body;
      };
      if (typeof parsed === 'string') return answer(parsed);
      const role = await port.permission(this.ref, login);
      if (!WRITE_ROLES.has(role)) return answer(`only people with write access to ${this.ref.owner}/${this.ref.repo} can steer a rollout (your permission: ${role}); nothing was done.`);
      const trust = await this.intake.trust();
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const cur = await this.read();
        if (!cur.manifest) return answer('there is no rollout yet: one starts with the next push to the default branch.');
        const state = (await this.intake.writer(trust).current()).state;
        const now = this.options.clock();
        const done = command(cur.manifest, parsed as Command, login, now, state.hosts);
        if (typeof done === 'string') return answer(done);
        const stepped = done.phase === 'running' ? advance(done, state.hosts, now) : { manifest: done, actions: [] };
        const label = `${parsed.name}${parsed.host ? ` ${parsed.host}` : ''}`;
        if (!(await this.commit(trust, cur, stepped.manifest, `rollout: ${label} by @${login} (${done.id})`))) continue;
        await this.publish(trust, stepped.manifest, [label, ...stepped.actions]);
        return answer(`done: ${label}. ${rolloutHeadline(this.viewOf(state)!)}`);
      }
      return answer('the state branch kept moving; nothing was recorded, please try again.');
    });
  }

  /** The check run on `sha`; `fresh` when this process just planned it (no run can exist yet). */
  private async report(sha: string, run: { status: 'in_progress' | 'completed'; conclusion?: 'success' | 'failure' | 'neutral'; title: string; summary: string; text?: string }, fresh = false): Promise<void> {
    const port = await this.port();
    const existing = this.checkRun?.sha === sha ? this.checkRun.id : fresh ? undefined : await port.findCheckRun(this.ref, sha, ROLLOUT_CHECK);
    const id = await port.createCheckRun(this.ref, { name: ROLLOUT_CHECK, headSha: sha, title: run.title, summary: run.summary, text: run.text ?? '', annotations: [], status: run.status, conclusion: run.conclusion }, existing);
    this.checkRun = { sha, id };
  }

  /**
   * Show a decision this process landed (or found): the check run, the deployment, and for an
   * end, a comment on the merged pull request. They ride with the dashboard's edit: one request.
   * `planned`: this process has just planned the rollout, so it has no check run or deployment
   * yet (no lookups; the new deployment has no status until a host reports or the next
   * decision gives it one).
   */
  private async publish(trust: Trust, m: Manifest, actions: string[], planned = false, progress = false): Promise<void> {
    const port = await this.port();
    const state = (await this.intake.writer(trust).current()).state;
    const view = rolloutView(m, state.hosts, this.options.clock());
    const md = rolloutMarkdown(view, { commands: true });
    const failed = m.phase === 'halted' || m.phase === 'blocked';
    this.published = m.sequence;
    const rider: Rider = {};
    const title = rolloutHeadline(view).replace(/\*\*/g, '');
    const shown = `${m.target.commit} ${title}\n${md}`;
    if (this.shown !== shown) {
      this.shown = shown;
      rider.checkRuns = [
        {
          fresh: planned,
          run: { name: ROLLOUT_CHECK, headSha: m.target.commit, status: m.phase === 'running' ? 'in_progress' : 'completed', conclusion: m.phase === 'complete' ? 'success' : failed ? 'failure' : undefined, title, summary: md, text: '', annotations: [] },
        },
      ];
    }
    // The deployment: made at the plan (no status yet), in_progress once a host of it has
    // reported or at the next decision, success or failure at the end.
    const reported = view.states.some((h) => h.wave !== null && REPORTED.has(h.state));
    if (m.waves.length > 0 && !(progress && (this.started === m.id || !reported))) {
      const status = m.phase === 'complete' ? 'success' : failed ? 'failure' : planned ? undefined : 'in_progress';
      if (status === 'in_progress') this.started = m.id;
      rider.deployments = [{ fresh: planned, sha: m.target.commit, environment: ENVIRONMENT, rollout: m.id, description: view.line, state: status }];
    }
    if (progress) {
      if (rider.checkRuns || rider.deployments) void this.intake.showDashboard(state, rider);
      return;
    }
    try {
      const ended = actions.some((a) => a === 'halt' || a === 'complete' || a === 'blocked');
      if (ended && m.waves.length > 0) {
        const pulls = await port.pullsForCommit(this.ref, m.target.commit);
        let revert: number | undefined;
        if (m.phase === 'halted' && trust.fleet.settings.revert && m.previous) {
          revert = await port.openRevert(this.ref, {
            base: m.target.branch,
            head: trust.target.commit,
            restore: m.previous,
            branch: `dotfleet/revert-${m.id}`,
            title: `Revert the fleet to ${m.previous.slice(0, 7)}: rollout ${m.id} halted`,
            body: [`Rollout \`${m.id}\` of \`${m.target.commit.slice(0, 7)}\` halted:`, '', ...reasonLines(m.reasons).map((l) => `- ${l}`), '', `This pull request restores the tree of \`${m.previous.slice(0, 7)}\`, the target before it. Merging it starts a new rollout.`].join('\n'),
          });
        }
        const words = m.phase === 'complete' ? `completed: every wave attested.` : m.phase === 'blocked' ? 'is blocked.' : 'halted.';
        const body = [`<!-- dotfleet:rollout ${m.id} #${m.sequence} -->`, `### dotfleet · rollout ${words}`, '', md, ...(revert ? [`A revert is open: #${revert}.`, ''] : [])].join('\n');
        rider.comments = pulls.slice(0, 3).map((issue) => ({ issue, body }));
      }
    } catch (e) {
      this.log.warn(`${this.ref.owner}/${this.ref.repo}: showing rollout ${m.id}: ${(e as Error).message}`);
    }
    // The dashboard issue shows the rollout and its checkboxes: the views go with its edit (never throws).
    void this.intake.showDashboard(state, rider);
  }
}

/**
 * A repository's rollout joined to its intake: the gates follow the intake's commits, FLEET.md,
 * the dashboard and the status rows show the rollout. The app and the Action both build it here.
 */
export function attachRollout(ref: RepoRef, port: () => Promise<RolloutGitHub>, repo: RepoIntake, options: RolloutOptions, log: WriterLog): RepoRollout {
  const r = new RepoRollout(ref, port, repo, options, log);
  if (options.signingKey) {
    repo.onCommitted = () => void r.evaluate(true).catch((e) => log.warn(`rollout ${ref.owner}/${ref.repo}: ${(e as Error).message}`));
    repo.rolloutTargets = () => r.targetOf();
    repo.rolloutDashboard = (state) => {
      const v = r.viewOf(state);
      return v ? `${rolloutMarkdown(v)}\n${rolloutCheckboxes(v)}` : undefined;
    };
    repo.rolloutMarkdown = (state) => {
      const v = r.viewOf(state);
      return v ? rolloutMarkdown(v) : undefined;
    };
  }
  return r;
}

/** Every repository's rollouts, and the periodic trigger that checks deadlines. */
export class Rollouts {
  private readonly repos = new Map<string, RepoRollout>();
  private timer: NodeJS.Timeout | undefined;
  private discovered = false;

  constructor(
    private readonly make: (ref: RepoRef) => RepoRollout,
    /** The repositories the app is installed on (after a restart, the tick finds them here). */
    private readonly installed: () => Promise<RepoRef[]>,
    private readonly log: WriterLog,
    readonly enabled: boolean,
  ) {}

  for(ref: RepoRef): RepoRollout {
    const key = `${ref.owner}/${ref.repo}`.toLowerCase();
    let r = this.repos.get(key);
    if (!r) {
      r = this.make(ref);
      this.repos.set(key, r);
    }
    return r;
  }

  /** Check every known repository's gates and deadlines now. */
  async tick(): Promise<void> {
    if (!this.enabled) return;
    if (!this.discovered) {
      try {
        for (const ref of await this.installed()) this.for(ref);
        this.discovered = true;
      } catch (e) {
        this.log.warn(`rollout tick: cannot list the installations: ${(e as Error).message}`);
      }
    }
    await Promise.all(
      [...this.repos.values()].map((r) =>
        r.evaluate().catch((e) => this.log.warn(`rollout tick ${r.ref.owner}/${r.ref.repo}: ${isDotfleetError(e) ? e.describe() : (e as Error).message}`)),
      ),
    );
  }

  start(everyMs: number): void {
    if (!this.enabled || everyMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.tick(), everyMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.repos.values()].map((r) => r.settle()));
  }
}
