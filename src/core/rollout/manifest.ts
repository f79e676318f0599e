/**
 * The rollout manifest: what the app has decided about one rollout, signed by the app's SSH key
 * (SSHSIG, namespace dotfleet-rollout) and committed to the state branch as
 * `rollout/current.json` + `.sig`. Hosts follow the newest one; the git history keeps every
 * earlier one. Like an attestation, the signed bytes are the stored bytes: one serialisation
 * (two-space JSON, fixed key order, final newline), no canonicalisation.
 *
 * The manifest records decisions only (the plan, which wave is open, a halt and why, accepted
 * commands). Each host's state is derived from it, the verified attestations and the time
 * (state.ts); nothing here repeats what an attestation says.
 */
import { z } from 'zod';
import { DotfleetError } from '../errors.js';
import { fingerprint, type SshPublicKey } from '../ssh/keys.js';
import { knownKey, lookupSigner, type AllowedSigners } from '../ssh/allowed-signers.js';
import { SignatureError, signMessage, verifyMessage } from '../ssh/sshsig.js';
import type { KeyObject } from 'node:crypto';

export const ROLLOUT_NAMESPACE = 'dotfleet-rollout';
export const MANIFEST_VERSION = 1;
export const ROLLOUT_DIR = 'rollout';
export const MANIFEST_PATH = `${ROLLOUT_DIR}/current.json`;
export const MANIFEST_SIG_PATH = `${MANIFEST_PATH}.sig`;

const iso = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, 'must be a UTC time like 2026-11-23T10:00:00Z');
const sha = z.string().regex(/^[0-9a-f]{40}$/, 'must be a 40-character commit id');

/** How the target commit is signed. */
export const TargetSignatureSchema = z.strictObject({
  /** ssh: a key of allowed_signers with namespace git; web-flow: GitHub's own key on a web merge; none; untrusted: signed, but not by either. */
  kind: z.enum(['ssh', 'web-flow', 'none', 'untrusted']),
  /** The principal and key fingerprint (ssh), or why it is untrusted. */
  detail: z.string(),
});
export type TargetSignature = z.infer<typeof TargetSignatureSchema>;

const HostEntrySchema = z.strictObject({
  /** The wave the host is in; null when its render did not change (it moves to the target without work). */
  wave: z.int().min(1).nullable(),
  /** The render hash the host must attest at the target. */
  renderHash: z.string(),
  /** The pre-checks refused the host: why. */
  blocked: z.string().nullable(),
  /** Only the host's attestations with a higher sequence count (set by a `retry` to the sequence it had then). */
  afterSequence: z.int().min(0).nullable(),
  /** Skipped by a command: counts as done for the gates. */
  skipped: z.string().nullable(),
});
export type HostEntry = z.infer<typeof HostEntrySchema>;

const WaveSchema = z.strictObject({
  number: z.int().min(1),
  hosts: z.array(z.string()),
  openedAt: iso.nullable(),
  /** When the wave's silent hosts become TIMED_OUT. */
  deadline: iso.nullable(),
});
export type Wave = z.infer<typeof WaveSchema>;

export const PHASES = ['running', 'halted', 'complete', 'blocked'] as const;
export type Phase = (typeof PHASES)[number];

const ReasonSchema = z.strictObject({ host: z.string().nullable(), reason: z.string() });
export type Reason = z.infer<typeof ReasonSchema>;

const LogEntrySchema = z.strictObject({
  at: iso,
  /** `app` for the gates, or the GitHub login of the person who commanded. */
  by: z.string(),
  /** `plan`, `open wave 2`, `halt`, `resume`, `retry kestrel`, `skip heron`, `complete`. */
  action: z.string(),
});
export type LogEntry = z.infer<typeof LogEntrySchema>;

export const GateSchema = z.strictObject({
  successRatio: z.number().gt(0).max(1),
  maxFailures: z.int().min(0),
  partialOk: z.boolean(),
  waveTimeoutSeconds: z.int().min(1),
  soakSeconds: z.int().min(0),
});
export type Gate = z.infer<typeof GateSchema>;

export const ManifestSchema = z.strictObject({
  version: z.literal(MANIFEST_VERSION),
  /** `github.com/owner/repo`: a manifest of one fleet is refused by the hosts of another. */
  repository: z.string(),
  /** Stable over the rollout's manifests: `r<sequence of its first manifest>-<target, 7>`. */
  id: z.string(),
  /** Strictly increasing over every manifest the fleet ever had: hosts refuse one lower than the last they saw. */
  sequence: z.int().min(1),
  target: z.strictObject({ branch: z.string(), commit: sha, signature: TargetSignatureSchema, required: z.boolean() }),
  /** The target before this rollout (null for the first). */
  previous: sha.nullable(),
  /** The rollout this one replaced while it was still running, if any. */
  supersedes: z.string().nullable(),
  createdAt: iso,
  updatedAt: iso,
  /** Hosts refuse the manifest after this time; every new sequence renews it. */
  expiresAt: iso,
  phase: z.enum(PHASES),
  /** The highest open wave (0 when none is open). */
  wave: z.int().min(0),
  waves: z.array(WaveSchema),
  hosts: z.record(z.string(), HostEntrySchema),
  gate: GateSchema,
  /** Why the rollout halted or is blocked (empty otherwise). */
  reasons: z.array(ReasonSchema),
  log: z.array(LogEntrySchema),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** Fixed key order, hosts by name, two-space JSON, final newline: the same manifest is always the same bytes. */
export function serialiseManifest(m: Manifest): Buffer {
  const hosts: Record<string, HostEntry> = {};
  for (const name of Object.keys(m.hosts).sort()) {
    const h = m.hosts[name]!;
    hosts[name] = { wave: h.wave, renderHash: h.renderHash, blocked: h.blocked, afterSequence: h.afterSequence, skipped: h.skipped };
  }
  const ordered: Manifest = {
    version: m.version,
    repository: m.repository,
    id: m.id,
    sequence: m.sequence,
    target: { branch: m.target.branch, commit: m.target.commit, signature: { kind: m.target.signature.kind, detail: m.target.signature.detail }, required: m.target.required },
    previous: m.previous,
    supersedes: m.supersedes,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    expiresAt: m.expiresAt,
    phase: m.phase,
    wave: m.wave,
    waves: m.waves.map((w) => ({ number: w.number, hosts: [...w.hosts], openedAt: w.openedAt, deadline: w.deadline })),
    hosts,
    gate: { successRatio: m.gate.successRatio, maxFailures: m.gate.maxFailures, partialOk: m.gate.partialOk, waveTimeoutSeconds: m.gate.waveTimeoutSeconds, soakSeconds: m.gate.soakSeconds },
    reasons: m.reasons.map((r) => ({ host: r.host, reason: r.reason })),
    log: m.log.map((l) => ({ at: l.at, by: l.by, action: l.action })),
  };
  return Buffer.from(JSON.stringify(ordered, null, 2) + '\n', 'utf8');
}

export function parseManifest(bytes: Uint8Array, file = MANIFEST_PATH): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new DotfleetError('schema', `not JSON: ${(e as Error).message}`, { file, hint: 'the rollout manifest is written by the app; restore it from the state branch history' });
  }
  const res = ManifestSchema.safeParse(value);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    throw new DotfleetError('schema', `${issue.path.join('.') || 'manifest'}: ${issue.message}`, { file, hint: 'the rollout manifest is written by the app; restore it from the state branch history' });
  }
  const m = res.data;
  for (const w of m.waves) for (const h of w.hosts) if (m.hosts[h]?.wave !== w.number) throw new DotfleetError('schema', `wave ${w.number} lists ${h}, whose entry says wave ${m.hosts[h]?.wave ?? 'none'}`, { file });
  if (m.wave > m.waves.length) throw new DotfleetError('schema', `wave ${m.wave} is open, but there are ${m.waves.length}`, { file });
  return m;
}

/** `2026-11-23T10:00:00Z` (whole seconds: manifests compare times as text). */
export const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
export const addSeconds = (t: string, s: number): string => isoSeconds(new Date(Date.parse(t) + s * 1000));

export function signManifest(bytes: Uint8Array, key: { public: SshPublicKey; key: KeyObject }): string {
  return signMessage(bytes, key, ROLLOUT_NAMESPACE);
}

export type ManifestVerdict =
  | { ok: true; manifest: Manifest; key: string }
  | { ok: false; code: 'signature' | 'signer' | 'schema' | 'repository' | 'expired' | 'sequence'; message: string };

export interface ManifestCheck {
  signers: AllowedSigners;
  /** The principal of the app's key (settings `rollout.signer`). */
  principal: string;
  /** `github.com/owner/repo` the host belongs to (skipped when unknown). */
  repository?: string;
  now: Date;
  /** The highest sequence this host has followed: a lower one is a replay. */
  lastSequence?: number;
}

/** A host's check of a manifest: signature and signer (now), schema, repository, expiry, sequence. */
export function verifyManifest(bytes: Uint8Array, signature: string, check: ManifestCheck): ManifestVerdict {
  let signed;
  try {
    signed = verifyMessage(bytes, signature, ROLLOUT_NAMESPACE, (blob) => knownKey(check.signers, blob));
  } catch (e) {
    if (e instanceof SignatureError) return { ok: false, code: 'signature', message: `the rollout manifest's signature: ${e.message}` };
    throw e;
  }
  const signer = lookupSigner(check.signers, signed.publicKey, check.principal, ROLLOUT_NAMESPACE, Math.floor(check.now.getTime() / 1000));
  if (!signer.ok) return { ok: false, code: 'signer', message: `the rollout manifest's signer: ${signer.message}` };
  let m: Manifest;
  try {
    m = parseManifest(bytes);
  } catch (e) {
    return { ok: false, code: 'schema', message: `the rollout manifest: ${(e as Error).message}` };
  }
  if (check.repository !== undefined && m.repository !== check.repository) return { ok: false, code: 'repository', message: `the rollout manifest is for ${m.repository}, not ${check.repository}` };
  if (Date.parse(m.expiresAt) < check.now.getTime()) return { ok: false, code: 'expired', message: `the rollout manifest expired at ${m.expiresAt}` };
  if (check.lastSequence !== undefined && m.sequence < check.lastSequence) {
    return { ok: false, code: 'sequence', message: `the rollout manifest has sequence ${m.sequence}, lower than ${check.lastSequence}, the last this host followed (a replay?)` };
  }
  return { ok: true, manifest: m, key: fingerprint(signed.publicKey) };
}
