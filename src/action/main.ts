/**
 * The Action's entry (bundled to action/dist/index.mjs): the runner's environment in, one event
 * handled, the exit code out. Inputs arrive as INPUT_<NAME> variables (action.yml).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProbotOctokit } from 'probot';
import { OctokitGitHub, TreeCache } from '../github/octokit.js';
import { useReportWorker } from '../app/compute.js';
import { intakeOptionsFromEnv } from '../app/intake/options.js';
import { signingKeyFromEnv } from '../app/rollout.js';
import { runAction, type ActionLog } from './run.js';
import { escapeCommand, StepFiles } from './summary.js';

/** An input as the runner passes it (`signing-key` → INPUT_SIGNING-KEY), trimmed; undefined when empty. */
export function input(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`]?.trim();
  return v ? v : undefined;
}

class UsageError extends Error {}

function need(name: string, env: NodeJS.ProcessEnv): string {
  const v = env[name];
  if (!v) throw new UsageError(`${name} is not set: run dotfleet as a step of a GitHub Actions workflow (docs/action.md)`);
  return v;
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const steps = new StepFiles(env.GITHUB_STEP_SUMMARY, env.GITHUB_OUTPUT);
  const log: ActionLog = {
    // Plain lines start with "dotfleet:": nothing a pull request says can start a workflow command.
    info: (m) => console.log(`dotfleet: ${m.replace(/\r?\n/g, ' ')}`),
    warn: (m) => console.log(`::warning title=dotfleet::${escapeCommand(m)}`),
  };
  try {
    const eventName = need('GITHUB_EVENT_NAME', env);
    const eventPath = need('GITHUB_EVENT_PATH', env);
    const [owner, repo] = need('GITHUB_REPOSITORY', env).split('/');
    if (!owner || !repo) throw new UsageError(`GITHUB_REPOSITORY must be OWNER/REPO, got "${env.GITHUB_REPOSITORY}"`);
    let event: unknown;
    try {
      event = JSON.parse(readFileSync(eventPath, 'utf8'));
    } catch (e) {
      throw new UsageError(`cannot read the event at ${eventPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const token = input('token', env) ?? env.GITHUB_TOKEN;
    if (!token) throw new UsageError('no token: the "token" input is empty (its default is the workflow token, github.token)');
    const key = input('signing-key', env);
    let signingKey;
    try {
      signingKey = key ? signingKeyFromEnv(key) : undefined;
    } catch (e) {
      throw new UsageError((e as Error).message.replace(/^DOTFLEET_SIGNING_KEY/, 'the signing-key input'));
    }
    // The report worker travels with the bundle.
    useReportWorker(fileURLToPath(new URL('./report-worker.mjs', import.meta.url)));
    const octokit = new ProbotOctokit({ auth: { token }, baseUrl: env.GITHUB_API_URL || 'https://api.github.com', log: { debug: () => {}, info: () => {}, warn: log.warn, error: log.warn } });
    const github = new OctokitGitHub(octokit as never, new TreeCache());
    const result = await runAction({ eventName, event, ref: { owner, repo }, signingKey, intake: intakeOptionsFromEnv(env) }, github, steps, log);
    log.info(result.outcome);
    steps.output('outcome', result.outcome);
    if (result.code !== 0) console.log(`::error title=dotfleet::${escapeCommand(result.outcome)}`);
    return result.code;
  } catch (e) {
    const why = e instanceof UsageError ? e.message : `${(e as Error).message?.split('\n')[0] ?? String(e)}`;
    console.log(`::error title=dotfleet::${escapeCommand(why)}`);
    // Not the user's mistake: the stack for whoever debugs it, shown only with step debugging on.
    if (!(e instanceof UsageError)) console.log(`::debug::${escapeCommand((e as Error).stack ?? String(e))}`);
    steps.output('outcome', why);
    return e instanceof UsageError ? 2 : 1;
  }
}
