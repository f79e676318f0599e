/**
 * Trust changes in a pull request: what the head would trust once merged, against what the
 * default branch trusts now (trust is only ever taken from the default branch).
 *
 * Not a diff of one file: "who may sign attestations for which host" is computed on both sides
 * from everything that decides it (the settings keys that choose the allowed_signers file and the
 * inventory, that file's lines with their patterns, namespaces and validity, each host's
 * principal, the hosts themselves), and those answers are compared host by host. Inputs that
 * decide what hosts are held to or who reads secrets (fleet/policy.toml, secrets.admins) are
 * trust changes too. Every one needs a reviewer's eye.
 */
import { fingerprint } from './ssh/keys.js';
import { parseAllowedSigners, lintAllowedSigners, toBytes, type AllowedSigner, type AllowedSigners, type SignersProblem } from './ssh/allowed-signers.js';
import { matchPatternList } from './ssh/patterns.js';
import { parseSettings, SETTINGS_FILE, type Settings } from './settings.js';
import { parseInventory } from './inventory.js';
import { POLICY_FILE } from './attestation/policy.js';
import { ATTESTATION_NAMESPACE } from './attestation/format.js';
import { ROLLOUT_NAMESPACE } from './rollout/manifest.js';
import { GIT_NAMESPACE } from './rollout/plan.js';
import { bytesEqual, type RepoTree } from './tree.js';
import { DotfleetError } from './errors.js';
import { compareStrings } from './paths.js';
import { formatSshTime } from './ssh/time.js';
import { codeSpan } from './report/common.js';

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

/** A key that may sign attestations for a host, and when (its lines' options, any of which lets it). */
export interface HostSigner {
  key: string;
  keyType: string;
  options: string;
}

/** How who may sign for one host changes. */
export interface HostTrustChange {
  host: string;
  /** The host is new in the inventory, or leaves it. */
  host_change?: 'added' | 'removed';
  principal?: { before: string; after: string };
  added: HostSigner[];
  removed: HostSigner[];
  changed: { key: string; keyType: string; before: string; after: string }[];
}

/**
 * How who may sign for the fleet as a whole changes: rollout manifests (namespace
 * dotfleet-rollout, principal `rollout.signer`: what every host follows) and target commits
 * (namespace git, any principal: what `require_signed_target` and the hosts' `git verify-commit`
 * accept).
 */
export interface RoleTrustChange {
  role: 'rollout-manifests' | 'target-commits';
  /** Rollout manifests: the principal (settings `rollout.signer`), when it changes. */
  principal?: { before: string; after: string };
  added: HostSigner[];
  removed: HostSigner[];
  changed: { key: string; keyType: string; before: string; after: string }[];
}

export interface TrustReport {
  /** allowed_signers lines added, removed or changed (by principal pattern and key). */
  changes: TrustChange[];
  /** The effect: who may sign attestations for which host, before and after. */
  hosts: HostTrustChange[];
  /** The effect on the fleet-wide roles: who may sign rollout manifests and target commits. */
  roles: RoleTrustChange[];
  /** Changed inputs that decide trust (settings keys, the policy, secrets.admins, require_signed_target), as markdown with untrusted parts in code spans. */
  inputs: string[];
  /** Lint of allowed_signers at head (lines ssh-keygen skips, hygiene). */
  problems: SignersProblem[];
}

/** Whether the report holds any change (lint alone is not one). */
export function trustChanged(t: TrustReport): boolean {
  return t.changes.length > 0 || t.hosts.length > 0 || t.roles.length > 0 || t.inputs.length > 0;
}

/** The number of trust changes a headline counts: per host, per role, per input, and lines that touch none of them. */
export function trustChangeCount(t: TrustReport): number {
  const effects = t.hosts.length + t.roles.length + t.inputs.length;
  return effects + (effects === 0 ? t.changes.length : 0);
}

function options(e: AllowedSigner): string {
  const out: string[] = [];
  if (e.certAuthority) out.push('cert-authority');
  if (e.namespaces !== undefined) out.push(`namespaces="${e.namespaces}"`);
  if (e.validAfter) out.push(`valid-after="${formatSshTime(new Date(e.validAfter.seconds * 1000))}"`);
  if (e.validBefore) out.push(`valid-before="${formatSshTime(new Date(e.validBefore.seconds * 1000))}"`);
  return out.join(',') || '(no options)';
}

const code = codeSpan;

/** What decides trust in one tree. Broken files are read as their defaults and say so. */
interface TrustSide {
  settings: Settings;
  signersText?: string;
  signers: AllowedSigners;
  /** Host → principal. */
  hosts: Map<string, string>;
  policy?: Uint8Array;
}

function side(tree: RepoTree): TrustSide {
  let settings: Settings;
  try {
    const s = tree.get(SETTINGS_FILE);
    settings = parseSettings(s && Buffer.from(s).toString('utf8'));
  } catch (e) {
    if (!(e instanceof DotfleetError)) throw e;
    settings = parseSettings(undefined);
  }
  const raw = tree.get(settings.allowed_signers);
  const signersText = raw && Buffer.from(raw).toString('utf8');
  const hosts = new Map<string, string>();
  const inv = tree.get(settings.inventory);
  if (inv) {
    try {
      for (const h of parseInventory(Buffer.from(inv).toString('utf8'), settings.inventory)) hosts.set(h.name, h.principal);
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
    }
  }
  return { settings, signersText, signers: parseAllowedSigners(raw ?? new Uint8Array()), hosts, policy: tree.get(POLICY_FILE) };
}

/**
 * The keys that may sign as `principal` in `namespace` (attestations by default), as ssh-keygen's
 * lookup allows them; with no principal, the keys any line lets sign in `namespace` (what
 * `git verify-commit` accepts), each with the principals it signs as.
 */
export function signersFor(signers: AllowedSigners, principal: string | undefined, namespace = ATTESTATION_NAMESPACE): Map<string, HostSigner> {
  const wanted = principal === undefined ? undefined : toBytes(principal);
  const out = new Map<string, { keyType: string; options: string[] }>();
  for (const e of signers.entries) {
    if (e.certAuthority || (wanted !== undefined && matchPatternList(wanted, e.principalBytes) !== 1)) continue;
    if (e.namespaces !== undefined && matchPatternList(namespace, e.namespaces) !== 1) continue;
    const fp = fingerprint(e.key);
    const have = out.get(fp) ?? { keyType: e.key.type, options: [] };
    // A key on several lines may sign within any of their windows (ssh-keygen tries each line).
    have.options.push(`${options(e)}${principal === undefined ? ` (as "${e.principals}")` : e.principals !== principal ? ` (via "${e.principals}")` : ''}`);
    out.set(fp, have);
  }
  return new Map([...out].map(([key, v]) => [key, { key, keyType: v.keyType, options: v.options.join(' or ') }]));
}

/** Keys that may sign after and not before, no longer, or within other windows. */
function compareSigners(before: Map<string, HostSigner>, after: Map<string, HostSigner>): Pick<HostTrustChange, 'added' | 'removed' | 'changed'> {
  const out: Pick<HostTrustChange, 'added' | 'removed' | 'changed'> = { added: [], removed: [], changed: [] };
  for (const [k, s] of after) {
    const was = before.get(k);
    if (!was) out.added.push(s);
    else if (was.options !== s.options) out.changed.push({ key: k, keyType: s.keyType, before: was.options, after: s.options });
  }
  for (const [k, s] of before) if (!after.has(k)) out.removed.push(s);
  return out;
}

const anyChange = (c: Pick<HostTrustChange, 'added' | 'removed' | 'changed'>) => c.added.length > 0 || c.removed.length > 0 || c.changed.length > 0;

/**
 * The trust report: `defaultBranch` is the default branch's tree at its head, `head` the pull
 * request's (what would be trusted once merged).
 */
export function diffTrustTrees(defaultBranch: RepoTree, head: RepoTree): TrustReport {
  const a = side(defaultBranch);
  const b = side(head);
  const report = diffTrust(a.signersText, b.signersText);
  const inputs: string[] = [];
  if (a.settings.allowed_signers !== b.settings.allowed_signers) inputs.push(`the allowed_signers file (${SETTINGS_FILE} \`allowed_signers\`): ${code(a.settings.allowed_signers)} → ${code(b.settings.allowed_signers)}`);
  if (a.settings.inventory !== b.settings.inventory) inputs.push(`the inventory (${SETTINGS_FILE} \`inventory\`): ${code(a.settings.inventory)} → ${code(b.settings.inventory)}`);
  if (!(a.policy === undefined ? b.policy === undefined : b.policy !== undefined && bytesEqual(a.policy, b.policy))) {
    inputs.push(`the policy hosts are held to (\`${POLICY_FILE}\`) ${a.policy === undefined ? 'is added' : b.policy === undefined ? 'is removed' : 'changes'}`);
  }
  if (a.settings.require_signed_target !== b.settings.require_signed_target) {
    inputs.push(`signed targets (${SETTINGS_FILE} \`require_signed_target\`): ${b.settings.require_signed_target ? 'now required' : 'no longer required (an unsigned merge would roll out)'}`);
  }
  const adminsA = new Set(a.settings.secrets.admins);
  const adminsB = new Set(b.settings.secrets.admins);
  for (const x of adminsB) if (!adminsA.has(x)) inputs.push(`secrets admin added (may read every secret): ${code(x)}`);
  for (const x of adminsA) if (!adminsB.has(x)) inputs.push(`secrets admin removed: ${code(x)}`);
  const hosts: HostTrustChange[] = [];
  for (const host of [...new Set([...a.hosts.keys(), ...b.hosts.keys()])].sort(compareStrings)) {
    const pa = a.hosts.get(host);
    const pb = b.hosts.get(host);
    const before = pa === undefined ? new Map<string, HostSigner>() : signersFor(a.signers, pa);
    const after = pb === undefined ? new Map<string, HostSigner>() : signersFor(b.signers, pb);
    const change: HostTrustChange = { host, ...compareSigners(before, after) };
    if (pa === undefined) change.host_change = 'added';
    if (pb === undefined) change.host_change = 'removed';
    if (pa !== undefined && pb !== undefined && pa !== pb) change.principal = { before: pa, after: pb };
    if (change.host_change || change.principal || anyChange(change)) hosts.push(change);
  }
  const roles: RoleTrustChange[] = [];
  const sa = a.settings.rollout.signer;
  const sb = b.settings.rollout.signer;
  const manifests: RoleTrustChange = { role: 'rollout-manifests', ...compareSigners(signersFor(a.signers, sa, ROLLOUT_NAMESPACE), signersFor(b.signers, sb, ROLLOUT_NAMESPACE)) };
  if (sa !== sb) manifests.principal = { before: sa, after: sb };
  if (manifests.principal || anyChange(manifests)) roles.push(manifests);
  const commits: RoleTrustChange = { role: 'target-commits', ...compareSigners(signersFor(a.signers, undefined, GIT_NAMESPACE), signersFor(b.signers, undefined, GIT_NAMESPACE)) };
  if (anyChange(commits)) roles.push(commits);
  return { ...report, hosts, roles, inputs };
}

/** allowed_signers lines, compared by principal pattern and key. */
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
  return { changes, hosts: [], roles: [], inputs: [], problems };
}
