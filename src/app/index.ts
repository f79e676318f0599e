/**
 * The Probot app: wiring only. Pull-request events become jobs, one at a time per pull request
 * (a newer head supersedes queued ones), and a redelivered webhook (same delivery id) is not
 * processed twice.
 */
import type { Probot } from 'probot';
import { OctokitGitHub, TreeCache, type RetryPolicy } from '../github/octokit.js';
import type { FleetGitHub } from '../github/port.js';
import { workerCompute, type ComputeReport } from './compute.js';
import { runPullRequest, type JobOutcome, type PullRequestJob } from './pull-request.js';

export interface AppOptions {
  compute?: ComputeReport;
  /** Retries of writes to GitHub (tests shorten the back-off). */
  retry?: RetryPolicy;
  /** How the app reaches GitHub for an event (tests and benchmarks hand in their own). */
  github?: (octokit: unknown) => FleetGitHub;
}

/** The last delivery ids seen, so a redelivery does nothing. */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly size = 2048) {}
  /** True the first time an id is seen. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.size) this.ids.delete(this.ids.values().next().value!);
    return true;
  }
}

export const PULL_REQUEST_EVENTS = ['pull_request.opened', 'pull_request.synchronize', 'pull_request.reopened', 'pull_request.ready_for_review'] as const;

export function dotfleetApp(options: AppOptions = {}) {
  return (app: Probot): void => {
    const compute = options.compute ?? workerCompute();
    const cache = new TreeCache();
    const github = options.github ?? ((octokit: unknown) => new OctokitGitHub(octokit as never, cache, options.retry));
    const seen = new RecentIds();
    const latest = new Map<string, string>();
    const queues = new Map<string, Promise<unknown>>();

    app.on([...PULL_REQUEST_EVENTS], async (context) => {
      if (!seen.add(context.id)) {
        context.log.info(`delivery ${context.id} was already handled`);
        return;
      }
      const pr = context.payload.pull_request;
      const repo = context.payload.repository;
      const job: PullRequestJob = {
        ref: { owner: repo.owner.login, repo: repo.name },
        number: pr.number,
        baseSha: pr.base.sha,
        headSha: pr.head.sha,
        baseRef: pr.base.ref,
        defaultBranch: repo.default_branch,
      };
      const key = `${repo.full_name}#${pr.number}`;
      latest.set(key, job.headSha);
      const port = github(context.octokit);
      const run = async (): Promise<JobOutcome | 'superseded'> => {
        if (latest.get(key) !== job.headSha) return 'superseded';
        return runPullRequest(job, port, compute, context.log);
      };
      const next = (queues.get(key) ?? Promise.resolve()).catch(() => undefined).then(run);
      queues.set(key, next);
      const outcome = await next;
      if (queues.get(key) === next) queues.delete(key);
      context.log.info(`${key} @ ${job.headSha.slice(0, 7)}: ${outcome}`);
    });
  };
}

export default dotfleetApp();
