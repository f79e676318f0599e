/**
 * The attestation a host signs: an in-toto Statement v1 whose subject is the fleet repository
 * at the applied commit. Serialised once, as pretty JSON (2-space indent) plus a newline; those
 * exact bytes are signed and stored. Verification refuses any other form.
 */
import { z } from 'zod';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://dotfleet.dev/attestation/host-apply/v1';
export const ATTESTATION_NAMESPACE = 'dotfleet-attestation';
export const STATUSES = ['SUCCESS', 'PARTIAL', 'FAILED'] as const;

const sha1Hex = z.string().regex(/^[0-9a-f]{40}$/, 'must be a 40-character lowercase hex commit id');
const hash = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 lowercase hex digits');
const ISSUED_AT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/**
 * Seconds since the epoch of an issued-at, or undefined when it is not one real instant written
 * as RFC 3339 in UTC with whole seconds (`2026-11-22T02:52:21Z`): a calendar date that exists,
 * hours 00–23, minutes and seconds 00–59 (no leap second: ssh-keygen's verify-time refuses 60),
 * a year from 1970 to 9999. Fractions of a second are refused, so the documented
 * `ssh-keygen -O verify-time=` recipe works for every accepted value.
 */
export function issuedAtSeconds(text: string): number | undefined {
  const m = ISSUED_AT.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC rolls 31 February over into March: a real date reads back the same day.
  if (new Date(ms).getUTCDate() !== d) return undefined;
  return ms / 1000;
}

const isoUtc = z.string().refine((t) => issuedAtSeconds(t) !== undefined, 'must be a real UTC time as YYYY-MM-DDTHH:MM:SSZ (RFC 3339, whole seconds, ending in Z)');

export const ToolSchema = z.strictObject({
  name: z.string().min(1),
  version: z.string().nullable(),
  requirement: z.string().nullable(),
  ok: z.boolean(),
});

const DRIFT_TYPES = ['missing', 'modified', 'permission', 'symlink', 'unmanaged'] as const;
const TEST_STATUSES = ['pass', 'fail', 'skip'] as const;

export const DriftSchema = z.strictObject({
  path: z.string().min(1),
  type: z.enum(DRIFT_TYPES),
});

export const TestResultSchema = z.strictObject({
  name: z.string().min(1),
  status: z.enum(TEST_STATUSES),
  durationMs: z.int().min(0),
  output: z.string().optional(),
});

export const PredicateSchema = z.strictObject({
  host: z.string().min(1),
  appliedCommit: sha1Hex,
  rolloutTarget: sha1Hex.nullable(),
  renderHash: hash,
  policyHash: hash,
  tools: z.array(ToolSchema),
  drift: z.array(DriftSchema),
  tests: z.array(TestResultSchema),
  status: z.enum(STATUSES),
  agentVersion: z.string().min(1),
  sequence: z.int().min(1),
  issuedAt: isoUtc,
});

export const StatementSchema = z.strictObject({
  _type: z.literal(STATEMENT_TYPE),
  subject: z
    .array(z.strictObject({ name: z.string().min(1), digest: z.strictObject({ gitCommit: sha1Hex }) }))
    .length(1),
  predicateType: z.literal(PREDICATE_TYPE),
  predicate: PredicateSchema,
});

export type Predicate = z.infer<typeof PredicateSchema>;
export type Statement = z.infer<typeof StatementSchema>;

/**
 * The subject name of an attestation about the GitHub repository OWNER/REPO, the one form the
 * app accepts, byte for byte: `git+https://github.com/OWNER/REPO` (no `.git`, no trailing slash),
 * with OWNER and REPO exactly as in the submission path.
 */
export function subjectName(owner: string, repo: string): string {
  return `git+https://github.com/${owner}/${repo}`;
}

/** Build a statement with its keys in the documented order. */
export function statement(repository: string, p: Predicate): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: repository, digest: { gitCommit: p.appliedCommit } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      host: p.host,
      appliedCommit: p.appliedCommit,
      rolloutTarget: p.rolloutTarget,
      renderHash: p.renderHash,
      policyHash: p.policyHash,
      tools: p.tools.map((t) => ({ name: t.name, version: t.version, requirement: t.requirement, ok: t.ok })),
      drift: p.drift.map((d) => ({ path: d.path, type: d.type })),
      tests: p.tests.map((t) => ({ name: t.name, status: t.status, durationMs: t.durationMs, ...(t.output === undefined ? {} : { output: t.output }) })),
      status: p.status,
      agentVersion: p.agentVersion,
      sequence: p.sequence,
      issuedAt: p.issuedAt,
    },
  };
}

/**
 * A status its own evidence contradicts: SUCCESS with a failing host test or a tool below its
 * requirement. The intake refuses it (422 `contradiction`), so "SUCCESS" on the state branch
 * always means the host's checks passed.
 */
export function statusContradiction(p: Predicate): string | undefined {
  if (p.status !== 'SUCCESS') return undefined;
  const failing = p.tests.filter((t) => t.status === 'fail').map((t) => t.name);
  if (failing.length > 0) return `status SUCCESS with a failing host test (${failing.join(', ')}): report PARTIAL or FAILED`;
  const tools = p.tools.filter((t) => !t.ok).map((t) => t.name);
  if (tools.length > 0) return `status SUCCESS with a tool below its requirement (${tools.join(', ')}): report FAILED`;
  return undefined;
}

/** The one serialisation: these bytes are signed and stored. */
export function serialise(s: Statement): Buffer {
  return Buffer.from(JSON.stringify(s, null, 2) + '\n', 'utf8');
}

export type PayloadFault = 'payload-encoding' | 'payload-bom' | 'payload-crlf' | 'payload-json' | 'payload-form' | 'payload-schema';

export class PayloadError extends Error {
  constructor(
    readonly code: PayloadFault,
    message: string,
  ) {
    super(message);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Parse stored bytes, refusing anything that is not exactly `serialise(statement)`. */
export function parseStatement(bytes: Uint8Array): Statement {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) throw new PayloadError('payload-bom', 'the attestation starts with a byte-order mark');
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new PayloadError('payload-encoding', 'the attestation is not UTF-8');
  }
  if (text.includes('\r')) throw new PayloadError('payload-crlf', 'the attestation has carriage returns (CRLF line endings?); see .gitattributes in docs/attestation.md');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PayloadError('payload-json', `the attestation is not JSON: ${(e as Error).message}`);
  }
  // The schema's verdict, fast where the statement is well formed; the schema itself (for its
  // message) otherwise. A test holds the two to the same answer on every corpus case.
  if (wellFormed(value)) {
    // Keys in the documented order (JSON.parse keeps the text's order), then the bytes themselves.
    if (!inOrder(value) || JSON.stringify(value, null, 2) + '\n' !== text) throw formError();
    return value;
  }
  const res = StatementSchema.safeParse(value);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    throw new PayloadError('payload-schema', `${issue.path.join('.') || 'the attestation'}: ${issue.message}`);
  }
  // The one accepted form: re-serialising the parsed statement gives back exactly these bytes
  // (so no duplicate keys, no other spacing or key order, a final newline).
  if (JSON.stringify(statement(res.data.subject[0]!.name, res.data.predicate), null, 2) + '\n' !== text) throw formError();
  return res.data;
}

const formError = () =>
  new PayloadError('payload-form', 'the attestation is not in its exact signed form: pretty JSON (2-space indent), keys in the documented order, no duplicate keys, a final newline (docs/attestation.md)');

const SHA1 = /^[0-9a-f]{40}$/;
const HASH = /^sha256:[0-9a-f]{64}$/;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Exactly these keys (optional ones may be absent). */
const keysAre = (o: Obj, keys: string[], optional: string[] = []) => {
  let n = 0;
  for (const k in o) {
    if (!keys.includes(k) && !optional.includes(k)) return false;
    n++;
  }
  return n >= keys.length && keys.every((k) => k in o);
};
const str = (v: unknown, min = 0): v is string => typeof v === 'string' && v.length >= min;
const int = (v: unknown, min: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
/** Every element, holes included (Array#every skips them). */
const all = (a: unknown, ok: (x: unknown) => boolean): boolean => {
  if (!Array.isArray(a)) return false;
  for (let i = 0; i < a.length; i++) if (!ok(a[i])) return false;
  return true;
};

const ORDER = {
  statement: ['_type', 'subject', 'predicateType', 'predicate'],
  subject: ['name', 'digest'],
  predicate: ['host', 'appliedCommit', 'rolloutTarget', 'renderHash', 'policyHash', 'tools', 'drift', 'tests', 'status', 'agentVersion', 'sequence', 'issuedAt'],
  tool: ['name', 'version', 'requirement', 'ok'],
  drift: ['path', 'type'],
  test: ['name', 'status', 'durationMs', 'output'],
};
const ordered = (o: object, keys: string[]) => {
  let i = 0;
  for (const k in o) {
    while (i < keys.length && keys[i] !== k) i++;
    if (i === keys.length) return false;
  }
  return true;
};
/** Every object's keys in the documented order (the statement is well formed). */
function inOrder(v: Statement): boolean {
  const p = v.predicate;
  return (
    ordered(v, ORDER.statement) &&
    ordered(v.subject[0]!, ORDER.subject) &&
    ordered(p, ORDER.predicate) &&
    p.tools.every((t) => ordered(t, ORDER.tool)) &&
    p.drift.every((d) => ordered(d, ORDER.drift)) &&
    p.tests.every((t) => ordered(t, ORDER.test))
  );
}

/**
 * The statement schema (StatementSchema) as plain checks: true only for what the schema accepts.
 * The verifier's hot path; anything it does not accept goes to the schema for the message.
 */
export function wellFormed(v: unknown): v is Statement {
  if (!isObj(v) || !keysAre(v, ['_type', 'subject', 'predicateType', 'predicate'])) return false;
  if (v._type !== STATEMENT_TYPE || v.predicateType !== PREDICATE_TYPE) return false;
  const sub = v.subject;
  if (!Array.isArray(sub) || sub.length !== 1 || !isObj(sub[0]) || !keysAre(sub[0], ['name', 'digest']) || !str(sub[0].name, 1)) return false;
  const d = sub[0].digest;
  if (!isObj(d) || !keysAre(d, ['gitCommit']) || !str(d.gitCommit) || !SHA1.test(d.gitCommit)) return false;
  const p = v.predicate;
  if (!isObj(p) || !keysAre(p, ['host', 'appliedCommit', 'rolloutTarget', 'renderHash', 'policyHash', 'tools', 'drift', 'tests', 'status', 'agentVersion', 'sequence', 'issuedAt'])) return false;
  if (!str(p.host, 1) || !str(p.appliedCommit) || !SHA1.test(p.appliedCommit)) return false;
  if (p.rolloutTarget !== null && !(str(p.rolloutTarget) && SHA1.test(p.rolloutTarget))) return false;
  if (!str(p.renderHash) || !HASH.test(p.renderHash) || !str(p.policyHash) || !HASH.test(p.policyHash)) return false;
  if (!all(p.tools, (t) => isObj(t) && keysAre(t, ['name', 'version', 'requirement', 'ok']) && str(t.name, 1) && (t.version === null || str(t.version)) && (t.requirement === null || str(t.requirement)) && typeof t.ok === 'boolean')) return false;
  if (!all(p.drift, (x) => isObj(x) && keysAre(x, ['path', 'type']) && str(x.path, 1) && DRIFT_TYPES.includes(x.type as never))) return false;
  if (!all(p.tests, (t) => isObj(t) && keysAre(t, ['name', 'status', 'durationMs'], ['output']) && str(t.name, 1) && TEST_STATUSES.includes(t.status as never) && int(t.durationMs, 0) && (t.output === undefined || str(t.output)))) return false;
  if (!STATUSES.includes(p.status as never) || !str(p.agentVersion, 1) || !int(p.sequence, 1)) return false;
  return str(p.issuedAt) && issuedAtSeconds(p.issuedAt) !== undefined;
}
