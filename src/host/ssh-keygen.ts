/**
 * Signing with the real ssh-keygen, for keys dotfleet cannot read itself: an encrypted private
 * key (ssh-keygen asks for the passphrase) or a key held by ssh-agent (pass the .pub file).
 */
import { spawnSync } from 'node:child_process';
import { DotfleetError } from '../core/errors.js';

export function signWithSshKeygen(keyFile: string, namespace: string, message: Uint8Array): string {
  const r = spawnSync('ssh-keygen', ['-Y', 'sign', '-q', '-f', keyFile, '-n', namespace], {
    input: message,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new DotfleetError('usage', 'ssh-keygen is not installed', { hint: 'install OpenSSH (apt-get install openssh-client)' });
  }
  if (r.status !== 0) {
    throw new DotfleetError('usage', `ssh-keygen -Y sign failed with the key ${keyFile}`, {
      file: keyFile,
      hint: 'check the passphrase, or that ssh-agent holds the key (ssh-add -l)',
    });
  }
  return r.stdout.toString('utf8');
}
