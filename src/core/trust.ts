/**
 * Trust changes in a pull request: `allowed_signers` at head against the default branch (trust
 * is only ever taken from the default branch). Keys added, removed or changed per principal, and
 * option changes; every one needs a reviewer's eye.
 */
import { fingerprint } from './ssh/keys.js';
import { parseAllowedSigners, lintAllowedSigners, type AllowedSigner, type SignersProblem } from './ssh/allowed-signers.js';
import { compareStrings } from './paths.js';
import { formatSshTime } from './ssh/time.js';

export interface TrustChange {
  change: 'added' | 'removed' | 'changed';
  principals: string;
  /** SHA256:… of the key. */
  key: string;
  keyType: string;
  before?: string;
  after?: string;
  /** Line at head (added, changed) or on the default branch (removed). */
  line: number;
}

export interface TrustReport {
  changes: TrustChange[];
  /** Lint of allowed_signers at head (lines ssh-keygen skips, hygiene). */
  problems: SignersProblem[];
}

function options(e: AllowedSigner): string {
  const out: string[] = [];
  if (e.certAuthority) out.push('cert-authority');
  if (e.namespaces !== undefined) out.push(`namespaces="${e.namespaces}"`);
  if (e.validAfter) out.push(`valid-after="${formatSshTime(new Date(e.validAfter.seconds * 1000))}"`);
  if (e.validBefore) out.push(`valid-before="${formatSshTime(new Date(e.validBefore.seconds * 1000))}"`);
  return out.join(',') || '(no options)';
}

export function diffTrust(defaultBranchText: string | undefined, headText: string | undefined): TrustReport {
  const before = parseAllowedSigners(defaultBranchText ?? '');
  const after = parseAllowedSigners(headText ?? '');
  const key = (e: AllowedSigner) => `${e.principals}\u0000${e.key.blob.toString('base64')}`;
  const old = new Map(before.entries.map((e) => [key(e), e]));
  const now = new Map(after.entries.map((e) => [key(e), e]));
  const changes: TrustChange[] = [];
  for (const [k, e] of now) {
    const was = old.get(k);
    const base = { principals: e.principals, key: fingerprint(e.key), keyType: e.key.type, line: e.line };
    if (!was) changes.push({ change: 'added', ...base, after: options(e) });
    else if (options(was) !== options(e)) changes.push({ change: 'changed', ...base, before: options(was), after: options(e) });
  }
  for (const [k, e] of old) {
    if (!now.has(k)) changes.push({ change: 'removed', principals: e.principals, key: fingerprint(e.key), keyType: e.key.type, line: e.line, before: options(e) });
  }
  changes.sort((a, b) => compareStrings(a.principals, b.principals) || compareStrings(a.change, b.change));
  const problems = headText === undefined || headText === defaultBranchText ? [] : lintAllowedSigners(after);
  return { changes, problems };
}
