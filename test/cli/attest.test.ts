import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { commit, exampleTree, git, gitRepo, PROJECT_ROOT, text } from '../helpers/fleet.js';
import { newKey, scratchDir, sshKeygen } from '../helpers/ssh.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const dotfleet = (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('dotfleet attest and verify', () => {
  const dir = scratchDir();
  const kestrel = newKey(dir, 'kestrel');
  const tern = newKey(dir, 'tern');
  const tree = exampleTree();
  const signers = text(tree, 'fleet/allowed_signers')
    .replace(/^kestrel .*$/m, `kestrel namespaces="dotfleet-attestation" ${kestrel.publicKey} kestrel`)
    .replace(/^tern .*$/m, `tern namespaces="dotfleet-attestation" ${tern.publicKey} tern`);
  const repo = gitRepo(tree);
  const head = commit(repo, { 'fleet/allowed_signers': signers }, 'trust new host keys');
  const state = join(dir, 'state');
  const out = join(dir, 'out');

  it('builds and signs an attestation of the applied commit, numbering them per host', () => {
    const r = dotfleet(['attest', '--repo', repo, '--host', 'kestrel', '--key', kestrel.path, '--out', out, '--state-dir', state]);
    // Nothing was applied here with dotfleet: the attestation says it claims no drift, and nothing else.
    expect(r.stderr).toMatch(/^dotfleet: no apply of kestrel is recorded in .*: the attestation claims no drift \(dotfleet apply or update records one\)\n$/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kestrel-000001\.json \(\+ \.sig\): SUCCESS, sequence 1, sha256:[0-9a-f]{64}/);
    const st = JSON.parse(readFileSync(join(out, 'kestrel-000001.json'), 'utf8'));
    expect(st.predicate).toMatchObject({ host: 'kestrel', appliedCommit: head, sequence: 1, status: 'SUCCESS', agentVersion: 'dotfleet/0.1.0' });
    const hash = JSON.parse(dotfleet(['render', '--repo', repo, '--ref', head, '--host', 'kestrel', '--json']).stdout).renderHash;
    expect(st.predicate.renderHash).toBe(hash);
    expect(dotfleet(['attest', '--repo', repo, '--host', 'kestrel', '--key', kestrel.path, '--out', out, '--state-dir', state]).stdout).toMatch(/kestrel-000002\.json/);
  });

  it('verifies a file with our code and with ssh-keygen alone at its issued-at', () => {
    const file = join(out, 'kestrel-000001.json');
    const allowed = join(dir, 'allowed_signers');
    writeFileSync(allowed, signers);
    const r = dotfleet(['verify', file, '--allowed-signers', allowed]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/verified: good signature by kestrel \(SHA256:/);
    const issued = JSON.parse(readFileSync(file, 'utf8')).predicate.issuedAt.replace(/[-:]/g, '').replace('T', '');
    const k = sshKeygen(['-Y', 'verify', '-f', allowed, '-I', 'kestrel', '-n', 'dotfleet-attestation', '-s', `${file}.sig`, '-O', `verify-time=${issued}`], readFileSync(file));
    expect(k.code).toBe(0);
  });

  it('signs through ssh-agent when given the public key, and says so', () => {
    const agentDir = scratchDir();
    const sock = join(agentDir, 'agent.sock');
    const agent = spawnSync('ssh-agent', ['-a', sock], { encoding: 'utf8' });
    const pid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)![1]!;
    try {
      execFileSync('ssh-add', ['-q', tern.path], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      const pub = join(agentDir, 'tern.pub');
      copyFileSync(`${tern.path}.pub`, pub);
      const r = dotfleet(['attest', '--repo', repo, '--host', 'tern', '--key', pub, '--out', out, '--sequence', '5'], { SSH_AUTH_SOCK: sock });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/is a public key: signing through ssh-keygen -Y sign with ssh-agent/);
      const allowed = join(agentDir, 'allowed');
      writeFileSync(allowed, signers);
      expect(dotfleet(['verify', join(out, 'tern-000005.json'), '--allowed-signers', allowed]).code).toBe(0);
    } finally {
      process.kill(Number(pid));
    }
  });

  it.each(['ecdsa', 'rsa'])('signs with an %s host key through ssh-keygen; dotfleet verify and ssh-keygen both accept it', (type) => {
    const key = newKey(dir, `atlas-${type}`, type);
    const trusted = `${signers}atlas namespaces="dotfleet-attestation" ${key.publicKey} atlas\n`;
    const allowed = join(dir, `allowed-${type}`);
    writeFileSync(allowed, trusted);
    const where = join(dir, `out-${type}`);
    const r = dotfleet(['attest', '--repo', repo, '--host', 'atlas', '--key', key.path, '--out', where, '--sequence', '3']);
    expect(r.code).toBe(0);
    const file = join(where, 'atlas-000003.json');
    const v = dotfleet(['verify', file, '--allowed-signers', allowed]);
    expect(v.stdout).toMatch(/verified: good signature by atlas/);
    expect(v.code).toBe(0);
    const issued = JSON.parse(readFileSync(file, 'utf8')).predicate.issuedAt.replace(/[-:]/g, '').replace('T', '');
    expect(sshKeygen(['-Y', 'verify', '-f', allowed, '-I', 'atlas', '-n', 'dotfleet-attestation', '-s', `${file}.sig`, '-O', `verify-time=${issued}`], readFileSync(file)).code).toBe(0);
  });

  it('warns when the key is not trusted for the host, and the verdict says why', () => {
    const r = dotfleet(['attest', '--repo', repo, '--host', 'kestrel', '--key', tern.path, '--out', join(dir, 'wrong'), '--sequence', '9']);
    expect(r.stderr).toMatch(/would not accept this signature: the key is allowed for "tern", not for "kestrel"/);
    const allowed = join(dir, 'allowed_signers');
    const v = dotfleet(['verify', join(dir, 'wrong', 'kestrel-000009.json'), '--allowed-signers', allowed]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/REJECTED \[principal\]/);
  });

  it('verifies every attestation on a state branch against the default branch, re-verifiable with git show and ssh-keygen', () => {
    git(repo, 'switch', '-q', '--orphan', 'dotfleet/state');
    for (const [host, n] of [['kestrel', 1], ['kestrel', 2], ['tern', 5]] as const) {
      mkdirSync(join(repo, 'attestations', host), { recursive: true });
      for (const ext of ['', '.sig']) copyFileSync(join(out, `${host}-00000${n}.json${ext}`), join(repo, 'attestations', host, `00000${n}.json${ext}`));
    }
    // A replay of kestrel's first attestation under another name, and one filed under the wrong host.
    for (const ext of ['', '.sig']) {
      copyFileSync(join(out, `kestrel-000001.json${ext}`), join(repo, 'attestations', 'kestrel', `000001-again.json${ext}`));
      mkdirSync(join(repo, 'attestations', 'wren'), { recursive: true });
      copyFileSync(join(out, `kestrel-000002.json${ext}`), join(repo, 'attestations', 'wren', `000002.json${ext}`));
    }
    git(repo, 'add', 'attestations');
    git(repo, 'commit', '-qm', 'attestations');
    const r = dotfleet(['verify', '--repo', repo, '--ref', 'dotfleet/state', '--trust-ref', 'main']);
    expect(r.code).toBe(1);
    // The same attestation twice: one copy verifies, the other is refused and names the first.
    const seq1 = r.stdout.split('\n').filter((l) => /attestations\/kestrel\/000001/.test(l));
    expect(seq1.filter((l) => / verified$/.test(l))).toHaveLength(1);
    expect(seq1.filter((l) => /REJECTED sequence: sequence 1 of kestrel is also used by attestations\/kestrel\/000001/.test(l))).toHaveLength(1);
    expect(r.stdout).toMatch(/attestations\/wren\/000002\.json\s+kestrel\s+2 .*REJECTED host-mismatch/);
    expect(r.stdout).toMatch(/3 of 5 attestations verified against main:fleet\/allowed_signers/);

    // The by-hand procedure in docs/attestation.md.
    const file = 'attestations/tern/000005.json';
    const payload = execFileSync('git', ['-C', repo, 'show', `dotfleet/state:${file}`]);
    const issued = JSON.parse(payload.toString()).predicate.issuedAt.replace(/[-:]/g, '').replace('T', '');
    writeFileSync(join(dir, 'as'), execFileSync('git', ['-C', repo, 'show', 'main:fleet/allowed_signers']));
    writeFileSync(join(dir, 'sig'), execFileSync('git', ['-C', repo, 'show', `dotfleet/state:${file}.sig`]));
    expect(sshKeygen(['-Y', 'verify', '-f', join(dir, 'as'), '-I', 'tern', '-n', 'dotfleet-attestation', '-s', join(dir, 'sig'), '-O', `verify-time=${issued}`], payload).code).toBe(0);
  });

  it('refuses bad input with one clear line', () => {
    expect(dotfleet(['attest', '--repo', repo, '--ref', 'main', '--host', 'kestrel', '--key', join(dir, 'nope'), '--out', out]).stderr).toMatch(/^dotfleet: error: .*cannot read the key/);
    expect(dotfleet(['attest', '--repo', repo, '--ref', 'main', '--host', 'kestrel', '--key', kestrel.path, '--status', 'GREAT']).stderr).toMatch(/unknown status "GREAT"/);
    expect(dotfleet(['verify', join(out, 'kestrel-000001.json')]).stderr).toMatch(/--allowed-signers is required/);
    expect(dotfleet(['verify', join(out, 'kestrel-000001.json'), '--allowed-signers', join(dir, 'allowed_signers'), '--at', 'yesterday']).stderr).toMatch(/"yesterday" is not a time/);
  });
});

describe('dotfleet signers lint', () => {
  it('passes the sample fleet, and names each hygiene problem with its line', () => {
    const repo = gitRepo(exampleTree());
    const clean = dotfleet(['signers', 'lint', '--repo', repo]);
    expect(clean.code).toBe(0);
    expect(clean.stdout.trim()).toBe('13 keys, 0 errors, 0 warnings');

    const dir = scratchDir();
    const a = newKey(dir, 'a');
    const b = newKey(dir, 'b');
    const file = join(dir, 'allowed_signers');
    writeFileSync(file, [`host-* namespaces="dotfleet-attestation" ${a.publicKey}`, `kestrel ${b.publicKey}`, `tern namespaces="dotfleet-attestation" ${b.publicKey}`, `wren cert-authority ${a.publicKey}`, `x,y namespaces="dotfleet-attestation" ${a.publicKey}`].join('\n') + '\n');
    const r = dotfleet(['signers', 'lint', file]);
    expect(r.code).toBe(3);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/:1: warning: the principals "host-\*" are a pattern/),
      expect.stringMatching(/:2: warning: no namespaces= option/),
      expect.stringMatching(/:3: warning: this key is also listed for "kestrel" \(line 2\): one key under two principals/),
      expect.stringMatching(/:4: error: cert-authority keys are not supported/),
      expect.stringMatching(/:4: warning: no namespaces= option/),
      expect.stringMatching(/:4: warning: this key is also listed for "host-\*"/),
      expect.stringMatching(/:5: warning: one key for several principals \(x,y\)/),
      expect.stringMatching(/:5: warning: this key is also listed for "host-\*"/),
      '5 keys, 1 error, 7 warnings',
    ]);
  });
});
