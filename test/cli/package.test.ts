import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/fleet.js';

/**
 * The published package works on its own: `npm pack`, unpacked in an empty directory (its
 * dependencies linked from this checkout, so the test needs no registry), runs `dotfleet --help`,
 * `dotfleet demo` and `dotfleet init` (then `diff` in the new fleet); the app starts with the
 * container's command and answers its health route and a signed webhook; and `files` names only
 * what exists.
 */
describe('the npm package', () => {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { files: string[]; bin: Record<string, string>; version: string };
  const dir = mkdtempSync(join(tmpdir(), 'dotfleet-pack-'));
  let paths: string[] = [];
  const root = join(dir, 'package');

  beforeAll(() => {
    // dist is built by `npm test`; --ignore-scripts keeps pack from building again.
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [{ filename, files }] = JSON.parse(out) as [{ filename: string; files: { path: string }[] }];
    paths = files.map((f) => f.path);
    execFileSync('tar', ['xzf', join(dir, filename), '-C', dir]);
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'));
  });

  it('names only files that exist', () => {
    expect(pkg.files.filter((f) => !existsSync(join(PROJECT_ROOT, f)))).toEqual([]);
  });

  it('packs, unpacks into an empty directory, and runs --help, demo, and init then diff from there', () => {
    expect(paths).toEqual(expect.arrayContaining(['dist/cli/dotfleet.mjs', 'dist/app/server.js', 'examples/fleet/fleet/hosts.toml', 'templates/fleet/home/.chezmoidata/hardware.toml', 'templates/fleet/.github/workflows/dotfleet.yml', 'README.md', 'LICENSE', 'package.json']));
    expect(paths.filter((p) => p.startsWith('test/') || p.startsWith('src/') || p.startsWith('node_modules/'))).toEqual([]);
    const bin = join(root, pkg.bin.dotfleet!);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', cwd: dir });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: dotfleet/);
    const demo = spawnSync(process.execPath, [bin, 'demo', '--dir', join(dir, 'fleet')], { encoding: 'utf8', cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    expect(demo.stderr).toMatch(/The demo fleet repository is/);
    expect(demo.status).toBe(0);
    expect(demo.stdout).toMatch(/12 of 12 hosts change/);
    // A new fleet from the packed templates, then its own diff: clean.
    const fleet = join(dir, 'mine');
    const init = spawnSync(process.execPath, [bin, 'init', fleet, '--yes', '--host', 'first', '--preset', 'linux-laptop', '--platform', 'linux', '--no-key'], { encoding: 'utf8', cwd: dir });
    expect([init.status, init.stderr]).toEqual([0, '']);
    expect(init.stdout).toMatch(/^A new fleet in .*mine: host first \(linux-laptop, linux\) renders 6 files\./);
    execFileSync('git', ['add', '-A'], { cwd: fleet });
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false', 'commit', '-qm', 'start'], { cwd: fleet });
    const diff = spawnSync(process.execPath, [bin, 'diff', '--base', 'HEAD', '--exit-code'], { encoding: 'utf8', cwd: fleet });
    expect([diff.status, diff.stdout.split('\n')[0]]).toEqual([0, '0 of 1 host change']);
  });

  it('the Dockerfile runs the command tested here, checks the health route, as a non-root user, from npm ci --omit=dev', () => {
    const docker = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
    expect(docker).toContain('CMD ["node", "dist/app/server.js"]');
    expect(docker).toMatch(/HEALTHCHECK .*\/dotfleet\/v1\/health/);
    expect(docker).toMatch(/^USER node$/m);
    expect(docker).toMatch(/npm ci --omit=dev/);
    expect(docker).toMatch(/^FROM node:20-bookworm-slim$/m);
  });

  it("starts the app with the container's command (node dist/app/server.js): the health route answers, a signed webhook is taken, a forged one refused", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const secret = 'container-test-secret';
    // The Dockerfile's CMD, from the unpacked tarball; nothing in the environment points at GitHub
    // (rollouts off), so the process makes no request of its own.
    const child = spawn(process.execPath, ['dist/app/server.js'], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: dir, APP_ID: '1', PRIVATE_KEY: privateKey, WEBHOOK_SECRET: secret, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      let health: Response | undefined;
      for (const end = Date.now() + 20_000; health?.status !== 200; await new Promise((r) => setTimeout(r, 100))) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`the app did not answer its health route: ${output}`);
        health = await fetch(`${base}/dotfleet/v1/health`).catch(() => undefined);
      }
      expect(await health!.json()).toEqual({ status: 'ok', version: pkg.version, rollouts: 'off', uptimeSeconds: expect.any(Number) });
      const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1, hook: { type: 'App', id: 1, events: [] } });
      const sign = (key: string) => 'sha256=' + createHmac('sha256', key).update(body).digest('hex');
      const deliver = (signature: string) =>
        fetch(`${base}/api/github/webhooks`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': 'c0ffee', 'x-hub-signature-256': signature } });
      expect((await deliver(sign(secret))).status).toBe(200);
      expect((await deliver(sign('not-the-secret'))).status).toBe(400);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    expect(output).not.toMatch(/PRIVATE KEY/);
  }, 60_000);
});
