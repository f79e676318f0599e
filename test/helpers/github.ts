/** Strict GitHub mocking for app tests: real payloads, real tarballs, every request accounted for. */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import nock from 'nock';
import { Probot, ProbotOctokit } from 'probot';
import { commit as commitFiles } from './fleet.js';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples') as { name: string; examples: any[] }[];

export const OWNER = 'Codertocat';
export const REPO = 'Hello-World';
export const API = 'https://api.github.com';
export const CODELOAD = 'https://codeload.github.com';

/** A real pull_request payload from @octokit/webhooks-examples, pointed at our commits. */
export function pullRequestPayload(action: 'opened' | 'synchronize' | 'reopened' | 'ready_for_review', base: string, head: string): any {
  const example = examples.find((e) => e.name === 'pull_request')!.examples.find((x) => x.action === action && x.installation?.id === 1)!;
  const payload = structuredClone(example);
  payload.pull_request.base.sha = base;
  payload.pull_request.head.sha = head;
  return payload;
}

/** A real push payload (a push to a branch, installation 1) moving `main` from `before` to `after`. */
export function pushPayload(before: string, after: string, opts: { ref?: string; bot?: boolean } = {}): any {
  const p = structuredClone(examples.find((e) => e.name === 'push')!.examples.find((x) => x.ref === 'refs/heads/master' && x.installation?.id === 1)!);
  p.ref = opts.ref ?? 'refs/heads/main';
  p.before = before;
  p.after = after;
  p.repository.default_branch = 'main';
  p.repository.master_branch = 'main';
  if (opts.bot) p.sender = { ...p.sender, login: 'dotfleet[bot]', type: 'Bot' };
  return p;
}

/** A real issue_comment.created payload (installation 1) with `body` by `login` on issue `issue`. */
export function commentPayload(body: string, login: string, issue = 7): any {
  const p = structuredClone(examples.find((e) => e.name === 'issue_comment')!.examples.find((x) => x.action === 'created' && x.installation?.id === 1)!);
  p.comment.body = body;
  p.comment.user = { ...p.comment.user, login, type: 'User' };
  p.issue.number = issue;
  return p;
}

/** `issues.edited` (GitHub's example) for the app's own issue `number`, whose body `login` changed from `from` to `body`. */
export function issueEditedPayload(number: number, from: string, body: string, login: string): any {
  const p = structuredClone(examples.find((e) => e.name === 'issues')!.examples.find((x) => x.action === 'edited')!);
  p.installation = { id: 1, node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==' };
  p.issue.number = number;
  p.issue.body = body;
  p.issue.user = { ...p.issue.user, login: 'dotfleet[bot]', type: 'Bot' };
  p.changes = { body: { from } };
  p.sender = { ...p.sender, login, type: 'User' };
  return p;
}

export function newProbot(app: (p: Probot) => void, retry = false): Probot {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const probot = new Probot({
    appId: 123,
    privateKey,
    Octokit: ProbotOctokit.defaults({ retry: { enabled: retry, retryAfterBaseValue: 1 }, throttle: { enabled: false } }),
    logLevel: 'warn',
  });
  probot.load(app);
  return probot;
}

/** A real tarball of `sha`, as GitHub serves it (git archive, with the owner-repo-sha/ prefix). */
export function tarball(repo: string, sha: string): Buffer {
  return execFileSync('git', ['-C', repo, 'archive', '--format=tar.gz', `--prefix=${OWNER}-${REPO}-${sha.slice(0, 7)}/`, sha]);
}

export interface Recorded {
  comments: string[];
  commentUpdates: string[];
  checkRuns: any[];
  checkRunUpdates: any[];
  requests: string[];
}

/** Mocks for one pull-request event; returns what the app wrote. */
export function mockPullRequest(opts: {
  repo: string;
  base: string;
  head: string;
  currentHead?: string;
  existingComments?: any[];
  tokens?: boolean;
  cached?: string[];
  /** The default branch's head (default: the base). */
  defaultHead?: string;
  /** Check runs already on the head commit. */
  existingCheckRuns?: { id: number }[];
  /** No check-run lookup is expected (the flow stops before writing). */
  noCheckRun?: boolean;
}): Recorded {
  const rec: Recorded = { comments: [], commentUpdates: [], checkRuns: [], checkRunUpdates: [], requests: [] };
  const api = nock(API);
  record(api, rec);
  if (opts.tokens !== false) api.post('/app/installations/1/access_tokens').reply(200, { token: 'test', permissions: { contents: 'read', pull_requests: 'write', checks: 'write', issues: 'write' } });
  api.get(new RegExp(`^/repos/${OWNER}/${REPO}/git/ref/heads(%2F|/)master$`)).reply(200, { ref: 'refs/heads/master', object: { type: 'commit', sha: opts.defaultHead ?? opts.base } });
  if (!opts.noCheckRun) {
    api.get(new RegExp(`^/repos/${OWNER}/${REPO}/commits/${opts.currentHead ?? opts.head}/check-runs\\?`)).reply(200, { total_count: opts.existingCheckRuns?.length ?? 0, check_runs: opts.existingCheckRuns ?? [] });
  }
  for (const sha of new Set([opts.base, opts.head, opts.defaultHead ?? opts.base])) {
    if (opts.cached?.includes(sha)) continue;
    api.get(`/repos/${OWNER}/${REPO}/tarball/${sha}`).reply(302, '', { location: `${CODELOAD}/${OWNER}/${REPO}/legacy.tar.gz/${sha}` });
    nock(CODELOAD).get(`/${OWNER}/${REPO}/legacy.tar.gz/${sha}`).reply(200, tarball(opts.repo, sha), { 'content-type': 'application/x-gzip' });
  }
  api.get(`/repos/${OWNER}/${REPO}/issues/2/comments`).query({ per_page: 100, page: 1 }).reply(200, opts.existingComments ?? []);
  api.get(`/repos/${OWNER}/${REPO}/pulls/2`).reply(200, { number: 2, head: { sha: opts.currentHead ?? opts.head }, base: { sha: opts.base, ref: 'master' } });
  return rec;
}

/** Every request a scope answers, in order. */
export function record(scope: nock.Scope, rec: Recorded): nock.Scope {
  scope.on('request', (req: any) => rec.requests.push(`${req.method} ${req.path}`));
  return scope;
}

export function expectWrites(rec: Recorded, opts: { comment?: 'create' | 'update' | 'none' }): void {
  const api = record(nock(API), rec);
  if (opts.comment === 'create') api.post(`/repos/${OWNER}/${REPO}/issues/2/comments`).reply(201, (_u: string, body: any) => (rec.comments.push(body.body), { id: 99 }));
  if (opts.comment === 'update') api.patch(`/repos/${OWNER}/${REPO}/issues/comments/99`).reply(200, (_u: string, body: any) => (rec.commentUpdates.push(body.body), { id: 99 }));
}

export function expectCheckRun(rec: Recorded, updates = 0): void {
  record(nock(API), rec)
    .post(`/repos/${OWNER}/${REPO}/check-runs`)
    .reply(201, (_u: string, body: any) => (rec.checkRuns.push(body), { id: 7 }));
  if (updates > 0) {
    record(nock(API), rec)
      .patch(`/repos/${OWNER}/${REPO}/check-runs/7`)
      .times(updates)
      .reply(200, (_u: string, body: any) => (rec.checkRunUpdates.push(body), { id: 7 }));
  }
}

/** Strict mocking for a test file: no network, and every mocked request must have been made. */
export function useStrictNock(): void {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    expect(pending).toEqual([]);
  });
}

/** Commits `files` on a detached head from `from` (default: `base`) of `repo`; returns the commit. */
export function changer(repo: string, base: string): (files: Record<string, string | null>, message: string, from?: string) => string {
  return (files, message, from = base) => {
    execFileSync('git', ['-C', repo, 'checkout', '-q', '--detach', from]);
    return commitFiles(repo, files, message);
  };
}

