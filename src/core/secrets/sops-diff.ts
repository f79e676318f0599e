/**
 * What a change does to the SOPS files of a fleet: per key added / removed / changed, and
 * recipients added / removed. Values are never shown: a key is "changed" when its ciphertext is.
 */
import { bytesEqual, type RepoTree } from '../tree.js';
import { compareStrings } from '../paths.js';
import { DotfleetError } from '../errors.js';
import { parseSopsFile, type SopsFile } from './sops-file.js';

export interface SecretChange {
  path: string;
  status: 'added' | 'removed' | 'modified';
  keys: { added: string[]; removed: string[]; changed: string[] };
  recipients: { added: string[]; removed: string[] };
  /** The MAC appeared or disappeared. */
  mac?: 'added' | 'removed';
  /** The file could not be read at head (or base): the reason, instead of a key list. */
  error?: string;
}

function read(path: string, bytes: Uint8Array | undefined): SopsFile | null | string {
  if (!bytes) return null;
  try {
    return parseSopsFile(path, bytes);
  } catch (e) {
    if (e instanceof DotfleetError) return e.message;
    throw e;
  }
}

export function diffSecrets(base: RepoTree, head: RepoTree): SecretChange[] {
  const out: SecretChange[] = [];
  const paths = new Set([...base.keys(), ...head.keys()]);
  for (const path of [...paths].sort(compareStrings)) {
    const a = base.get(path);
    const b = head.get(path);
    if (a && b && bytesEqual(a, b)) continue;
    const from = read(path, a);
    const to = read(path, b);
    if (from === null && to === null) continue;
    const change: SecretChange = {
      path,
      status: from === null ? 'added' : to === null ? 'removed' : 'modified',
      keys: { added: [], removed: [], changed: [] },
      recipients: { added: [], removed: [] },
    };
    if (typeof from === 'string' || typeof to === 'string') {
      change.error = (typeof to === 'string' ? to : from) as string;
      out.push(change);
      continue;
    }
    const fv = from?.values ?? new Map();
    const tv = to?.values ?? new Map();
    for (const [k, v] of tv) {
      const old = fv.get(k);
      if (!old) change.keys.added.push(k);
      else if (old.digest !== v.digest) change.keys.changed.push(k);
    }
    for (const k of fv.keys()) if (!tv.has(k)) change.keys.removed.push(k);
    const fr = new Set(from?.recipients.map((r) => r.id) ?? []);
    const tr = new Set(to?.recipients.map((r) => r.id) ?? []);
    change.recipients.added = [...tr].filter((r) => !fr.has(r));
    change.recipients.removed = [...fr].filter((r) => !tr.has(r));
    if (from && to && from.mac !== to.mac) change.mac = to.mac ? 'added' : 'removed';
    out.push(change);
  }
  return out;
}
