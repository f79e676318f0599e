/**
 * "Any language can submit": the Python standard-library client in contrib/python, written from the
 * canonical form in docs/attestation.md, run against the real app. Its predicate comes with keys in
 * another order and strings that need escaping (quotes, backslashes, control characters, non-ASCII,
 * U+2028); the app must find its bytes canonical and record exactly them.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/fleet.js';
import { appForFile, intakeFleet } from '../helpers/intake.js';
import { newKey, scratchDir } from '../helpers/ssh.js';
import { OWNER, REPO } from '../helpers/github.js';

const CLIENT = join(PROJECT_ROOT, 'contrib', 'python', 'dotfleet_submit.py');
const python = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('python3', [CLIENT, ...args], (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 70) : 0, stdout, stderr }));
  });

const dir = scratchDir();
const key = newKey(dir, 'heron-key');
const fleet = intakeFleet([`heron namespaces="dotfleet-attestation" ${key.publicKey}`]);

const running = appForFile(fleet);

describe('the Python standard-library client', () => {
  it('writes the canonical form from the docs, and the app records its exact bytes', async () => {
    // Keys in reverse order at every level; strings that need each kind of escape.
    const tricky = 'quote " backslash \\ slash / tab \t newline \n bell \u0007 unit-sep \u001f del \u007f é ✓ 日本 \u2028 😀';
    const predicate = {
      sequence: 41,
      tests: [{ output: tricky, durationMs: 12, status: 'pass', name: 'T10-café.sh' }, { durationMs: 0, status: 'skip', name: 'T20' }],
      drift: [],
      tools: [{ ok: true, requirement: '>=2.30', version: '2.39.5', name: 'git' }, { ok: true, requirement: null, version: null, name: 'nix' }],
      status: 'SUCCESS',
      agentVersion: 'dotfleet-python/1',
      policyHash: fleet.policyHashes.get('heron'),
      renderHash: fleet.renderHashes.get('heron'),
      rolloutTarget: null,
      appliedCommit: fleet.main,
      issuedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
    const file = join(dir, 'predicate.json');
    writeFileSync(file, JSON.stringify(predicate));
    const out = join(dir, 'heron.json');
    const r = await python(['--app', running.app.url, '--github-repo', `${OWNER}/${REPO}`, '--host', 'heron', '--key', key.path, '--predicate', file, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^201 \{"code":"accepted"/);
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.stdout.slice(4));
    const stored = running.gh.filesAt('dotfleet/state')!.get(answer.path)!;
    expect(stored.equals(readFileSync(out))).toBe(true);
    expect(JSON.parse(stored.toString()).predicate.tests[0].output).toBe(tricky);
    expect(answer.render).toBe('match');

    // The same predicate again gives the same bytes (ed25519 is deterministic): 200, exit 0.
    const again = await python(['--app', running.app.url, '--github-repo', `${OWNER}/${REPO}`, '--host', 'heron', '--key', key.path, '--predicate', file]);
    expect(again.stdout).toMatch(/^200 \{"code":"already-recorded"/);
    expect(again.code).toBe(0);
    // Another status with the same sequence is a replay: refused, exit 1.
    writeFileSync(file, JSON.stringify({ ...predicate, status: 'PARTIAL' }));
    const replay = await python(['--app', running.app.url, '--github-repo', `${OWNER}/${REPO}`, '--host', 'heron', '--key', key.path, '--predicate', file]);
    expect(replay.stdout).toMatch(/^409 \{"code":"sequence"/);
    expect(replay.code).toBe(1);
  }, 30_000);
});
