/**
 * The host's rollout gate: before `dotfleet update` moves, it reads the signed manifest from the
 * state branch (fetched with everything else into the isolated clone), checks it with the same
 * SSHSIG code as attestations against the fleet's allowed_signers, and goes to the manifest's
 * target only when its own wave is open. No manifest on the branch: the default branch's head,
 * as before rollouts existed.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { verifyManifest, MANIFEST_PATH, MANIFEST_SIG_PATH, type Manifest } from '../core/rollout/manifest.js';
import { parseSettings, SETTINGS_FILE } from '../core/settings.js';
import { parseAllowedSigners } from '../core/ssh/allowed-signers.js';
import { reasonLines } from '../core/rollout/state.js';
import { runGit } from './git.js';

export type Gate =
  | { kind: 'none'; note: string }
  | { kind: 'go'; commit: string; manifest: Manifest; note: string }
  /** Not this host's turn (or the rollout is halted or blocked): stay where it is. */
  | { kind: 'wait'; message: string; manifest: Manifest }
  /** The manifest or the target cannot be trusted: stay, and say so loudly. */
  | { kind: 'refuse'; message: string };

const show = async (checkout: string, spec: string) => {
  const r = await runGit(checkout, ['show', spec]);
  return r.code === 0 ? r.stdout : undefined;
};

/** The highest manifest sequence this host followed (a lower one is a replay). */
const sequenceFile = (stateDir: string, host: string) => join(stateDir, host, 'rollout.json');

/** The sequence in rollout.json; undefined when there is none yet; a string when it cannot be read (replay protection must not quietly reset). */
async function lastFollowed(stateDir: string, host: string): Promise<number | undefined | string> {
  const file = sequenceFile(stateDir, host);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  try {
    const n = (JSON.parse(text) as { sequence?: unknown }).sequence;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0) return n;
  } catch {
    /* said below */
  }
  return `${file} is damaged (it holds the last rollout sequence this host followed); restore it, or delete it to accept the current manifest`;
}

export async function rolloutGate(checkout: string, o: { host: string; stateDir: string; repository?: string; now: Date }): Promise<Gate> {
  const settingsText = await readFile(join(checkout, SETTINGS_FILE), 'utf8').catch(() => undefined);
  const settings = parseSettings(settingsText);
  const ref = `refs/remotes/origin/${settings.state_branch}`;
  const bytes = await show(checkout, `${ref}:${MANIFEST_PATH}`);
  if (!bytes) return { kind: 'none', note: `no rollout manifest on ${settings.state_branch}: following the default branch's head` };
  const sig = await show(checkout, `${ref}:${MANIFEST_SIG_PATH}`);
  if (!sig) return { kind: 'refuse', message: `${settings.state_branch} has ${MANIFEST_PATH} but no ${MANIFEST_SIG_PATH}: an unsigned manifest is never followed` };
  const signersPath = join(checkout, settings.allowed_signers);
  const signersText = await readFile(signersPath, 'utf8').catch(() => '');
  const last = await lastFollowed(o.stateDir, o.host);
  if (typeof last === 'string') return { kind: 'refuse', message: last };
  const verdict = verifyManifest(bytes, sig.toString('utf8'), { signers: parseAllowedSigners(signersText), principal: settings.rollout.signer, repository: o.repository, now: o.now, lastSequence: last });
  if (!verdict.ok) return { kind: 'refuse', message: `${verdict.message} (${settings.allowed_signers}, principal "${settings.rollout.signer}")` };
  const m = verdict.manifest;
  if (last === undefined || m.sequence > last) {
    await mkdir(join(o.stateDir, o.host), { recursive: true });
    await writeFile(sequenceFile(o.stateDir, o.host), JSON.stringify({ sequence: m.sequence, rollout: m.id }) + '\n');
  }
  const e = m.hosts[o.host];
  const wait = (message: string): Gate => ({ kind: 'wait', message: `rollout ${m.id} of ${m.target.commit.slice(0, 12)}: ${message}`, manifest: m });
  if (!e) return wait(`${o.host} is not in it (added after it was planned?); the next rollout takes it in`);
  if (m.phase === 'blocked') return wait(`blocked (${reasonLines(m.reasons).join('; ')}); staying where this host is`);
  if (e.wave !== null) {
    if (m.phase === 'halted') return wait(`halted (${reasonLines(m.reasons).join('; ')}); staying where this host is`);
    if (e.blocked !== null && e.skipped === null) return wait(`this host is blocked: ${e.blocked}`);
    if (m.phase !== 'complete' && e.wave > m.wave) return wait(`waiting for wave ${e.wave} (wave ${m.wave} of ${m.waves.length} is open)`);
  }
  const commit = m.target.commit;
  const have = await runGit(checkout, ['cat-file', '-e', `${commit}^{commit}`]);
  if (have.code !== 0) return { kind: 'refuse', message: `rollout ${m.id} targets ${commit.slice(0, 12)}, which the fetch did not bring: is it on the default branch?` };
  if (m.target.required) {
    // The host checks the target's signature itself, with the same allowed_signers.
    const file = isAbsolute(signersPath) ? signersPath : join(process.cwd(), signersPath);
    const v = await runGit(checkout, ['-c', `gpg.ssh.allowedSignersFile=${file}`, 'verify-commit', commit]);
    if (v.code !== 0) {
      const hint = m.target.signature.kind === 'web-flow' ? " (a merge made on github.com is signed with GitHub's web-flow key: import it with `curl https://github.com/web-flow.gpg | gpg --import`, see docs/rollout.md)" : '';
      return { kind: 'refuse', message: `git verify-commit ${commit.slice(0, 12)} failed and the fleet requires signed targets: ${String(v.stderr).trim().split('\n').pop() ?? ''}${hint}` };
    }
  }
  return { kind: 'go', commit, manifest: m, note: e.wave === null ? `rollout ${m.id}: nothing changes for this host; moving to ${commit.slice(0, 12)}` : `rollout ${m.id}: wave ${e.wave} is open; going to ${commit.slice(0, 12)}` };
}
