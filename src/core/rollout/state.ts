/**
 * Where a rollout stands, derived: a pure function of the manifest, the latest verified
 * attestation per host (fleet.json on the state branch) and the time. There is no second store
 * that could disagree. `advance` applies the gates (open the next wave, halt, complete) and
 * `command` the people's commands; both return the next manifest, which the app commits with
 * compare-and-swap, so each transition lands once however many replicas compute it.
 *
 * The host state machine (docs/rollout.md has the table):
 *
 *   PENDING → VALIDATING (pre) → BLOCKED | QUEUED → RUNNING → VALIDATING (post) → SUCCESS | PARTIAL | FAILED
 *                                                    RUNNING → TIMED_OUT (the wave's deadline passed)
 *
 * PENDING and VALIDATING (pre) are the planner's (plan.ts): a published manifest holds each
 * affected host BLOCKED or QUEUED. UNCHANGED (render equal at the target) and SKIPPED (by a
 * command) stand outside the machine.
 */
import { HOST_NAME } from '../inventory.js';
import type { HostRecord } from '../state/fleet-state.js';
import { addSeconds, isoSeconds, type Manifest, type Reason } from './manifest.js';

export const HOST_STATES = ['PENDING', 'VALIDATING_PRE', 'BLOCKED', 'QUEUED', 'RUNNING', 'VALIDATING_POST', 'SUCCESS', 'PARTIAL', 'FAILED', 'TIMED_OUT', 'SKIPPED', 'UNCHANGED'] as const;
export type HostStateName = (typeof HOST_STATES)[number];

/** How people read a state. */
export const STATE_LABEL: Record<HostStateName, string> = {
  PENDING: 'PENDING',
  VALIDATING_PRE: 'VALIDATING (pre)',
  BLOCKED: 'BLOCKED',
  QUEUED: 'QUEUED',
  RUNNING: 'RUNNING',
  VALIDATING_POST: 'VALIDATING (post)',
  SUCCESS: 'SUCCESS',
  PARTIAL: 'PARTIAL',
  FAILED: 'FAILED',
  TIMED_OUT: 'TIMED_OUT',
  SKIPPED: 'SKIPPED',
  UNCHANGED: 'unchanged',
};

export interface HostState {
  host: string;
  state: HostStateName;
  wave: number | null;
  /** Why, in the host's own words where it gave them (failing tests, tools, drift). */
  reasons: string[];
}

const at = (t: string) => Date.parse(t);

/** Why an attestation is not a clean success, from what the host reported. */
function evidence(r: HostRecord): string[] {
  const out: string[] = [];
  if (r.testsFailed > 0) out.push(r.testsFailed === 1 ? '1 host test failing' : `${r.testsFailed} host tests failing`);
  if (!r.toolsOk) out.push(`tools: ${r.toolsFailing.join(', ')}`);
  if (r.drift.length > 0) out.push(`drift: ${r.drift.slice(0, 5).join(', ')}${r.drift.length > 5 ? ` and ${r.drift.length - 5} more` : ''}`);
  return out;
}

/** Does this attestation answer the rollout (the target applied, or tried and rolled back)? */
function answers(m: Manifest, host: string, r: HostRecord | undefined): r is HostRecord {
  if (!r) return false;
  if (r.appliedCommit !== m.target.commit && r.rolloutTarget !== m.target.commit) return false;
  const after = m.hosts[host]!.afterSequence;
  return after === null || r.sequence > after;
}

export function hostState(m: Manifest, host: string, record: HostRecord | undefined, now: Date): HostState {
  const e = m.hosts[host]!;
  const base = { host, wave: e.wave };
  if (e.wave === null) return { ...base, state: 'UNCHANGED', reasons: [] };
  if (m.phase === 'blocked') return { ...base, state: 'BLOCKED', reasons: m.reasons.map((r) => r.reason) };
  if (e.skipped !== null) return { ...base, state: 'SKIPPED', reasons: [e.skipped] };
  if (e.blocked !== null) return { ...base, state: 'BLOCKED', reasons: [e.blocked] };
  const wave = m.waves[e.wave - 1]!;
  if (wave.openedAt === null) return { ...base, state: 'QUEUED', reasons: [] };
  if (!answers(m, host, record)) {
    if (wave.deadline !== null && now.getTime() > at(wave.deadline)) return { ...base, state: 'TIMED_OUT', reasons: [`no attestation of ${m.target.commit.slice(0, 7)} by the wave's deadline ${wave.deadline}`] };
    return { ...base, state: 'RUNNING', reasons: [] };
  }
  const r = record;
  if (r.status === 'FAILED') {
    const why = evidence(r);
    if (r.appliedCommit !== m.target.commit) why.push(`still on ${r.appliedCommit.slice(0, 7)}`);
    return { ...base, state: 'FAILED', reasons: why.length > 0 ? why : ['the host reported FAILED'] };
  }
  if (r.appliedCommit !== m.target.commit) return { ...base, state: 'FAILED', reasons: [`attested ${r.appliedCommit.slice(0, 7)}, not the target ${m.target.commit.slice(0, 7)}`] };
  if (r.render !== 'match') return { ...base, state: 'FAILED', reasons: [r.render === 'mismatch' ? "its render hash differs from the app's render of the target" : `the app could not check its render (${r.render})`] };
  const why = evidence(r);
  if (r.status === 'PARTIAL' || why.length > 0) return { ...base, state: 'PARTIAL', reasons: why.length > 0 ? why : ['the host reported PARTIAL'] };
  if (m.gate.soakSeconds > 0 && now.getTime() < at(r.receivedAt) + m.gate.soakSeconds * 1000) return { ...base, state: 'VALIDATING_POST', reasons: [`soaking until ${addSeconds(r.receivedAt, m.gate.soakSeconds)}`] };
  return { ...base, state: 'SUCCESS', reasons: [] };
}

export function hostStates(m: Manifest, records: Record<string, HostRecord>, now: Date): HostState[] {
  return Object.keys(m.hosts)
    .sort()
    .map((h) => hostState(m, h, records[h], now));
}

export interface WaveCount {
  number: number;
  hosts: number;
  done: number;
  failed: number;
  open: boolean;
}

export interface RolloutView {
  manifest: Manifest;
  states: HostState[];
  waves: WaveCount[];
  /** Affected hosts (in a wave) and those whose attestation of the target counts as done. */
  affected: number;
  attested: number;
  /** `wave 2/3 · 12/40 hosts attested`, `halted · 12/40 hosts attested` */
  line: string;
  /** `12/40 hosts attested` */
  counts: string;
}

const isDone = (s: HostState, m: Manifest) => s.state === 'SUCCESS' || s.state === 'SKIPPED' || (s.state === 'PARTIAL' && m.gate.partialOk);
const isFailure = (s: HostState, m: Manifest) => s.state === 'FAILED' || s.state === 'TIMED_OUT' || s.state === 'BLOCKED' || (s.state === 'PARTIAL' && !m.gate.partialOk);

export function rolloutView(m: Manifest, records: Record<string, HostRecord>, now: Date): RolloutView {
  const states = hostStates(m, records, now);
  const by = new Map(states.map((s) => [s.host, s]));
  const waves = m.waves.map((w) => {
    const ss = w.hosts.map((h) => by.get(h)!);
    return { number: w.number, hosts: ss.length, done: ss.filter((s) => isDone(s, m)).length, failed: ss.filter((s) => isFailure(s, m)).length, open: w.openedAt !== null };
  });
  const affected = states.filter((s) => s.wave !== null).length;
  const attested = waves.reduce((n, w) => n + w.done, 0);
  const phase = m.phase === 'running' ? `wave ${m.wave}/${m.waves.length}` : m.phase;
  const counts = affected === 0 ? 'nothing to roll out' : `${attested}/${affected} hosts attested`;
  const line = affected === 0 ? counts : `${phase} · ${counts}`;
  return { manifest: m, states, waves, affected, attested, line, counts };
}

/** The next manifest: a new sequence and expiry, the log entry added. */
function next(m: Manifest, now: Date, by: string, action: string, expirySeconds: number): Manifest {
  const t = isoSeconds(now);
  return { ...structuredClone(m), sequence: m.sequence + 1, updatedAt: t, expiresAt: addSeconds(t, expirySeconds), log: [...m.log, { at: t, by, action }] };
}

/** Seconds a manifest stays valid, as the one given was made (its expiry less its update). */
const expiryOf = (m: Manifest) => Math.max(60, Math.round((at(m.expiresAt) - at(m.updatedAt)) / 1000));

function openWave(m: Manifest, number: number, now: Date): void {
  const w = m.waves[number - 1]!;
  w.openedAt = isoSeconds(now);
  w.deadline = addSeconds(w.openedAt, m.gate.waveTimeoutSeconds);
  m.wave = number;
}

export interface Advance {
  manifest: Manifest;
  /** What changed, in order ("open wave 2", "halt", "complete"); empty when nothing did. */
  actions: string[];
}

/**
 * The gates: a running rollout halts when its failures (FAILED, TIMED_OUT, BLOCKED, and PARTIAL
 * unless partial_ok) in the open waves exceed max_failures, or when the open wave's deadline
 * passed before it reached success_ratio; it opens the next wave when the open one reached
 * success_ratio; after the last, it is complete. Applied until nothing changes.
 */
export function advance(m0: Manifest, records: Record<string, HostRecord>, now: Date): Advance {
  let m = m0;
  const actions: string[] = [];
  for (let guard = 0; guard <= m0.waves.length + 1 && m.phase === 'running'; guard++) {
    const states = hostStates(m, records, now);
    const open = states.filter((s) => s.wave !== null && s.wave <= m.wave);
    const failures = open.filter((s) => isFailure(s, m));
    if (failures.length > m.gate.maxFailures) {
      m = next(m, now, 'app', 'halt', expiryOf(m));
      m.phase = 'halted';
      m.reasons = failures.map((s) => ({ host: s.host, reason: `${STATE_LABEL[s.state]}: ${s.reasons.join('; ') || 'no reason given'}` }));
      actions.push('halt');
      break;
    }
    const wave = m.waves[m.wave - 1];
    const members = open.filter((s) => s.wave === m.wave);
    const done = members.filter((s) => isDone(s, m)).length;
    const passed = members.length === 0 || done >= Math.ceil(m.gate.successRatio * members.length - 1e-9);
    if (!passed) {
      if (wave?.deadline && now.getTime() > at(wave.deadline)) {
        m = next(m, now, 'app', 'halt', expiryOf(m));
        m.phase = 'halted';
        const late = members.filter((s) => !isDone(s, m));
        m.reasons = [{ host: null, reason: `wave ${m.wave}'s deadline (${wave.deadline}) passed with ${done} of ${members.length} hosts done; not done: ${late.map((s) => `${s.host} (${STATE_LABEL[s.state]})`).join(', ')}` }];
        actions.push('halt');
      }
      break;
    }
    if (m.wave >= m.waves.length) {
      m = next(m, now, 'app', 'complete', expiryOf(m));
      m.phase = 'complete';
      actions.push('complete');
      break;
    }
    m = next(m, now, 'app', `open wave ${m.wave + 1}`, expiryOf(m));
    openWave(m, m.wave + 1, now);
    actions.push(`open wave ${m.wave}`);
  }
  return { manifest: m, actions };
}

/**
 * The commit a host is expected at under this manifest — what the fleet status's "target" means
 * once a rollout exists. It mirrors what the host's gate decides (src/host/rollout.ts): a host
 * released by the rollout (its wave open, or unchanged by it, or the rollout complete) is
 * expected at the target; one the rollout holds back (its wave not open, blocked and not skipped,
 * the whole rollout blocked) stays at the previous target. A host the manifest does not name
 * has no expectation here (undefined: the caller's default).
 */
export function expectedCommit(m: Manifest, host: string): string | undefined {
  const e = m.hosts[host];
  if (!e) return undefined;
  const stay = m.previous ?? undefined;
  if (m.phase === 'blocked') return stay;
  if (e.wave === null || m.phase === 'complete') return m.target.commit;
  if (e.blocked !== null && e.skipped === null) return stay;
  return e.wave > m.wave ? stay : m.target.commit;
}

export const COMMANDS = ['halt', 'resume', 'retry', 'skip'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface Command {
  name: CommandName;
  host?: string;
}

/** `/dotfleet rollout retry kestrel` → { name: 'retry', host: 'kestrel' }; undefined when the text has no command; a string when it is malformed. */
export function parseCommand(text: string): Command | string | undefined {
  const line = text.split(/\r?\n/).find((l) => /^\s*\/dotfleet\b/.test(l));
  if (!line) return undefined;
  const words = line.trim().split(/\s+/).slice(1);
  const usage = 'usage: /dotfleet rollout resume | halt | retry HOST | skip HOST';
  if (words[0] !== 'rollout') return usage;
  const name = words[1] as CommandName;
  if (!COMMANDS.includes(name)) return usage;
  if (name === 'retry' || name === 'skip') {
    if (words.length !== 3) return `/dotfleet rollout ${name} needs one host: /dotfleet rollout ${name} HOST`;
    // The answer never repeats what is not a host name (the bot's reply would carry it).
    if (!HOST_NAME.test(words[2]!)) return `/dotfleet rollout ${name} needs a host name (letters, digits, ".", "_" and "-")`;
    return { name, host: words[2] };
  }
  if (words.length !== 2) return `/dotfleet rollout ${name} takes no argument`;
  return { name };
}

/**
 * A person's command on the manifest; a string says why it cannot apply. retry and skip also
 * resume a halted rollout (the gates halt it again at once if other failures remain).
 */
export function command(m: Manifest, c: Command, by: string, now: Date, records: Record<string, HostRecord>): Manifest | string {
  const label = `${c.name}${c.host ? ` ${c.host}` : ''}`;
  if (m.phase === 'complete') return `rollout ${m.id} is complete; there is nothing to ${c.name}`;
  if (m.phase === 'blocked') return `rollout ${m.id} is blocked (${m.reasons.map((r) => r.reason).join('; ')}); a new push to ${m.target.branch} makes a new rollout`;
  const resume = (n: Manifest) => {
    if (n.phase !== 'halted') return;
    n.phase = 'running';
    n.reasons = [];
    const w = n.waves[n.wave - 1];
    if (w) w.deadline = addSeconds(isoSeconds(now), n.gate.waveTimeoutSeconds);
  };
  switch (c.name) {
    case 'halt': {
      if (m.phase !== 'running') return `rollout ${m.id} is already ${m.phase}`;
      const n = next(m, now, by, label, expiryOf(m));
      n.phase = 'halted';
      n.reasons = [{ host: null, reason: `halted by @${by}` }];
      return n;
    }
    case 'resume': {
      if (m.phase !== 'halted') return `rollout ${m.id} is not halted (it is ${m.phase})`;
      const n = next(m, now, by, label, expiryOf(m));
      resume(n);
      return n;
    }
    case 'retry':
    case 'skip': {
      const host = c.host!;
      const e = m.hosts[host];
      if (!e) return `${host} is not in rollout ${m.id}`;
      if (e.wave === null) return `${host} has nothing to roll out in ${m.id} (its render did not change)`;
      const s = hostState(m, host, records[host], now);
      if (c.name === 'retry') {
        if (!['FAILED', 'TIMED_OUT', 'PARTIAL', 'SKIPPED'].includes(s.state)) return `${host} is ${STATE_LABEL[s.state]}; only a FAILED, TIMED_OUT, PARTIAL or SKIPPED host can be retried`;
        if (e.blocked !== null) return `${host} is blocked (${e.blocked}); a retry cannot change that`;
      } else if (s.state === 'SUCCESS' || s.state === 'SKIPPED') return `${host} is already ${STATE_LABEL[s.state]}`;
      const n = next(m, now, by, label, expiryOf(m));
      const entry = n.hosts[host]!;
      if (c.name === 'retry') {
        // The host's attestations so far never count again: only a new one does.
        entry.afterSequence = records[host]?.sequence ?? 0;
        entry.skipped = null;
        // A host of an open wave gets the wave's full time again.
        const w = n.waves[e.wave - 1]!;
        if (w.openedAt !== null) w.deadline = addSeconds(isoSeconds(now), n.gate.waveTimeoutSeconds);
      } else entry.skipped = `skipped by @${by} at ${isoSeconds(now)}`;
      resume(n);
      return n;
    }
  }
}

/** A halt's reasons as lines for people. */
export function reasonLines(reasons: Reason[]): string[] {
  return reasons.map((r) => (r.host ? `${r.host}: ${r.reason}` : r.reason));
}
