/**
 * Computing a pull request's report in a worker thread, with a time limit and a memory limit: a
 * pull request (maybe from a fork) is data, and a template built to hang or to explode must give
 * an error in the check, not take the bot down.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { availableParallelism, totalmem } from 'node:os';
import type { PullRequestInput, PullRequestResult } from '../core/pull-request.js';
import type { RepoTree } from '../core/tree.js';
import type { HostHash, KnownHashes } from '../core/state/render-check.js';

/** What a worker is asked to do. */
export type WorkerJob = { kind: 'report'; input: PullRequestInput } | { kind: 'render-hashes'; tree: RepoTree; since?: KnownHashes };

export interface ComputeLimits {
  /** Wall-clock limit for rendering both sides (default 60 s). */
  timeoutMs: number;
  /** Heap limit of the worker (default 1,024 MB). */
  maxHeapMb: number;
}

export const DEFAULT_LIMITS: ComputeLimits = { timeoutMs: 60_000, maxHeapMb: 1024 };

export type Outcome<T> = { ok: true; result: T } | { ok: false; reason: string };
export type ComputeOutcome = Outcome<PullRequestResult>;

/** `onQueued` is called once when the job has waited for a free render slot longer than a few seconds. */
export type ComputeReport = (input: PullRequestInput, onQueued?: () => Promise<void> | void) => Promise<ComputeOutcome>;
/** Every host's render hash at a commit (the tree of that commit); `since`: an earlier commit's, to render only what changed. */
export type ComputeRenderHashes = (tree: RepoTree, since?: KnownHashes) => Promise<Outcome<Record<string, HostHash>>>;

let workerPath: string | undefined;

/** Where the worker's module is, for a bundle that carries its own (the Action's dist/report-worker.mjs). */
export function useReportWorker(path: string): void {
  workerPath = path;
}

/** dist/app/report-worker.js, also when this module runs from src/ under the test runner. */
function workerFile(): string {
  return workerPath ?? join(fileURLToPath(new URL('../../', import.meta.url)), 'dist', 'app', 'report-worker.js');
}

/**
 * Render workers run a few at a time, the rest wait in a queue: each may take its heap limit, so
 * hostile pull requests arriving together cannot take the machine's memory. The number of slots:
 * DOTFLEET_RENDER_WORKERS, else the cores less one (at least 1), and no more than memory allows
 * (half the machine's memory divided by the heap limit).
 */
export class RenderSlots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly size: number) {}

  /** Take a slot; `onQueued` runs once if the wait passes `queuedAfterMs`. */
  async take(onQueued?: () => Promise<void> | void, queuedAfterMs = 5_000): Promise<() => void> {
    if (this.busy < this.size) {
      this.busy++;
      return () => this.give();
    }
    const timer = onQueued ? setTimeout(() => void Promise.resolve(onQueued()).catch(() => undefined), queuedAfterMs) : undefined;
    await new Promise<void>((r) => this.waiting.push(r));
    clearTimeout(timer);
    return () => this.give();
  }

  private give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy--;
  }

  get queued(): number {
    return this.waiting.length;
  }
}

export function defaultRenderSlots(limits: ComputeLimits = DEFAULT_LIMITS): number {
  const env = Number(process.env.DOTFLEET_RENDER_WORKERS);
  if (Number.isInteger(env) && env > 0) return env;
  const byMemory = Math.floor(totalmem() / 2 / (limits.maxHeapMb * 2 ** 20));
  return Math.max(1, Math.min(Math.max(1, availableParallelism() - 1), byMemory));
}

/** One queue for every render the app runs (pull-request reports and intake render checks). */
let sharedSlots: RenderSlots | undefined;
export function renderSlots(limits: ComputeLimits = DEFAULT_LIMITS): RenderSlots {
  sharedSlots ??= new RenderSlots(defaultRenderSlots(limits));
  return sharedSlots;
}

export function workerCompute(limits: ComputeLimits = DEFAULT_LIMITS, slots: RenderSlots = renderSlots(limits)): ComputeReport {
  return async (input, onQueued) => {
    const release = await slots.take(onQueued);
    try {
      return await runWorker<PullRequestResult>({ kind: 'report', input }, limits);
    } finally {
      release();
    }
  };
}

export function workerRenderHashes(limits: ComputeLimits = DEFAULT_LIMITS, slots: RenderSlots = renderSlots(limits)): ComputeRenderHashes {
  return async (tree, since) => {
    const release = await slots.take();
    try {
      return await runWorker<Record<string, HostHash>>({ kind: 'render-hashes', tree, since }, limits);
    } finally {
      release();
    }
  };
}

function runWorker<T>(job: WorkerJob, limits: ComputeLimits): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    const at = new SharedArrayBuffer(4 + 1024);
    const where = () => {
      const n = Atomics.load(new Int32Array(at, 0, 1), 0);
      if (n <= 0) return '';
      const [source, host] = new TextDecoder().decode(new Uint8Array(at, 4, n).slice()).split('\0');
      return ` (it was rendering ${source} for ${host})`;
    };
    const worker = new Worker(workerFile(), { workerData: { job, where: at }, resourceLimits: { maxOldGenerationSizeMb: limits.maxHeapMb } });
    let settled = false;
    const done = (outcome: Outcome<T>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => done({ ok: false, reason: `rendering did not finish within ${Math.round(limits.timeoutMs / 1000)} s${where()}: a template may loop over very large data` }),
      limits.timeoutMs,
    );
    worker.on('message', (result: T) => done({ ok: true, result }));
    worker.on('error', (e: Error & { code?: string }) =>
      done({ ok: false, reason: e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `rendering needed more than ${limits.maxHeapMb} MB${where()}: a template may produce huge output` : `rendering failed: ${e.message}` }),
    );
    worker.on('exit', (code) => done({ ok: false, reason: `the renderer stopped (exit code ${code})` }));
  });
}
