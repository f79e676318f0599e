/** Runs in a worker thread: the pull-request report, away from the event loop and within limits. */
import { parentPort, workerData } from 'node:worker_threads';
import { pullRequestReport, type PullRequestInput } from '../core/pull-request.js';

const input = workerData as PullRequestInput;
parentPort!.postMessage(pullRequestReport(input));
