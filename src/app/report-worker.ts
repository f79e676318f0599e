/** Runs in a worker thread, away from the event loop and within limits: a pull request's report, or a commit's render hashes. */
import { parentPort, workerData } from 'node:worker_threads';
import { pullRequestReport } from '../core/pull-request.js';
import { renderHashes } from '../core/state/render-check.js';
import type { WorkerJob } from './compute.js';

const job = workerData as WorkerJob;
parentPort!.postMessage(job.kind === 'report' ? pullRequestReport(job.input) : renderHashes(job.tree));
