/**
 * The pull-request flow: read the base, the head and the trust (the default branch's head commit,
 * by SHA), compute the report (in a worker), then write one sticky comment and one check run for
 * the head the pull request has *now*: if it moved while rendering, render the new head instead
 * (whatever order deliveries arrived in, the newest head ends up described and checked).
 */
import type { PullRequestInput, PullRequestResult } from '../core/pull-request.js';
import { CHECK_NAME, COMMENT_MARKER, pullRequestFailure } from '../core/pull-request.js';
import type { FleetGitHub, RepoRef } from '../github/port.js';
import type { ComputeReport } from './compute.js';

/** The pull-request events that render (the app subscribes to these; the Action acts on them). */
export const PULL_REQUEST_EVENTS = ['pull_request.opened', 'pull_request.synchronize', 'pull_request.reopened', 'pull_request.ready_for_review'] as const;

export interface PullRequestJob {
  ref: RepoRef;
  number: number;
  baseSha: string;
  headSha: string;
  baseRef: string;
  defaultBranch: string;
  /** The pull request's page (for the check run's details link). */
  htmlUrl?: string;
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export type JobOutcome = 'written' | 'unchanged' | 'no-comment';

/** Renders of newer heads after the head moved while rendering, before giving up to the next event. */
const MAX_ROUNDS = 3;

/** A write to GitHub that failed: the delivery counts as failed (GitHub may redeliver it). */
export class WriteFailed extends Error {}

function describeFailure(e: unknown): string {
  const err = e as { status?: number; message?: string };
  return `${err.status ? `HTTP ${err.status}: ` : ''}${(err.message ?? String(e)).split('\n')[0]!.slice(0, 200)}`;
}

/** A report worth a comment: something changes, fails or needs review. */
function worthAComment(result: PullRequestResult): boolean {
  return result.check.conclusion !== 'neutral';
}

export async function runPullRequest(start: PullRequestJob, github: FleetGitHub, compute: ComputeReport, log: Logger, onQueued?: (job: PullRequestJob) => Promise<void>): Promise<JobOutcome> {
  let job = start;
  const { ref, number } = job;
  const name = `${ref.owner}/${ref.repo}#${number}`;
  for (let round = 1; ; round++) {
    // Trust is the default branch's head commit now, by SHA (never a tree cached by branch name).
    const trustSha = (await github.branchHead(ref, job.defaultBranch)) ?? job.baseSha;
    const [base, head, trust, found] = await Promise.all([
      github.readTree(ref, job.baseSha),
      github.readTree(ref, job.headSha),
      github.readTree(ref, trustSha),
      github.findComment(ref, number, COMMENT_MARKER),
    ]);
    const input: PullRequestInput = {
      base,
      head,
      trust,
      baseSha: job.baseSha,
      headSha: job.headSha,
      previousComment: found?.body,
      repoHint: `dotfleet diff --base ${job.baseSha.slice(0, 12)} --head ${job.headSha.slice(0, 12)}`,
    };
    // A "queued" note written while waiting for a render slot is a comment too: find it again.
    let queuedNote: Promise<void> | undefined;
    const current = job;
    const outcome = await compute(input, onQueued ? () => (queuedNote = onQueued(current).catch((e) => log.warn(`${name}: the queued note: ${describeFailure(e)}`))) : undefined);
    const existing = queuedNote ? (await queuedNote, await github.findComment(ref, number, COMMENT_MARKER)) : found;
    const result = outcome.ok ? outcome.result : pullRequestFailure(outcome.reason, input);
    if (!outcome.ok) log.warn(`${name}: ${outcome.reason}`);

    // The head may have moved while we rendered: describe the head the pull request has now.
    const now = await github.pullRequest(ref, number);
    if (now.headSha !== job.headSha) {
      log.info(`${name}: head moved to ${now.headSha.slice(0, 7)} while rendering ${job.headSha.slice(0, 7)}`);
      if (round >= MAX_ROUNDS) return 'unchanged';
      job = { ...job, headSha: now.headSha, baseSha: now.baseSha ?? job.baseSha, baseRef: now.baseRef ?? job.baseRef };
      continue;
    }

    // The comment: created only when there is something to say, always kept up to date once it exists.
    let commentId = existing?.id;
    let wrote = false;
    if (!existing && worthAComment(result)) {
      commentId = await github.createComment(ref, number, result.comment);
      wrote = true;
    } else if (existing && existing.body !== result.comment) {
      await github.updateComment(ref, existing.id, result.comment);
      wrote = true;
    }

    // The check run: one per head commit, updated by a redelivery or a re-run of the same head.
    try {
      const previous = await github.findCheckRun(ref, job.headSha, CHECK_NAME);
      const detailsUrl = job.htmlUrl && commentId !== undefined ? `${job.htmlUrl}#issuecomment-${commentId}` : undefined;
      await github.createCheckRun(ref, { name: CHECK_NAME, headSha: job.headSha, ...result.check, detailsUrl }, previous);
    } catch (e) {
      const why = describeFailure(e);
      log.warn(`${name}: the check run could not be written: ${why}`);
      // Leave a trace a reviewer sees; the next event (or GitHub's redelivery) writes it again.
      const note = `\n> ⚠️ The **${CHECK_NAME}** check run for \`${job.headSha.slice(0, 7)}\` could not be written (${why}). It is written again on the next event for this pull request, or when GitHub redelivers this one.\n`;
      try {
        if (commentId !== undefined) await github.updateComment(ref, commentId, result.comment + note);
        else await github.createComment(ref, number, result.comment + note);
      } catch (e2) {
        log.warn(`${name}: and the comment could not say so: ${describeFailure(e2)}`);
      }
      throw new WriteFailed(`the check run could not be written: ${why}`);
    }
    if (!existing && !wrote) return 'no-comment';
    return wrote ? 'written' : 'unchanged';
  }
}
