/**
 * An in-memory stand-in for the part of GitHub that attestation intake uses: the heads query,
 * createCommitOnBranch with expectedHeadOid (a moved head answers HTTP 200 with a STALE_DATA
 * error, as GitHub does), contents at a commit, the Git Data calls that start a branch, issues,
 * tarballs, and the installation lookup. Tests put it behind nock and the intake benchmark behind
 * a local HTTP server; it is not used by the app itself.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInCommit {
  parents: string[];
  files: Map<string, Buffer>;
  message: string;
}

export interface StandInReply {
  status: number;
  body?: unknown;
  raw?: Buffer;
  headers?: Record<string, string>;
}

export class GitHubStandIn {
  readonly commits = new Map<string, StandInCommit>();
  readonly branches = new Map<string, string>();
  readonly issues: { number: number; title: string; body: string; user: { type: string }; state: string }[] = [];
  /** Every request, "METHOD /path" (GraphQL as "GRAPHQL heads" / "GRAPHQL createCommitOnBranch"). */
  readonly requests: string[] = [];
  /** Requests it had no answer for (a test fails on any). */
  readonly unhandled: string[] = [];
  /** Runs before each createCommitOnBranch: tests and the benchmark move the head from here. */
  beforeCommit?: (branch: string) => void;
  /** Answer a createCommitOnBranch with this status instead (once per entry), e.g. 502. */
  readonly commitFailures: number[] = [];
  /** Make the commit, then answer with this status (once per entry): the answer is lost, the commit is not. */
  readonly commitLostAnswers: number[] = [];
  /** Refuse every write with 403 while set, as GitHub refuses a fork's read-only workflow token. */
  readOnly = false;
  /** Answer every read of a branch head, file or ref with this status while set (the read path is down). */
  readFailure?: number;
  private counter = 0;
  /** Commit signatures GitHub would report (`verification` and committer), by commit; unsigned when absent. */
  readonly signatures = new Map<string, { verification: { verified: boolean; reason: string; signature: string | null; payload: string | null }; committer: { name: string; email: string; date: string } }>();
  readonly checkRuns: { id: number; name: string; head_sha: string; status: string; conclusion?: string; output: { title: string; summary: string } }[] = [];
  readonly comments: { id: number; issue: number; body: string; user: { type: string } }[] = [];
  readonly deployments: { id: number; sha: string; environment: string; payload: { rollout?: string }; statuses: { state: string; description: string }[] }[] = [];
  readonly pulls: { number: number; title: string; body: string; head: string; base: string }[] = [];
  /** Merged pull requests per commit (GET /commits/{sha}/pulls). */
  readonly pullsFor = new Map<string, number[]>();
  /** Open pull requests by number: their head and base (GET /pulls/{number}). */
  readonly openPulls = new Map<number, { head: string; base: string; baseRef: string }>();
  /** Repository permission per login (default none). */
  readonly permissions = new Map<string, string>();

  constructor(
    readonly owner: string,
    readonly repo: string,
    readonly defaultBranch: string,
    defaultHead: string,
    /** Tarballs of the fleet repository's commits (`git archive --format=tar.gz`). */
    readonly tarballs: Map<string, Buffer>,
    /** Where tarball downloads are redirected (`https://codeload.github.com`). */
    readonly codeload: string,
  ) {
    this.branches.set(defaultBranch, defaultHead);
  }

  private oid(): string {
    return createHash('sha1').update(`standin-${++this.counter}-${Math.random()}`).digest('hex');
  }

  /** Files of a branch's head commit. */
  filesAt(branch: string): Map<string, Buffer> | undefined {
    const head = this.branches.get(branch);
    return head ? this.commits.get(head)?.files : undefined;
  }

  /** Another writer's commit (a second replica, a person): moves the head. */
  pushCommit(branch: string, changes: Record<string, Buffer | string>, message = 'someone else'): string {
    const head = this.branches.get(branch);
    const files = new Map(head ? this.commits.get(head)!.files : []);
    for (const [p, c] of Object.entries(changes)) files.set(p, Buffer.from(c));
    const oid = this.oid();
    this.commits.set(oid, { parents: head ? [head] : [], files, message });
    this.branches.set(branch, oid);
    return oid;
  }

  /** Commits made through createCommitOnBranch (and the orphan start), oldest first. */
  history(branch: string): StandInCommit[] {
    const out: StandInCommit[] = [];
    for (let oid = this.branches.get(branch); oid; oid = this.commits.get(oid)!.parents[0]) out.unshift(this.commits.get(oid)!);
    return out;
  }

  handle(method: string, url: string, body: any): StandInReply {
    const u = new URL(url, 'https://api.github.com');
    const path = decodeURIComponent(u.pathname);
    const base = `/repos/${this.owner}/${this.repo}`;
    const json = (status: number, data: unknown): StandInReply => ({ status, body: data });
    if (this.readOnly && method !== 'GET' && !(method === 'POST' && path === '/graphql' && !String(body?.query).includes('mutation'))) {
      this.requests.push(`${method} ${path} (read-only)`);
      return json(403, { message: 'Resource not accessible by integration' });
    }
    if (method === 'POST' && path === '/graphql') return this.graphql(body);
    this.requests.push(`${method} ${path}`);
    let m: RegExpExecArray | null;
    if (this.readFailure && method === 'GET' && (path.startsWith(`${base}/git/ref/`) || path.startsWith(`${base}/contents/`))) return json(this.readFailure, { message: 'Server Error' });
    if (method === 'POST' && /^\/app\/installations\/\d+\/access_tokens$/.test(path)) {
      return json(201, { token: 'standin', expires_at: new Date(Date.now() + 3600e3).toISOString(), permissions: { contents: 'write', issues: 'write' } });
    }
    if (method === 'GET' && path === `${base}/installation`) return json(200, { id: 1 });
    if (method === 'GET' && /^\/repos\/[^/]+\/[^/]+\/installation$/.test(path)) return json(404, { message: 'Not Found' });
    if (method === 'GET' && (m = new RegExp(`^${base}/tarball/(\\w+)$`).exec(path))) {
      if (!this.tarballs.has(m[1]!)) return json(404, { message: 'Not Found' });
      return { status: 302, headers: { location: `${this.codeload}/${this.owner}/${this.repo}/legacy.tar.gz/${m[1]}` } };
    }
    if (method === 'GET' && (m = /\/legacy\.tar\.gz\/(\w+)$/.exec(path))) {
      const t = this.tarballs.get(m[1]!);
      return t ? { status: 200, raw: t, headers: { 'content-type': 'application/x-gzip' } } : json(404, { message: 'Not Found' });
    }
    if (method === 'GET' && path.startsWith(`${base}/contents/`)) {
      const file = path.slice(`${base}/contents/`.length);
      const ref = u.searchParams.get('ref') ?? '';
      const commit = this.commits.get(ref) ?? this.commits.get(this.branches.get(ref) ?? '');
      const bytes = commit?.files.get(file);
      return bytes ? { status: 200, raw: bytes, headers: { 'content-type': 'application/vnd.github.raw' } } : json(404, { message: 'Not Found' });
    }
    if (method === 'GET' && (m = new RegExp(`^${base}/git/trees/(\\w+)$`).exec(path))) return this.tree(m[1]!, u.searchParams.get('recursive') === '1');
    if (method === 'GET' && (m = new RegExp(`^${base}/pulls/(\\d+)$`).exec(path))) {
      const pr = this.openPulls.get(Number(m[1]));
      return pr ? json(200, { number: Number(m[1]), head: { sha: pr.head }, base: { sha: pr.base, ref: pr.baseRef } }) : json(404, { message: 'Not Found' });
    }
    if (method === 'GET' && (m = new RegExp(`^${base}/git/ref/heads/(.+)$`).exec(path))) {
      const head = this.branches.get(m[1]!);
      return head ? json(200, { ref: `refs/heads/${m[1]}`, object: { type: 'commit', sha: head } }) : json(404, { message: 'Not Found' });
    }
    if (method === 'POST' && path === `${base}/git/trees`) {
      const files = new Map<string, Buffer>((body.tree as { path: string; content: string }[]).map((e) => [e.path, Buffer.from(e.content)]));
      const sha = this.oid();
      this.trees.set(sha, files);
      return json(201, { sha });
    }
    if (method === 'POST' && path === `${base}/git/commits`) {
      const files = this.trees.get(body.tree) ?? (String(body.tree).startsWith('tree-of-') ? new Map<string, Buffer>([['(tree of)', Buffer.from(String(body.tree).slice(8))]]) : undefined);
      if (!files) return json(422, { message: 'Tree not found' });
      const sha = this.oid();
      this.commits.set(sha, { parents: body.parents, files, message: body.message });
      return json(201, { sha });
    }
    if (method === 'POST' && path === `${base}/git/refs`) {
      const name = String(body.ref).replace(/^refs\/heads\//, '');
      if (this.branches.has(name)) return json(422, { message: 'Reference already exists' });
      this.branches.set(name, body.sha);
      return json(201, { ref: body.ref, object: { sha: body.sha } });
    }
    if (method === 'GET' && path === `${base}/issues`) {
      const page = Number(u.searchParams.get('page') ?? 1);
      const per = Number(u.searchParams.get('per_page') ?? 30);
      return json(200, this.issues.slice((page - 1) * per, page * per).map((i) => ({ ...i, node_id: `I_${i.number}` })));
    }
    if (method === 'POST' && path === `${base}/issues`) {
      const issue = { number: this.issues.length + 1, title: body.title, body: body.body, user: { type: 'Bot' }, state: 'open' };
      this.issues.push(issue);
      return json(201, { ...issue, node_id: `I_${issue.number}` });
    }
    if (method === 'PATCH' && (m = new RegExp(`^${base}/issues/(\\d+)$`).exec(path))) {
      const issue = this.issues.find((i) => i.number === Number(m![1]));
      if (!issue) return json(404, { message: 'Not Found' });
      issue.body = body.body;
      return json(200, issue);
    }
    return this.rollout(method, path, u, body) ?? this.missing(method, path);
  }

  private missing(method: string, path: string): StandInReply {
    this.unhandled.push(`${method} ${path}`);
    return { status: 404, body: { message: `not in the stand-in: ${method} ${path}` } };
  }

  /** What rollouts use: commit signatures, check runs, deployments, comments, pull requests, permissions, installations. */
  private rollout(method: string, path: string, u: URL, body: any): StandInReply | undefined {
    const base = `/repos/${this.owner}/${this.repo}`;
    const json = (status: number, data: unknown): StandInReply => ({ status, body: data });
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === '/app/installations') return json(200, [{ id: 1 }]);
    if (method === 'GET' && path === '/installation/repositories') return json(200, { total_count: 1, repositories: [{ name: this.repo, owner: { login: this.owner } }] });
    if (method === 'GET' && (m = new RegExp(`^${base}/git/commits/(\\w+)$`).exec(path))) {
      const sha = m[1]!;
      if (!this.tarballs.has(sha) && !this.commits.has(sha)) return json(404, { message: 'Not Found' });
      const sig = this.signatures.get(sha);
      return json(200, { sha, tree: { sha: `tree-of-${sha}` }, committer: sig?.committer ?? { name: 'Owner', email: 'owner@example.org', date: new Date().toISOString() }, verification: sig?.verification ?? { verified: false, reason: 'unsigned', signature: null, payload: null } });
    }
    if (method === 'GET' && (m = new RegExp(`^${base}/commits/(\\w+)/check-runs$`).exec(path))) {
      const name = u.searchParams.get('check_name');
      const runs = this.checkRuns.filter((r) => r.head_sha === m![1] && (!name || r.name === name)).reverse();
      return json(200, { total_count: runs.length, check_runs: runs.map((r) => ({ ...r, node_id: `CR_${r.id}` })) });
    }
    if (method === 'POST' && path === `${base}/check-runs`) {
      const run = { id: this.checkRuns.length + 1, name: body.name, head_sha: body.head_sha, status: body.status, conclusion: body.conclusion, output: body.output };
      this.checkRuns.push(run);
      return json(201, { ...run, node_id: `CR_${run.id}` });
    }
    if (method === 'PATCH' && (m = new RegExp(`^${base}/check-runs/(\\d+)$`).exec(path))) {
      const run = this.checkRuns.find((r) => r.id === Number(m![1]));
      if (!run) return json(404, { message: 'Not Found' });
      Object.assign(run, { status: body.status ?? run.status, conclusion: body.conclusion ?? run.conclusion, output: body.output ?? run.output });
      return json(200, run);
    }
    if (method === 'GET' && (m = new RegExp(`^${base}/issues/(\\d+)/comments$`).exec(path))) return json(200, this.comments.filter((c) => c.issue === Number(m![1])));
    if (method === 'POST' && (m = new RegExp(`^${base}/issues/(\\d+)/comments$`).exec(path))) {
      const c = { id: this.comments.length + 1, issue: Number(m[1]), body: body.body, user: { type: 'Bot' } };
      this.comments.push(c);
      return json(201, c);
    }
    if (method === 'PATCH' && (m = new RegExp(`^${base}/issues/comments/(\\d+)$`).exec(path))) {
      const c = this.comments.find((x) => x.id === Number(m![1]));
      if (!c) return json(404, { message: 'Not Found' });
      c.body = body.body;
      return json(200, c);
    }
    if (method === 'GET' && path === `${base}/deployments`) {
      return json(200, this.deployments.filter((d) => d.sha === u.searchParams.get('sha') && d.environment === u.searchParams.get('environment')).map((d) => ({ ...d, node_id: `DE_${d.id}` })));
    }
    if (method === 'POST' && path === `${base}/deployments`) {
      const d = { id: this.deployments.length + 1, sha: body.ref, environment: body.environment, payload: body.payload, statuses: [] };
      this.deployments.push(d);
      return json(201, { ...d, node_id: `DE_${d.id}` });
    }
    if (method === 'POST' && (m = new RegExp(`^${base}/deployments/(\\d+)/statuses$`).exec(path))) {
      const d = this.deployments.find((x) => x.id === Number(m![1]));
      if (!d) return json(404, { message: 'Not Found' });
      d.statuses.push({ state: body.state, description: body.description });
      return json(201, { state: body.state });
    }
    if (method === 'GET' && (m = new RegExp(`^${base}/commits/(\\w+)/pulls$`).exec(path))) {
      return json(200, (this.pullsFor.get(m[1]!) ?? []).map((number) => ({ number, node_id: `PR_${number}`, merged_at: '2026-11-23T10:00:00Z' })));
    }
    if (method === 'GET' && (m = new RegExp(`^${base}/collaborators/([^/]+)/permission$`).exec(path))) {
      const role = this.permissions.get(m[1]!) ?? 'read';
      return json(200, { permission: role === 'maintain' ? 'write' : role, role_name: role });
    }
    if (method === 'GET' && path === `${base}/pulls`) {
      const head = (u.searchParams.get('head') ?? '').split(':').pop();
      return json(200, this.pulls.filter((p) => !head || p.head === head));
    }
    if (method === 'POST' && path === `${base}/pulls`) {
      const pr = { number: 100 + this.pulls.length, title: body.title, body: body.body, head: body.head, base: body.base };
      this.pulls.push(pr);
      return json(201, pr);
    }
    return undefined;
  }

  private readonly trees = new Map<string, Map<string, Buffer>>();

  /**
   * The Git trees API over the stand-in's flat commits: a commit (or branch) names its root tree;
   * a directory's tree is `T<commit>x<hex of the directory>`.
   */
  private tree(id: string, recursive: boolean): StandInReply {
    let commitId = id;
    let dir = '';
    const t = /^T(\w+?)x([0-9a-f]*)$/.exec(id);
    if (t) {
      commitId = t[1]!;
      dir = Buffer.from(t[2]!, 'hex').toString('utf8');
    }
    const commit = this.commits.get(commitId) ?? this.commits.get(this.branches.get(commitId) ?? '');
    if (!commit) return { status: 404, body: { message: 'Not Found' } };
    const prefix = dir ? `${dir}/` : '';
    const entries = new Map<string, { path: string; type: string; sha: string }>();
    for (const file of commit.files.keys()) {
      if (!file.startsWith(prefix)) continue;
      const rest = file.slice(prefix.length);
      if (recursive || !rest.includes('/')) entries.set(rest, { path: rest, type: 'blob', sha: createHash('sha1').update(commit.files.get(file)!).digest('hex') });
      else {
        const name = rest.slice(0, rest.indexOf('/'));
        entries.set(name, { path: name, type: 'tree', sha: `T${commitId}x${Buffer.from(prefix + name).toString('hex')}` });
      }
    }
    return { status: 200, body: { sha: id, tree: [...entries.values()], truncated: false } };
  }

  private graphql(body: { query: string; variables: any }): StandInReply {
    const q = body.query;
    if (q.includes('createCommitOnBranch')) {
      this.requests.push('GRAPHQL createCommitOnBranch');
      const input = body.variables.input;
      const branch = input.branch.branchName as string;
      this.beforeCommit?.(branch);
      const failure = this.commitFailures.shift();
      if (failure) return { status: failure, body: { message: 'Server Error' } };
      const head = this.branches.get(branch);
      if (!head) return { status: 200, body: { data: null, errors: [{ type: 'NOT_FOUND', path: ['createCommitOnBranch'], message: `A ref named "${branch}" does not exist` }] } };
      if (head !== input.expectedHeadOid) {
        return { status: 200, body: { data: { createCommitOnBranch: null }, errors: [{ type: 'STALE_DATA', path: ['createCommitOnBranch'], message: `Expected branch to point to "${input.expectedHeadOid}" but it did not.  Pull and try again.` }] } };
      }
      const files = new Map(this.commits.get(head)!.files);
      for (const a of input.fileChanges.additions as { path: string; contents: string }[]) files.set(a.path, Buffer.from(a.contents, 'base64'));
      for (const d of (input.fileChanges.deletions ?? []) as { path: string }[]) {
        if (!files.delete(d.path)) return { status: 200, body: { data: null, errors: [{ type: 'UNPROCESSABLE', path: ['createCommitOnBranch'], message: `A path was requested for deletion which does not exist as of commit oid \`${head}\`` }] } };
      }
      const oid = this.oid();
      this.commits.set(oid, { parents: [head], files, message: `${input.message.headline}\n\n${input.message.body}` });
      this.branches.set(branch, oid);
      const lost = this.commitLostAnswers.shift();
      if (lost) return { status: lost, body: { message: 'Server Error' } };
      return { status: 200, body: { data: { createCommitOnBranch: { commit: { oid } } } } };
    }
    if (q.includes('defaultBranchRef')) {
      this.requests.push('GRAPHQL heads');
      const state = String(body.variables.state).replace(/^refs\/heads\//, '');
      const stateHead = this.branches.get(state);
      const head = this.branches.get(this.defaultBranch);
      // The head's signature as GraphQL gives it: the same facts as the REST commit's verification.
      const sig = head ? this.signatures.get(head) : undefined;
      const v = sig?.verification;
      const signature = v?.signature ? { signature: v.signature, payload: v.payload, isValid: v.verified, state: String(v.reason).toUpperCase() } : null;
      const committer = sig?.committer ?? { name: 'Owner', email: 'owner@example.org', date: new Date().toISOString() };
      return {
        status: 200,
        body: {
          data: {
            repository: {
              id: 'R_1',
              defaultBranchRef: { id: `REF_${this.defaultBranch}`, name: this.defaultBranch, target: { oid: head, committer, signature, associatedPullRequests: { nodes: (this.pullsFor.get(head ?? '') ?? []).map((number) => ({ number, id: `PR_${number}`, merged: true })) } } },
              ref: stateHead ? { target: { oid: stateHead } } : null,
            },
          },
        },
      };
    }
    if (/^\s*mutation/.test(q)) return this.mutations(q, body.variables);
    this.unhandled.push(`GRAPHQL ${q.slice(0, 60)}`);
    return { status: 200, body: { errors: [{ message: 'not in the stand-in' }] } };
  }

  /** Mutations of a views request to refuse (by name): that one answers null with an error, the others land, as GitHub does. */
  readonly viewFailures = new Set<string>();
  /** Do a views request's mutations, then answer with this status instead (once per entry): the answer is lost, the writes are not. */
  readonly viewLostAnswers: number[] = [];

  /** Views written as GraphQL mutations, several in one request ("GRAPHQL createCheckRun+updateIssue"). */
  private mutations(q: string, variables: Record<string, any>): StandInReply {
    const calls = [...q.matchAll(/(\w+): (\w+)\(input: \$(\w+)\)/g)].map((m) => ({ alias: m[1]!, field: m[2]!, input: variables[m[3]!] }));
    this.requests.push(`GRAPHQL ${calls.map((c) => c.field).join('+')}`);
    const data: Record<string, unknown> = {};
    const errors: { type: string; path: string[]; message: string }[] = [];
    const lower = (x: unknown) => (typeof x === 'string' ? x.toLowerCase() : undefined);
    for (const { alias, field, input } of calls) {
      const fail = (message: string) => {
        data[alias] = null;
        errors.push({ type: 'NOT_FOUND', path: [alias], message });
      };
      if (this.viewFailures.has(field)) {
        fail(`${field} failed (stand-in fault)`);
        continue;
      }
      if (field === 'updateIssue') {
        const issue = this.issues.find((i) => `I_${i.number}` === input.id);
        if (!issue) fail(`no issue ${input.id}`);
        else {
          issue.body = input.body;
          data[alias] = { issue: { id: input.id } };
        }
      } else if (field === 'createCheckRun') {
        const run = { id: this.checkRuns.length + 1, name: input.name, head_sha: input.headSha, status: lower(input.status)!, conclusion: lower(input.conclusion), output: input.output };
        this.checkRuns.push(run);
        data[alias] = { checkRun: { id: `CR_${run.id}`, databaseId: run.id } };
      } else if (field === 'updateCheckRun') {
        const run = this.checkRuns.find((r) => `CR_${r.id}` === input.checkRunId);
        if (!run) fail(`no check run ${input.checkRunId}`);
        else {
          Object.assign(run, { status: lower(input.status) ?? run.status, conclusion: lower(input.conclusion) ?? run.conclusion, output: input.output ?? run.output });
          data[alias] = { checkRun: { id: input.checkRunId } };
        }
      } else if (field === 'createDeployment') {
        const branch = String(input.refId).replace(/^REF_/, '');
        const sha = this.branches.get(branch);
        if (!sha) fail(`no ref ${input.refId}`);
        else {
          const d = { id: this.deployments.length + 1, sha, environment: input.environment, payload: JSON.parse(input.payload ?? '{}'), statuses: [] };
          this.deployments.push(d);
          data[alias] = { deployment: { id: `DE_${d.id}`, databaseId: d.id, commit: { oid: sha } } };
        }
      } else if (field === 'createDeploymentStatus') {
        const d = this.deployments.find((x) => `DE_${x.id}` === input.deploymentId);
        if (!d) fail(`no deployment ${input.deploymentId}`);
        else {
          d.statuses.push({ state: lower(input.state)!, description: input.description });
          data[alias] = { deploymentStatus: { id: `DS_${d.id}_${d.statuses.length}` } };
        }
      } else if (field === 'addComment') {
        const issue = Number(String(input.subjectId).replace(/^(PR|I)_/, ''));
        const c = { id: this.comments.length + 1, issue, body: input.body, user: { type: 'Bot' } };
        this.comments.push(c);
        data[alias] = { clientMutationId: null };
      } else {
        this.unhandled.push(`GRAPHQL ${field}`);
        fail(`${field} is not in the stand-in`);
      }
    }
    const lost = this.viewLostAnswers.shift();
    if (lost) return { status: lost, body: { message: 'Server Error' } };
    return { status: 200, body: errors.length > 0 ? { data, errors } : { data } };
  }
}

/**
 * A stand-in on a local HTTP port, for tests and benchmarks that run the app or the Action as a
 * process: `make` builds it once the base URL is known (serve tarballs from `${base}/codeload`).
 * `rewrite` maps a request's URL first (a GitHub Enterprise client's `/api/v3/…`); `seen` is
 * told of every request with its raw body.
 */
export async function serveStandIn(
  make: (base: string) => GitHubStandIn,
  options: { port?: number; rewrite?: (url: string) => string; seen?: (method: string, url: string, raw: string) => void } = {},
): Promise<{ gh: GitHubStandIn; base: string; server: Server }> {
  let gh: GitHubStandIn | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      const url = options.rewrite ? options.rewrite(req.url!) : req.url!;
      options.seen?.(req.method!, url, raw);
      const r = gh!.handle(req.method!, url, raw ? JSON.parse(raw) : undefined);
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      res.end(r.raw ?? (r.body === undefined ? '' : JSON.stringify(r.body)));
    });
  });
  await new Promise<void>((r) => server.listen(options.port ?? 0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  gh = make(base);
  return { gh, base, server };
}
