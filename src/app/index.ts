/**
 * The Probot app: wiring only. Pull-request events become jobs, one at a time per pull request,
 * each ending on the head GitHub reports; a delivery that succeeded is not processed again, one
 * that failed is (and answers non-2xx, so GitHub's delivery log shows it).
 */
import type { ApplicationFunctionOptions, Probot } from 'probot';
import { OctokitGitHub, TreeCache, type RetryPolicy } from '../github/octokit.js';
import type { FleetGitHub, RepoRef, StateGitHub } from '../github/port.js';
import { workerCompute, workerRenderHashes, type ComputeReport } from './compute.js';
import { intakeHandler, type HttpOptions } from './intake/http.js';
import { Intake, type IntakeOptions } from './intake/service.js';
import { runPullRequest, type PullRequestJob } from './pull-request.js';
import { COMMENT_MARKER } from '../core/pull-request.js';

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

/**
 * Deliveries by id: one that succeeded is not processed again (GitHub redelivers with the same
 * id); one under way is joined, not started twice; one that failed is forgotten, so its
 * redelivery runs again.
 */
class Deliveries {
  private readonly done = new Set<string>();
  private readonly running = new Map<string, Promise<unknown>>();
  constructor(private readonly size = 4096) {}

  /** Run `work` for this delivery unless it already succeeded; 'repeat' when it had. */
  async run<T>(id: string, work: () => Promise<T>): Promise<T | 'repeat'> {
    if (this.done.has(id)) return 'repeat';
    const under = this.running.get(id);
    if (under) return (await under) as T;
    const p = work();
    this.running.set(id, p);
    try {
      const out = await p;
      this.done.add(id);
      if (this.done.size > this.size) this.done.delete(this.done.values().next().value!);
      return out;
    } finally {
      this.running.delete(id);
    }
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
    const deliveries = new Deliveries();
    const queues = new Map<string, Promise<unknown>>();

    app.on([...PULL_REQUEST_EVENTS], async (context) => {
      const pr = context.payload.pull_request;
      const repo = context.payload.repository;
      const job: PullRequestJob = {
        ref: { owner: repo.owner.login, repo: repo.name },
        number: pr.number,
        baseSha: pr.base.sha,
        headSha: pr.head.sha,
        baseRef: pr.base.ref,
        defaultBranch: repo.default_branch,
        htmlUrl: pr.html_url,
      };
      const key = `${repo.full_name}#${pr.number}`;
      const port = github(context.octokit);
      // While a render waits for a free slot for more than a few seconds, the comment says so.
      const queued = async (j: PullRequestJob) => {
        const existing = await port.findComment(j.ref, j.number, COMMENT_MARKER);
        const note = `> ⏳ Rendering \`${j.headSha.slice(0, 7)}\` is queued behind other renders; this comment is updated when it is done.`;
        if (!existing) await port.createComment(j.ref, j.number, `${COMMENT_MARKER}\n### dotfleet · fleet diff\n\n${note}\n`);
        else if (!existing.body.includes(note)) await port.updateComment(j.ref, existing.id, existing.body.replace(/\n/, `\n${note}\n\n`));
      };
      // One job at a time per pull request; each describes the head GitHub reports when it ends.
      const outcome = await deliveries.run(context.id, async () => {
        const next = (queues.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => runPullRequest(job, port, compute, context.log, queued));
        queues.set(key, next);
        try {
          return await next;
        } finally {
          if (queues.get(key) === next) queues.delete(key);
        }
      });
      if (outcome === 'repeat') context.log.info(`delivery ${context.id} was already handled`);
      else context.log.info(`${key} @ ${job.headSha.slice(0, 7)}: ${outcome}`);
    });
  };
}

export default dotfleetApp();
