/**
 * "A file name, principal or line from a fleet repository cannot move the cursor, erase or hide
 * what dotfleet printed": every text the CLI writes to a terminal shows control characters as
 * \xNN, whatever command printed them; dotfleet's own colours and line breaks stay; and the one
 * output that must be exact (attest --stdout, whose bytes a caller verifies) is left exact.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { terminalSafe } from '../../src/cli/io.js';
import { commit, exampleTree, git, gitRepo, PROJECT_ROOT } from '../helpers/fleet.js';
import { newKey } from '../helpers/ssh.js';
import { verifyAttestation } from '../../src/core/attestation/verify.js';
import { parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout + r.stderr };
};
/** Anything a terminal obeys: C0 but line feed and tab, DEL, C1 (0x9b is an 8-bit CSI), the Unicode line separators. */
const OBEYED = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/;

describe('nothing from a fleet repository steers the terminal', () => {
  it('terminalSafe: control characters shown, dotfleet\'s colours and a lone line reset kept, nothing else', () => {
    expect(terminalSafe('a\x1b[2Jb\x07c\rd\u009b31me\u2028f\tg\nh')).toBe('a\\u001b[2Jb\\u0007c\\u000dd\\u009b31me\\u2028f\tg\nh');
    expect(terminalSafe('\x1b[1mbold\x1b[22m \x1b[31mred\x1b[39m \x1b[2mdim\x1b[22m')).toBe('\x1b[1mbold\x1b[22m \x1b[31mred\x1b[39m \x1b[2mdim\x1b[22m');
    // Colours dotfleet never uses (8: concealed text) and anything that moves the cursor are shown.
    expect(terminalSafe('\x1b[8mhidden\x1b[1A\x1b[K')).toBe('\\u001b[8mhidden\\u001b[1A\\u001b[K');
    expect(terminalSafe('\r\x1b[K')).toBe('\r\x1b[K');
    expect(terminalSafe('x\r\x1b[K')).toBe('x\\u000d\\u001b[K');
  });

  it('render, diff, fleet diff, apply, drift and errors: a hostile file name is shown escaped everywhere', () => {
    const repo = gitRepo(exampleTree());
    const base = git(repo, 'rev-parse', 'HEAD').trim();
    const evil = 'home/dot_e\x1b[2J\x1b[1A\x07\u009bvil';
    const head = commit(repo, { [evil]: 'x\x1b[8m\r\n', 'home/dot_crlf': 'one\r\ntwo\r\n' }, 'hostile names');
    const home = mkdtempSync(join(tmpdir(), 'dotfleet-home-'));
    const outputs = [
      run('render', '--repo', repo, '--host', 'merlin'),
      run('diff', '--repo', repo, '--base', base, '--head', head),
      run('fleet', 'diff', '--repo', repo, '--ref', head, 'merlin', 'tern'),
      run('apply', '--repo', repo, '--host', 'merlin', '--target', home),
      run('drift', '--repo', repo, '--host', 'merlin', '--target', home),
      run('render', '--repo', repo, '--host', 'merlin', '--ref', head + '\x1b[2J'),
    ];
    expect(outputs[0]!.out).toContain('.e\\u001b[2J\\u001b[1A\\u0007\\u009bvil');
    expect(outputs[1]!.out).toContain('A .e\\u001b[2J\\u001b[1A\\u0007\\u009bvil');
    expect(outputs[1]!.out).toContain('+x\\u001b[8m\\u000d');
    expect(outputs[1]!.out).toContain('+one\\u000d');
    expect(outputs[3]!.out).toContain('.e\\u001b[2J\\u001b[1A\\u0007\\u009bvil');
    expect(outputs[5]!.code).toBe(2);
    expect(outputs[5]!.out).toContain('\\u001b[2J');
    for (const o of outputs) expect(o.out).not.toMatch(OBEYED);
    // JSON stays JSON, with the same values: JSON.stringify leaves C1 and U+2028 raw, and the
    // terminal's escape is JSON's own.
    const json = run('diff', '--repo', repo, '--base', base, '--head', head, '--format', 'json');
    expect(json.out).not.toMatch(OBEYED);
    const paths = JSON.parse(json.out).groups.flatMap((g: { changes: { path: string }[] }) => g.changes.map((c) => c.path));
    expect(paths).toContain('.e\x1b[2J\x1b[1A\x07\u009bvil');
  });

  it('attest --stdout prints exactly the signed bytes, even when a drifted path holds what the guard escapes', () => {
    // A source name with U+2028 and a C1 character: JSON.stringify leaves both raw in the payload.
    const name = 'e\u2028\u0085vil';
    const repo = gitRepo(exampleTree());
    commit(repo, { [`home/dot_${name}`]: 'x\n' }, 'odd name');
    const dir = mkdtempSync(join(tmpdir(), 'dotfleet-attest-'));
    const home = join(dir, 'home');
    const state = join(dir, 'state');
    mkdirSync(home);
    expect(run('apply', '--repo', repo, '--host', 'merlin', '--target', home, '--state-dir', state).code).toBe(0);
    writeFileSync(join(home, `.${name}`), 'changed here\n');
    const key = newKey(dir, 'merlin');
    const r = spawnSync(process.execPath, [CLI, 'attest', '--repo', repo, '--host', 'merlin', '--key', key.path, '--state-dir', state, '--target', home, '--stdout'], { env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status).toBe(0);
    const out = r.stdout as Buffer;
    const at = out.indexOf('-----BEGIN SSH SIGNATURE-----');
    const payload = out.subarray(0, at);
    expect(JSON.parse(payload.toString('utf8')).predicate.drift).toEqual([{ path: `.${name}`, type: 'modified' }]);
    expect(payload.toString('utf8')).toContain(`.${name}`);
    const verdict = verifyAttestation(payload, out.subarray(at).toString('utf8'), { signers: parseAllowedSigners(`merlin namespaces="dotfleet-attestation" ${key.publicKey}\n`), expectHost: 'merlin' });
    expect(verdict).toMatchObject({ ok: true, code: 'verified' });
  });

  it('writeExact, which attest --stdout prints the signed bytes with, leaves them as they are', () => {
    const script = `import('${join(PROJECT_ROOT, 'dist', 'cli', 'io.js')}').then((io) => { io.guardOutput(); io.write('a\\u2028\\u0085b'); io.writeExact('a\\u2028\\u0085b'); })`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stdout).toBe('a\\u2028\\u0085b\na\u2028\u0085b\n');
  });
});
