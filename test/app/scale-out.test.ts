/**
 * Two replicas of the app (the container's command, `node dist/app/server.js`) behind one
 * GitHub, sharing a real Redis (Debian's redis-server, started here): a burst of pull-request
 * events where both replicas get deliveries for the same pull requests at once, and 1,000
 * attestations split across both. No duplicate comment, check run or attestation commit, and
 * Octokit's write spacing (1 s, Bottleneck clustered through REDIS_URL) holds across replicas.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitHubStandIn, serveStandIn } from '../../src/github/standin.js';
import { FLEET_JSON } from '../../src/core/state/fleet-state.js';
import { PROJECT_ROOT, commit, git } from '../helpers/fleet.js';
import { OWNER, REPO, pullRequestPayload, tarball } from '../helpers/github.js';
import { envelope, intakeFleet, signed } from '../helpers/intake.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

async function waitFor(what: string, f: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !(await f()); await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

describe('two replicas sharing Redis', () => {
  const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
  const f = intakeFleet([], { extraHosts: 988 });
  const secret = 'scale-out-secret';
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const dir = mkdtempSync(join(tmpdir(), 'dotfleet-scale-'));
  let redis: ChildProcess;
  let api: Server;
  let gh: GitHubStandIn;
  const replicas: { child: ChildProcess; base: string; output: string }[] = [];
  /** Every write GitHub received: when, and what. */
  const writes: { at: number; what: string }[] = [];
  const heads: string[] = [];

  beforeAll(async () => {
    if (!hasRedis) throw new Error('redis-server is not installed: apt-get install redis-server (.ci/run installs it)');
    const redisPort = await freePort();
    redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let redisOut = '';
    redis.stdout!.on('data', (b: Buffer) => (redisOut += b.toString()));
    await waitFor('redis-server', () => /Ready to accept connections/.test(redisOut));

    // Three pull requests, each changing the fleet.
    for (const size of [12, 13, 14]) {
      git(f.repo, 'checkout', '-q', '--detach', f.main);
      heads.push(commit(f.repo, { 'home/dot_config/extra.conf': `font_size = ${size}\n` }, `size ${size}`));
    }
    git(f.repo, 'checkout', '-q', 'main');

    // GitHub, stood in, as a GitHub Enterprise server (GHE_HOST), so both replicas reach it.
    const served = await serveStandIn((base) => new GitHubStandIn(OWNER, REPO, 'main', f.main, new Map([f.main, ...heads].map((c) => [c, tarball(f.repo, c)])), `${base}/codeload`), {
      rewrite: (url) => url.replace(/^\/api\/v3\//, '/').replace(/^\/api\/graphql/, '/graphql'),
      seen: (method, url, raw) => {
        if (method !== 'GET' && !/access_tokens$/.test(url)) writes.push({ at: Date.now(), what: `${method} ${url}${url === '/graphql' ? ` ${/createCommitOnBranch/.test(raw) ? 'commit' : 'query'}` : ''}` });
      },
    });
    ({ gh, server: api } = served);
    const apiHost = new URL(served.base).host;
    heads.forEach((h, i) => gh.openPulls.set(1 + i, { head: h, base: f.main, baseRef: 'main' }));

    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const child = spawn(process.execPath, ['dist/app/server.js'], {
        cwd: PROJECT_ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: dir,
          APP_ID: '1',
          PRIVATE_KEY: privateKey,
          WEBHOOK_SECRET: secret,
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          GHE_HOST: apiHost,
          GHE_PROTOCOL: 'http',
          // The control: SCALE_OUT_CONTROL=no-redis starts the replicas without Redis, and this test must fail.
          ...(process.env.SCALE_OUT_CONTROL === 'no-redis' ? {} : { REDIS_URL: `redis://127.0.0.1:${redisPort}` }),
          DOTFLEET_RENDER_WORKERS: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const replica = { child, base: `http://127.0.0.1:${port}`, output: '' };
      child.stdout!.on('data', (b: Buffer) => (replica.output += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (replica.output += b.toString()));
      replicas.push(replica);
      await waitFor(`replica ${i + 1}`, async () => (await fetch(`${replica.base}/dotfleet/v1/health`).catch(() => undefined))?.status === 200);
    }
  }, 120_000);

  afterAll(async () => {
    for (const r of replicas) {
      r.child.kill('SIGTERM');
      await new Promise((done) => (r.child.exitCode !== null ? done(null) : r.child.once('exit', done)));
    }
    api?.close();
    redis?.kill('SIGTERM');
  });

  let n = 0;
  const deliver = (replica: number, name: string, payload: unknown) => {
    const body = JSON.stringify(payload);
    return fetch(`${replicas[replica]!.base}/api/github/webhooks`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-github-event': name, 'x-github-delivery': `scale-${++n}`, 'x-hub-signature-256': 'sha256=' + createHmac('sha256', secret).update(body).digest('hex') },
    });
  };

  it('a burst of pull-request events, each pull request delivered to both replicas at once: one comment and one check run per pull request', async () => {
    const deliveries = heads.flatMap((head, i) => {
      const opened = pullRequestPayload('opened', f.main, head);
      opened.pull_request.number = 1 + i;
      const sync = pullRequestPayload('synchronize', f.main, head);
      sync.pull_request.number = 1 + i;
      return [deliver(0, 'pull_request', opened), deliver(1, 'pull_request', sync)];
    });
    const answers = await Promise.all(deliveries);
    // 202: Probot's answer to a delivery still being handled after 9 s (GitHub waits 10).
    expect(answers.filter((a) => a.status !== 200 && a.status !== 202).map((a) => a.status)).toEqual([]);
    // A 202 means the job goes on after the answer (a slow, busy machine): wait for every pull
    // request's comment and check run, then a moment for any duplicate a second job would make.
    const done = () => heads.every((head, i) => gh.comments.some((c) => c.issue === 1 + i) && gh.checkRuns.some((c) => c.head_sha === head && c.name === 'dotfleet/fleet-diff'));
    if (answers.some((a) => a.status === 202)) {
      await waitFor('a comment and a check run on each pull request', done, 120_000);
      await new Promise((r) => setTimeout(r, 5_000));
    }
    for (const [i, head] of heads.entries()) {
      expect(gh.comments.filter((c) => c.issue === 1 + i)).toHaveLength(1);
      expect(gh.checkRuns.filter((c) => c.head_sha === head && c.name === 'dotfleet/fleet-diff')).toHaveLength(1);
    }
  }, 300_000);

  it('1,000 attestations split across both replicas: each recorded once, in commits that never add the same file twice', async () => {
    const sent = f.hosts.map((host) => ({ host, body: envelope(signed(f, host)) }));
    expect(sent).toHaveLength(1000);
    const statuses: number[] = new Array(sent.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (next < sent.length) {
          const i = next++;
          const { host, body } = sent[i]!;
          // As the CLI does: a 503 (the branch kept moving) is sent again.
          for (let attempt = 0; attempt < 5; attempt++) {
            const res = await fetch(`${replicas[i % 2]!.base}/dotfleet/v1/attestations/${OWNER}/${REPO}/${host}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
            statuses[i] = res.status;
            await res.arrayBuffer();
            if (res.status !== 503) break;
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
      }),
    );
    expect(statuses.filter((s) => s !== 201 && s !== 200)).toEqual([]);
    const history = gh.history('dotfleet/state');
    const added = new Map<string, number>();
    for (let i = 1; i < history.length; i++) {
      const before = history[i - 1]!.files;
      for (const [path, bytes] of history[i]!.files) {
        if (path.startsWith('attestations/') && path.endsWith('.json') && !before.has(path)) added.set(path, (added.get(path) ?? 0) + 1);
        else if (path.startsWith('attestations/') && before.has(path) && !before.get(path)!.equals(bytes)) throw new Error(`${path} was rewritten`);
      }
    }
    expect(added.size).toBe(1000);
    expect([...added.values()].every((c) => c === 1)).toBe(true);
    const state = JSON.parse(gh.filesAt('dotfleet/state')!.get(FLEET_JSON)!.toString());
    expect(Object.keys(state.hosts)).toHaveLength(1000);
  }, 300_000);

  it('Octokit\'s write spacing holds across the replicas: never more than 11 writes in 10 seconds, from both together', () => {
    // The throttle spaces when writes are let go (1 s apart, in Redis); a request may then wait
    // a little (a token fetch, the global limiter), so single gaps can be short, but no run of
    // ten gaps can be: two replicas each spacing their own writes make twice the rate.
    const at = writes.map((w) => w.at).sort((a, b) => a - b);
    expect(at.length).toBeGreaterThan(20);
    const spans = at.slice(10).map((t, i) => t - at[i]!);
    const shortest = Math.min(...spans);
    process.stdout.write(`scale-out: ${at.length} writes, the shortest span of 10 gaps ${shortest} ms\n`);
    expect(shortest).toBeGreaterThanOrEqual(8_000);
    for (const r of replicas) expect(r.output).not.toMatch(/PRIVATE KEY|Error: |ERROR/);
  });
});
