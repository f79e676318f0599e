/**
 * The Action: the app's flows for one event, with the workflow's token instead of an
 * installation, in one process that ends when the work is done. Same core, same GitHub port, same
 * budgets as the app:
 *
 * - `pull_request` / `pull_request_target` → the fleet-diff comment and check run, and the whole
 *   diff in the job summary (cut to fit 1 MiB);
 * - `push` to the default branch → the rollout plan and its signed manifest when a signing key is
 *   given, else the fleet status (dashboard issue, summary);
 * - `push` to the state branch, `schedule`, `workflow_dispatch` → attestations waiting in
 *   `incoming/`, then the rollout's gates and deadlines, then the dashboard;
 * - `issue_comment` → `/dotfleet` commands, as in the app.
 */
import type { OctokitGitHub } from '../github/octokit.js';
import type { RepoRef } from '../github/port.js';
import type { SshPrivateKey } from '../core/ssh/keys.js';
import { isDotfleetError } from '../core/errors.js';
import { fleetMarkdown, fleetStatus } from '../core/state/status.js';
import { PULL_REQUEST_EVENTS, runPullRequest, type PullRequestJob } from '../app/pull-request.js';
import { workerCompute, workerRenderHashes, type ComputeReport } from '../app/compute.js';
import { Intake, type IntakeOptions, type RepoIntake } from '../app/intake/service.js';
import { attachRollout } from '../app/rollout.js';
import { incomingMarkdown, takeIncoming, tally } from './incoming.js';
import { INCOMING_DIR } from '../core/state/fleet-state.js';
import type { StepFiles } from './summary.js';

export interface ActionLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface ActionInput {
  eventName: string;
  /** The webhook payload the workflow was triggered with (GITHUB_EVENT_PATH). */
  event: any;
  /** GITHUB_REPOSITORY. */
  ref: RepoRef;
  signingKey?: SshPrivateKey;
  intake?: Partial<IntakeOptions>;
  clock?: () => Date;
}

export interface ActionResult {
  /** The process's exit code: 0 done, 1 the fleet diff failed or a step could not be written. */
  code: number;
  /** One line for the log and the `outcome` output. */
  outcome: string;
}

const PR_ACTIONS = new Set(PULL_REQUEST_EVENTS.map((e) => e.split('.')[1]));

const message = (e: unknown) => (isDotfleetError(e) ? e.describe() : ((e as Error).message ?? String(e)).split('\n')[0]!.slice(0, 300));

export async function runAction(input: ActionInput, github: OctokitGitHub, steps: StepFiles, log: ActionLog): Promise<ActionResult> {
  const { eventName, event, ref } = input;
  const clock = input.clock ?? (() => new Date());
  const intake = new Intake(async () => github, {
    renderHashes: workerRenderHashes(),
    // The runner is this job's alone; the git push is a host's rate limit here.
    verifyWorkers: 0,
    perHost: { perMinute: 1e9, burst: 1e9 },
    // Attestations wait in incoming/ until a run takes them (a schedule may be late): a day.
    maxAgeSeconds: 24 * 3600,
    // One process per event: the dashboard is written when the run's decisions are, not 10 s later.
    dashboardIntervalMs: 0,
    dashboardDelayMs: 0,
    clock,
    ...input.intake,
  }, log);
  const repo = intake.repository(ref);
  const rollout = attachRollout(ref, async () => github, repo, { signingKey: input.signingKey, clock }, log);
  try {
    switch (eventName) {
      case 'pull_request':
      case 'pull_request_target':
        return await pullRequest(input, github, steps, log);
      case 'push': {
        const isBranch = String(event.ref ?? '').startsWith('refs/heads/');
        const branch = String(event.ref ?? '').replace(/^refs\/heads\//, '');
        const toDefault = isBranch && branch === event.repository?.default_branch;
        // Which branch is the state branch is a setting: read only for pushes elsewhere.
        if (isBranch && !toDefault && branch === (await repo.trust()).fleet.settings.state_branch) {
          // An app's push (the dotfleet app, if it runs too) is not a host's.
          const foreign = event.sender?.type === 'Bot' ? [] : outsideIncoming(event);
          if (foreign.length > 0) {
            steps.summary(`#### ⚠️ The state branch was written outside \`${INCOMING_DIR}/\`\n\n${foreign.map((f) => `- \`${f}\``).join('\n')}\n\nOnly dotfleet writes the history; hosts push only to \`${INCOMING_DIR}/<host>/\`. Look at who pushed (${event.pusher?.name ?? 'unknown'}) and revert it (docs/action.md, "Incoming attestations").\n`);
            log.warn(`the push to ${branch} changed ${foreign.length} path(s) outside ${INCOMING_DIR}/: ${foreign.slice(0, 5).join(', ')}`);
          }
          const r = await bookkeeping(input, intake, github, rollout, steps, log);
          return foreign.length > 0 ? { code: 1, outcome: `${r.outcome}; ${foreign.length} path(s) written outside ${INCOMING_DIR}/` } : r;
        }
        if (!toDefault || event.deleted || /^0+$/.test(String(event.after ?? ''))) {
          return { code: 0, outcome: `a push to ${event.ref}: nothing to do` };
        }
        // As in the app: an app's push to the default branch plans no rollout.
        if (event.sender?.type === 'Bot') return { code: 0, outcome: `a push to ${branch} by ${event.sender.login}: no rollout for a bot's push` };
        if (input.signingKey) {
          // A decision that lands rewrites the dashboard itself (publish); the finally waits for it.
          const outcome = await rollout.pushed(event.after, event.before);
          steps.summary(`### dotfleet · rollout\n\n${outcome}\n`);
          return { code: 0, outcome };
        }
        return await status(repo, steps, 'no rollout: the signing-key input is empty (docs/action.md)');
      }
      case 'schedule':
      case 'workflow_dispatch':
        return await bookkeeping(input, intake, github, rollout, steps, log);
      case 'issue_comment': {
        const c = event.comment;
        if (event.action !== 'created' || c?.user?.type === 'Bot' || !/^\s*\/dotfleet\b/m.test(c?.body ?? '')) return { code: 0, outcome: 'not a /dotfleet command' };
        if (!input.signingKey) return { code: 0, outcome: 'a /dotfleet command, but rollouts are off (the signing-key input is empty)' };
        const said = await rollout.commented(c.body, c.user?.login ?? 'ghost', event.issue.number, c.id);
        return { code: 0, outcome: said ?? 'no command' };
      }
      default:
        return { code: 0, outcome: `the ${eventName} event: nothing for dotfleet to do` };
    }
  } finally {
    await rollout.settle();
    await intake.settle();
    await intake.close();
  }
}

async function pullRequest(input: ActionInput, github: OctokitGitHub, steps: StepFiles, log: ActionLog): Promise<ActionResult> {
  const { event, ref } = input;
  const pr = event.pull_request;
  if (!pr || !PR_ACTIONS.has(event.action)) return { code: 0, outcome: `pull request ${event.action ?? ''}: nothing to render` };
  const job: PullRequestJob = {
    ref,
    number: pr.number,
    baseSha: pr.base.sha,
    headSha: pr.head.sha,
    baseRef: pr.base.ref,
    defaultBranch: event.repository.default_branch,
    htmlUrl: pr.html_url,
  };
  let last: { summary?: string; conclusion?: string; reason?: string } = {};
  const inWorker = workerCompute();
  const compute: ComputeReport = async (i, onQueued) => {
    const out = await inWorker({ ...i, summary: true }, onQueued);
    last = out.ok ? { summary: out.result.summary, conclusion: out.result.check.conclusion } : { reason: out.reason, conclusion: 'failure' };
    return out;
  };
  try {
    const outcome = await runPullRequest(job, github, compute, log);
    steps.summary(last.summary ?? `### dotfleet · fleet diff\n\n${last.reason ?? 'no report'}\n`);
    const code = last.conclusion === 'failure' ? 1 : 0;
    return { code, outcome: `#${pr.number} @ ${job.headSha.slice(0, 7)}: ${last.conclusion ?? 'no report'} (comment ${outcome})` };
  } catch (e) {
    const status = (e as { status?: number }).status;
    const cause = (e as { cause?: { status?: number } }).cause?.status;
    const readOnly = status === 403 || cause === 403 || /HTTP 403|Resource not accessible/.test(message(e));
    const why = readOnly
      ? `the workflow's token may not write to this pull request (${message(e)}). A pull request from a fork gets a read-only token on \`pull_request\`: run the Action on \`pull_request_target\` (dotfleet reads the pull request as data and runs none of its code; docs/action.md), and give the job \`pull-requests: write\` and \`checks: write\`.`
      : `the comment or check run could not be written: ${message(e)}`;
    steps.summary(`${last.summary ?? '### dotfleet · fleet diff\n'}\n> ⚠️ ${why}\n`);
    log.warn(why);
    return { code: 1, outcome: why };
  }
}

/** The fleet status at the state branch: the dashboard issue, and the table in the summary. */
async function status(repo: RepoIntake, steps: StepFiles, note: string): Promise<ActionResult> {
  const trust = await repo.trust();
  const s = (await repo.writer(trust).current()).state;
  const view = { ...s, target: { branch: trust.target.branch, commit: trust.target.commit }, policy: trust.target.policy };
  const table = fleetStatus(view, trust.target.inventory, repo.rolloutTargets?.());
  await repo.showDashboard(s);
  steps.summary(fleetMarkdown(view, table, repo.rolloutMarkdown?.(view)));
  return { code: 0, outcome: `fleet status: ${table.rows.length} host(s); ${note}` };
}

/** Incoming attestations, then the rollout's gates and deadlines, then the status. */
async function bookkeeping(input: ActionInput, intake: Intake, github: OctokitGitHub, rollout: ReturnType<typeof attachRollout>, steps: StepFiles, log: ActionLog): Promise<ActionResult> {
  const taken = await takeIncoming(github, intake, input.ref, log);
  steps.summary(incomingMarkdown(taken));
  const { recorded, rejected, waiting } = tally(taken);
  const said = [`incoming: ${recorded.length} recorded, ${rejected.length} rejected, ${waiting.length} left`];
  if (input.signingKey) {
    const moved = await rollout.evaluate();
    await rollout.settle();
    said.push(moved.length > 0 ? `rollout: ${moved.join('; ')}` : 'rollout: nothing to decide');
  }
  const s = await status(intake.repository(input.ref), steps, said.join('; '));
  // A refusal is the host's problem, told in the summary; the run failed only if a file could not be decided on.
  return { code: waiting.length > 0 ? 1 : 0, outcome: s.outcome };
}

/** Paths a push to the state branch changed outside incoming/ (from the push event's commits). */
export function outsideIncoming(event: any): string[] {
  const out = new Set<string>();
  for (const c of (event.commits ?? []) as { added?: string[]; modified?: string[]; removed?: string[] }[]) {
    for (const f of [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]) if (!f.startsWith(`${INCOMING_DIR}/`)) out.add(f);
  }
  return [...out];
}
