/**
 * The GitHub port: everything the app needs from GitHub, and nothing the core sees. The app,
 * the tests and (later) the Action each hand in their own implementation.
 */
import type { RepoTree } from '../core/tree.js';
import type { Annotation } from '../core/pull-request.js';
import type { CommitSignatureInfo } from '../core/rollout/plan.js';

export interface RepoRef {
  owner: string;
  repo: string;
}

export interface CheckRunRequest {
  name: string;
  headSha: string;
  /** Absent while `status` is in_progress. */
  conclusion?: 'success' | 'neutral' | 'failure' | 'action_required';
  /** Default completed. */
  status?: 'in_progress' | 'completed';
  /** Where a person acts on an action_required conclusion (the pull-request comment). */
  detailsUrl?: string;
  title: string;
  summary: string;
  text: string;
  annotations: Annotation[];
}

export interface FleetGitHub {
  /** Every file of the repository at a commit. */
  readTree(ref: RepoRef, sha: string): Promise<RepoTree>;
  /** The pull request as GitHub has it now: its head, and its base branch and commit. */
  pullRequest(ref: RepoRef, number: number): Promise<{ headSha: string; baseSha: string; baseRef: string }>;
  /** A branch's head commit, or undefined when there is no such branch. */
  branchHead(ref: RepoRef, branch: string): Promise<string | undefined>;
  /** The bot's comment on an issue or pull request carrying `marker`. */
  findComment(ref: RepoRef, issue: number, marker: string): Promise<{ id: number; body: string } | undefined>;
  createComment(ref: RepoRef, issue: number, body: string): Promise<number>;
  updateComment(ref: RepoRef, id: number, body: string): Promise<void>;
  /** The latest check run of that name on a commit, if any. */
  findCheckRun(ref: RepoRef, headSha: string, name: string): Promise<number | undefined>;
  /**
   * A completed check run (or `existing` brought up to date); annotations beyond GitHub's 50 per
   * request are added by updates.
   */
  createCheckRun(ref: RepoRef, run: CheckRunRequest, existing?: number): Promise<number>;
}

/** GitHub accepts at most 50 annotations per check-run request. */
export const ANNOTATIONS_PER_REQUEST = 50;

/** A file a commit adds: exact bytes. */
export interface FileAddition {
  path: string;
  contents: Uint8Array;
}

/** The default branch and its head; the state branch's head (undefined until it exists). */
export interface Heads {
  defaultBranch: string;
  defaultHead: string;
  stateHead?: string;
}

/** What attestation intake needs: the trust at the default branch, and the state branch. */
export interface StateGitHub {
  /** Every file at a commit; throws `UnknownCommitError` when the repository has no such commit. */
  readTree(ref: RepoRef, sha: string): Promise<RepoTree>;
  heads(ref: RepoRef, stateBranch: string): Promise<Heads>;
  /**
   * The head of `branch`, or undefined when it does not exist. A REST read: Octokit's throttling
   * spaces writes and GraphQL calls a second apart, and a read that waits behind that lets any
   * faster writer move the branch between the read and the commit.
   */
  branchHead(ref: RepoRef, branch: string): Promise<string | undefined>;
  /** A file's bytes at a commit, or undefined when it is not there. */
  readFile(ref: RepoRef, commit: string, path: string): Promise<Uint8Array | undefined>;
  /** A branch with one parentless commit holding `files`; 'exists' when someone made it first. */
  createOrphanBranch(ref: RepoRef, branch: string, message: string, files: FileAddition[]): Promise<string | 'exists'>;
  /**
   * One commit on `branch` adding `files`, only if the branch still points at `expectedHead`
   * (GraphQL createCommitOnBranch: exact bytes, a verified commit). 'stale' when it moved.
   */
  commitOnBranch(ref: RepoRef, branch: string, expectedHead: string, message: { headline: string; body: string }, files: FileAddition[], deletions?: string[]): Promise<string | 'stale'>;
  /** Every file under `dir` at a commit (none when there is no such directory); `truncated` when GitHub cut the list. */
  listFiles(ref: RepoRef, commit: string, dir: string): Promise<{ files: string[]; truncated: boolean }>;
  /** The bot's issue whose body starts with `marker`. */
  findIssue(ref: RepoRef, marker: string): Promise<{ number: number; body: string } | undefined>;
  createIssue(ref: RepoRef, title: string, body: string): Promise<number>;
  updateIssue(ref: RepoRef, number: number, body: string): Promise<void>;
  /**
   * Several of GitHub's views brought up to date at once: one GraphQL request with a mutation
   * each where GitHub's node ids are known, the REST calls (looking first for what may already
   * be there) for the rest and for any part that fails. Never throws: what could not be shown
   * is in `failed`.
   */
  views(ref: RepoRef, writes: ViewWrites): Promise<ViewsDone>;
}

/** A check run on `run.headSha`: updated when `id` is known, created when `fresh` (known to be none), else looked up first. */
export interface CheckRunView {
  id?: number;
  fresh: boolean;
  run: CheckRunRequest;
}

/**
 * The deployment of `sha` to `environment` whose payload names `rollout`: created when `id` is
 * unknown (looked up first unless `fresh`); then given `state` when one is set (a new deployment
 * has none until then).
 */
export interface DeploymentView {
  id?: number;
  fresh: boolean;
  sha: string;
  environment: string;
  rollout: string;
  description: string;
  state?: DeploymentState;
}

export interface ViewWrites {
  issue?: { number: number; body: string };
  checkRuns?: CheckRunView[];
  deployments?: DeploymentView[];
  /** New comments on issues or pull requests; the first line is the comment's marker (a retry looks for it). */
  comments?: { issue: number; body: string }[];
}

export interface ViewsDone {
  /** Check run ids by head commit, deployment ids by rollout. */
  checkRuns: Map<string, number>;
  deployments: Map<string, number>;
  /** What could not be shown, and why. */
  failed: string[];
}

export type DeploymentState = 'queued' | 'in_progress' | 'success' | 'failure' | 'error' | 'inactive';

/** What a rollout needs besides the state branch: the target's signature, and GitHub's own views of it (written through `views`). */
export interface RolloutGitHub extends StateGitHub {
  /** GitHub's `verification` of a commit, and its committer. */
  commitSignature(ref: RepoRef, sha: string): Promise<CommitSignatureInfo>;
  findCheckRun(ref: RepoRef, headSha: string, name: string): Promise<number | undefined>;
  createCheckRun(ref: RepoRef, run: CheckRunRequest, existing?: number): Promise<number>;
  createComment(ref: RepoRef, issue: number, body: string): Promise<number>;
  /** The merged pull requests whose merge (or squash) made `sha` (the heads query that found `sha` at the default branch's head brings them along). */
  pullsForCommit(ref: RepoRef, sha: string): Promise<number[]>;
  /** A user's permission on the repository: admin, maintain, write, triage, read or none. */
  permission(ref: RepoRef, login: string): Promise<string>;
  /**
   * A pull request into `base` whose one commit (on top of `head`) restores the tree of `restore`:
   * a revert of everything since. Reuses the branch and pull request when they exist.
   */
  openRevert(ref: RepoRef, options: { base: string; head: string; restore: string; branch: string; title: string; body: string }): Promise<number>;
}

export class UnknownCommitError extends Error {
  constructor(readonly sha: string) {
    super(`the repository has no commit ${sha}`);
  }
}
