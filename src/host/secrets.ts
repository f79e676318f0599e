/**
 * On a host: replace the secret markers in rendered files with the values `sops --decrypt`
 * gives for them. Only the host decrypts, with its own age key; the bot never does.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DotfleetError } from '../core/errors.js';
import { extractPath, MARKER, shortRecipient } from '../core/secrets/marker.js';
import { parseSopsFile } from '../core/secrets/sops-file.js';
import { decryptSops, sopsKeys } from '../core/secrets/sops-decrypt.js';

export type SopsRunner = (args: string[], cwd: string) => { code: number | null; stdout: string; stderr: string; missing?: boolean };

export const runSops: SopsRunner = (args, cwd) => {
  const r = spawnSync('sops', args, { cwd, encoding: 'utf8' });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', missing };
};

/** The SOPS file a marker names, read from the checkout and checked to be the one the configuration was rendered with. */
function markedFile(repo: string, file: string, key: string, digest: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(repo, file));
  } catch {
    throw new DotfleetError('usage', `${file} is not in the fleet checkout at ${repo}`, { file, hint: 'render and decrypt from a checkout of the rendered commit' });
  }
  const value = parseSopsFile(file, bytes)?.values.get(key);
  if (!value || !value.digest.startsWith(digest)) {
    throw new DotfleetError('usage', `the secret ${file}#${key} in the checkout is not the one the configuration was rendered with`, { file, hint: 'render and apply from the same commit' });
  }
  return bytes;
}

/**
 * This host's age identities, where sops looks for them: SOPS_AGE_KEY (the keys themselves),
 * SOPS_AGE_KEY_FILE, else keys.txt under $XDG_CONFIG_HOME/sops/age (~/.config/sops/age), or
 * ~/Library/Application Support/sops/age on macOS.
 */
export function ageIdentities(env: NodeJS.ProcessEnv = process.env): { identities: string[]; from: string[] } {
  const from: string[] = [];
  const identities: string[] = [];
  const take = (text: string, where: string) => {
    const found = text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('AGE-SECRET-KEY-'));
    if (found.length > 0) from.push(where);
    identities.push(...found);
  };
  if (env.SOPS_AGE_KEY) take(env.SOPS_AGE_KEY, 'SOPS_AGE_KEY');
  const files = env.SOPS_AGE_KEY_FILE
    ? [env.SOPS_AGE_KEY_FILE]
    : [join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'sops', 'age', 'keys.txt'), ...(process.platform === 'darwin' ? [join(homedir(), 'Library', 'Application Support', 'sops', 'age', 'keys.txt')] : [])];
  for (const f of files) {
    try {
      take(readFileSync(f, 'utf8'), f);
    } catch {
      // Not there: the next place.
    }
  }
  return { identities, from };
}

/** The data key of a SOPS file, opened with this host's age identities (in-process, the age reference implementation). */
export async function ageDataKey(file: string, bytes: Uint8Array, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  const keys = sopsKeys(file, bytes);
  if (keys.keyGroups > 1) throw new DotfleetError('usage', `${file} splits its data key across ${keys.keyGroups} key groups: only sops joins them`, { file, hint: 'install sops on this host' });
  const { identities, from } = ageIdentities(env);
  if (identities.length === 0) {
    throw new DotfleetError('usage', `no age key on this host to decrypt ${file} (sops is not installed either)`, { file, hint: 'put this host\'s age key in ~/.config/sops/age/keys.txt (or SOPS_AGE_KEY_FILE), or install sops' });
  }
  // Loaded only when a host decrypts in-process: most commands never need it.
  const { Decrypter, armor } = await import('age-encryption');
  const d = new Decrypter();
  for (const id of identities) d.addIdentity(id);
  for (const stanza of keys.age) {
    try {
      const key = Buffer.from(await d.decrypt(armor.decode(stanza.enc)));
      if (key.length === 32) return key;
    } catch {
      // Not for these identities (or not an age file): the next stanza.
    }
  }
  throw new DotfleetError('usage', `none of this host's age keys (${identities.length}, from ${from.join(', ')}) opens ${file}, which is for ${keys.age.map((a) => shortRecipient(a.recipient)).join(', ') || 'no age recipient'}`, {
    file,
    hint: 'is this host a recipient of the file? dotfleet secrets check says; else install sops for its other key types',
  });
}

let sopsInstalled: boolean | undefined;
/** Whether `sops` runs on this host (asked once). */
export function hasSops(): boolean {
  sopsInstalled ??= !runSops(['--version'], process.cwd()).missing;
  return sopsInstalled;
}

/**
 * Markers in `content` → the decrypted values, on the host: with sops when it is installed, else
 * in-process for age recipients (YAML, JSON and dotenv files; the MAC checked). `cache` holds the
 * decrypted files of one apply, and is never written anywhere.
 */
export async function decryptMarkers(content: string, repo: string, cache: Map<string, Map<string, string>> = new Map(), env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (hasSops()) return resolveSecrets(content, repo, runSops);
  const wanted = [...content.matchAll(MARKER)];
  for (const [, file, key, digest] of wanted) {
    const bytes = markedFile(repo, file!, key!, digest!);
    if (!cache.has(file!)) cache.set(file!, decryptSops(file!, bytes, await ageDataKey(file!, bytes, env)));
  }
  return content.replace(MARKER, (_m, file: string, key: string) => {
    const value = cache.get(file)!.get(key);
    if (value === undefined) throw new DotfleetError('usage', `${file} has no value ${key}`, { file, hint: 'render and apply from the same commit' });
    return value;
  });
}

/** Markers in `content` → the decrypted values with `sops --decrypt`; `repo` is the fleet checkout at the rendered commit. */
export function resolveSecrets(content: string, repo: string, run: SopsRunner = runSops, cache = new Map<string, string>()): string {
  return content.replace(MARKER, (_m, file: string, key: string, digest: string) => {
    const id = `${file}#${key}`;
    const known = cache.get(id);
    if (known !== undefined) return known;
    markedFile(repo, file, key, digest);
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
