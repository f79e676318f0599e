/**
 * GitHub's views of a rollout written together (`OctokitGitHub.views`): one GraphQL request for
 * the check run, the deployment, the dashboard issue and the comment on the merged pull request;
 * and when GitHub refuses a part, or the answer is lost after the writes landed, each part is
 * redone the REST way without making anything twice. Octokit against the stand-in behind nock.
 */
import nock from 'nock';
import { Octokit } from '@octokit/core';
import { OctokitGitHub } from '../../src/github/octokit.js';
import { GitHubStandIn } from '../../src/github/standin.js';
import type { CheckRunView, RepoRef } from '../../src/github/port.js';
import { CODELOAD } from '../helpers/github.js';
import { routeToStandIn } from '../helpers/intake.js';
import { DashboardIssue } from '../../src/app/intake/dashboard.js';
import { EMPTY_STATE } from '../../src/core/state/fleet-state.js';
import { fleetStatus } from '../../src/core/state/status.js';
import type { StateGitHub, ViewWrites } from '../../src/github/port.js';

const OWNER = 'views-owner';
const HEAD = 'a'.repeat(40);
let n = 0;

function setUp(): { gh: GitHubStandIn; port: OctokitGitHub; ref: RepoRef } {
  // A repository of its own per test: the adapter remembers node ids per repository.
  const ref = { owner: OWNER, repo: `fleet-${++n}` };
  const gh = routeToStandIn(new GitHubStandIn(ref.owner, ref.repo, 'main', HEAD, new Map(), CODELOAD));
  gh.commits.set(HEAD, { parents: [], files: new Map(), message: 'the target' });
  gh.pullsFor.set(HEAD, [42]);
  gh.issues.push({ number: 1, title: 'Fleet dashboard', body: '<!-- dotfleet:dashboard -->\nold', user: { type: 'Bot' }, state: 'open' });
  const port = new OctokitGitHub(new Octokit({ auth: 'standin' }), undefined, { retries: 0, backoffMs: 1, maxWaitMs: 1 });
  return { gh, port, ref };
}

const run = (title: string, status: 'in_progress' | 'completed' = 'in_progress'): CheckRunView['run'] => ({
  name: 'dotfleet/rollout',
  headSha: HEAD,
  status,
  conclusion: status === 'completed' ? 'success' : undefined,
  title,
  summary: `summary: ${title}`,
  text: '',
  annotations: [],
});

/** The plan's views: a new check run and deployment, the dashboard's edit, as the app writes them. */
async function plan(port: OctokitGitHub, ref: RepoRef) {
  await port.heads(ref, 'dotfleet/state');
  await port.findIssue(ref, '<!-- dotfleet:dashboard -->');
  return port.views(ref, {
    issue: { number: 1, body: '<!-- dotfleet:dashboard -->\nnew' },
    checkRuns: [{ fresh: true, run: run('wave 1/2') }],
    deployments: [{ fresh: true, sha: HEAD, environment: 'fleet', rollout: 'r1', description: 'wave 1/2 · 0/4 hosts attested' }],
  });
}

const writes = (gh: GitHubStandIn) => gh.requests.filter((r) => !r.startsWith('GET') && r !== 'GRAPHQL heads' && !r.includes('access_tokens'));

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());

describe('views: one request for what people see', () => {
  it('a new check run, a new deployment and the dashboard edit are one GraphQL request; later news updates them, again in one', async () => {
    const { gh, port, ref } = setUp();
    const done = await plan(port, ref);
    expect(done.failed).toEqual([]);
    expect(writes(gh)).toEqual(['GRAPHQL updateIssue+createCheckRun+createDeployment']);
    expect(gh.checkRuns).toEqual([expect.objectContaining({ name: 'dotfleet/rollout', head_sha: HEAD, status: 'in_progress' })]);
    expect(gh.deployments).toEqual([expect.objectContaining({ sha: HEAD, environment: 'fleet', payload: { rollout: 'r1' }, statuses: [] })]);
    expect(gh.issues[0]!.body).toBe('<!-- dotfleet:dashboard -->\nnew');

    // The end: the check run completes, the deployment succeeds, the merged pull request hears it.
    const before = gh.requests.length;
    const end = await port.views(ref, {
      checkRuns: [{ id: done.checkRuns.get(HEAD), fresh: false, run: run('complete', 'completed') }],
      deployments: [{ id: done.deployments.get('r1'), fresh: false, sha: HEAD, environment: 'fleet', rollout: 'r1', description: 'complete', state: 'success' }],
      comments: await port.pullsForCommit(ref, HEAD).then((prs) => prs.map((issue) => ({ issue, body: '<!-- dotfleet:rollout r1 #3 -->\ncompleted' }))),
    });
    expect(end.failed).toEqual([]);
    // The merged pull request came with the heads query: no lookup.
    expect(gh.requests.slice(before)).toEqual(['GRAPHQL updateCheckRun+createDeploymentStatus+addComment']);
    expect(gh.checkRuns).toEqual([expect.objectContaining({ status: 'completed', conclusion: 'success', output: expect.objectContaining({ title: 'complete' }) })]);
    expect(gh.deployments[0]!.statuses).toEqual([{ state: 'success', description: 'complete' }]);
    expect(gh.comments).toEqual([expect.objectContaining({ issue: 42, body: '<!-- dotfleet:rollout r1 #3 -->\ncompleted' })]);
  });

  it('a part GitHub refuses is redone the REST way; the others land once', async () => {
    const { gh, port, ref } = setUp();
    gh.viewFailures.add('createCheckRun');
    const done = await plan(port, ref);
    expect(done.failed).toEqual([]);
    expect(writes(gh)).toEqual(['GRAPHQL updateIssue+createCheckRun+createDeployment', 'POST /repos/views-owner/fleet-2/check-runs']);
    expect(gh.checkRuns).toHaveLength(1);
    expect(gh.deployments).toHaveLength(1);
    expect(done.checkRuns.get(HEAD)).toBe(gh.checkRuns[0]!.id);
  });

  it('an answer lost after the writes landed: each part is looked for and found, nothing is made twice', async () => {
    const { gh, port, ref } = setUp();
    gh.viewLostAnswers.push(502);
    const done = await plan(port, ref);
    expect(done.failed).toEqual([]);
    expect(gh.checkRuns).toHaveLength(1);
    expect(gh.deployments).toHaveLength(1);
    expect(done.checkRuns.get(HEAD)).toBe(gh.checkRuns[0]!.id);
    expect(done.deployments.get('r1')).toBe(gh.deployments[0]!.id);
    // The comment at the end, lost the same way: found by its marker, not posted again.
    gh.viewLostAnswers.push(502);
    const end = await port.views(ref, { comments: [{ issue: 42, body: '<!-- dotfleet:rollout r1 #3 -->\nhalted' }] });
    expect(end.failed).toEqual([]);
    expect(gh.comments).toHaveLength(1);
  });

  it('the default branch moved on since the heads were read: the deployment GitHub made of the newer commit is retired and the right one made', async () => {
    const { gh, port, ref } = setUp();
    await port.heads(ref, 'dotfleet/state');
    const newer = gh.pushCommit('main', { 'x': 'y' }, 'a newer merge');
    const done = await port.views(ref, { deployments: [{ fresh: true, sha: HEAD, environment: 'fleet', rollout: 'r1', description: 'wave 1/2', state: 'in_progress' }] });
    expect(done.failed).toEqual([]);
    expect(gh.deployments.map((d) => [d.sha, d.statuses.map((s) => s.state)])).toEqual([
      [newer, ['inactive']],
      [HEAD, ['in_progress']],
    ]);
    expect(done.deployments.get('r1')).toBe(gh.deployments[1]!.id);
  });

  it('after a restart (ids unknown, not new): the check run and the deployment are looked up and brought up to date, not made again', async () => {
    const { gh, port, ref } = setUp();
    await plan(port, ref);
    const again = new OctokitGitHub(new Octokit({ auth: 'standin' }));
    const done = await again.views(ref, {
      checkRuns: [{ fresh: false, run: run('wave 2/2') }],
      deployments: [{ fresh: false, sha: HEAD, environment: 'fleet', rollout: 'r1', description: 'wave 2/2', state: 'in_progress' }],
    });
    expect(done.failed).toEqual([]);
    expect(gh.checkRuns).toEqual([expect.objectContaining({ output: expect.objectContaining({ title: 'wave 2/2' }) })]);
    expect(gh.deployments).toHaveLength(1);
    expect(gh.deployments[0]!.statuses).toEqual([{ state: 'in_progress', description: 'wave 2/2' }]);
  });

  it('GitHub refusing every write (a read-only token): what failed is reported, nothing throws', async () => {
    const { gh, port, ref } = setUp();
    await port.heads(ref, 'dotfleet/state');
    gh.readOnly = true;
    const done = await port.views(ref, { checkRuns: [{ fresh: true, run: run('wave 1/2') }], comments: [{ issue: 42, body: '<!-- m -->\nx' }] });
    expect(done.failed).toEqual([expect.stringMatching(/^check run dotfleet\/rollout on aaaaaaa: /), expect.stringMatching(/^comment on #42: /)]);
    expect(gh.checkRuns).toEqual([]);
  });
});

describe('the dashboard carries the rollout\'s views', () => {
  const input = (note: string) => ({ state: EMPTY_STATE, status: fleetStatus(EMPTY_STATE, ['a']), inventory: ['a'], now: new Date('2026-12-04T12:00:00Z'), quietAfterSeconds: 86400, rollout: note, repoUrl: 'https://github.com/o/r', stateBranch: 'dotfleet/state' });
  /** A port that records what it is asked to write; `findIssue` fails while `broken`. */
  function double() {
    const sent: ViewWrites[] = [];
    const warnings: string[] = [];
    let broken = false;
    let id = 0;
    const port = {
      findIssue: async () => {
        if (broken) throw new Error('HTTP 502 listing issues');
        return { number: 1, body: 'old' };
      },
      updateIssue: async () => undefined,
      views: async (_ref: RepoRef, w: ViewWrites) => {
        sent.push(structuredClone(w));
        return { checkRuns: new Map((w.checkRuns ?? []).map((c) => [c.run.headSha, c.id ?? ++id])), deployments: new Map((w.deployments ?? []).map((d) => [d.rollout, d.id ?? ++id])), failed: [] };
      },
    } as unknown as StateGitHub;
    const log = { info: () => undefined, warn: (m: string) => void warnings.push(m) };
    return { port, sent, warnings, break: () => (broken = true), dashboard: new DashboardIssue(async () => port, { owner: 'o', repo: 'r' }, log, 0, 50) };
  }

  it('news that arrives while an edit waits is merged: the latest check run and deployment state, still new, with the dashboard, in one write', async () => {
    const d = double();
    void d.dashboard.update(input('planned'), { checkRuns: [{ fresh: true, run: run('wave 1/2') }], deployments: [{ fresh: true, sha: HEAD, environment: 'fleet', rollout: 'r1', description: 'wave 1/2' }] });
    await d.dashboard.update(input('wave 2'), { checkRuns: [{ fresh: false, run: run('wave 2/2') }], deployments: [{ fresh: false, sha: HEAD, environment: 'fleet', rollout: 'r1', description: 'wave 2/2', state: 'in_progress' }] });
    expect(d.sent).toHaveLength(1);
    expect(d.sent[0]!.issue!.body).toContain('wave 2');
    expect(d.sent[0]!.checkRuns).toEqual([expect.objectContaining({ fresh: true, run: expect.objectContaining({ title: 'wave 2/2' }) })]);
    expect(d.sent[0]!.deployments).toEqual([expect.objectContaining({ fresh: true, state: 'in_progress', description: 'wave 2/2' })]);
    // The next write knows what the first made: an update, not a second check run.
    await d.dashboard.update(undefined, { checkRuns: [{ fresh: false, run: run('complete', 'completed') }] });
    expect(d.sent[1]!.checkRuns![0]!.id).toBe(1);
  });

  it('when the dashboard issue cannot be read, the rollout\'s views still go out', async () => {
    const d = double();
    d.break();
    await d.dashboard.update(input('planned'), { checkRuns: [{ fresh: true, run: run('wave 1/2') }] });
    expect(d.sent).toEqual([expect.objectContaining({ issue: undefined, checkRuns: [expect.objectContaining({ run: expect.objectContaining({ title: 'wave 1/2' }) })] })]);
    expect(d.warnings).toEqual([expect.stringMatching(/HTTP 502 listing issues/)]);
  });
});

