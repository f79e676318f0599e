/**
 * The app for bench/intake, in its own thread (its own event loop, as in production where the
 * hosts and GitHub are other machines): Probot's node middleware with our route, Octokit with
 * Probot's production settings unless THROTTLE=0. Answers the bench's messages: `ready` (wait
 * until the trust and the render of a commit are loaded) and `stats`.
 */
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { createNodeMiddleware, Probot, ProbotOctokit } from 'probot';
import { dotfleetApp } from '../dist/app/index.js';

const { base, secret, throttle } = workerData;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const Octokit = throttle ? ProbotOctokit : ProbotOctokit.defaults((o) => ({ ...o, throttle: { enabled: false } }));
const probot = new Probot({ appId: 1, privateKey, baseUrl: base, logLevel: 'warn', Octokit, secret });
let intake;
const middleware = await createNodeMiddleware(dotfleetApp({ intake: { perAddress: { perMinute: 1e6, burst: 1e6 } }, onIntake: (i) => (intake = i) }), { probot });
const server = createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
await new Promise((r) => server.listen(0, '127.0.0.1', r));

const ref = { owner: 'o', repo: 'r' };
parentPort.on('message', async (m) => {
  if (m.kind === 'ready') {
    await intake.settle();
    await intake.repository(ref).renderCheck(m.commit, m.host, m.hash);
    parentPort.postMessage({ kind: 'ready' });
  } else if (m.kind === 'stats') {
    await intake.settle();
    const repo = intake.repository(ref);
    const writer = repo.writer(await repo.trust());
    parentPort.postMessage({
      kind: 'stats',
      writer: { ...intake.options.writer },
      writerStats: writer.stats,
      verified: intake.stats.verified,
      verifyNs: Number(intake.stats.verifyNs),
      pool: { size: intake.pool.size, ...intake.pool.stats },
    });
  } else if (m.kind === 'stop') {
    server.closeAllConnections();
    server.close();
    await intake.close();
    process.exit(0);
  }
});
parentPort.postMessage({ kind: 'listening', port: server.address().port });
