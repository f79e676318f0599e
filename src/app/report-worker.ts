/** Runs in a worker thread, away from the event loop and within limits: a pull request's report, or a commit's render hashes. */
import { parentPort, workerData } from 'node:worker_threads';
import { pullRequestReport } from '../core/pull-request.js';
import { renderHashes } from '../core/state/render-check.js';
import type { WorkerJob } from './compute.js';
import { Renderer } from '../core/render.js';

const { job, where } = workerData as { job: WorkerJob; where: SharedArrayBuffer };
// Where the render is, in memory the parent can read even while this thread is stuck in a
// template: a render stopped at its time limit names the template it was in.
const length = new Int32Array(where, 0, 1);
const text = new Uint8Array(where, 4);
const encoder = new TextEncoder();
Renderer.onTemplate = (host, source) => {
  const { written } = encoder.encodeInto(`${source}\0${host}`, text);
  Atomics.store(length, 0, written);
};
parentPort!.postMessage(job.kind === 'report' ? pullRequestReport(job.input) : renderHashes(job.tree, job.since));
