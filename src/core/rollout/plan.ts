/**
 * Planning a rollout, and how its target commit is signed. Pure: render hashes, the inventory,
 * the settings, allowed_signers and the time in; a manifest out.
 *
 * Affected hosts are those whose render hash at the target differs from the hash at the current
 * target (a new host is affected; a host that no longer renders is blocked). Each affected host
 * goes PENDING → VALIDATING (pre) → BLOCKED | QUEUED here; the first wave opens at once.
 */
import { ATTESTATION_NAMESPACE } from '../attestation/format.js';
import type { Host } from '../inventory.js';
import { parseDuration } from '../state/dashboard.js';
import type { HostHash } from '../state/render-check.js';
import type { Settings } from '../settings.js';
import { fingerprint } from '../ssh/keys.js';
import { knownKey, principalsFor, someKeyMaySign, type AllowedSigners } from '../ssh/allowed-signers.js';
import { SignatureError, verifyMessage } from '../ssh/sshsig.js';
import { addSeconds, isoSeconds, MANIFEST_VERSION, type HostEntry, type Manifest, type TargetSignature, type Wave } from './manifest.js';
import { advance, type HostState, type HostStateName } from './state.js';

/** Git signs commits in this SSHSIG namespace. */
export const GIT_NAMESPACE = 'git';

/** What GitHub tells about a commit's signature (GET /repos/{o}/{r}/git/commits/{sha}: `verification`, `committer`). */
export interface CommitSignatureInfo {
  /** The armoured signature, when the commit has one. */
  signature?: string | null;
  /** The exact bytes that were signed (the commit object without its signature header). */
  payload?: string | null;
  /** GitHub's own verdict and reason ("valid", "unsigned", "unknown_key", …). */
  verified: boolean;
  reason: string;
  committer?: { name?: string; email?: string; date?: string };
}

/** GitHub signs the merges and edits people make on github.com with its web-flow key, as this committer. */
export const WEB_FLOW_EMAIL = 'noreply@github.com';

/**
 * How the target is signed: an SSH signature (namespace git) by a key allowed_signers lets sign
 * commits, GitHub's web-flow signature, none, or a signature neither of those (untrusted).
 */
export function targetSignature(info: CommitSignatureInfo, signers: AllowedSigners, now: Date): TargetSignature {
  const sig = info.signature?.trim();
  if (!sig) return { kind: 'none', detail: 'the commit is not signed' };
  if (sig.startsWith('-----BEGIN SSH SIGNATURE-----')) {
    if (info.payload == null) return { kind: 'untrusted', detail: 'GitHub did not return the signed commit text' };
    let key;
    try {
      key = verifyMessage(Buffer.from(info.payload, 'utf8'), sig, GIT_NAMESPACE, (blob) => knownKey(signers, blob)).publicKey;
    } catch (e) {
      if (e instanceof SignatureError) return { kind: 'untrusted', detail: `SSH signature: ${e.message}` };
      throw e;
    }
    const when = info.committer?.date ? Math.floor(Date.parse(info.committer.date) / 1000) : Math.floor(now.getTime() / 1000);
    const who = principalsFor(signers, key, GIT_NAMESPACE, Number.isFinite(when) ? when : Math.floor(now.getTime() / 1000));
    if (who.length === 0) return { kind: 'untrusted', detail: `signed by ${fingerprint(key)}, which allowed_signers does not let sign commits (namespace "git")` };
    return { kind: 'ssh', detail: `${who[0]!.principals} (${fingerprint(key)}, allowed_signers line ${who[0]!.line})` };
  }
  if (info.verified && info.reason === 'valid' && info.committer?.email === WEB_FLOW_EMAIL) {
    return { kind: 'web-flow', detail: "GitHub's web-flow key (a merge or edit made on github.com)" };
  }
  return { kind: 'untrusted', detail: `signed, but not by a key of allowed_signers${info.verified ? '' : ` (GitHub: ${info.reason})`}` };
}

export interface PlanInput {
  /** `github.com/owner/repo` */
  repository: string;
  branch: string;
  target: string;
  /** The current target (its render hashes are `before`); null for the first rollout. */
  previous: string | null;
  before: Record<string, HostHash> | undefined;
  after: Record<string, HostHash>;
  /** The inventory at the target, in its order. */
  hosts: Pick<Host, 'name' | 'wave' | 'principal'>[];
  settings: Pick<Settings, 'require_signed_target' | 'rollout'>;
  signature: TargetSignature;
  /** allowed_signers at the target. */
  signers: AllowedSigners;
  /** The highest manifest sequence so far (0 for none). */
  lastSequence: number;
  now: Date;
  /** Reasons found outside the plan that block it (the app's own key cannot be verified by the hosts). */
  problems?: string[];
  /** The rollout this one replaces, and its hosts' states now: a host that had not finished it takes part in this one. */
  current?: { manifest: Manifest; states: HostState[] };
}

export interface Plan {
  manifest: Manifest;
  /** Each affected host's steps through the planner (PENDING → VALIDATING (pre) → BLOCKED | QUEUED), for tests. */
  steps: Record<string, HostStateName[]>;
  /** Hosts forced in because they had not finished the superseded rollout. */
  carried: string[];
}

const UNFINISHED = new Set<HostStateName>(['BLOCKED', 'QUEUED', 'RUNNING', 'VALIDATING_POST', 'FAILED', 'PARTIAL', 'TIMED_OUT']);

/** Waves of the affected hosts: the canary and percentage steps when settings name a canary, else the inventory's `wave`. */
function waves(affected: Pick<Host, 'name' | 'wave'>[], settings: PlanInput['settings']): { waves: string[][]; problem?: string } {
  const { canary, steps } = settings.rollout;
  if (canary.length === 0) {
    const numbers = [...new Set(affected.map((h) => h.wave))].sort((a, b) => a - b);
    return { waves: numbers.map((n) => affected.filter((h) => h.wave === n).map((h) => h.name)) };
  }
  const first = affected.filter((h) => canary.includes(h.name)).map((h) => h.name);
  const rest = affected.filter((h) => !canary.includes(h.name)).map((h) => h.name);
  const out: string[][] = first.length > 0 ? [first] : [];
  let taken = 0;
  for (const pct of [...steps, 100]) {
    const upto = Math.min(rest.length, Math.ceil((pct / 100) * rest.length - 1e-9));
    if (upto > taken) out.push(rest.slice(taken, upto));
    taken = Math.max(taken, upto);
  }
  return { waves: out };
}

export function planRollout(input: PlanInput): Plan {
  const now = isoSeconds(input.now);
  const r = input.settings.rollout;
  const expiry = parseDuration(r.expiry, 'rollout.expiry');
  const steps: Record<string, HostStateName[]> = {};
  const carried: string[] = [];
  const unfinished = new Map((input.current?.states ?? []).filter((s) => UNFINISHED.has(s.state)).map((s) => [s.host, s]));

  const hashOf = (h: HostHash | undefined) => (h && 'hash' in h ? h.hash : undefined);
  const affected: Pick<Host, 'name' | 'wave' | 'principal'>[] = [];
  const entries: Record<string, HostEntry> = {};
  for (const host of input.hosts) {
    const after = input.after[host.name];
    const changed = hashOf(after) === undefined || hashOf(after) !== hashOf(input.before?.[host.name]);
    const carry = unfinished.has(host.name);
    if (!changed && !carry) {
      entries[host.name] = { wave: null, renderHash: hashOf(after)!, blocked: null, afterSequence: null, skipped: null };
      continue;
    }
    if (!changed) carried.push(host.name);
    affected.push(host);
    steps[host.name] = ['PENDING', 'VALIDATING_PRE'];
    // Pre-checks: it renders at the target, and some key may sign its attestations.
    let blocked: string | null = null;
    if (!after || 'error' in after) blocked = `does not render at the target: ${after && 'error' in after ? after.error : 'no render'}`;
    else if (!someKeyMaySign(input.signers, host.principal, ATTESTATION_NAMESPACE, Math.floor(input.now.getTime() / 1000))) {
      blocked = `no key in allowed_signers may sign its attestations (principal "${host.principal}", namespace ${ATTESTATION_NAMESPACE}): none could be verified`;
    }
    steps[host.name]!.push(blocked ? 'BLOCKED' : 'QUEUED');
    entries[host.name] = { wave: 0, renderHash: hashOf(after) ?? '', blocked, afterSequence: null, skipped: null };
  }

  const reasons: Manifest['reasons'] = [];
  const unknownCanary = r.canary.filter((c) => !input.hosts.some((h) => h.name === c));
  if (unknownCanary.length > 0) reasons.push({ host: null, reason: `settings: rollout.canary names ${unknownCanary.map((c) => `"${c}"`).join(', ')}, not in the inventory` });
  for (const p of input.problems ?? []) if (affected.length > 0) reasons.push({ host: null, reason: p });
  const signed = input.signature.kind === 'ssh' || input.signature.kind === 'web-flow';
  if (input.settings.require_signed_target && !signed && affected.length > 0) {
    reasons.push({ host: null, reason: `the target ${input.target.slice(0, 7)} is ${input.signature.kind === 'none' ? 'not signed' : `signed by an untrusted key (${input.signature.detail})`}, and require_signed_target is set` });
  }

  const planned = waves(affected, input.settings);
  const waveList: Wave[] = planned.waves.map((hosts, i) => ({ number: i + 1, hosts, openedAt: null, deadline: null }));
  for (const w of waveList) for (const h of w.hosts) entries[h]!.wave = w.number;

  const sequence = input.lastSequence + 1;
  const superseded = input.current && (input.current.manifest.phase === 'running' || input.current.manifest.phase === 'halted') ? input.current.manifest.id : null;
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    repository: input.repository,
    id: `r${sequence}-${input.target.slice(0, 7)}`,
    sequence,
    target: { branch: input.branch, commit: input.target, signature: input.signature, required: input.settings.require_signed_target },
    previous: input.previous,
    supersedes: superseded,
    createdAt: now,
    updatedAt: now,
    expiresAt: addSeconds(now, expiry),
    phase: reasons.length > 0 ? 'blocked' : affected.length === 0 ? 'complete' : 'running',
    wave: 0,
    waves: waveList,
    hosts: entries,
    gate: {
      successRatio: r.success_ratio,
      maxFailures: r.max_failures,
      partialOk: r.partial_ok,
      waveTimeoutSeconds: parseDuration(r.wave_timeout, 'rollout.wave_timeout'),
      soakSeconds: parseDuration(r.soak, 'rollout.soak'),
    },
    reasons,
    log: [{ at: now, by: 'app', action: affected.length === 0 ? 'nothing to roll out' : `plan: ${affected.length} of ${input.hosts.length} hosts in ${waveList.length} wave(s)${superseded ? `, superseding ${superseded}` : ''}` }],
  };
  if (manifest.phase === 'blocked') for (const h of affected) steps[h.name]![2] = 'BLOCKED';
  if (manifest.phase === 'running' && waveList.length > 0) {
    waveList[0]!.openedAt = now;
    waveList[0]!.deadline = addSeconds(now, manifest.gate.waveTimeoutSeconds);
    manifest.wave = 1;
    manifest.log.push({ at: now, by: 'app', action: 'open wave 1' });
  }
  // A first wave of hosts that are all blocked halts at once (or, with tolerance, opens the next).
  const settled = manifest.phase === 'running' ? advance(manifest, {}, input.now) : undefined;
  const final = settled && settled.actions.length > 0 ? { ...settled.manifest, sequence } : manifest;
  return { manifest: final, steps, carried };
}
