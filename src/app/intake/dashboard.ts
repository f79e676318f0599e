/**
 * Keeps the "Fleet dashboard" issue in step with the state branch: one update at a time, the
 * latest state wins, an edit waits a moment for later news, and the issue is edited only when
 * its body would change.
 */
import { DASHBOARD_MARKER, DASHBOARD_TITLE, dashboardBody, type DashboardInput } from '../../core/state/dashboard.js';
import type { RepoRef, StateGitHub } from '../../github/port.js';
import type { WriterLog } from './writer.js';

export class DashboardIssue {
  private issue: { number: number; body: string } | undefined;
  private wanted: DashboardInput | undefined;
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

  /** Ask for the dashboard to show `input`; resolves when it does (or the attempt failed and was logged). */
  update(input: DashboardInput): Promise<void> {
    this.wanted = input;
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return this.running;
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
    while (this.wanted) {
      const wait = Math.max(this.delayMs, this.lastWrite > 0 ? this.lastWrite + this.minIntervalMs - Date.now() : 0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const input = this.wanted;
      this.wanted = undefined;
      try {
        await this.show(dashboardBody(input));
      } catch (e) {
        this.log.warn(`dashboard issue: ${(e as Error).message}`);
        this.issue = undefined;
      }
    }
  }

  private async show(body: string): Promise<void> {
    if (this.issue?.body === body) return;
    const port = await this.port();
    this.issue ??= await port.findIssue(this.ref, DASHBOARD_MARKER);
    if (this.issue?.body === body) return;
    if (this.issue) await port.updateIssue(this.ref, this.issue.number, body);
    else this.issue = { number: await port.createIssue(this.ref, DASHBOARD_TITLE, body), body };
    this.issue.body = body;
    this.writes++;
    this.lastWrite = Date.now();
  }
}
