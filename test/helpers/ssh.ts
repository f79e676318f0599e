import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOpenSshPrivateKey, type SshPrivateKey } from '../../src/core/ssh/keys.js';

export function sshKeygen(args: string[], input?: Buffer | string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('ssh-keygen', args, { input, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

export interface TestKey {
  path: string;
  publicLine: string;
  /** "ssh-ed25519 AAAA…" without the comment. */
  publicKey: string;
  parsed?: SshPrivateKey;
}

export const scratchDir = (): string => mkdtempSync(join(tmpdir(), 'dotfleet-ssh-'));

/** A new key made by the real ssh-keygen. */
export function newKey(dir: string, name: string, type = 'ed25519', passphrase = ''): TestKey {
  const path = join(dir, name);
  const extra = type === 'rsa' ? ['-b', '2048'] : [];
  const r = sshKeygen(['-q', '-t', type, ...extra, '-N', passphrase, '-C', name, '-f', path]);
  if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  const publicLine = readFileSync(`${path}.pub`, 'utf8').trim();
  const publicKey = publicLine.split(' ').slice(0, 2).join(' ');
  const parsed = type === 'ed25519' && passphrase === '' ? parseOpenSshPrivateKey(readFileSync(path, 'utf8'), path) : undefined;
  return { path, publicLine, publicKey, parsed };
}

/** `ssh-keygen -Y sign` over a message; returns the armoured signature. */
export function keygenSign(dir: string, key: TestKey, message: Buffer | string, namespace: string, hash = 'sha512'): string {
  const file = join(dir, `msg-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, message);
  const r = sshKeygen(['-Y', 'sign', '-q', '-f', key.path, '-n', namespace, '-O', `hashalg=${hash}`, file]);
  if (r.code !== 0) throw new Error(`ssh-keygen -Y sign failed: ${r.stderr}`);
  return readFileSync(`${file}.sig`, 'utf8');
}

/** `ssh-keygen -Y verify`: true when it prints a good signature. */
export function keygenVerify(dir: string, allowedSigners: string, principal: string, namespace: string, message: Buffer | string, signature: string, verifyTime?: string): boolean {
  const allowed = join(dir, `allowed-${Math.random().toString(36).slice(2)}`);
  const sig = `${allowed}.sig`;
  writeFileSync(allowed, allowedSigners);
  writeFileSync(sig, signature);
  const args = ['-Y', 'verify', '-f', allowed, '-I', principal, '-n', namespace, '-s', sig];
  if (verifyTime) args.push('-O', `verify-time=${verifyTime}`);
  return sshKeygen(args, message).code === 0;
}
