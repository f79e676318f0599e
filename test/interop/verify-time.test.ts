/**
 * "dotfleet verify never calls verified what the documented ssh-keygen procedure refuses": the
 * by-hand recipe of docs/attestation.md, taken from the doc itself and run with bash, git and the
 * real ssh-keygen, against dotfleet's verdict for the same stored files. Keys with validity
 * windows, issued-at values on and around their edges, across the years dotfleet accepts; and
 * issued-at values shaped like times that are not instants, which dotfleet must refuse.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ATTESTATION_NAMESPACE, serialise, statement, subjectName, type Predicate } from '../../src/core/attestation/format.js';
import { issuedAtSeconds } from '../../src/core/attestation/format.js';
import { verifyAttestation } from '../../src/core/attestation/verify.js';
import { parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';
import { signMessage } from '../../src/core/ssh/sshsig.js';
import { commit, git, gitRepo, treeOf } from '../helpers/fleet.js';
import { newHostKey, signerLine, type HostKey } from '../helpers/intake.js';

/** The recipe, exactly as the doc prints it, for file `f` and principal `host`. */
function recipe(f: string, host: string): string {
  const doc = readFileSync(new URL('../../docs/attestation.md', import.meta.url), 'utf8');
  const block = /### Re-verifying by hand[\s\S]*?```sh\n([\s\S]*?)```/.exec(doc)![1]!;
  expect(block).toContain('f=attestations/kestrel/000001.json');
  return block.replace(/^f=.*$/m, `f=${f}`).replace(/-I kestrel/g, `-I ${host}`);
}

const predicate = (host: string, issuedAt: string, sequence: number): Predicate => ({
  host,
  appliedCommit: 'a'.repeat(40),
  rolloutTarget: null,
  renderHash: 'sha256:' + '1'.repeat(64),
  policyHash: 'sha256:' + '2'.repeat(64),
  tools: [],
  drift: [],
  tests: [],
  status: 'SUCCESS',
  agentVersion: 'dotfleet/test',
  sequence,
  issuedAt,
});

describe('dotfleet verify and the documented ssh-keygen procedure agree', () => {
  const keys: Record<string, HostKey> = { always: newHostKey(), window: newHostKey(), after: newHostKey(), before: newHostKey() };
  const ns = `namespaces="${ATTESTATION_NAMESPACE}"`;
  const allowed = [
    signerLine('always', keys.always!),
    signerLine('window', keys.window!, `valid-after="20260101Z",valid-before="20270101120000Z",${ns}`),
    signerLine('after', keys.after!, `valid-after="20300615083000Z",${ns}`),
    signerLine('before', keys.before!, `valid-before="19991231235959Z",${ns}`),
  ].join('\n') + '\n';
  const signers = parseAllowedSigners(allowed);

  const times = [
    '1970-01-01T00:00:01Z',
    '1999-12-31T23:59:58Z',
    '1999-12-31T23:59:59Z',
    '2000-01-01T00:00:00Z',
    '2000-02-29T12:00:00Z',
    '2025-12-31T23:59:59Z',
    '2026-01-01T00:00:00Z',
    '2026-06-30T12:34:56Z',
    '2027-01-01T11:59:59Z',
    '2027-01-01T12:00:00Z',
    '2028-02-29T23:59:59Z',
    '2030-06-15T08:29:59Z',
    '2030-06-15T08:30:00Z',
    '2038-01-19T03:14:08Z',
    '2099-12-31T23:59:59Z',
    '2399-06-01T00:00:00Z',
  ];
  const notInstants = ['2026-13-45T25:61:61Z', '2099-99-99T99:99:99Z', '2026-06-30T23:59:60Z', '2026-02-29T10:00:00Z', '2026-06-30T12:34:56.5Z', '2026-06-30T12:34:56.123Z'];

  it('on every issued-at and key window: the same verdict, and none of the non-instants verified', () => {
    const files: Record<string, string> = {};
    const cases: { file: string; host: string; payload: Buffer; signature: string; instant: boolean }[] = [];
    let seq = 0;
    for (const host of Object.keys(keys)) {
      for (const t of [...times, ...notInstants]) {
        const st = statement(subjectName('robin', 'fleet'), predicate(host, t, ++seq));
        // Serialised by hand: the schema would refuse the non-instants, which is the point.
        const payload = serialise(st);
        const signature = signMessage(payload, keys[host]!, ATTESTATION_NAMESPACE);
        const file = `attestations/${host}/${String(seq).padStart(6, '0')}.json`;
        files[file] = payload.toString();
        files[`${file}.sig`] = signature;
        cases.push({ file, host, payload, signature, instant: issuedAtSeconds(t) !== undefined });
      }
    }
    const repo = gitRepo(treeOf({ 'fleet/allowed_signers': allowed }));
    git(repo, 'checkout', '-q', '--orphan', 'dotfleet/state');
    git(repo, 'rm', '-q', '-rf', '.');
    commit(repo, files, 'state');
    git(repo, 'checkout', '-q', 'main');

    let agree = 0;
    const disagreements: string[] = [];
    for (const c of cases) {
      const ours = verifyAttestation(c.payload, c.signature, { signers });
      const r = spawnSync('bash', ['-c', `set -o pipefail\n${recipe(c.file, c.host)}`], { cwd: repo, encoding: 'utf8' });
      const theirs = r.status === 0 && /Good "dotfleet-attestation" signature/.test(r.stdout + r.stderr);
      // The promise: never "verified" where the procedure refuses.
      if (ours.ok && !theirs) disagreements.push(`${c.file} (${c.host}): dotfleet verified, ssh-keygen: ${(r.stdout + r.stderr).trim()}`);
      if (!c.instant) expect([c.file, ours.code]).toEqual([c.file, 'payload-schema']);
      else if (ours.ok === theirs) agree++;
      else if (!ours.ok && theirs) disagreements.push(`${c.file} (${c.host}): dotfleet ${ours.code}, ssh-keygen verified`);
    }
    const instants = cases.filter((c) => c.instant).length;
    process.stdout.write(`verify-time agreement: ${agree}/${instants} issued-at cases agree with the documented ssh-keygen procedure; ${cases.length - instants} non-instants refused\n`);
    expect(disagreements).toEqual([]);
    expect(agree).toBe(instants);
  });
});
