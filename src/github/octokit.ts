/** The GitHub port over Octokit (Probot hands in an installation-authenticated one). */
import type { RepoTree } from '../core/tree.js';
import { ANNOTATIONS_PER_REQUEST, type CheckRunRequest, type FleetGitHub, type RepoRef } from './port.js';
import { readTarball } from './tarball.js';

/** The few calls we make, as Octokit's `request` types them loosely. */
interface OctokitLike {
  request(route: string, params?: Record<string, unknown>): Promise<{ data: any; headers: Record<string, unknown> }>;
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

export class OctokitGitHub implements FleetGitHub {
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

  async readTree(ref: RepoRef, sha: string): Promise<RepoTree> {
    const key = `${ref.owner}/${ref.repo}@${sha}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    // One request whatever the fleet's size (GitHub redirects it to codeload).
    const res = await this.octokit.request('GET /repos/{owner}/{repo}/tarball/{ref}', { ...ref, ref: sha, request: { parseSuccessResponseBody: false } });
    const body = res.data instanceof ArrayBuffer ? Buffer.from(res.data) : Buffer.isBuffer(res.data) ? res.data : Buffer.from(await new Response(res.data as ReadableStream).arrayBuffer());
    const tree = readTarball(body).tree;
    this.cache.set(key, tree);
    return tree;
  }

  async pullRequestHead(ref: RepoRef, number: number): Promise<string> {
    const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { ...ref, pull_number: number });
    return data.head.sha as string;
  }

  async findComment(ref: RepoRef, issue: number, marker: string): Promise<{ id: number; body: string } | undefined> {
    for (let page = 1; page <= 50; page++) {
      const { data } = await this.octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...ref, issue_number: issue, per_page: 100, page });
      const mine = (data as any[]).find((c) => c.user?.type === 'Bot' && typeof c.body === 'string' && c.body.startsWith(marker));
      if (mine) return { id: mine.id, body: mine.body };
      if ((data as any[]).length < 100) return undefined;
    }
    return undefined;
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

  async createCheckRun(ref: RepoRef, run: CheckRunRequest): Promise<number> {
    const output = (annotations: CheckRunRequest['annotations']) => ({ title: run.title, summary: run.summary, text: run.text, annotations });
    const pages: CheckRunRequest['annotations'][] = [];
    for (let i = 0; i < run.annotations.length; i += ANNOTATIONS_PER_REQUEST) pages.push(run.annotations.slice(i, i + ANNOTATIONS_PER_REQUEST));
    const started = new Date().toISOString();
    const id = await this.write(
      async () =>
        (
          await this.octokit.request('POST /repos/{owner}/{repo}/check-runs', {
            ...ref,
            name: run.name,
            head_sha: run.headSha,
            status: 'completed',
            conclusion: run.conclusion,
            completed_at: started,
            output: output(pages[0] ?? []),
            ...NO_PLUGIN_RETRY,
          })
        ).data.id as number,
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
}
