/**
 * On a host: replace the secret markers in rendered files with the values `sops --decrypt`
 * gives for them. Only the host decrypts, with its own age key; the bot never does.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DotfleetError } from '../core/errors.js';
import { extractPath, MARKER } from '../core/secrets/marker.js';
import { parseSopsFile } from '../core/secrets/sops-file.js';

export type SopsRunner = (args: string[], cwd: string) => { code: number | null; stdout: string; stderr: string; missing?: boolean };

export const runSops: SopsRunner = (args, cwd) => {
  const r = spawnSync('sops', args, { cwd, encoding: 'utf8' });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', missing };
};

/** Markers in `content` → the decrypted values; `repo` is the fleet checkout at the rendered commit. */
export function resolveSecrets(content: string, repo: string, run: SopsRunner = runSops, cache = new Map<string, string>()): string {
  return content.replace(MARKER, (_m, file: string, key: string, digest: string) => {
    const id = `${file}#${key}`;
    const known = cache.get(id);
    if (known !== undefined) return known;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(repo, file));
    } catch {
      throw new DotfleetError('usage', `${file} is not in the fleet checkout at ${repo}`, { file, hint: 'render and decrypt from a checkout of the rendered commit' });
    }
    const sops = parseSopsFile(file, bytes);
    const value = sops?.values.get(key);
    if (!value || !value.digest.startsWith(digest)) {
      throw new DotfleetError('usage', `the secret ${id} in the checkout is not the one the configuration was rendered with`, {
        file,
        hint: 'render and apply from the same commit',
      });
    }
    const r = run(['--decrypt', '--extract', extractPath(key), file], repo);
    if (r.missing) {
      throw new DotfleetError('usage', `sops is not installed: it decrypts ${file} for this host`, {
        file,
        hint: 'install sops (https://github.com/getsops/sops/releases, or brew install sops) and put this host\'s age key in ~/.config/sops/age/keys.txt',
      });
    }
    if (r.code !== 0) {
      throw new DotfleetError('usage', `sops could not decrypt ${id}: ${r.stderr.trim().split('\n')[0] ?? ''}`, {
        file,
        hint: "is this host's age key in ~/.config/sops/age/keys.txt (or SOPS_AGE_KEY_FILE), and is the host a recipient? dotfleet secrets check says",
      });
    }
    cache.set(id, r.stdout);
    return r.stdout;
  });
}
