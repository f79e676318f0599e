/** The GitHub port over Octokit (Probot hands in an installation-authenticated one). */
import type { RepoTree } from '../core/tree.js';
import { ANNOTATIONS_PER_REQUEST, UnknownCommitError, type CheckRunRequest, type DeploymentState, type FileAddition, type FleetGitHub, type Heads, type RepoRef, type RolloutGitHub, type StateGitHub, type ViewsDone, type ViewWrites } from './port.js';
import type { CommitSignatureInfo } from '../core/rollout/plan.js';
import { readTarball } from './tarball.js';

/** The few calls we make, as Octokit's `request` types them loosely. */
interface OctokitLike {
  request(route: string, params?: Record<string, unknown>): Promise<{ data: any; headers: Record<string, unknown> }>;
  graphql?: (query: string, variables?: Record<string, unknown>) => Promise<any>;
}

/** A response body as bytes, whatever form Octokit handed it over in. */
async function bytesOf(data: unknown): Promise<Buffer> {
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return Buffer.from(await new Response(data as ReadableStream).arrayBuffer());
}

const status = (e: unknown): number | undefined => (e as { status?: number }).status;

const HEADS_QUERY = `query($owner: String!, $repo: String!, $state: String!) {
  repository(owner: $owner, name: $repo) {
    id
    defaultBranchRef { id name target { oid ... on Commit { committer { name email date } signature { signature payload isValid state } associatedPullRequests(first: 5) { nodes { number id merged } } } } }
    ref(qualifiedName: $state) { target { oid } }
  }
}`;

/**
 * GitHub's node ids the app has seen (the repository, the default branch and the commit it
 * pointed at, issues, pull requests, check runs, deployments), so that views can be written as
 * GraphQL mutations, several in one request. Keyed by `owner/repo kind:id`, the newest 4,096.
 */
const nodes = new Map<string, string>();
const nodeKey = (ref: RepoRef, kind: string) => `${ref.owner}/${ref.repo} ${kind}`.toLowerCase();
function rememberNode(ref: RepoRef, kind: string, id: unknown): void {
  if (typeof id !== 'string' || id === '') return;
  const key = nodeKey(ref, kind);
  nodes.delete(key);
  nodes.set(key, id);
  while (nodes.size > 4096) nodes.delete(nodes.keys().next().value!);
}
const nodeOf = (ref: RepoRef, kind: string): string | undefined => nodes.get(nodeKey(ref, kind));

/** The merged pull requests the heads query found for a commit (`owner/repo@sha`), the newest 64. */
const mergedPulls = new Map<string, number[]>();

/**
 * Commit signatures the heads query brought along (a commit's signature never changes), so a
 * rollout of the default branch's head needs no request of its own for it. Keyed by
 * `owner/repo@sha`, the newest 64.
 */
const signatures = new Map<string, CommitSignatureInfo>();
/** GraphQL's GitSignatureState names the REST API's verification reasons differently in two cases. */
const REASONS: Record<string, string> = { MALFORMED_SIG: 'malformed_signature', UNKNOWN_SIG_TYPE: 'unknown_signature_type' };
function rememberSignature(ref: RepoRef, target: any): void {
  // Only when the answer has the fields (a stand-in may not): else the REST read stays.
  if (!target?.oid || !('signature' in target)) return;
  const sig = target.signature;
  const info: CommitSignatureInfo = sig
    ? { signature: sig.signature ?? null, payload: sig.payload ?? null, verified: Boolean(sig.isValid), reason: REASONS[sig.state] ?? String(sig.state ?? 'unsigned').toLowerCase(), committer: target.committer ?? undefined }
    : { signature: null, payload: null, verified: false, reason: 'unsigned', committer: target.committer ?? undefined };
  signatures.set(`${ref.owner}/${ref.repo}@${target.oid}`.toLowerCase(), info);
  while (signatures.size > 64) signatures.delete(signatures.keys().next().value!);
}

const COMMIT_MUTATION = `mutation($input: CreateCommitOnBranchInput!) {
  createCommitOnBranch(input: $input) { commit { oid } }
}`;

/** createCommitOnBranch answers a moved head with HTTP 200 and a STALE_DATA error. */
function isStaleHead(e: unknown): boolean {
  const errors = (e as { errors?: { type?: string; message?: string }[] }).errors ?? [];
  return errors.some((x) => x.type === 'STALE_DATA' || /Expected branch to point to/.test(x.message ?? ''));
}

/** Trees by commit, shared across events (a commit's tree never changes). */
export class TreeCache {
  private readonly trees = new Map<string, RepoTree>();
  constructor(private readonly size = 16) {}
  get(key: string): RepoTree | undefined {
    const t = this.trees.get(key);
    if (t) {
      this.trees.delete(key);
      this.trees.set(key, t);
    }
    return t;
  }
  set(key: string, tree: RepoTree): void {
    this.trees.set(key, tree);
    while (this.trees.size > this.size) this.trees.delete(this.trees.keys().next().value!);
  }
}

export interface RetryPolicy {
  /** Further attempts after a retryable failure (5xx, 429, secondary rate limit). */
  retries: number;
  /** First back-off; doubled each time, unless GitHub says retry-after. */
  backoffMs: number;
  /** Longest retry-after honoured. */
  maxWaitMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, backoffMs: 1000, maxWaitMs: 60_000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long to wait before retrying, or undefined when the failure is not worth a retry. */
function retryDelay(e: unknown, attempt: number, policy: RetryPolicy): number | undefined {
  const err = e as { status?: number; message?: string; response?: { headers?: Record<string, unknown> } };
  const retryAfter = Number(err.response?.headers?.['retry-after']);
  const secondary = err.status === 403 && (Number.isFinite(retryAfter) || /secondary rate limit/i.test(err.message ?? ''));
  if (!(err.status !== undefined && (err.status >= 500 || err.status === 429 || secondary))) return undefined;
  const wait = Number.isFinite(retryAfter) ? retryAfter * 1000 : policy.backoffMs * 2 ** attempt;
  return wait <= policy.maxWaitMs ? wait : undefined;
}

/** Writes go through our own retries, never Octokit's: a blind retry of a POST can duplicate it. */
const NO_PLUGIN_RETRY = { request: { retries: 0 } };

export class OctokitGitHub implements FleetGitHub, StateGitHub, RolloutGitHub {
  constructor(
    private readonly octokit: OctokitLike,
    private readonly cache: TreeCache = new TreeCache(),
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  /**
   * Run a write; after a retryable failure, first ask `landed` whether it took effect anyway
   * (GitHub may have done it before failing to answer), and only then try again.
   */
  private async write<T>(attempt: () => Promise<T>, landed?: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (e) {
        const wait = i < this.retry.retries ? retryDelay(e, i, this.retry) : undefined;
        if (wait === undefined) throw e;
        await sleep(wait);
        const done = await landed?.();
        if (done !== undefined) return done;
      }
    }
  }

  private readonly reading = new Map<string, Promise<RepoTree>>();

  async readTree(ref: RepoRef, sha: string): Promise<RepoTree> {
    const key = `${ref.owner}/${ref.repo}@${sha}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    // Two reads of one commit at once (base = the default branch's head) make one request.
    let p = this.reading.get(key);
    if (!p) {
      p = this.fetchTree(ref, sha, key).finally(() => this.reading.delete(key));
      this.reading.set(key, p);
    }
    return p;
  }

  private async fetchTree(ref: RepoRef, sha: string, key: string): Promise<RepoTree> {
    // One request whatever the fleet's size (GitHub redirects it to codeload).
    let res;
    try {
      res = await this.octokit.request('GET /repos/{owner}/{repo}/tarball/{ref}', { ...ref, ref: sha, request: { parseSuccessResponseBody: false } });
    } catch (e) {
      if (status(e) === 404 || status(e) === 422) throw new UnknownCommitError(sha);
      throw e;
    }
    const tree = readTarball(await bytesOf(res.data)).tree;
    this.cache.set(key, tree);
    return tree;
  }

  async pullRequest(ref: RepoRef, number: number): Promise<{ headSha: string; baseSha: string; baseRef: string }> {
    const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { ...ref, pull_number: number });
    return { headSha: data.head.sha as string, baseSha: data.base?.sha as string, baseRef: data.base?.ref as string };
  }

  /** The first bot-authored item whose body starts with `marker`, paging 100 at a time. */
  private async findMarked(route: string, params: Record<string, unknown>, marker: string, pages: number): Promise<any | undefined> {
    for (let page = 1; page <= pages; page++) {
      const { data } = await this.octokit.request(route, { ...params, per_page: 100, page });
      const mine = (data as any[]).find((c) => !c.pull_request && c.user?.type === 'Bot' && typeof c.body === 'string' && c.body.startsWith(marker));
      if (mine) return mine;
      if ((data as any[]).length < 100) return undefined;
    }
    return undefined;
  }

  async findComment(ref: RepoRef, issue: number, marker: string): Promise<{ id: number; body: string } | undefined> {
    const mine = await this.findMarked('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...ref, issue_number: issue }, marker, 50);
    return mine && { id: mine.id, body: mine.body };
  }

  async createComment(ref: RepoRef, issue: number, body: string): Promise<number> {
    const marker = body.split('\n')[0]!;
    return this.write(
      async () => (await this.octokit.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...ref, issue_number: issue, body, ...NO_PLUGIN_RETRY })).data.id as number,
      async () => {
        const found = await this.findComment(ref, issue, marker);
        if (!found) return undefined;
        if (found.body !== body) await this.updateComment(ref, found.id, body);
        return found.id;
      },
    );
  }

  async updateComment(ref: RepoRef, id: number, body: string): Promise<void> {
    // Editing to the same body twice is harmless: a plain retry.
    await this.write(async () => {
      await this.octokit.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', { ...ref, comment_id: id, body, ...NO_PLUGIN_RETRY });
    });
  }

  async findCheckRun(ref: RepoRef, headSha: string, name: string): Promise<number | undefined> {
    const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', { ...ref, ref: headSha, check_name: name, filter: 'latest' });
    const run = (data.check_runs as any[])[0];
    if (run) rememberNode(ref, `checkrun:${run.id}`, run.node_id);
    return run?.id as number | undefined;
  }

  async createCheckRun(ref: RepoRef, run: CheckRunRequest, existing?: number): Promise<number> {
    const output = (annotations: CheckRunRequest['annotations']) => ({ title: run.title, summary: run.summary, text: run.text, annotations });
    const pages: CheckRunRequest['annotations'][] = [];
    for (let i = 0; i < run.annotations.length; i += ANNOTATIONS_PER_REQUEST) pages.push(run.annotations.slice(i, i + ANNOTATIONS_PER_REQUEST));
    const started = new Date().toISOString();
    const done = run.status !== 'in_progress';
    const fields = { status: done ? 'completed' : 'in_progress', ...(done ? { conclusion: run.conclusion ?? 'neutral', completed_at: started } : {}), ...(run.detailsUrl ? { details_url: run.detailsUrl } : {}), output: output(pages[0] ?? []), ...NO_PLUGIN_RETRY };
    if (existing !== undefined) {
      // The same head again (a redelivery, a re-run): the one check run is brought up to date.
      await this.write(async () => {
        await this.octokit.request('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', { ...ref, check_run_id: existing, ...fields });
      });
    }
    const id = existing ?? await this.write(
      async () => {
        const { data } = await this.octokit.request('POST /repos/{owner}/{repo}/check-runs', {
          ...ref,
          name: run.name,
          head_sha: run.headSha,
          ...fields,
        });
        rememberNode(ref, `checkrun:${data.id}`, data.node_id);
        return data.id as number;
      },
      async () => {
        const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', { ...ref, ref: run.headSha, check_name: run.name });
        const same = (data.check_runs as any[]).find((r) => r.completed_at === started || (r.output?.title === run.title && r.conclusion === run.conclusion));
        return same?.id as number | undefined;
      },
    );
    for (const page of pages.slice(1)) {
      await this.write(async () => {
        await this.octokit.request('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', { ...ref, check_run_id: id, output: output(page), ...NO_PLUGIN_RETRY });
      });
    }
    return id;
  }

  private graphql(query: string, variables: Record<string, unknown>): Promise<any> {
    if (!this.octokit.graphql) throw new Error('this Octokit has no graphql client');
    return this.octokit.graphql(query, variables);
  }

  async heads(ref: RepoRef, stateBranch: string): Promise<Heads> {
    const data = await this.graphql(HEADS_QUERY, { owner: ref.owner, repo: ref.repo, state: `refs/heads/${stateBranch}` });
    const repo = data.repository;
    if (!repo?.defaultBranchRef) throw new Error(`${ref.owner}/${ref.repo} has no default branch`);
    rememberSignature(ref, repo.defaultBranchRef.target);
    rememberNode(ref, 'repo', repo.id);
    // The default branch's ref, as of the commit it pointed at: a deployment of that commit can name it.
    if (repo.defaultBranchRef.id && repo.defaultBranchRef.target?.oid) rememberNode(ref, `ref@${repo.defaultBranchRef.target.oid}`, repo.defaultBranchRef.id);
    const pulls = repo.defaultBranchRef.target?.associatedPullRequests?.nodes;
    if (Array.isArray(pulls)) {
      const merged = pulls.filter((p: any) => p?.merged && typeof p.number === 'number');
      for (const p of merged) rememberNode(ref, `pull:${p.number}`, p.id);
      mergedPulls.set(`${ref.owner}/${ref.repo}@${repo.defaultBranchRef.target.oid}`.toLowerCase(), merged.map((p: any) => p.number as number));
      while (mergedPulls.size > 64) mergedPulls.delete(mergedPulls.keys().next().value!);
    }
    return { defaultBranch: repo.defaultBranchRef.name, defaultHead: repo.defaultBranchRef.target.oid, stateHead: repo.ref?.target?.oid ?? undefined };
  }

  async branchHead(ref: RepoRef, branch: string): Promise<string | undefined> {
    try {
      const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/git/ref/{ref}', { ...ref, ref: `heads/${branch}` });
      return data.object.sha as string;
    } catch (e) {
      if (status(e) === 404) return undefined;
      throw e;
    }
  }

  async readFile(ref: RepoRef, commit: string, path: string): Promise<Uint8Array | undefined> {
    try {
      const res = await this.octokit.request('GET /repos/{owner}/{repo}/contents/{path}', { ...ref, path, ref: commit, mediaType: { format: 'raw' }, request: { parseSuccessResponseBody: false } });
      return await bytesOf(res.data);
    } catch (e) {
      if (status(e) === 404) return undefined;
      throw e;
    }
  }

  async createOrphanBranch(ref: RepoRef, branch: string, message: string, files: FileAddition[]): Promise<string | 'exists'> {
    const tree = await this.octokit.request('POST /repos/{owner}/{repo}/git/trees', {
      ...ref,
      tree: files.map((f) => ({ path: f.path, mode: '100644', type: 'blob', content: Buffer.from(f.contents).toString('utf8') })),
      ...NO_PLUGIN_RETRY,
    });
    const commit = await this.octokit.request('POST /repos/{owner}/{repo}/git/commits', { ...ref, message, tree: tree.data.sha, parents: [], ...NO_PLUGIN_RETRY });
    try {
      await this.octokit.request('POST /repos/{owner}/{repo}/git/refs', { ...ref, ref: `refs/heads/${branch}`, sha: commit.data.sha, ...NO_PLUGIN_RETRY });
    } catch (e) {
      if (status(e) === 422) return 'exists';
      throw e;
    }
    return commit.data.sha as string;
  }

  async listFiles(ref: RepoRef, commit: string, dir: string): Promise<{ files: string[]; truncated: boolean }> {
    // The commit's root tree, then each directory down to `dir`, then `dir` recursively: a few
    // requests whatever the history on the branch holds.
    let tree = commit;
    for (const part of dir.split('/').filter(Boolean)) {
      let entries: { path: string; type: string; sha: string }[];
      try {
        entries = (await this.octokit.request('GET /repos/{owner}/{repo}/git/trees/{tree_sha}', { ...ref, tree_sha: tree })).data.tree;
      } catch (e) {
        if (status(e) === 404) return { files: [], truncated: false };
        throw e;
      }
      const next = entries.find((e) => e.path === part && e.type === 'tree');
      if (!next) return { files: [], truncated: false };
      tree = next.sha;
    }
    const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/git/trees/{tree_sha}', { ...ref, tree_sha: tree, recursive: '1' });
    const prefix = dir.replace(/\/+$/, '');
    const files = (data.tree as { path: string; type: string }[]).filter((e) => e.type === 'blob').map((e) => `${prefix}/${e.path}`);
    return { files, truncated: Boolean(data.truncated) };
  }

  async commitOnBranch(ref: RepoRef, branch: string, expectedHead: string, message: { headline: string; body: string }, files: FileAddition[], deletions: string[] = []): Promise<string | 'stale'> {
    try {
      const data = await this.graphql(COMMIT_MUTATION, {
        input: {
          branch: { repositoryNameWithOwner: `${ref.owner}/${ref.repo}`, branchName: branch },
          expectedHeadOid: expectedHead,
          message,
          fileChanges: {
            additions: files.map((f) => ({ path: f.path, contents: Buffer.from(f.contents).toString('base64') })),
            ...(deletions.length > 0 ? { deletions: deletions.map((path) => ({ path })) } : {}),
          },
        },
        ...NO_PLUGIN_RETRY,
      });
      return data.createCommitOnBranch.commit.oid as string;
    } catch (e) {
      if (isStaleHead(e)) return 'stale';
      throw e;
    }
  }

  async findIssue(ref: RepoRef, marker: string): Promise<{ number: number; body: string } | undefined> {
    const mine = await this.findMarked('GET /repos/{owner}/{repo}/issues', { ...ref, state: 'all', sort: 'created', direction: 'asc' }, marker, 10);
    if (mine) rememberNode(ref, `issue:${mine.number}`, mine.node_id);
    return mine && { number: mine.number, body: mine.body };
  }

  async createIssue(ref: RepoRef, title: string, body: string): Promise<number> {
    const marker = body.split('\n')[0]!;
    return this.write(
      async () => {
        const { data } = await this.octokit.request('POST /repos/{owner}/{repo}/issues', { ...ref, title, body, ...NO_PLUGIN_RETRY });
        rememberNode(ref, `issue:${data.number}`, data.node_id);
        return data.number as number;
      },
      async () => (await this.findIssue(ref, marker))?.number,
    );
  }

  async updateIssue(ref: RepoRef, number: number, body: string): Promise<void> {
    await this.write(async () => {
      await this.octokit.request('PATCH /repos/{owner}/{repo}/issues/{issue_number}', { ...ref, issue_number: number, body, ...NO_PLUGIN_RETRY });
    });
  }

  async views(ref: RepoRef, w: ViewWrites): Promise<ViewsDone> {
    const done: ViewsDone = { checkRuns: new Map(), deployments: new Map(), failed: [] };
    const attempt = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        done.failed.push(`${what}: ${(e as Error).message}`);
      }
    };
    /** A mutation in the one request; `rest` is the REST way, used when it fails (it looks first for what may have landed). */
    interface Part {
      what: string;
      field: string;
      type: string;
      input: Record<string, unknown>;
      select: string;
      landed: (data: any) => Promise<unknown> | unknown;
      rest: () => Promise<unknown>;
    }
    const parts: Part[] = [];
    const before: { what: string; f: () => Promise<unknown> }[] = [];
    const after: { what: string; f: () => Promise<unknown> }[] = [];
    const repositoryId = nodeOf(ref, 'repo');
    const upper = (x: string) => x.toUpperCase();

    if (w.issue) {
      const { number, body } = w.issue;
      const id = nodeOf(ref, `issue:${number}`);
      const rest = () => this.updateIssue(ref, number, body);
      if (id) parts.push({ what: `issue #${number}`, field: 'updateIssue', type: 'UpdateIssueInput', input: { id, body }, select: 'issue { id }', landed: () => undefined, rest });
      else before.push({ what: `issue #${number}`, f: rest });
    }

    for (const c of w.checkRuns ?? []) {
      const { run } = c;
      const what = `check run ${run.name} on ${run.headSha.slice(0, 7)}`;
      let id = c.id;
      if (id === undefined && !c.fresh) {
        try {
          id = await this.findCheckRun(ref, run.headSha, run.name);
        } catch (e) {
          done.failed.push(`${what}: ${(e as Error).message}`);
          continue;
        }
      }
      const rest = async () => done.checkRuns.set(run.headSha, await this.createCheckRun(ref, run, id ?? (await this.findCheckRun(ref, run.headSha, run.name))));
      const node = id === undefined ? undefined : nodeOf(ref, `checkrun:${id}`);
      if (!repositoryId || run.annotations.length > 0 || (id !== undefined && !node)) {
        before.push({ what, f: async () => done.checkRuns.set(run.headSha, await this.createCheckRun(ref, run, id)) });
        continue;
      }
      const completed = run.status !== 'in_progress';
      const fields = {
        status: completed ? 'COMPLETED' : 'IN_PROGRESS',
        ...(completed ? { conclusion: upper(run.conclusion ?? 'neutral'), completedAt: new Date().toISOString() } : {}),
        ...(run.detailsUrl ? { detailsUrl: run.detailsUrl } : {}),
        output: { title: run.title, summary: run.summary, text: run.text },
      };
      if (id !== undefined) {
        const known = id;
        parts.push({ what, field: 'updateCheckRun', type: 'UpdateCheckRunInput', input: { repositoryId, checkRunId: node, ...fields }, select: 'checkRun { id }', landed: () => done.checkRuns.set(run.headSha, known), rest });
      } else {
        parts.push({
          what,
          field: 'createCheckRun',
          type: 'CreateCheckRunInput',
          input: { repositoryId, headSha: run.headSha, name: run.name, ...fields },
          select: 'checkRun { id databaseId }',
          landed: (d) => {
            rememberNode(ref, `checkrun:${d.checkRun.databaseId}`, d.checkRun.id);
            done.checkRuns.set(run.headSha, d.checkRun.databaseId as number);
          },
          rest,
        });
      }
    }

    for (const d of w.deployments ?? []) {
      const what = `deployment of ${d.sha.slice(0, 7)}`;
      const description = d.description.slice(0, 140);
      const status = (id: number) => {
        if (!d.state) return;
        const state = d.state;
        after.push({ what, f: () => this.deploymentStatus(ref, id, state, description) });
      };
      // Created through REST (which looks first) when the rollout is not new or GraphQL cannot name the commit's ref.
      const byRest = async () => {
        const id = await this.deployment(ref, d.sha, d.environment, d.rollout, description);
        done.deployments.set(d.rollout, id);
        status(id);
      };
      const id = d.id;
      const refId = nodeOf(ref, `ref@${d.sha}`);
      if (id === undefined) {
        if (!d.fresh || !repositoryId || !refId) {
          before.push({ what, f: byRest });
          continue;
        }
        parts.push({
          what,
          field: 'createDeployment',
          type: 'CreateDeploymentInput',
          input: { repositoryId, refId, environment: d.environment, description, payload: JSON.stringify({ rollout: d.rollout }), autoMerge: false, requiredContexts: [] },
          select: 'deployment { id databaseId commit { oid } }',
          landed: async (x) => {
            const made = x.deployment;
            if (!made?.databaseId) return byRest();
            rememberNode(ref, `deployment:${made.databaseId}`, made.id);
            if (made.commit?.oid !== d.sha) {
              // The branch moved on between the read of the heads and now: that deployment is of
              // another commit. Retire it and make the right one.
              await this.deploymentStatus(ref, made.databaseId, 'inactive', `made for ${String(made.commit?.oid).slice(0, 7)} by mistake: rollout ${d.rollout} is of ${d.sha.slice(0, 7)}`);
              return byRest();
            }
            done.deployments.set(d.rollout, made.databaseId as number);
            status(made.databaseId as number);
          },
          rest: byRest,
        });
        continue;
      }
      done.deployments.set(d.rollout, id);
      if (!d.state) continue;
      const node = nodeOf(ref, `deployment:${id}`);
      const known = id;
      const rest = () => this.deploymentStatus(ref, known, d.state!, description);
      if (node) parts.push({ what, field: 'createDeploymentStatus', type: 'CreateDeploymentStatusInput', input: { deploymentId: node, state: upper(d.state), description }, select: 'deploymentStatus { id }', landed: () => undefined, rest });
      else before.push({ what, f: rest });
    }

    for (const c of w.comments ?? []) {
      const what = `comment on #${c.issue}`;
      const subjectId = nodeOf(ref, `pull:${c.issue}`) ?? nodeOf(ref, `issue:${c.issue}`);
      const create = () => this.createComment(ref, c.issue, c.body);
      if (!subjectId) {
        before.push({ what, f: create });
        continue;
      }
      const rest = async () => {
        if (!(await this.findComment(ref, c.issue, c.body.split('\n')[0]!))) await create();
      };
      parts.push({ what, field: 'addComment', type: 'AddCommentInput', input: { subjectId, body: c.body }, select: 'clientMutationId', landed: () => undefined, rest });
    }

    for (const b of before) await attempt(b.what, b.f);
    if (parts.length > 0) {
      const variables: Record<string, unknown> = {};
      const declared: string[] = [];
      const fields: string[] = [];
      parts.forEach((p, i) => {
        variables[`v${i}`] = p.input;
        declared.push(`$v${i}: ${p.type}!`);
        fields.push(`v${i}: ${p.field}(input: $v${i}) { ${p.select} }`);
      });
      let data: any;
      try {
        data = await this.graphql(`mutation(${declared.join(', ')}) {\n  ${fields.join('\n  ')}\n}`, { ...variables, ...NO_PLUGIN_RETRY });
      } catch (e) {
        // GraphQL answers each mutation on its own: keep the ones that landed, redo the rest.
        data = (e as { data?: any }).data;
      }
      for (const [i, p] of parts.entries()) {
        const got = data?.[`v${i}`];
        if (got) await attempt(p.what, async () => p.landed(got));
        else await attempt(p.what, p.rest);
      }
    }
    for (const a of after) await attempt(a.what, a.f);
    return done;
  }

  async commitSignature(ref: RepoRef, sha: string): Promise<CommitSignatureInfo> {
    const known = signatures.get(`${ref.owner}/${ref.repo}@${sha}`.toLowerCase());
    if (known) return known;
    const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/git/commits/{commit_sha}', { ...ref, commit_sha: sha });
    const v = data.verification ?? {};
    return { signature: v.signature ?? null, payload: v.payload ?? null, verified: Boolean(v.verified), reason: String(v.reason ?? 'unsigned'), committer: data.committer };
  }

  async deployment(ref: RepoRef, sha: string, environment: string, rollout: string, description: string, fresh = false): Promise<number> {
    const find = async () => {
      const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/deployments', { ...ref, sha, environment, per_page: 100 });
      const d = (data as any[]).find((x) => x.payload?.rollout === rollout);
      if (d) rememberNode(ref, `deployment:${d.id}`, d.node_id);
      return d?.id as number | undefined;
    };
    const existing = fresh ? undefined : await find();
    if (existing !== undefined) return existing;
    return this.write(
      async () => {
        const { data } = await this.octokit.request('POST /repos/{owner}/{repo}/deployments', {
          ...ref,
          ref: sha,
          environment,
          description: description.slice(0, 140),
          auto_merge: false,
          required_contexts: [],
          transient_environment: false,
          payload: { rollout },
          ...NO_PLUGIN_RETRY,
        });
        rememberNode(ref, `deployment:${data.id}`, data.node_id);
        return data.id as number;
      },
      find,
    );
  }

  async deploymentStatus(ref: RepoRef, id: number, state: DeploymentState, description: string, logUrl?: string): Promise<void> {
    // A status repeated is harmless: the latest one is what GitHub shows.
    await this.write(async () => {
      await this.octokit.request('POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses', { ...ref, deployment_id: id, state, description: description.slice(0, 140), ...(logUrl ? { log_url: logUrl } : {}), ...NO_PLUGIN_RETRY });
    });
  }

  async pullsForCommit(ref: RepoRef, sha: string): Promise<number[]> {
    // The heads query that found `sha` at the default branch's head asked GitHub the same question.
    const known = mergedPulls.get(`${ref.owner}/${ref.repo}@${sha}`.toLowerCase());
    if (known) return known;
    const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls', { ...ref, commit_sha: sha });
    const merged = (data as any[]).filter((p) => p.merged_at);
    for (const p of merged) rememberNode(ref, `pull:${p.number}`, p.node_id);
    return merged.map((p) => p.number as number);
  }

  async permission(ref: RepoRef, login: string): Promise<string> {
    try {
      const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/collaborators/{username}/permission', { ...ref, username: login });
      return String(data.role_name ?? data.permission ?? 'none');
    } catch (e) {
      if (status(e) === 404 || status(e) === 403) return 'none';
      throw e;
    }
  }

  async openRevert(ref: RepoRef, o: { base: string; head: string; restore: string; branch: string; title: string; body: string }): Promise<number> {
    const open = async () => {
      const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/pulls', { ...ref, head: `${ref.owner}:${o.branch}`, state: 'open' });
      return (data as any[])[0]?.number as number | undefined;
    };
    const already = await open();
    if (already !== undefined) return already;
    const { data: restore } = await this.octokit.request('GET /repos/{owner}/{repo}/git/commits/{commit_sha}', { ...ref, commit_sha: o.restore });
    const commit = await this.write(async () => (await this.octokit.request('POST /repos/{owner}/{repo}/git/commits', { ...ref, message: o.title, tree: restore.tree.sha, parents: [o.head], ...NO_PLUGIN_RETRY })).data.sha as string);
    try {
      await this.octokit.request('POST /repos/{owner}/{repo}/git/refs', { ...ref, ref: `refs/heads/${o.branch}`, sha: commit, ...NO_PLUGIN_RETRY });
    } catch (e) {
      if (status(e) !== 422) throw e;
      await this.octokit.request('PATCH /repos/{owner}/{repo}/git/refs/{ref}', { ...ref, ref: `heads/${o.branch}`, sha: commit, force: true, ...NO_PLUGIN_RETRY });
    }
    return this.write(async () => (await this.octokit.request('POST /repos/{owner}/{repo}/pulls', { ...ref, title: o.title, body: o.body, head: o.branch, base: o.base, ...NO_PLUGIN_RETRY })).data.number as number, open);
  }

}
