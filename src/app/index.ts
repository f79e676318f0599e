/**
 * The Probot app: wiring only. Pull-request events become jobs, one at a time per pull request
 * (a newer head supersedes queued ones), and a redelivered webhook (same delivery id) is not
 * processed twice.
 */
import type { ApplicationFunctionOptions, Probot } from 'probot';
import { OctokitGitHub, TreeCache, type RetryPolicy } from '../github/octokit.js';
import type { FleetGitHub, RepoRef, StateGitHub } from '../github/port.js';
import { workerCompute, workerRenderHashes, type ComputeReport } from './compute.js';
import { intakeHandler, type HttpOptions } from './intake/http.js';
import { Intake, type IntakeOptions } from './intake/service.js';
import { runPullRequest, type JobOutcome, type PullRequestJob } from './pull-request.js';

export interface AppOptions {
  compute?: ComputeReport;
  /** Retries of writes to GitHub (tests shorten the back-off). */
  retry?: RetryPolicy;
  /** How the app reaches GitHub for an event (tests and benchmarks hand in their own). */
  github?: (octokit: unknown) => FleetGitHub & StateGitHub;
  /** Attestation intake settings (defaults, then DOTFLEET_INTAKE_* variables, then these). */
  intake?: Partial<IntakeOptions>;
  http?: Partial<HttpOptions>;
  /** Handed the intake once it exists (tests and benchmarks read its stats). */
  onIntake?: (intake: Intake) => void;
}

const envNumber = (name: string): number | undefined => {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, got "${v}"`);
  return n;
};

/** Operators tune intake with environment variables (docs/app.md). */
export function intakeOptionsFromEnv(): Partial<IntakeOptions> {
  const out: Partial<IntakeOptions> = {};
  const window = envNumber('DOTFLEET_INTAKE_WINDOW_MS');
  const maxBytes = envNumber('DOTFLEET_INTAKE_MAX_BYTES');
  const maxAge = envNumber('DOTFLEET_INTAKE_MAX_AGE_SECONDS');
  const perHost = envNumber('DOTFLEET_INTAKE_HOST_PER_MINUTE');
  const perAddress = envNumber('DOTFLEET_INTAKE_ADDRESS_PER_MINUTE');
  if (window !== undefined) out.writer = { ...(out.writer as IntakeOptions['writer']), windowMs: window };
  if (maxBytes !== undefined) out.maxBytes = maxBytes;
  if (maxAge !== undefined) out.maxAgeSeconds = maxAge;
  if (perHost !== undefined) out.perHost = { perMinute: perHost, burst: Math.max(1, Math.ceil(perHost / 2)) };
  if (perAddress !== undefined) out.perAddress = { perMinute: perAddress, burst: Math.max(1, Math.ceil(perAddress / 2)) };
  return out;
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
  return (app: Probot, appOptions?: ApplicationFunctionOptions): void => {
    const compute = options.compute ?? workerCompute();
    const cache = new TreeCache();
    const github = options.github ?? ((octokit: unknown) => new OctokitGitHub(octokit as never, cache, options.retry));

    // Attestation intake: hosts have no GitHub credentials; the app finds the installation.
    const installations = new Map<string, number>();
    const portFor = async (ref: RepoRef): Promise<StateGitHub | undefined> => {
      const key = `${ref.owner}/${ref.repo}`.toLowerCase();
      let id = installations.get(key);
      if (id === undefined) {
        try {
          const appOctokit = await app.auth();
          id = (await appOctokit.request('GET /repos/{owner}/{repo}/installation', { owner: ref.owner, repo: ref.repo })).data.id as number;
        } catch (e) {
          if ((e as { status?: number }).status === 404) return undefined;
          throw e;
        }
        installations.set(key, id);
      }
      return github(await app.auth(id));
    };
    const intakeEnv = intakeOptionsFromEnv();
    const intake = new Intake(
      portFor,
      { renderHashes: workerRenderHashes(), ...intakeEnv, ...options.intake, writer: { ...intakeEnv.writer!, ...options.intake?.writer } as IntakeOptions['writer'] },
      { info: (m) => app.log.info(m), warn: (m) => app.log.warn(m) },
    );
    options.onIntake?.(intake);
    const trustProxy = options.http?.trustProxy ?? process.env.DOTFLEET_TRUST_PROXY === '1';
    try {
      appOptions?.addHandler?.(intakeHandler(intake, { info: (m) => app.log.info(m), warn: (m) => app.log.warn(m) }, { trustProxy }));
    } catch (e) {
      // Loaded without a server (`probot receive`, webhook-only tests): no intake route then.
      if (!/No server instance/.test((e as Error).message)) throw e;
      app.log.debug('no HTTP server: the attestation intake route is not served');
    }

    app.on('push', async (context) => {
      const p = context.payload;
      intake.pushed({ owner: p.repository.owner?.login ?? p.repository.owner?.name ?? '', repo: p.repository.name }, p.ref.replace(/^refs\/heads\//, ''), p.repository.default_branch);
    });
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
