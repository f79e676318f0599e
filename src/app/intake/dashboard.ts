/**
 * Keeps the "Fleet dashboard" issue in step with the state branch: one update at a time, the
 * latest state wins, an edit waits a moment for later news, and the issue is edited only when
 * its body would change.
 *
 * The rollout's own views (its check run, its deployment's status, the comment on the merged
 * pull request) ride along: they are written with the dashboard's edit, in one GraphQL request,
 * so an event that moves a rollout costs one request for everything people see. The latest view
 * of each check run and deployment wins, as the dashboard's does.
 */
import { DASHBOARD_MARKER, DASHBOARD_TITLE, dashboardBody, type DashboardInput } from '../../core/state/dashboard.js';
import type { CheckRunView, DeploymentView, RepoRef, StateGitHub } from '../../github/port.js';
import type { WriterLog } from './writer.js';

/** Views to write with the next dashboard edit. */
export interface Rider {
  checkRuns?: CheckRunView[];
  deployments?: DeploymentView[];
  comments?: { issue: number; body: string }[];
}

/** A bounded memory of ids by key: the newest `size`. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, size = 32): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > size) map.delete(map.keys().next().value!);
}

export class DashboardIssue {
  private issue: { number: number; body: string } | undefined;
  private wanted: DashboardInput | undefined;
  private readonly checkRuns = new Map<string, CheckRunView>();
  private readonly deployments = new Map<string, DeploymentView>();
  private comments: { issue: number; body: string }[] = [];
  /** Ids of what the riders made: check runs by commit, deployments by rollout. */
  private readonly checkRunIds = new Map<string, number>();
  private readonly deploymentIds = new Map<string, number>();
  private running: Promise<void> | undefined;
  /** Issue writes made (create or edit), for tests and benchmarks. */
  writes = 0;

  private lastWrite = 0;

  constructor(
    private readonly port: () => Promise<StateGitHub>,
    private readonly ref: RepoRef,
    private readonly log: WriterLog,
    /** Edits at most this often (default 10 s): a burst of commits makes one edit, not one each. */
    private readonly minIntervalMs = 10_000,
    /** An edit waits this long for later news first (0: at once). */
    private readonly delayMs = 0,
  ) {}

  /**
   * Ask for the dashboard to show `input` (undefined: as it is) and for `rider`'s views to be
   * written with it; resolves when they are (or the attempt failed and was logged).
   */
  update(input: DashboardInput | undefined, rider?: Rider): Promise<void> {
    if (input) this.wanted = input;
    for (const c of rider?.checkRuns ?? []) {
      const before = this.checkRuns.get(c.run.headSha);
      this.checkRuns.set(c.run.headSha, { ...c, fresh: c.fresh || (before?.fresh ?? false) });
    }
    for (const d of rider?.deployments ?? []) {
      const before = this.deployments.get(d.rollout);
      this.deployments.set(d.rollout, { ...d, fresh: d.fresh || (before?.fresh ?? false), state: d.state ?? before?.state });
    }
    this.comments.push(...(rider?.comments ?? []));
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return this.running;
  }

  private get riding(): boolean {
    return this.checkRuns.size + this.deployments.size + this.comments.length > 0;
  }

  /** Someone else edited the issue (ticked a box): its body now, so the next update writes ours again. */
  edited(number: number, body: string): void {
    if (!this.issue || this.issue.number === number) this.issue = { number, body };
  }

  /** Resolves when no update is under way. */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.wanted || this.riding) {
      const wait = Math.max(this.delayMs, this.lastWrite > 0 ? this.lastWrite + this.minIntervalMs - Date.now() : 0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const input = this.wanted;
      this.wanted = undefined;
      const rider: Rider = {
        checkRuns: [...this.checkRuns.values()].map((c) => ({ ...c, id: c.id ?? this.checkRunIds.get(c.run.headSha) })),
        deployments: [...this.deployments.values()].map((d) => ({ ...d, id: d.id ?? this.deploymentIds.get(d.rollout) })),
        comments: this.comments,
      };
      this.checkRuns.clear();
      this.deployments.clear();
      this.comments = [];
      try {
        await this.show(input && dashboardBody(input), rider);
      } catch (e) {
        this.log.warn(`dashboard issue: ${(e as Error).message}`);
        this.issue = undefined;
      }
    }
  }

  private async show(body: string | undefined, rider: Rider): Promise<void> {
    const riding = rider.checkRuns!.length + rider.deployments!.length + rider.comments!.length > 0;
    const port = await this.port();
    let edit: { number: number; body: string } | undefined;
    try {
      if (body !== undefined && this.issue?.body !== body) {
        this.issue ??= await port.findIssue(this.ref, DASHBOARD_MARKER);
        if (this.issue?.body === body) {
          // Already so.
        } else if (!this.issue) {
          this.issue = { number: await port.createIssue(this.ref, DASHBOARD_TITLE, body), body };
          this.wrote();
        } else if (!riding) {
          await port.updateIssue(this.ref, this.issue.number, body);
          this.issue.body = body;
          this.wrote();
        } else edit = { number: this.issue.number, body };
      }
    } catch (e) {
      if (!riding) throw e;
      // The rollout's views go out all the same.
      this.log.warn(`dashboard issue: ${(e as Error).message}`);
      this.issue = undefined;
    }
    if (!riding) return;
    const done = await port.views(this.ref, { issue: edit, ...rider });
    for (const [sha, id] of done.checkRuns) remember(this.checkRunIds, sha, id);
    for (const [rollout, id] of done.deployments) remember(this.deploymentIds, rollout, id);
    for (const f of done.failed) this.log.warn(`showing the rollout: ${f}`);
    if (!edit) return;
    if (done.failed.some((f) => f.startsWith(`issue #${edit.number}:`))) {
      // Look for the issue again next time (it may have been deleted).
      this.issue = undefined;
      return;
    }
    this.issue!.body = edit.body;
    this.wrote();
  }

  private wrote(): void {
    this.writes++;
    this.lastWrite = Date.now();
  }
}
