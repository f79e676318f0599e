import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { commit, exampleTree, git, gitRepo, PROJECT_ROOT, text } from '../helpers/fleet.js';

/** Run the Action's step as a runner would: its environment, its summary and output files. */
function runAction(repo: string, base: string, head: string) {
  const temp = mkdtempSync(join(tmpdir(), 'dotfleet-action-'));
  const summary = join(temp, 'summary.md');
  const output = join(temp, 'output');
  writeFileSync(summary, '');
  writeFileSync(output, '');
  const r = spawnSync('bash', [join(PROJECT_ROOT, 'action', 'run.sh')], {
    encoding: 'utf8',
    env: { ...process.env, DOTFLEET_REPO: repo, DOTFLEET_BASE: base, DOTFLEET_HEAD: head, RUNNER_TEMP: temp, GITHUB_STEP_SUMMARY: summary, GITHUB_OUTPUT: output },
  });
  return { code: r.status, stdout: r.stdout, summary: readFileSync(summary, 'utf8'), output: readFileSync(output, 'utf8') };
}

describe('the Action', () => {
  const tree = exampleTree();
  const repo = gitRepo(tree);
  const base = git(repo, 'rev-parse', 'HEAD').trim();

  it('declares one composite step running run.sh with the pull request commits', () => {
    const action = YAML.parse(readFileSync(join(PROJECT_ROOT, 'action', 'action.yml'), 'utf8'));
    expect(action.runs.using).toBe('composite');
    expect(action.runs.steps[0].run).toBe('bash "$GITHUB_ACTION_PATH/run.sh"');
    expect(action.inputs.base.default).toBe('${{ github.event.pull_request.base.sha }}');
  });

  it('writes the fleet diff to the job summary', () => {
    const head = commit(repo, { 'home/.chezmoidata.toml': text(tree, 'home/.chezmoidata.toml').replace('font_size = 11', 'font_size = 13') }, 'font');
    const r = runAction(repo, base, head);
    expect(r.code).toBe(0);
    expect(r.summary).toMatch(/^### dotfleet · fleet diff/);
    expect(r.summary).toContain('+size = 26');
    expect(r.output).toBe('exit-code=0\n');
  });

  it('fails the step on render errors, and the summary says where', () => {
    git(repo, 'checkout', '-q', '--detach', base);
    const head = commit(repo, { 'home/dot_tmux.conf.hbs': 'set -g prefix {{tmux.prefx}}\n' }, 'broken');
    const r = runAction(repo, base, head);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('::error title=dotfleet::the fleet diff found errors (exit 3)');
    expect(r.summary).toContain('home/dot_tmux.conf.hbs:1:17');
    expect(r.output).toBe('exit-code=3\n');
  });
});
