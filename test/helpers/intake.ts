/**
 * Attestation intake under test: the example fleet in a real git repository with fresh host keys
 * in allowed_signers, GitHub stood in by `GitHubStandIn` behind nock (REST and GraphQL), and the
 * real app (Probot's node middleware, our route) on a local port.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import { createNodeMiddleware, Probot, ProbotOctokit } from 'probot';
import { dotfleetApp, type AppOptions } from '../../src/app/index.js';
import type { Rollouts } from '../../src/app/rollout.js';
import type { Intake, IntakeOptions } from '../../src/app/intake/service.js';
import { serialise, statement, subjectName, ATTESTATION_NAMESPACE, type Predicate } from '../../src/core/attestation/format.js';
import { policyHash } from '../../src/core/attestation/policy.js';
import { loadFleet } from '../../src/core/fleet.js';
import { Renderer } from '../../src/core/render.js';
import { renderHash } from '../../src/core/render-hash.js';
import { ed25519Blob, formatPublicKey, publicKeyFromBlob, type SshPublicKey } from '../../src/core/ssh/keys.js';
import { signMessage } from '../../src/core/ssh/sshsig.js';
import { GitHubStandIn } from '../../src/github/standin.js';
import { commit, exampleTree, git, gitRepo } from './fleet.js';
import { API, CODELOAD, OWNER, REPO, tarball } from './github.js';

export interface HostKey {
  public: SshPublicKey;
  key: KeyObject;
}

export function newHostKey(): HostKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { public: publicKeyFromBlob(ed25519Blob(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32))), key: privateKey };
}

export const signerLine = (host: string, k: HostKey, options = `namespaces="${ATTESTATION_NAMESPACE}"`) => `${host} ${options ? options + ' ' : ''}${formatPublicKey(k.public)}`;

export interface IntakeFleet {
  repo: string;
  main: string;
  keys: Map<string, HostKey>;
  hosts: string[];
  allowedSigners: string;
  /** Render and policy hashes per host at `main`. */
  renderHashes: Map<string, string>;
  policyHashes: Map<string, string>;
}

/** The example fleet with a fresh key per host in allowed_signers, committed on main. */
export function intakeFleet(extraSigners: string[] = [], opts: { extraHosts?: number } = {}): IntakeFleet {
  const tree = exampleTree();
  if (opts.extraHosts) {
    const more = Array.from({ length: opts.extraHosts }, (_, i) => `\n[hosts.node-${String(i + 1).padStart(3, '0')}]\nmachine = "thinkpad-x1"\nplatform = "linux"\nwave = 3\n`);
    tree.set('fleet/hosts.toml', Buffer.concat([Buffer.from(tree.get('fleet/hosts.toml')!), Buffer.from(more.join(''))]));
  }
  const fleet = loadFleet(tree);
  const hosts = [...fleet.hosts.keys()];
  const keys = new Map(hosts.map((h) => [h, newHostKey()]));
  const allowedSigners = [...hosts.map((h) => signerLine(h, keys.get(h)!)), ...extraSigners].join('\n') + '\n';
  tree.set('fleet/allowed_signers', Buffer.from(allowedSigners));
  const repo = gitRepo(tree);
  const main = git(repo, 'rev-parse', 'HEAD').trim();
  const renderer = new Renderer();
  const loaded = loadFleet(tree);
  const renderHashes = new Map(hosts.map((h) => [h, renderHash(renderer.renderHost(loaded, loaded.hosts.get(h)!).tree)]));
  const policyHashes = new Map(hosts.map((h) => [h, policyHash(tree, h)]));
  return { repo, main, keys, hosts, allowedSigners, renderHashes, policyHashes };
}

let sequences = 0;
/** A unique sequence per call, so attestations from one test run never collide. */
export const nextSequence = () => ++sequences;

export function predicate(f: IntakeFleet, host: string, over: Partial<Predicate> = {}): Predicate {
  return {
    host,
    appliedCommit: f.main,
    rolloutTarget: f.main,
    renderHash: f.renderHashes.get(host) ?? 'sha256:' + '0'.repeat(64),
    policyHash: f.policyHashes.get(host) ?? 'sha256:' + '0'.repeat(64),
    tools: [{ name: 'git', version: '2.39.5', requirement: '>=2.30', ok: true }],
    drift: [],
    tests: [{ name: 'T10-git.sh', status: 'pass', durationMs: 12 }],
    status: 'SUCCESS',
    agentVersion: 'dotfleet/test',
    sequence: nextSequence(),
    issuedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...over,
  };
}

export interface Signed {
  payload: Buffer;
  signature: string;
}

export function signed(f: IntakeFleet, host: string, over: Partial<Predicate> = {}, opts: { key?: HostKey; repository?: string; namespace?: string } = {}): Signed {
  const payload = serialise(statement(opts.repository ?? subjectName(OWNER, REPO), predicate(f, host, over)));
  return { payload, signature: signMessage(payload, opts.key ?? f.keys.get(host)!, opts.namespace ?? ATTESTATION_NAMESPACE) };
}

export const envelope = (s: Signed) => JSON.stringify({ attestation: s.payload.toString('base64'), signature: s.signature });

/** The stand-in for our fleet repository, mounted on nock for api.github.com and codeload. */
export function standIn(f: IntakeFleet, extraCommits: string[] = []): GitHubStandIn {
  const tarballs = new Map([f.main, ...extraCommits].map((sha) => [sha, tarball(f.repo, sha)]));
  return routeToStandIn(new GitHubStandIn(OWNER, REPO, 'main', f.main, tarballs, CODELOAD));
}

/** Answer every request to GitHub's API and codeload from `s` (nock, until cleaned). */
export function routeToStandIn(s: GitHubStandIn): GitHubStandIn {
  for (const origin of [API, CODELOAD]) {
    const scope = nock(origin).persist();
    for (const method of ['get', 'post', 'patch'] as const) {
      scope[method](/.*/).reply((uri: string, body: any) => {
        const parsed = typeof body === 'string' && body !== '' ? JSON.parse(body) : body;
        const r = s.handle(method.toUpperCase(), uri, parsed);
        return [r.status, r.raw ?? (r.body === undefined ? '' : JSON.stringify(r.body)), { 'content-type': 'application/json', ...r.headers }];
      });
    }
  }
  return s;
}

/** Add a commit to the fleet repository, and its tarball to the stand-in. */
export function addCommit(f: IntakeFleet, s: GitHubStandIn, changes: Record<string, string | null>, opts: { onMain?: boolean } = {}): string {
  git(f.repo, 'checkout', '-q', '--detach', f.main);
  const sha = commit(f.repo, changes, 'change');
  s.tarballs.set(sha, tarball(f.repo, sha));
  if (opts.onMain) s.branches.set('main', sha);
  git(f.repo, 'checkout', '-q', 'main');
  return sha;
}

export interface RunningApp {
  url: string;
  probot: Probot;
  intake: Intake;
  rollouts: Rollouts;
  close(): Promise<void>;
}

export async function startApp(options: Partial<IntakeOptions> = {}, http: { trustProxy?: boolean } = {}, opts: { throttle?: boolean; app?: Partial<AppOptions> } = {}): Promise<RunningApp> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  // Probot merges its own throttle options into every installation client: force them off here,
  // or each write waits a second (as it should against GitHub, not against the stand-in), unless
  // the test is about the throttle (`throttle: true`, Probot's production settings).
  const Octokit = opts.throttle ? ProbotOctokit.defaults((o: any) => ({ ...o, retry: { enabled: false } })) : ProbotOctokit.defaults((o: any) => ({ ...o, retry: { enabled: false }, throttle: { enabled: false } }));
  const probot = new Probot({ appId: 123, privateKey, Octokit, logLevel: 'fatal' });
  let intake!: Intake;
  let rollouts!: Rollouts;
  const middleware = await createNodeMiddleware(
    dotfleetApp({
      intake: { perAddress: { perMinute: 100_000, burst: 100_000 }, dashboardIntervalMs: 0, dashboardDelayMs: 0, ...options, writer: { windowMs: 100, maxBatch: 200, maxAttempts: 4, backoffMs: 5, maxBackoffMs: 20, retryAfterSeconds: 7, writeSpacingMs: opts.throttle ? 1000 : 0, ...options.writer } },
      onIntake: (i) => (intake = i),
      onRollouts: (r) => (rollouts = r),
      http,
      signingKey: null,
      rolloutTickMs: 0,
      ...opts.app,
    }),
    { probot },
  );
  const server: Server = createServer((req, res) => {
    void middleware(req, res, () => res.writeHead(404).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    probot,
    intake,
    rollouts,
    close: async () => {
      await rollouts.close();
      await intake.settle();
      await intake.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export async function post(app: RunningApp, host: string, body: string | Buffer, opts: { owner?: string; repo?: string; path?: string; method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const path = opts.path ?? `/dotfleet/v1/attestations/${opts.owner ?? OWNER}/${opts.repo ?? REPO}/${host}`;
  const res = await fetch(app.url + path, { method: opts.method ?? 'POST', body: opts.method === 'GET' ? undefined : body, headers: { 'content-type': 'application/json', ...opts.headers } });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: the test says so */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const submit = (app: RunningApp, host: string, s: Signed) => post(app, host, envelope(s));

/**
 * The app on a stand-in of `f` for a whole test file: started before its tests (after `setup`
 * has shaped the stand-in), stopped after. The fields are set once the tests run.
 */
export function appForFile(f: IntakeFleet, options: Partial<IntakeOptions> = {}, setup?: (gh: GitHubStandIn) => void, app?: Partial<AppOptions>): { app: RunningApp; gh: GitHubStandIn } {
  const holder = {} as { app: RunningApp; gh: GitHubStandIn };
  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    holder.gh = standIn(f);
    setup?.(holder.gh);
    holder.app = await startApp(options, {}, { app });
  });
  afterAll(async () => {
    await holder.app.close();
    nock.cleanAll();
  });
  return holder;
}

