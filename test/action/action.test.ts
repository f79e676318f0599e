/**
 * The bundled Action (action/dist/index.mjs, as committed) run the way a runner runs it: a node
 * process with GITHUB_EVENT_PATH pointing at a real webhook payload (@octokit/webhooks-examples),
 * the workflow's token as an input, and GITHUB_API_URL pointing at a GitHub stand-in on a local
 * port: real tarballs of a real git repository, real SSH signatures.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import { marked } from 'marked';
import { incomingMarkdown } from '../../src/action/incoming.js';
import { GitHubStandIn, serveStandIn } from '../../src/github/standin.js';
import { MANIFEST_PATH, MANIFEST_SIG_PATH, ROLLOUT_NAMESPACE } from '../../src/core/rollout/manifest.js';
import { capSummary, STEP_SUMMARY_LIMIT } from '../../src/action/summary.js';
import { PROJECT_ROOT, commit, git, gitRepo, text } from '../helpers/fleet.js';
import { OWNER, REPO, commentPayload, pullRequestPayload, pushPayload, tarball } from '../helpers/github.js';
import { envelope, intakeFleet, signed, type IntakeFleet } from '../helpers/intake.js';
import { generatedChange } from '../helpers/generate.js';
import { newKey, scratchDir } from '../helpers/ssh.js';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples') as { name: string; examples: any[] }[];
const BUNDLE = join(PROJECT_ROOT, 'action', 'dist', 'index.mjs');

interface Served {
  gh: GitHubStandIn;
  base: string;
  server: Server;
}

/** The stand-in on a local port, for a fleet repository whose commits are all served as tarballs. */
async function serve(repo: string, main: string, commits: string[]): Promise<Served> {
  return serveStandIn((base) => new GitHubStandIn(OWNER, REPO, 'main', main, new Map(commits.map((c) => [c, tarball(repo, c)])), `${base}/codeload`));
}

interface Run {
  /** The step's working directory. */
  dir: string;
  code: number | null;
  stdout: string;
  stderr: string;
  summary: string;
  output: string;
}

/** One run of the bundled Action for one event. */
function runAction(s: Served, eventName: string, payload: unknown, inputs: Record<string, string> = {}, summaryBefore = ''): Promise<Run> {
  const temp = mkdtempSync(join(tmpdir(), 'dotfleet-action-'));
  const files = { event: join(temp, 'event.json'), summary: join(temp, 'summary.md'), output: join(temp, 'output') };
  writeFileSync(files.event, JSON.stringify(payload));
  writeFileSync(files.summary, summaryBefore);
  writeFileSync(files.output, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: temp,
    GITHUB_EVENT_NAME: eventName,
    GITHUB_EVENT_PATH: files.event,
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_API_URL: s.base,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_OUTPUT: files.output,
    INPUT_TOKEN: 'ghs_workflowtoken',
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BUNDLE], { env, cwd: temp });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ dir: temp, code, stdout, stderr, summary: readFileSync(files.summary, 'utf8'), output: readFileSync(files.output, 'utf8') }));
  });
}

const schedulePayload = () => ({ schedule: '*/15 * * * *', repository: { name: REPO, owner: { login: OWNER }, default_branch: 'main' } });

describe('the Action bundle', () => {
  it('is the bundle of the source as it is now (CI fails on a stale action/dist)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dotfleet-bundle-'));
    const r = await new Promise<number | null>((resolve) => spawn(process.execPath, [join(PROJECT_ROOT, 'scripts', 'bundle-action.mjs'), out], { cwd: PROJECT_ROOT, stdio: 'inherit' }).on('close', resolve));
    expect(r).toBe(0);
    for (const f of ['index.mjs', 'report-worker.mjs']) {
      const fresh = readFileSync(join(out, f));
      const committed = readFileSync(join(PROJECT_ROOT, 'action', 'dist', f));
      if (!fresh.equals(committed)) throw new Error(`action/dist/${f} is out of date: run \`npm run build && node scripts/bundle-action.mjs\` and commit action/dist`);
    }
  }, 120_000);

  it('runs on the runner\'s node from action.yml, with the workflow token by default and the signing key optional', () => {
    const action = YAML.parse(readFileSync(join(PROJECT_ROOT, 'action', 'action.yml'), 'utf8'));
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.mjs' });
    expect(action.inputs.token.default).toBe('${{ github.token }}');
    expect(action.inputs['signing-key'].required).toBe(false);
    expect(Object.keys(action.outputs)).toEqual(['outcome']);
  });
});

describe('the workflow dotfleet init writes', () => {
  const template = readFileSync(join(PROJECT_ROOT, 'templates', 'fleet', '.github', 'workflows', 'dotfleet.yml'), 'utf8');
  const wf = YAML.parse(template.replace('{{ACTION}}', 'OWNER/dotfleet/action@main'));

  it('runs the Action on every event it handles, with the permissions it needs and no checkout', () => {
    expect(Object.keys(wf.on).sort()).toEqual(['issue_comment', 'pull_request_target', 'push', 'schedule', 'workflow_dispatch']);
    expect(wf.on.push.branches).toEqual(['main', 'dotfleet/state']);
    expect(wf.permissions).toEqual({ contents: 'write', 'pull-requests': 'write', issues: 'write', checks: 'write', deployments: 'write' });
    expect(wf.jobs.dotfleet.steps).toHaveLength(1);
    expect(wf.jobs.dotfleet.steps[0].uses).toBe('OWNER/dotfleet/action@main');
  });

  it('never hands the rollout key to a pull request\'s run, and never lets a bookkeeping run cancel a rollout push or a command', () => {
    expect(wf.jobs.dotfleet.steps[0].with['signing-key']).toBe("${{ github.event_name != 'pull_request_target' && secrets.ROLLOUT_KEY || '' }}");
    expect(wf.concurrency.group).toMatch(/github\.event\.pull_request\.number \|\| github\.event\.comment\.id \|\| \(github\.event_name == 'push' && github\.ref_name == github\.event\.repository\.default_branch && github\.sha\) \|\| 'fleet'/);
    expect(wf.concurrency['cancel-in-progress']).toBe("${{ github.event_name == 'pull_request_target' }}");
  });

  it('is the workflow docs/action.md shows', () => {
    const doc = /```yaml\n(name: dotfleet\n[\s\S]*?)```/.exec(readFileSync(join(PROJECT_ROOT, 'docs', 'action.md'), 'utf8'))![1]!;
    expect(YAML.parse(doc)).toEqual(wf);
  });
});

describe('the Action on pull requests', () => {
  const f = intakeFleet();
  let s: Served;
  let head: string;
  let broken: string;

  beforeAll(async () => {
    git(f.repo, 'checkout', '-q', 'main');
    head = commit(f.repo, { 'home/.chezmoidata.toml': text(readTreeAt(f.repo, f.main), 'home/.chezmoidata.toml').replace('font_size = 11', 'font_size = 13') }, 'font');
    git(f.repo, 'checkout', '-q', '--detach', f.main);
    broken = commit(f.repo, { 'home/dot_tmux.conf.hbs': 'set -g prefix {{tmux.prefx}}\n' }, 'broken');
    git(f.repo, 'checkout', '-q', 'main');
    s = await serve(f.repo, f.main, [f.main, head, broken]);
  });
  afterAll(() => s.server.close());

  it('opened: one comment and one check run, written with the workflow token; the summary has the whole diff', async () => {
    const payload = pullRequestPayload('opened', f.main, head);
    s.gh.openPulls.set(payload.pull_request.number, { head, base: f.main, baseRef: 'main' });
    const r = await runAction(s, 'pull_request', payload);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(s.gh.comments).toHaveLength(1);
    expect(s.gh.comments[0]!.body).toMatch(/^<!-- dotfleet:fleet-diff -->/);
    expect(s.gh.checkRuns).toHaveLength(1);
    expect(s.gh.checkRuns[0]).toMatchObject({ name: 'dotfleet/fleet-diff', head_sha: head, status: 'completed', conclusion: 'success' });
    expect(r.summary).toMatch(/^### dotfleet · fleet diff\n\n\*\*9 of 12 hosts change/);
    expect(r.summary).toContain('+size = 26');
    expect(r.summary).not.toContain('<!-- dotfleet:');
    // Every group with its patches is already in the comment's part: nothing repeated.
    expect(r.summary).not.toContain('Every change, group by group');
    expect(r.output).toMatch(/^outcome=#\d+ @ [0-9a-f]{7}: success \(comment written\)\n$/);
    // Nothing of the pull request reached the runner's disk: the step's directory holds only what the runner put there.
    expect(readdirSync(r.dir).sort()).toEqual(['event.json', 'output', 'summary.md']);
  }, 60_000);

  it('synchronize with the same head on pull_request_target (a re-run): the same comment and check run, nothing new', async () => {
    const payload = pullRequestPayload('synchronize', f.main, head);
    s.gh.openPulls.set(payload.pull_request.number, { head, base: f.main, baseRef: 'main' });
    const r = await runAction(s, 'pull_request_target', payload);
    expect(r.code).toBe(0);
    expect(s.gh.comments).toHaveLength(1);
    expect(s.gh.checkRuns).toHaveLength(1);
  }, 60_000);

  it('a render error fails the step and the check run, and the summary names the template and line', async () => {
    const payload = pullRequestPayload('synchronize', f.main, broken);
    s.gh.openPulls.set(payload.pull_request.number, { head: broken, base: f.main, baseRef: 'main' });
    const r = await runAction(s, 'pull_request', payload);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('::error title=dotfleet::');
    expect(s.gh.checkRuns.find((c) => c.head_sha === broken)).toMatchObject({ conclusion: 'failure' });
    expect(r.summary).toContain('home/dot_tmux.conf.hbs:1:17');
    // The comment's history of earlier runs is the comment's; the summary is this run's.
    expect(s.gh.comments[0]!.body).toContain('Earlier runs');
    expect(r.summary).not.toContain('Earlier runs');
  }, 60_000);

  it('a secret committed unencrypted fails the step and the check run, and no byte of it reaches the log or the summary', async () => {
    git(f.repo, 'checkout', '-q', '--detach', f.main);
    const plain = commit(f.repo, { 'secrets/hosts/kestrel/wifi.sops.yaml': 'psk: hunter2-LEAKMARK\n' }, 'plain secret');
    git(f.repo, 'checkout', '-q', 'main');
    s.gh.tarballs.set(plain, tarball(f.repo, plain));
    const payload = pullRequestPayload('synchronize', f.main, plain);
    payload.pull_request.number = 78;
    s.gh.openPulls.set(78, { head: plain, base: f.main, baseRef: 'main' });
    const r = await runAction(s, 'pull_request', payload);
    expect(r.code).toBe(1);
    expect(s.gh.checkRuns.find((c) => c.head_sha === plain)).toMatchObject({ conclusion: 'failure' });
    expect(r.summary).toContain('secrets/hosts/kestrel/wifi.sops.yaml');
    for (const text of [r.stdout, r.stderr, r.summary, r.output, ...s.gh.comments.map((c) => c.body), ...s.gh.checkRuns.map((c) => JSON.stringify(c.output))]) expect(text).not.toContain('LEAKMARK');
  }, 60_000);

  it('a fork\'s read-only token: the step fails and says to use pull_request_target; the diff is still in the summary', async () => {
    const payload = pullRequestPayload('opened', f.main, head);
    payload.pull_request.number = 77;
    s.gh.openPulls.set(77, { head, base: f.main, baseRef: 'main' });
    s.gh.readOnly = true;
    try {
      const r = await runAction(s, 'pull_request', payload);
      expect(r.code).toBe(1);
      expect(r.summary).toContain('+size = 26');
      expect(r.summary).toContain('pull_request_target');
      expect(r.stdout).toMatch(/::warning title=dotfleet::.*pull_request_target/);
    } finally {
      s.gh.readOnly = false;
    }
  }, 60_000);

  it('a closed pull request or an unrelated event: nothing rendered, nothing written', async () => {
    const closed = structuredClone(examples.find((e) => e.name === 'pull_request')!.examples.find((x) => x.action === 'closed')!);
    const before = s.gh.requests.length;
    const r = await runAction(s, 'pull_request', closed);
    expect(r.code).toBe(0);
    expect(r.output).toContain('nothing to render');
    const star = structuredClone(examples.find((e) => e.name === 'star')!.examples[0]);
    const r2 = await runAction(s, 'star', star);
    expect(r2.code).toBe(0);
    expect(r2.output).toContain('nothing for dotfleet to do');
    expect(s.gh.requests.slice(before).filter((q) => !q.startsWith('GET') && !q.startsWith('GRAPHQL heads'))).toEqual([]);
  }, 60_000);

  it('GitHub unreachable: exit 1 with the reason on one ::error line; the stack only as a ::debug:: line (shown with step debugging on)', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const r = await runAction({ ...s, base: `http://127.0.0.1:${port}` }, 'schedule', schedulePayload());
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines.filter((l) => l.startsWith('::error'))).toEqual([`::error title=dotfleet::connect ECONNREFUSED 127.0.0.1:${port}`]);
    const debug = lines.filter((l) => l.startsWith('::debug::'));
    expect(debug).toHaveLength(1);
    expect(debug[0]).toMatch(/ECONNREFUSED.*%0A +at /);
    expect(lines.every((l) => l.startsWith('::') || l.startsWith('dotfleet:'))).toBe(true);
  }, 60_000);

  it('outside a workflow (no event), a one-line error and exit 2, never a stack trace', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [BUNDLE], { env: { PATH: process.env.PATH } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(r.code).toBe(2);
    expect(r.out).toBe('::error title=dotfleet::GITHUB_EVENT_NAME is not set: run dotfleet as a step of a GitHub Actions workflow (docs/action.md)\n');
  }, 30_000);
});

function readTreeAt(repo: string, sha: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const path of git(repo, 'ls-tree', '-r', '--name-only', sha).split('\n').filter(Boolean)) out.set(path, Buffer.from(git(repo, 'show', `${sha}:${path}`)));
  return out;
}

describe('the Action on pushes and on a schedule', () => {
  const dir = scratchDir();
  const appKey = newKey(dir, 'dotfleet-app');
  const f: IntakeFleet = intakeFleet([`dotfleet-rollout namespaces="${ROLLOUT_NAMESPACE}" ${appKey.publicKey}`]);
  let s: Served;
  let next: string;

  beforeAll(async () => {
    git(f.repo, 'checkout', '-q', 'main');
    const at = readTreeAt(f.repo, f.main);
    next = commit(
      f.repo,
      {
        'home/.chezmoidata.toml': text(at, 'home/.chezmoidata.toml').replace('font_size = 11', 'font_size = 12'),
        // A wave deadline a scheduled run can see pass.
        '.github/dotfleet.yml': text(at, '.github/dotfleet.yml') + 'rollout:\n  wave_timeout: 2s\n',
      },
      'font',
    );
    s = await serve(f.repo, f.main, [f.main, next]);
  });
  afterAll(() => s.server.close());

  it('push to main without a signing key: the fleet status in the dashboard issue and the summary', async () => {
    const r = await runAction(s, 'push', pushPayload('0'.repeat(40), f.main));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.output).toContain('no rollout: the signing-key input is empty');
    expect(s.gh.issues).toHaveLength(1);
    for (const h of f.hosts) expect(s.gh.issues[0]!.body).toContain(h);
    expect(r.summary).toContain('| Host |');
  }, 60_000);

  it('incoming attestations on a schedule: accepted ones land in the history as the app records them, refusals are kept with their reason, incoming/ is emptied', async () => {
    const [a, b] = f.hosts;
    const good = signed(f, a!);
    const forged = signed(f, b!, {}, { key: f.keys.get(a!) });
    s.gh.pushCommit('dotfleet/state', {
      [`incoming/${a}/1.json`]: envelope(good),
      [`incoming/${b}/1.json`]: envelope(forged),
      'incoming/notes.txt': 'hello\n',
      [`incoming/${a}/2.json`]: '{"attestation": "not base64!", "signature": "x"}',
    }, 'hosts push');
    const r = await runAction(s, 'schedule', schedulePayload());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = s.gh.filesAt('dotfleet/state')!;
    expect([...files.keys()].filter((p) => p.startsWith('incoming/'))).toEqual([]);
    const recorded = [...files.keys()].filter((p) => p.startsWith('attestations/') && p.endsWith('.json'));
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toContain(a);
    expect(files.get(recorded[0]!)!.equals(good.payload)).toBe(true);
    const rejected = JSON.parse(files.get(`rejected/${b}/1.json`)!.toString());
    expect(rejected).toMatchObject({ file: `incoming/${b}/1.json`, code: 'principal' });
    expect(JSON.parse(files.get('rejected/notes.txt')!.toString())).toMatchObject({ code: 'malformed' });
    expect(JSON.parse(files.get(`rejected/${a}/2.json`)!.toString())).toMatchObject({ code: 'malformed' });
    expect(r.summary).toContain('1 recorded, 3 rejected, 0 left for the next run');
    // The same attestation pushed again is answered "already recorded" and leaves incoming/.
    s.gh.pushCommit('dotfleet/state', { [`incoming/${a}/again.json`]: envelope(good) }, 'again');
    const r2 = await runAction(s, 'schedule', schedulePayload());
    expect(r2.code).toBe(0);
    expect(r2.summary).toContain('1 recorded, 0 rejected');
    expect([...s.gh.filesAt('dotfleet/state')!.keys()].filter((p) => p.startsWith('attestations/') && p.endsWith('.json'))).toHaveLength(1);
  }, 90_000);

  it('a push to the state branch that writes outside incoming/ fails the step and names the paths', async () => {
    const p = pushPayload('1'.repeat(40), '2'.repeat(40), { ref: 'refs/heads/dotfleet/state' });
    p.commits = [{ ...p.commits?.[0], added: ['incoming/x/1.json'], modified: ['fleet.json'], removed: [] }];
    const r = await runAction(s, 'push', p);
    expect(r.code).toBe(1);
    expect(r.summary).toContain('The state branch was written outside `incoming/`');
    expect(r.summary).toContain('- `fleet.json`');
  }, 60_000);

  it('push to main with a signing key: a rollout planned and its manifest signed on the state branch', async () => {
    s.gh.branches.set('main', next);
    const r = await runAction(s, 'push', pushPayload(f.main, next), { 'SIGNING-KEY': readFileSync(appKey.path, 'utf8') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = s.gh.filesAt('dotfleet/state')!;
    expect(files.get(MANIFEST_PATH)).toBeDefined();
    expect(files.get(MANIFEST_SIG_PATH)!.toString()).toMatch(/^-----BEGIN SSH SIGNATURE-----/);
    expect(JSON.parse(files.get(MANIFEST_PATH)!.toString()).target.commit).toBe(next);
    expect(s.gh.checkRuns.find((c) => c.name === 'dotfleet/rollout' && c.head_sha === next)).toBeDefined();
    expect(r.summary).toContain('### dotfleet · rollout');
    expect(r.stdout + r.summary).not.toContain('PRIVATE KEY');
  }, 90_000);

  const manifest = () => JSON.parse(s.gh.filesAt('dotfleet/state')!.get(MANIFEST_PATH)!.toString());
  const key = () => ({ 'SIGNING-KEY': readFileSync(appKey.path, 'utf8') });

  it('issue_comment: /dotfleet rollout halt from a reader is refused, from a writer halts, and resume resumes', async () => {
    s.gh.permissions.set('maintainer', 'write');
    const reader = await runAction(s, 'issue_comment', commentPayload('/dotfleet rollout halt', 'passer-by'), key());
    expect(reader.code).toBe(0);
    expect(manifest().phase).toBe('running');
    expect(s.gh.comments.at(-1)!.body).toMatch(/passer-by/);
    const halt = await runAction(s, 'issue_comment', commentPayload('/dotfleet rollout halt', 'maintainer'), key());
    expect(halt.stderr).toBe('');
    expect(halt.code).toBe(0);
    expect(manifest().phase).toBe('halted');
    await runAction(s, 'issue_comment', commentPayload('/dotfleet rollout resume', 'maintainer'), key());
    expect(manifest().phase).toBe('running');
  }, 90_000);

  it('schedule after the wave deadline: the rollout halts, naming the hosts that never attested', async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(manifest().waves?.[0]?.deadline ?? '') - Date.now()) + 2_500));
    const r = await runAction(s, 'schedule', schedulePayload(), key());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = manifest();
    expect(m.phase).toBe('halted');
    expect(m.reasons.length).toBeGreaterThan(0);
    expect(m.reasons[0].reason).toMatch(/^TIMED_OUT: no attestation of/);
    expect(r.output).toMatch(/rollout: /);
  }, 90_000);

  it('a bot\'s push to main or a push to another branch plans nothing', async () => {
    const before = s.gh.branches.get('dotfleet/state');
    const bot = await runAction(s, 'push', pushPayload(f.main, next, { bot: true }), key());
    expect(bot.code).toBe(0);
    expect(bot.output).toContain("no rollout for a bot's push");
    const other = await runAction(s, 'push', pushPayload(f.main, next, { ref: 'refs/heads/feature' }), key());
    expect(other.output).toContain('a push to refs/heads/feature: nothing to do');
    expect(s.gh.branches.get('dotfleet/state')).toBe(before);
  }, 60_000);

  it('a signing key that is not a key: exit 2, the input named, no key text', async () => {
    const r = await runAction(s, 'push', pushPayload(f.main, next), { 'SIGNING-KEY': '-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0IHNlY3JldA==\n-----END OPENSSH PRIVATE KEY-----' });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^::error title=dotfleet::the signing-key input: /);
    expect(r.stdout).not.toContain('c2VjcmV0');
  }, 30_000);
});

describe('the job summary budget', () => {
  it('cuts at a line, closes an open code fence, says how much was cut, and never passes 1 MiB with what the job wrote before', () => {
    const text = Array.from({ length: 40_000 }, (_, i) => (i % 100 === 0 ? '```diff' : `+line ${i} ${'x'.repeat(30)}`)).join('\n') + '\n';
    const before = 300_000;
    const out = capSummary(text, before);
    expect(before + Buffer.byteLength(out)).toBeLessThanOrEqual(STEP_SUMMARY_LIMIT);
    expect(out).toMatch(/> ✂️ The job summary is cut here: GitHub keeps at most 1 MiB per step, and [\d,]+ more bytes \([\d,]+ lines\) did not fit/);
    const body = out.slice(0, out.indexOf('\n\n> ✂️'));
    expect(body.split('\n').filter((l) => l.startsWith('```')).length % 2).toBe(0);
    expect(capSummary('short\n', before)).toBe('short\n');
  });

  it('a 1,000-host fleet-wide change: the summary stays within 1 MiB and says what it left out', async () => {
    const g = generatedChange({ hosts: 1000, templates: 3, lines: 60, hostSpecific: true, seed: 7 });
    const repo = gitRepo(g.base);
    const base = git(repo, 'rev-parse', 'HEAD').trim();
    const changes: Record<string, string> = {};
    for (const [p, b] of g.head) if (!g.base.has(p) || !Buffer.from(g.base.get(p)!).equals(Buffer.from(b))) changes[p] = Buffer.from(b).toString('utf8');
    const head = commit(repo, changes, 'fleet-wide');
    const s = await serve(repo, base, [base, head]);
    try {
      const payload = pullRequestPayload('opened', base, head);
      s.gh.openPulls.set(payload.pull_request.number, { head, base, baseRef: 'main' });
      const r = await runAction(s, 'pull_request', payload, {}, 'x'.repeat(100) + '\n');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(Buffer.byteLength(r.summary)).toBeLessThanOrEqual(STEP_SUMMARY_LIMIT);
      expect(Buffer.byteLength(r.summary)).toBeGreaterThan(900_000);
      expect(r.summary).toContain('Every change, group by group');
      expect(r.summary).toMatch(/This report is cut to [\d,]+ bytes \(GitHub's job summary holds 1 MiB\): ([\d,]+ groups? left out, )?[\d,]+ groups? without patches/);
      expect(s.gh.comments[0]!.body.length).toBeLessThanOrEqual(65_536);
    } finally {
      s.server.close();
    }
  }, 180_000);
});

describe('from a host\'s git push to the history, without an app', () => {
  const dir = scratchDir();
  const kestrel = newKey(dir, 'kestrel');
  const tern = newKey(dir, 'tern');
  const f = intakeFleet();
  const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
  let main: string;
  let remote: string;
  let s: Served;
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const clone = (name: string) => {
    const to = join(dir, name);
    git(dir, 'clone', '-q', remote, to);
    return to;
  };
  const attest = (checkout: string, host: string, key: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
    cli(['attest', '--repo', checkout, '--host', host, '--key', key, '--state-dir', join(dir, `state-${host}`), '--github-repo', `${OWNER}/${REPO}`, '--submit', 'git', ...extra], env);

  beforeAll(async () => {
    git(f.repo, 'checkout', '-q', 'main');
    const signers = f.allowedSigners.replace(/^kestrel .*$/m, `kestrel namespaces="dotfleet-attestation" ${kestrel.publicKey}`).replace(/^tern .*$/m, `tern namespaces="dotfleet-attestation" ${tern.publicKey}`);
    main = commit(f.repo, { 'fleet/allowed_signers': signers }, 'host keys');
    remote = join(dir, 'fleet.git');
    git(dir, 'clone', '-q', '--bare', f.repo, remote);
    s = await serve(f.repo, main, [main]);
  });
  afterAll(() => s.server.close());

  it('two hosts attest at once with --submit git: both land in incoming/, and their checkouts are untouched', async () => {
    const [a, b] = [clone('kestrel-checkout'), clone('tern-checkout')];
    const [ra, rb] = await Promise.all([attest(a, 'kestrel', kestrel.path), attest(b, 'tern', tern.path)]);
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    expect(ra.stdout).toMatch(/^pushed incoming\/kestrel\/kestrel-000001\.json to dotfleet\/state on origin \([0-9a-f]{12}\): the Action records it on its next run\n$/m);
    const listed = git(remote, 'ls-tree', '-r', '--name-only', 'dotfleet/state').split('\n').filter(Boolean).sort();
    expect(listed).toEqual(['incoming/kestrel/kestrel-000001.json', 'incoming/tern/tern-000001.json']);
    for (const c of [a, b]) {
      expect(git(c, 'status', '--porcelain')).toBe('');
      expect(git(c, 'branch', '--list').trim()).toBe('* main');
    }
    expect(readdirOrEmpty(join(dir, 'state-kestrel', 'outbox')).filter((n) => n.endsWith('.json'))).toEqual([]);
  }, 60_000);

  it('the Action takes them: both recorded, with the app\'s render check, and incoming/ emptied', async () => {
    const changes: Record<string, Buffer> = {};
    for (const path of git(remote, 'ls-tree', '-r', '--name-only', 'dotfleet/state').split('\n').filter(Boolean)) {
      changes[path] = execGitBytes(remote, ['show', `dotfleet/state:${path}`]);
    }
    s.gh.pushCommit('dotfleet/state', changes, 'hosts pushed');
    const r = await runAction(s, 'push', { ...pushPayload('1'.repeat(40), '2'.repeat(40), { ref: 'refs/heads/dotfleet/state' }), commits: [{ added: Object.keys(changes), modified: [], removed: [] }] });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.summary).toContain('2 recorded, 0 rejected, 0 left for the next run');
    const fleetJson = JSON.parse(s.gh.filesAt('dotfleet/state')!.get('fleet.json')!.toString());
    expect(fleetJson.hosts.kestrel).toMatchObject({ appliedCommit: main, render: 'match', status: 'SUCCESS' });
    expect(fleetJson.hosts.tern).toMatchObject({ appliedCommit: main, render: 'match' });
    expect([...s.gh.filesAt('dotfleet/state')!.keys()].filter((p) => p.startsWith('incoming/'))).toEqual([]);
  }, 90_000);

  it('a push that loses the race to another host: rejected by the remote, fetched again, and pushed on top of the other host\'s commit', async () => {
    // A git on PATH that, on the first push, has "another host" move the state branch first (between
    // our fetch and our push): the remote really refuses a non-fast-forward.
    const shim = join(dir, 'shim');
    mkdirSync(shim, { recursive: true });
    const realGit = execFileSync('sh', ['-c', 'command -v git']).toString().trim();
    const flag = join(dir, 'raced');
    const pushes = join(dir, 'pushes');
    writeFileSync(
      join(shim, 'git'),
      `#!/bin/sh
if [ "$1" = "push" ]; then
  echo push >> "${pushes}"
  if [ ! -e "${flag}" ]; then
    touch "${flag}"
    R="${remote}"
    parent=$("${realGit}" -C "$R" rev-parse refs/heads/dotfleet/state)
    other=$(GIT_AUTHOR_NAME=o GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=o GIT_COMMITTER_EMAIL=o@x "${realGit}" -C "$R" commit-tree "$parent^{tree}" -p "$parent" -m "another host")
    "${realGit}" -C "$R" update-ref refs/heads/dotfleet/state "$other"
    echo "$other" > "${flag}"
  fi
fi
exec "${realGit}" "$@"
`,
      { mode: 0o755 },
    );
    const c = clone('race-checkout');
    const r = await attest(c, 'tern', tern.path, [], { PATH: `${shim}:${process.env.PATH}` });
    expect(r.stderr).not.toMatch(/not pushed/);
    expect(r.code).toBe(0);
    expect(readFileSync(pushes, 'utf8')).toBe('push\npush\n');
    const other = readFileSync(flag, 'utf8').trim();
    // The other host's commit is kept: ours is on top of it.
    expect(git(remote, 'rev-parse', 'dotfleet/state~1').trim()).toBe(other);
    expect(git(remote, 'ls-tree', '-r', '--name-only', 'dotfleet/state')).toContain('incoming/tern/tern-000002.json');
  }, 60_000);

  it('a remote that cannot be pushed to: exit 4, said in one line, and the attestation waits in the outbox', async () => {
    const c = clone('lost-checkout');
    const r = await attest(c, 'kestrel', kestrel.path, ['--submit', 'git:/nonexistent/fleet.git']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/dotfleet: not pushed: cannot fetch dotfleet\/state from \/nonexistent\/fleet\.git: /);
    expect(r.stderr).toMatch(/it stays in .*outbox and is pushed again by the next attest --submit/);
    expect(readdirOrEmpty(join(dir, 'state-kestrel', 'outbox')).filter((n) => n.endsWith('.json'))).toEqual(['kestrel-000002.json']);
  }, 60_000);
});

function readdirOrEmpty(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

function execGitBytes(repo: string, args: string[]): Buffer {
  return execFileSync('git', ['-C', repo, ...args]);
}

describe('the incoming summary', () => {
  it('a pushed file name and a refusal quoting it are inert: no mention, link, image, code span or table break', () => {
    const file = 'incoming/@octocat ![i](https://evil.example/p.png) `x` | y.json';
    const md = incomingMarkdown({ branch: 'dotfleet/state', truncated: false, outcomes: [{ file, host: '', status: 422, code: 'malformed', message: `${file} is not incoming/<host>/<name>.json; see https://evil.example` }] });
    const html = marked.parse(md) as string;
    expect(html).not.toMatch(/<a |<img/);
    // A code span shows an @ as it is; outside one, it must not be a mention.
    expect(md.replace(/`[^`\n]*`/g, '')).not.toContain('@octocat');
    const row = md.split('\n').find((l) => l.startsWith('| `'))!;
    expect(row.split(/(?<!\\)\|/)).toHaveLength(5);
  });
});
