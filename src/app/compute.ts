/**
 * Computing a pull request's report in a worker thread, with a time limit and a memory limit: a
 * pull request (maybe from a fork) is data, and a template built to hang or to explode must give
 * an error in the check, not take the bot down.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { PullRequestInput, PullRequestResult } from '../core/pull-request.js';
import type { RepoTree } from '../core/tree.js';
import type { HostHash } from '../core/state/render-check.js';

/** What a worker is asked to do. */
export type WorkerJob = { kind: 'report'; input: PullRequestInput } | { kind: 'render-hashes'; tree: RepoTree };

export interface ComputeLimits {
  /** Wall-clock limit for rendering both sides (default 60 s). */
  timeoutMs: number;
  /** Heap limit of the worker (default 1,024 MB). */
  maxHeapMb: number;
}

export const DEFAULT_LIMITS: ComputeLimits = { timeoutMs: 60_000, maxHeapMb: 1024 };

export type Outcome<T> = { ok: true; result: T } | { ok: false; reason: string };
export type ComputeOutcome = Outcome<PullRequestResult>;

export type ComputeReport = (input: PullRequestInput) => Promise<ComputeOutcome>;
/** Every host's render hash at a commit (the tree of that commit). */
export type ComputeRenderHashes = (tree: RepoTree) => Promise<Outcome<Record<string, HostHash>>>;

/** dist/app/report-worker.js, also when this module runs from src/ under the test runner. */
function workerFile(): string {
  return join(fileURLToPath(new URL('../../', import.meta.url)), 'dist', 'app', 'report-worker.js');
}

export function workerCompute(limits: ComputeLimits = DEFAULT_LIMITS): ComputeReport {
  return (input) => runWorker<PullRequestResult>({ kind: 'report', input }, limits);
}

export function workerRenderHashes(limits: ComputeLimits = DEFAULT_LIMITS): ComputeRenderHashes {
  return (tree) => runWorker<Record<string, HostHash>>({ kind: 'render-hashes', tree }, limits);
}

function runWorker<T>(job: WorkerJob, limits: ComputeLimits): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    const worker = new Worker(workerFile(), { workerData: job, resourceLimits: { maxOldGenerationSizeMb: limits.maxHeapMb } });
    let settled = false;
    const done = (outcome: Outcome<T>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => done({ ok: false, reason: `rendering did not finish within ${Math.round(limits.timeoutMs / 1000)} s: a template may loop over very large data` }),
      limits.timeoutMs,
    );
    worker.on('message', (result: T) => done({ ok: true, result }));
    worker.on('error', (e: Error & { code?: string }) =>
      done({ ok: false, reason: e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `rendering needed more than ${limits.maxHeapMb} MB: a template may produce huge output` : `rendering failed: ${e.message}` }),
    );
    worker.on('exit', (code) => done({ ok: false, reason: `the renderer stopped (exit code ${code})` }));
  });
}
