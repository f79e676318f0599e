/**
 * `dotfleet agent`: `update` on a schedule. Each poll asks the fleet repository for its branch's
 * commit (`git ls-remote`: one small request, nothing fetched when nothing moved) and checks the
 * home directory's drift; it updates only when the commit moved or the home drifted from what
 * the source renders, logs one line per action, and keeps what it last saw in
 * `<state>/<host>/agent.json`, so a restart does not repeat work and a local change it cannot fix
 * is reported once, not attested on every poll. Until the app publishes rollout manifests every
 * wave is open: the agent follows the default branch (docs/host.md).
 */
import { escapeRegExp } from '../../core/regexp.js';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { runGit } from '../../host/git.js';
import { EXIT, write } from '../io.js';
import { driftFromRecord, driftOf, openHost } from './apply.js';
import { HostState, openTarget } from '../../host/home.js';
import { runUpdate, updateOptions, type UpdateOptions } from './update.js';
import { DEFAULT_SETTINGS, parseSettings, SETTINGS_FILE } from '../../core/settings.js';

interface AgentState {
  lastPoll?: string;
  /** The branch commit the last update ran for, and how it ended. */
  lastCommit?: string;
  lastOutcome?: string;
  /** Drift already reported (paths and types), so it is not reported and attested again every poll. */
  reportedDrift?: string;
  /** The branch and state-branch heads of the last poll whose update waited for its wave: nothing to do until one moves. */
  waitingOn?: string;
}

/** `30s`, `5m`, `1h` (a bare number is seconds) → milliseconds. */
export function parseInterval(text: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 's' | 'm' | 'h'] : NaN;
  if (!(ms >= 1000)) throw new DotfleetError('usage', `--interval must be a duration like 30s, 5m or 1h (at least 1s), got ${text}`);
  return ms;
}

/**
 * The commit the branch (or the repository's default branch) names on the remote now, and the
 * state branch's head (where rollout manifests are): one `git ls-remote`.
 */
async function remoteCommit(source: string, branch: string | undefined, stateBranch: string): Promise<{ commit: string; state?: string }> {
  const want = branch ? `refs/heads/${branch}` : 'HEAD';
  const r = await runGit(process.cwd(), ['ls-remote', '--symref', source, want, `refs/heads/${stateBranch}`]);
  const out = r.stdout.toString('utf8');
  const sha = new RegExp(`^([0-9a-f]{40})\\t${escapeRegExp(want)}$`, 'm').exec(out)?.[1];
  if (r.code !== 0 || !sha) throw new DotfleetError('git', `cannot read ${branch ?? 'the default branch'} of ${source}: ${r.stderr.trim().split('\n')[0] ?? 'no such branch'}`, { hint: 'check --source and --branch' });
  const state = new RegExp(`^([0-9a-f]{40})\\trefs/heads/${escapeRegExp(stateBranch)}$`, 'm').exec(out)?.[1];
  return { commit: sha, state };
}

/** The state branch the fleet's settings name (in the checkout of the last update), or the default. */
async function stateBranchOf(checkout: string): Promise<string> {
  const text = await readFile(join(checkout, SETTINGS_FILE), 'utf8').catch(() => undefined);
  try {
    return parseSettings(text).state_branch;
  } catch {
    return DEFAULT_SETTINGS.state_branch;
  }
}

export function agentCommand(program: Command): void {
  updateOptions(program.command('agent').description('run update on a schedule: act only when the fleet branch moved or the home drifted; one log line per action'))
    .option('--interval <duration>', 'time between polls (30s, 5m, 1h), give or take 10 %', '5m')
    .option('--once', 'poll once, act if needed, and exit with the update\'s exit code')
    .option('--check', 'poll once and say what would be done; change nothing (exit 1 when there is something to do)')
    .action(async (opts: UpdateOptions & { interval: string; once?: boolean; check?: boolean }) => {
      const interval = parseInterval(opts.interval);
      const stateFile = join(opts.stateDir, opts.host, 'agent.json');
      const load = async (): Promise<AgentState> => readFile(stateFile, 'utf8').then((t) => JSON.parse(t) as AgentState, () => ({}));
      const save = async (s: AgentState) => {
        await mkdir(join(opts.stateDir, opts.host), { recursive: true });
        await writeFile(stateFile, JSON.stringify(s, null, 2) + '\n');
      };
      const log = (line: string) => write(`${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')} ${opts.host}: ${line}`);
      let stopping = false;
      let wake: (() => void) | undefined;
      const stop = () => {
        stopping = true;
        wake?.();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);

      /** One poll: what to do (and, unless checking, do it). Returns the exit code of what it did. */
      const poll = async (): Promise<number> => {
        const st = await load();
        const checkout = join(opts.stateDir, opts.host, 'checkout');
        const remote = await remoteCommit(opts.source, opts.branch, await stateBranchOf(checkout));
        const commit = remote.commit;
        const refs = `${remote.commit} ${remote.state ?? '-'}`;
        // The drift of the home against what was last applied (from the checkout at that commit).
        let drift = '';
        let applied: string | null | undefined;
        try {
          const at = { repo: checkout, ref: 'HEAD', host: opts.host, target: opts.target, stateDir: opts.stateDir };
          // Usually the checkout is at the commit last applied, and the record answers without a render.
          const quick = await driftFromRecord(at, (l) => log(l));
          const items = quick?.items ?? (await driftOf(await openHost(at, (l) => log(l))));
          const record = await new HostState(opts.stateDir, opts.host).record();
          applied = record && record.target === (await openTarget(opts.target)) ? record.commit : undefined;
          drift = items.map((d) => `${d.path} ${d.type}`).join('\n');
        } catch {
          // No checkout yet (the first poll), or it does not render: an update sorts it out.
          applied = undefined;
        }
        // Waiting for its wave, with neither branch moved since: still waiting.
        const moved = applied !== commit && !(opts.rollout !== false && st.waitingOn === refs);
        const driftNew = drift !== '' && drift !== st.reportedDrift;
        if (opts.check) {
          if (moved) write(`update pending: ${applied ? applied.slice(0, 12) : 'nothing applied'} → ${commit.slice(0, 12)}`);
          if (drift) write(`drift: ${drift.split('\n').length} path(s) (dotfleet drift lists them)`);
          if (!moved && !drift) write(`up to date at ${commit.slice(0, 12)}`);
          return moved || drift ? EXIT.differences : EXIT.ok;
        }
        if (!moved && !driftNew) {
          await save({ ...st, lastPoll: new Date().toISOString() });
          return EXIT.ok;
        }
        log(moved ? `${commit.slice(0, 12)} on the branch (was ${applied?.slice(0, 12) ?? 'nothing applied'}): updating` : `the home drifted (${drift.split('\n').length} path(s)): updating`);
        const r = await runUpdate(opts);
        log(
          r.outcome === 'failed'
            ? `update to ${r.commit.slice(0, 12)} failed and was rolled back (exit ${r.code})`
            : r.outcome === 'updated'
              ? `updated to ${r.commit.slice(0, 12)}`
              : r.outcome === 'waiting'
                ? `not moving: the rollout holds this host (exit ${r.code})`
                : `up to date at ${r.commit.slice(0, 12)}`,
        );
        await save({ lastPoll: new Date().toISOString(), lastCommit: r.commit, lastOutcome: r.outcome, reportedDrift: r.outcome === 'failed' ? drift : undefined, waitingOn: r.outcome === 'waiting' ? refs : undefined });
        return r.code;
      };

      if (opts.once || opts.check) {
        process.exitCode = await poll();
        return;
      }
      log(`agent started: following ${opts.branch ?? 'the default branch'} of ${opts.source} every ${opts.interval}`);
      while (!stopping) {
        try {
          await poll();
        } catch (e) {
          // One bad poll (the network, a broken commit) is logged; the agent carries on.
          log(`poll failed: ${e instanceof DotfleetError ? e.describe() : (e as Error).message}`);
        }
        if (stopping) break;
        const wait = interval * (0.9 + 0.2 * Math.random());
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, wait);
        });
      }
      log('agent stopped');
    });
}
