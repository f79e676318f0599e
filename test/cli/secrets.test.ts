import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { commit, exampleTree, git, gitRepo, PROJECT_ROOT, text } from '../helpers/fleet.js';
import { sopsYaml } from '../helpers/sops.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const dotfleet = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', PATH: '/usr/bin:/bin' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('dotfleet secrets', () => {
  const tree = exampleTree();
  const repo = gitRepo(tree);
  const kestrelAge = /\[hosts\.kestrel\][\s\S]*?age_recipient = "(\w+)"/.exec(text(tree, 'fleet/hosts.toml'))![1]!;
  const ternAge = /\[hosts\.tern\][\s\S]*?age_recipient = "(\w+)"/.exec(text(tree, 'fleet/hosts.toml'))![1]!;

  it('finds the sample fleet in order: each secret for its hosts, no findings', () => {
    const r = dotfleet('secrets', 'check', '--repo', repo);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('secrets/hosts/kestrel/github.sops.yaml: 2 keys, 2 recipients, for kestrel');
    expect(r.stdout).toContain('secrets/tags/server/restic.sops.env: 2 keys, 3 recipients, for condor, puffin');
    expect(r.stdout.trim().endsWith('2 SOPS files, 0 errors, 0 warnings')).toBe(true);
  });

  it('shows a secret change in the fleet diff as keys and recipients only, with the finding it causes', () => {
    const base = git(repo, 'rev-parse', 'HEAD').trim();
    const before = text(tree, 'secrets/hosts/kestrel/github.sops.yaml');
    const after = sopsYaml({ recipients: [kestrelAge, ternAge], values: { token: 'ghp_rotated' } });
    commit(repo, { 'secrets/hosts/kestrel/github.sops.yaml': after }, 'rotate token, share with tern');
    const md = dotfleet('diff', '--repo', repo, '--base', base, '--head', 'HEAD', '--format', 'markdown');
    expect(md.code).toBe(3);
    expect(md.stdout).toMatch(/#### Secrets/);
    expect(md.stdout).toMatch(/secrets\/hosts\/kestrel\/github\.sops\.yaml \(modified\): changed token; removed user_unencrypted; recipients added age1e082kyf8…qhdypm; recipients removed age1yz6vldm2…pt8r5e/);
    expect(md.stdout).toMatch(/\*\*error\*\* `secrets\/hosts\/kestrel\/github\.sops\.yaml` — tern can decrypt this file but is not in its scope \(kestrel\)/);
    // kestrel's gh config changes too: the marker carries the new ciphertext's digest.
    expect(md.stdout).toMatch(/-    oauth_token: \[\[dotfleet-secret:secrets\/hosts\/kestrel\/github\.sops\.yaml#token@[0-9a-f]{12}\]\]/);
    for (const v of ['ghp_rotated', before.match(/data:([^,]+)/)![1]!, after.match(/data:([^,]+)/)![1]!]) expect(md.stdout).not.toContain(v);

    const rotate = dotfleet('secrets', 'rotate', '--repo', repo);
    expect(rotate.code).toBe(0);
    expect(rotate.stdout).toContain('$ sops updatekeys --yes secrets/hosts/kestrel/github.sops.yaml');
    expect(rotate.stdout).toContain('$ sops rotate --in-place secrets/hosts/kestrel/github.sops.yaml');
    const run = dotfleet('secrets', 'rotate', '--repo', repo, '--run');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/dotfleet: error: sops is not installed/);
  });

  it('decrypts only into files, and says so', () => {
    const r = dotfleet('render', '--repo', repo, '--host', 'condor', '--decrypt');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--decrypt writes files only\n  hint: add --out DIR: decrypted secrets are never printed/);
  });
});
