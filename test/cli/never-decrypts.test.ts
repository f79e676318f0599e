import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFleet } from '../../src/core/fleet.js';
import { pullRequestReport } from '../../src/core/pull-request.js';
import { diffFleetSecrets } from '../../src/core/secrets/report.js';
import { Renderer } from '../../src/core/render.js';
import { commit, exampleTree, git, gitRepo, PROJECT_ROOT, text } from '../helpers/fleet.js';

/**
 * "The bot never decrypts" (README, docs/secrets.md): with every decryption tool on PATH replaced
 * by a trap that records its call, and keys in the environment, the review (the report the app
 * and the Action compute, `dotfleet diff`, `secrets check`, `render` without --decrypt) calls
 * none of them. The host's `render --decrypt` does: the trap is proven to work.
 */
describe('the bot never decrypts', () => {
  const traps = mkdtempSync(join(tmpdir(), 'dotfleet-traps-'));
  const log = join(traps, 'calls.log');
  for (const tool of ['sops', 'gpg', 'gpg2', 'age', 'rage', 'openssl']) {
    writeFileSync(join(traps, tool), `#!/bin/sh\necho "${tool} $*" >> "${log}"\nexit 1\n`);
    chmodSync(join(traps, tool), 0o755);
  }
  const env = { ...process.env, PATH: `${traps}:${process.env.PATH}`, NO_COLOR: '1', SOPS_AGE_KEY: 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ', GNUPGHOME: traps };
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'dist/cli/dotfleet.mjs'), ...args], { encoding: 'utf8', env });

  const tree = exampleTree();
  const repo = gitRepo(tree);
  const base = git(repo, 'rev-parse', 'HEAD').trim();
  const secretFile = [...tree.keys()].find((p) => p.endsWith('.sops.env'))!;
  // A secret changes: its ciphertext, as sops would rewrite it.
  const head = commit(repo, { [secretFile]: text(tree, secretFile).replace(/ENC\[AES256_GCM,data:[^,]*/, 'ENC[AES256_GCM,data:Zm9vYmFyYmF6') });

  it('the pull-request report, dotfleet diff, secrets check and render call no decryption tool', () => {
    const savedPath = process.env.PATH;
    process.env.PATH = env.PATH;
    try {
      const headTree = new Map(tree).set(secretFile, Buffer.from(text(tree, secretFile).replace(/ENC\[AES256_GCM,data:[^,]*/, 'ENC[AES256_GCM,data:Zm9vYmFyYmF6')));
      const r = pullRequestReport({ base: tree, head: headTree, trust: tree, baseSha: base, headSha: head });
      expect(r.comment).toContain('secret');
      diffFleetSecrets(loadFleet(tree), loadFleet(headTree), new Renderer());
    } finally {
      process.env.PATH = savedPath;
    }
    for (const args of [['diff', '--repo', repo, '--base', base, '--head', head], ['secrets', 'check', '--repo', repo], ['render', '--repo', repo, '--host', 'kestrel', '--out', mkdtempSync(join(tmpdir(), 'dotfleet-out-')) + '/home']]) {
      const r = cli(...args);
      expect([args[0], r.status, r.stderr.includes('Error:')]).toEqual([args[0], expect.any(Number), false]);
    }
    expect(calls()).toBe('');
  });

  it('the host decrypts (render --decrypt) through sops, which the trap records', () => {
    const r = cli('render', '--repo', repo, '--ref', head, '--host', 'kestrel', '--out', mkdtempSync(join(tmpdir(), 'dotfleet-out-')) + '/home', '--decrypt');
    expect(r.status).not.toBe(0);
    expect(calls()).toMatch(/^sops /m);
  });
});
