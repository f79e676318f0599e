/**
 * The pull-request flow: read base and head, compute the report (in a worker), then, only if
 * the pull request still points at the rendered head, write one sticky comment and one check run.
 */
import type { PullRequestInput } from '../core/pull-request.js';
import { CHECK_NAME, COMMENT_MARKER, pullRequestFailure } from '../core/pull-request.js';
import type { FleetGitHub, RepoRef } from '../github/port.js';
import type { ComputeReport } from './compute.js';

export interface PullRequestJob {
  ref: RepoRef;
  number: number;
  baseSha: string;
  headSha: string;
  baseRef: string;
  defaultBranch: string;
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export type JobOutcome = 'written' | 'unchanged' | 'stale';

export async function runPullRequest(job: PullRequestJob, github: FleetGitHub, compute: ComputeReport, log: Logger): Promise<JobOutcome> {
  const { ref, number } = job;
  const [base, head, existing] = await Promise.all([
    github.readTree(ref, job.baseSha),
    github.readTree(ref, job.headSha),
    github.findComment(ref, number, COMMENT_MARKER),
  ]);
  // Trust comes from the default branch; a pull request into it has it as its base.
  const trust = job.baseRef === job.defaultBranch ? base : await github.readTree(ref, job.defaultBranch);
  const input: PullRequestInput = {
    base,
    head,
    trust,
    baseSha: job.baseSha,
    headSha: job.headSha,
    previousComment: existing?.body,
    repoHint: `dotfleet diff --base ${job.baseSha.slice(0, 12)} --head ${job.headSha.slice(0, 12)}`,
  };
  const outcome = await compute(input);
  const result = outcome.ok ? outcome.result : pullRequestFailure(outcome.reason, input);
  if (!outcome.ok) log.warn(`${ref.owner}/${ref.repo}#${number}: ${outcome.reason}`);

  // A newer push may have arrived while we rendered: its own event will write.
  const current = await github.pullRequestHead(ref, number);
  if (current !== job.headSha) {
    log.info(`${ref.owner}/${ref.repo}#${number}: head moved to ${current.slice(0, 7)} while rendering ${job.headSha.slice(0, 7)}; dropped`);
    return 'stale';
  }
  let wrote = false;
  if (!existing) {
    await github.createComment(ref, number, result.comment);
    wrote = true;
  } else if (existing.body !== result.comment) {
    await github.updateComment(ref, existing.id, result.comment);
    wrote = true;
  }
  await github.createCheckRun(ref, { name: CHECK_NAME, headSha: job.headSha, ...result.check });
  return wrote ? 'written' : 'unchanged';
}
