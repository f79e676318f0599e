/**
 * The GitHub port: everything the app needs from GitHub, and nothing the core sees. The app,
 * the tests and (later) the Action each hand in their own implementation.
 */
import type { RepoTree } from '../core/tree.js';
import type { Annotation } from '../core/pull-request.js';

export interface RepoRef {
  owner: string;
  repo: string;
}

export interface CheckRunRequest {
  name: string;
  headSha: string;
  conclusion: 'success' | 'neutral' | 'failure';
  title: string;
  summary: string;
  text: string;
  annotations: Annotation[];
}

export interface FleetGitHub {
  /** Every file of the repository at a commit. */
  readTree(ref: RepoRef, sha: string): Promise<RepoTree>;
  /** The pull request's head commit now. */
  pullRequestHead(ref: RepoRef, number: number): Promise<string>;
  /** The bot's comment on an issue or pull request carrying `marker`. */
  findComment(ref: RepoRef, issue: number, marker: string): Promise<{ id: number; body: string } | undefined>;
  createComment(ref: RepoRef, issue: number, body: string): Promise<number>;
  updateComment(ref: RepoRef, id: number, body: string): Promise<void>;
  /** A completed check run; annotations beyond GitHub's 50 per request are added by updates. */
  createCheckRun(ref: RepoRef, run: CheckRunRequest): Promise<number>;
}

/** GitHub accepts at most 50 annotations per check-run request. */
export const ANNOTATIONS_PER_REQUEST = 50;
