/**
 * The Probot app: wiring only. Pull-request events become jobs, one at a time per pull request,
 * each ending on the head GitHub reports; a delivery that succeeded is not processed again, one
 * that failed is (and answers non-2xx, so GitHub's delivery log shows it).
 */
import type { ApplicationFunctionOptions, Probot } from 'probot';
import { OctokitGitHub, TreeCache, type RetryPolicy } from '../github/octokit.js';
import type { FleetGitHub, RepoRef, RolloutGitHub, StateGitHub } from '../github/port.js';
import { workerCompute, workerRenderHashes, type ComputeReport } from './compute.js';
import { intakeHandler, type HttpOptions } from './intake/http.js';
import { Intake, type IntakeOptions } from './intake/service.js';
import { PULL_REQUEST_EVENTS, runPullRequest, type PullRequestJob } from './pull-request.js';
import { COMMENT_MARKER } from '../core/pull-request.js';
import { tickedCommands } from '../core/rollout/report.js';
import { DASHBOARD_MARKER } from '../core/state/dashboard.js';
import type { SshPrivateKey } from '../core/ssh/keys.js';
import { attachRollout, Rollouts, signingKeyFromEnv } from './rollout.js';
import { healthHandler } from './health.js';
import { localSerial, redisSerial, type Serial } from './serial.js';
import { installedRepositories } from './installations.js';
import { envNumber, intakeOptionsFromEnv } from './intake/options.js';

export { intakeOptionsFromEnv };
import { rolloutHandler } from './rollout-http.js';

export interface AppOptions {
  compute?: ComputeReport;
  /** Retries of writes to GitHub (tests shorten the back-off). */
  retry?: RetryPolicy;
  /** How the app reaches GitHub for an event (tests and benchmarks hand in their own). */
  github?: (octokit: unknown) => FleetGitHub & RolloutGitHub;
  /** Attestation intake settings (defaults, then DOTFLEET_INTAKE_* variables, then these). */
  intake?: Partial<IntakeOptions>;
  http?: Partial<HttpOptions>;
  /** Handed the intake once it exists (tests and benchmarks read its stats). */
  onIntake?: (intake: Intake) => void;
  /** The app's rollout signing key (default: DOTFLEET_SIGNING_KEY; none turns rollouts off). */
  signingKey?: SshPrivateKey | null;
  /** How often deadlines are checked (default DOTFLEET_ROLLOUT_TICK_SECONDS or 60 s; 0: only on events). */
  rolloutTickMs?: number;
  clock?: () => Date;
  onRollouts?: (rollouts: Rollouts) => void;
  /** Where jobs for one pull request take turns (default: across replicas with REDIS_URL, else in this process). */
  serial?: Serial;
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

export { PULL_REQUEST_EVENTS } from './pull-request.js';

export function dotfleetApp(options: AppOptions = {}) {
  return (app: Probot, appOptions?: ApplicationFunctionOptions): void => {
    const compute = options.compute ?? workerCompute();
    const cache = new TreeCache();
    const github = options.github ?? ((octokit: unknown) => new OctokitGitHub(octokit as never, cache, options.retry));

    // Attestation intake: hosts have no GitHub credentials; the app finds the installation.
    const installations = new Map<string, number>();
    const portFor = async (ref: RepoRef): Promise<(StateGitHub & RolloutGitHub) | undefined> => {
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
    // Settings from the environment first: a bad value stops the start before anything runs.
    const intakeEnv = intakeOptionsFromEnv();
    const tickMs = options.rolloutTickMs ?? (envNumber('DOTFLEET_ROLLOUT_TICK_SECONDS') ?? 60) * 1000;
    if (options.clock) intakeEnv.clock = options.clock;
    const intake = new Intake(
      portFor,
      { renderHashes: workerRenderHashes(), ...intakeEnv, ...options.intake, writer: { ...intakeEnv.writer!, ...options.intake?.writer } as IntakeOptions['writer'] },
      { info: (m) => app.log.info(m), warn: (m) => app.log.warn(m) },
    );
    options.onIntake?.(intake);

    // Rollouts: planned on a push to the default branch, moved by attestations, commands and a tick.
    const signingKey = options.signingKey === null ? undefined : (options.signingKey ?? signingKeyFromEnv());
    const clock = options.clock ?? (() => new Date());
    const log = { info: (m: string) => app.log.info(m), warn: (m: string) => app.log.warn(m) };
    const rollouts = new Rollouts(
      (ref) =>
        attachRollout(
          ref,
          async () => {
            const p = await portFor(ref);
            if (!p) throw new Error(`the dotfleet app is not installed on ${ref.owner}/${ref.repo}`);
            return p;
          },
          intake.repository(ref),
          { signingKey, clock },
          log,
        ),
      () => installedRepositories((id) => app.auth(id)),
      log,
      signingKey !== undefined,
    );
    // After a restart, the first attestation for a repository brings its rollout back.
    if (signingKey) intake.onRepository = (ref) => void rollouts.for(ref);
    if (!signingKey) app.log.info('rollouts are off: DOTFLEET_SIGNING_KEY is not set (docs/rollout.md)');
    rollouts.start(tickMs);
    options.onRollouts?.(rollouts);
    const trustProxy = options.http?.trustProxy ?? process.env.DOTFLEET_TRUST_PROXY === '1';
    try {
      appOptions?.addHandler?.(intakeHandler(intake, { info: (m) => app.log.info(m), warn: (m) => app.log.warn(m) }, { trustProxy }));
      appOptions?.addHandler?.(rolloutHandler(rollouts, { info: (m) => app.log.info(m), warn: (m) => app.log.warn(m) }));
      appOptions?.addHandler?.(healthHandler(() => ({ rollouts: rollouts.enabled })));
    } catch (e) {
      // Loaded without a server (`probot receive`, webhook-only tests): no intake route then.
      if (!/No server instance/.test((e as Error).message)) throw e;
      app.log.debug('no HTTP server: the attestation intake route is not served');
    }

    const deliveries = new Deliveries();
    app.on('push', async (context) => {
      const p = context.payload;
      const ref = { owner: p.repository.owner?.login ?? p.repository.owner?.name ?? '', repo: p.repository.name };
      const branch = p.ref.replace(/^refs\/heads\//, '');
      // Only a push that moves the default branch plans a rollout: not the state branch, not a
      // branch's deletion, not a tag, and not a push made by an app (ours writes only to other branches).
      const moves = p.ref.startsWith('refs/heads/') && branch === p.repository.default_branch && !p.deleted && !/^0+$/.test(p.after);
      // A rollout shows the dashboard with its own views.
      intake.pushed(ref, branch, p.repository.default_branch, moves && p.sender?.type !== 'Bot' && rollouts.enabled);
      if (!moves) return;
      if (p.sender?.type === 'Bot') {
        context.log.info(`push to ${branch} by ${p.sender.login}: no rollout for a bot's push`);
        return;
      }
      const outcome = await deliveries.run(context.id, () => rollouts.for(ref).pushed(p.after, p.before));
      context.log.info(outcome === 'repeat' ? `delivery ${context.id} was already handled` : `push ${p.after.slice(0, 7)}: ${outcome}`);
    });

    app.on('issue_comment.created', async (context) => {
      const p = context.payload;
      if (p.comment.user?.type === 'Bot' || !/^\s*\/dotfleet\b/m.test(p.comment.body ?? '')) return;
      const ref = { owner: p.repository.owner.login, repo: p.repository.name };
      if (!rollouts.enabled) {
        context.log.info('a /dotfleet command, but rollouts are off (DOTFLEET_SIGNING_KEY is not set)');
        return;
      }
      const outcome = await deliveries.run(context.id, () => rollouts.for(ref).commented(p.comment.body, p.comment.user?.login ?? 'ghost', p.issue.number, p.comment.id));
      context.log.info(`command by ${p.comment.user?.login ?? 'ghost'}: ${outcome}`);
    });

    // A box ticked on the Fleet dashboard issue (ours: opened by the app, with its marker) is the
    // same command as a comment, with the same write-access check; the box clears when the
    // dashboard is written again.
    app.on('issues.edited', async (context) => {
      const p = context.payload;
      const body = p.issue.body ?? '';
      if (!rollouts.enabled || !p.changes.body || p.sender.type === 'Bot' || p.issue.user?.type !== 'Bot' || !body.includes(DASHBOARD_MARKER)) return;
      const commands = tickedCommands(p.changes.body.from, body);
      if (commands.length === 0) return;
      const ref = { owner: p.repository.owner.login, repo: p.repository.name };
      const outcome = await deliveries.run(context.id, async () => {
        const said: (string | undefined)[] = [];
        for (const [i, c] of commands.entries()) said.push(await rollouts.for(ref).commented(c, p.sender.login, p.issue.number, `${context.id}-${i}`));
        const repo = intake.repository(ref);
        repo.dashboard.edited(p.issue.number, body);
        await repo.showDashboard();
        return said.join(' · ');
      });
      context.log.info(`dashboard boxes ticked by ${p.sender.login}: ${outcome}`);
    });
    // Pull-request jobs take turns per pull request: across replicas when they share a Redis.
    const redisUrl = process.env.REDIS_URL;
    const serial: Promise<Serial> = options.serial
      ? Promise.resolve(options.serial)
      : redisUrl
        ? redisSerial(redisUrl, (e) => app.log.warn(`redis: ${e.message}`))
        : Promise.resolve(localSerial());
    serial.catch((e) => app.log.error(`REDIS_URL: cannot reach Redis (${(e as Error).message}); pull-request events fail until it can`));
    if (redisUrl && !options.serial) app.log.info('pull-request jobs take turns across replicas through Redis (REDIS_URL)');

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
      const outcome = await deliveries.run(context.id, async () => (await serial).run(key, () => runPullRequest(job, port, compute, context.log, queued)));
      if (outcome === 'repeat') context.log.info(`delivery ${context.id} was already handled`);
      else context.log.info(`${key} @ ${job.headSha.slice(0, 7)}: ${outcome}`);
    });
  };
}

export default dotfleetApp();
