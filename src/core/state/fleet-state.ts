/**
 * The state branch (`dotfleet/state` by default): the fleet's history in git.
 *
 *   attestations/<host>/<issued-at>-<sequence>.json      the exact signed bytes
 *   attestations/<host>/<issued-at>-<sequence>.json.sig  the SSHSIG signature (ssh-keygen -Y verify)
 *   fleet.json                                         the latest accepted attestation per host
 *   FLEET.md                                           the same, as the table people read
 *
 * A file's path follows from its content (host, issued-at, sequence), so a resubmission maps to
 * the same path and lands once. This module is pure: what to write, never how.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DotfleetError } from '../errors.js';
import type { Statement } from '../attestation/format.js';

export const FLEET_JSON = 'fleet.json';
export const FLEET_MD = 'FLEET.md';
export const STATE_README = 'README.md';
export const ATTESTATIONS_DIR = 'attestations';
/** Without an app: attestations hosts pushed (`incoming/<host>/<name>.json`), and the ones the Action refused. */
export const INCOMING_DIR = 'incoming';
export const REJECTED_DIR = 'rejected';
export const STATE_VERSION = 1;

/** How the app's own render of the host at the claimed commit compares with the claimed render hash. */
export const RENDER_CHECKS = ['match', 'mismatch', 'unknown-commit', 'render-error'] as const;
export type RenderCheck = (typeof RENDER_CHECKS)[number];

const HostRecordSchema = z.strictObject({
  /** The attestation's file on the state branch. */
  path: z.string().min(1),
  /** sha256 of the attestation's bytes. */
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  sequence: z.int().min(1),
  issuedAt: z.string(),
  /** When the app accepted it. */
  receivedAt: z.string(),
  status: z.enum(['SUCCESS', 'PARTIAL', 'FAILED']),
  appliedCommit: z.string(),
  rolloutTarget: z.string().nullable(),
  renderHash: z.string(),
  render: z.enum(RENDER_CHECKS),
  policyHash: z.string(),
  toolsOk: z.boolean(),
  /** Tools below their requirement, "git 2.20.1 (needs >=2.30)". */
  toolsFailing: z.array(z.string()),
  drift: z.array(z.string()),
  testsFailed: z.int().min(0),
  /** SHA256:… of the key that signed it. */
  key: z.string(),
});

export const FleetStateSchema = z.strictObject({
  version: z.literal(STATE_VERSION),
  /** The commit hosts should be on (the default branch's head when the file was written). */
  target: z.strictObject({ branch: z.string(), commit: z.string() }).nullable(),
  /** Per host, the policy hash at the target: a host's policy "matches" when it ran this one. */
  policy: z.record(z.string(), z.string()),
  updatedAt: z.string().nullable(),
  hosts: z.record(z.string(), HostRecordSchema),
});

export type HostRecord = z.infer<typeof HostRecordSchema>;
export type FleetState = z.infer<typeof FleetStateSchema>;

export const EMPTY_STATE: FleetState = { version: STATE_VERSION, target: null, policy: {}, updatedAt: null, hosts: {} };

export function parseFleetState(bytes: Uint8Array | undefined, file = FLEET_JSON): FleetState {
  if (bytes === undefined) return structuredClone(EMPTY_STATE);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new DotfleetError('schema', `not JSON: ${(e as Error).message}`, { file, hint: 'fleet.json is written by the app; restore it from the branch history' });
  }
  const res = FleetStateSchema.safeParse(value);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    throw new DotfleetError('schema', `${issue.path.join('.') || 'fleet.json'}: ${issue.message}`, { file, hint: 'fleet.json is written by the app; restore it from the branch history' });
  }
  return res.data;
}

/** Hosts in name order, two-space JSON, final newline: the same state is always the same bytes. */
export function serialiseFleetState(state: FleetState): Buffer {
  const hosts: Record<string, HostRecord> = {};
  for (const name of Object.keys(state.hosts).sort()) hosts[name] = state.hosts[name]!;
  const policy: Record<string, string> = {};
  for (const name of Object.keys(state.policy).sort()) policy[name] = state.policy[name]!;
  return Buffer.from(JSON.stringify({ version: state.version, target: state.target, policy, updatedAt: state.updatedAt, hosts }, null, 2) + '\n', 'utf8');
}

export function digestOf(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/** `attestations/kestrel/2026-11-22T100000Z-000042.json`: sorts by time, no colons (Windows checkouts). */
export function attestationPath(host: string, issuedAt: string, sequence: number): string {
  const stamp = issuedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '');
  return `${ATTESTATIONS_DIR}/${host}/${stamp}-${String(sequence).padStart(6, '0')}.json`;
}

/** The record fleet.json keeps for an accepted attestation. */
export function hostRecord(st: Statement, payload: Uint8Array, extra: { render: RenderCheck; key: string; receivedAt: string }): HostRecord {
  const p = st.predicate;
  return {
    path: attestationPath(p.host, p.issuedAt, p.sequence),
    digest: digestOf(payload),
    sequence: p.sequence,
    issuedAt: p.issuedAt,
    receivedAt: extra.receivedAt,
    status: p.status,
    appliedCommit: p.appliedCommit,
    rolloutTarget: p.rolloutTarget,
    renderHash: p.renderHash,
    render: extra.render,
    policyHash: p.policyHash,
    toolsOk: p.tools.every((t) => t.ok),
    toolsFailing: p.tools.filter((t) => !t.ok).map((t) => `${t.name} ${t.version ?? 'missing'}${t.requirement ? ` (needs ${t.requirement})` : ''}`),
    drift: p.drift.map((d) => `${d.type} ${d.path}`),
    testsFailed: p.tests.filter((t) => t.status === 'fail').length,
    key: extra.key,
  };
}

/** The host a record is for (its file lives under `attestations/<host>/`). */
export function hostOf(record: HostRecord): string {
  return record.path.split('/')[1]!;
}

/** The refusal of a sequence that does not increase, with the way out for a host whose state was reset. */
export function sequenceMessage(host: string, sequence: number, last: number): string {
  return `sequence ${sequence} is not greater than ${last}, the last recorded for ${host} (a replay? if the host's state dir was reset, attest with --sequence ${last + 1} or more)`;
}

export interface Submission {
  record: HostRecord;
  payload: Uint8Array;
  signature: string;
}

/** Where a submission stands against the state at some head. */
export type Standing = 'new' | 'recorded' | 'maybe-recorded';

/**
 * `recorded`: fleet.json's latest for the host is this very attestation. `maybe-recorded`: the
 * host has a later or equal sequence on record, so this is either an older attestation already in
 * the history (look its path up) or a replay. `new`: its sequence is the host's highest.
 */
export function standing(state: FleetState, record: HostRecord): Standing {
  const latest = state.hosts[hostOf(record)];
  if (!latest) return 'new';
  if (latest.path === record.path && latest.digest === record.digest) return 'recorded';
  return record.sequence > latest.sequence ? 'new' : 'maybe-recorded';
}

/**
 * The next state: the new submissions (each the highest sequence for its host within the batch
 * wins fleet.json), a target and the policy hashes at that target.
 */
export function nextState(state: FleetState, added: HostRecord[], target: FleetState['target'], policy: Record<string, string>, now: string): FleetState {
  const hosts = { ...state.hosts };
  for (const r of added) {
    const cur = hosts[hostOf(r)];
    if (!cur || r.sequence > cur.sequence) hosts[hostOf(r)] = r;
  }
  return { version: STATE_VERSION, target, policy: { ...policy }, updatedAt: now, hosts };
}

/** The files a commit adds for a batch: each attestation and signature, then fleet.json. */
export function batchFiles(submissions: Submission[], next: FleetState): { path: string; contents: Uint8Array }[] {
  const files: { path: string; contents: Uint8Array }[] = [];
  for (const s of submissions) {
    files.push({ path: s.record.path, contents: s.payload });
    files.push({ path: `${s.record.path}.sig`, contents: Buffer.from(s.signature, 'utf8') });
  }
  files.push({ path: FLEET_JSON, contents: serialiseFleetState(next) });
  return files;
}

export const STATE_README_TEXT = `# dotfleet state

This branch is written by dotfleet (the app, or the Action). It holds the fleet's history:

- \`attestations/<host>/*.json\`: each attestation a host signed, byte for byte, with its SSH
  signature beside it (\`.json.sig\`). Anyone can check one with \`ssh-keygen -Y verify\`
  against \`allowed_signers\` on the default branch (see docs/attestation.md in dotfleet).
- \`fleet.json\`: the latest accepted attestation per host.
- \`FLEET.md\`: the fleet status table.
- \`rollout/current.json\`: the current rollout's signed manifest, when rollouts are on.
- \`incoming/<host>/*.json\`, \`rejected/<host>/*.json\` (with the Action only): attestations
  hosts pushed, waiting for the Action; the ones it refused, with the reason.

Do not edit it by hand: the app commits with \`expectedHeadOid\` and rebuilds fleet.json from it.
`;
