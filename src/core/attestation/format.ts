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

/**
 * Seconds since the epoch of an issued-at, or undefined when it is not one real instant written
 * as RFC 3339 in UTC with whole seconds (`2026-11-22T02:52:21Z`): a calendar date that exists,
 * hours 00–23, minutes and seconds 00–59 (no leap second: ssh-keygen's verify-time refuses 60),
 * a year from 1970 to 9999. Fractions of a second are refused, so the documented
 * `ssh-keygen -O verify-time=` recipe works for every accepted value.
 */
export function issuedAtSeconds(text: string): number | undefined {
  // YYYY-MM-DDTHH:MM:SSZ, read by character codes (the verifier's hot path).
  if (text.length !== 20 || text[4] !== '-' || text[7] !== '-' || text[10] !== 'T' || text[13] !== ':' || text[16] !== ':' || text[19] !== 'Z') return undefined;
  const y = digitsAt(text, 0, 4);
  const mo = digitsAt(text, 5, 2);
  const d = digitsAt(text, 8, 2);
  const h = digitsAt(text, 11, 2);
  const mi = digitsAt(text, 14, 2);
  const s = digitsAt(text, 17, 2);
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return undefined;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  if (d > (mo === 2 && leap ? 29 : MONTH_DAYS[mo - 1]!)) return undefined;
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** The number written by `n` ASCII digits at `at`, or -1 when one of them is not a digit. */
function digitsAt(text: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = text.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
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
  // The hot path: one pass over bytes in the exact signed form, the schema's checks made on the way.
  const exact = readExactForm(text);
  if (exact) return exact;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PayloadError('payload-json', `the attestation is not JSON: ${(e as Error).message}`);
  }
  // The schema's verdict, fast where the statement is well formed; the schema itself (for its
  // message) otherwise. A test holds the two to the same answer on every corpus case.
  if (wellFormed(value)) {
    checkSubject(value);
    // Keys in the documented order (JSON.parse keeps the text's order), then the bytes themselves.
    if (!inOrder(value) || JSON.stringify(value, null, 2) + '\n' !== text) throw formError();
    return value;
  }
  const res = StatementSchema.safeParse(value);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    throw new PayloadError('payload-schema', `${issue.path.join('.') || 'the attestation'}: ${issue.message}`);
  }
  checkSubject(res.data);
  // The one accepted form: re-serialising the parsed statement gives back exactly these bytes
  // (so no duplicate keys, no other spacing or key order, a final newline).
  if (JSON.stringify(statement(res.data.subject[0]!.name, res.data.predicate), null, 2) + '\n' !== text) throw formError();
  return res.data;
}

/** The subject is the repository at the applied commit: one commit, said twice, must be the same. */
function checkSubject(st: Statement): void {
  if (st.subject[0]!.digest.gitCommit !== st.predicate.appliedCommit) {
    throw new PayloadError('payload-schema', "subject.0.digest.gitCommit: must be the predicate's appliedCommit (the subject is the repository at the applied commit)");
  }
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

/** A cursor over text expected in the exact signed form; every read returns undefined on a mismatch. */
class ExactReader {
  at = 0;
  constructor(readonly text: string) {}
  lit(s: string): boolean {
    // slice + === is several times faster than startsWith(s, at) in V8 (measured: 54 ns vs 278 ns).
    if (this.text.slice(this.at, this.at + s.length) !== s) return false;
    this.at += s.length;
    return true;
  }
  /**
   * A string token with no escape: its text is its value, and the token is JSON.stringify's own
   * (which escapes only '"', '\\', control characters and lone surrogates, and a fatal UTF-8
   * decode leaves no lone surrogate). A token with an escape is left to the general path.
   */
  str(): string | undefined {
    const text = this.text;
    if (text.charCodeAt(this.at) !== 0x22) return undefined;
    const start = this.at + 1;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        this.at = i + 1;
        return text.slice(start, i);
      }
      if (c === 0x5c || c < 0x20) return undefined;
    }
    return undefined;
  }
  /** `"KEY": ` at its place, then a string (non-empty when asked). */
  strField(prefix: string, nonEmpty: boolean): string | undefined {
    if (!this.lit(prefix)) return undefined;
    const v = this.str();
    return v === undefined || (nonEmpty && v === '') ? undefined : v;
  }
  /** `"KEY": "` + `head` + `digits` lowercase hex digits + `"`. */
  hex(prefix: string, head: string, digits: number): string | undefined {
    if (!this.lit(prefix)) return undefined;
    const text = this.text;
    const start = this.at;
    if (text.charCodeAt(start) !== 0x22) return undefined;
    this.at = start + 1;
    if (!this.lit(head)) return undefined;
    const end = start + 1 + head.length + digits;
    for (let i = start + 1 + head.length; i < end; i++) {
      const c = text.charCodeAt(i);
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return undefined;
    }
    if (text.charCodeAt(end) !== 0x22) return undefined;
    this.at = end + 1;
    return text.slice(start + 1, end);
  }
  strOrNull(prefix: string): string | null | undefined {
    if (!this.lit(prefix)) return undefined;
    return this.lit('null') ? null : this.str();
  }
  /** A whole number as JSON.stringify writes it (no sign, no leading zero), at least `min`, at most 15 digits. */
  int(prefix: string, min: number): number | undefined {
    if (!this.lit(prefix)) return undefined;
    const text = this.text;
    const start = this.at;
    let n = 0;
    while (this.at < text.length) {
      const d = text.charCodeAt(this.at) - 0x30;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
      this.at++;
    }
    const len = this.at - start;
    if (len === 0 || len > 15 || (len > 1 && text.charCodeAt(start) === 0x30)) return undefined;
    return n >= min ? n : undefined;
  }
  /** `[]`, or the items (objects whose fields `item` reads) in the layout JSON.stringify gives them at this depth. */
  list<T>(item: (r: ExactReader) => T | undefined): T[] | undefined {
    if (this.lit('[]')) return [];
    if (!this.lit('[\n')) return undefined;
    const out: T[] = [];
    for (;;) {
      if (!this.lit('      {\n')) return undefined;
      const v = item(this);
      if (v === undefined || !this.lit('\n      }')) return undefined;
      out.push(v);
      if (this.lit('\n    ]')) return out;
      if (!this.lit(',\n')) return undefined;
    }
  }
}

/** `"NAME": ` at its indent, after the previous field's `,\n` (none for the first). */
const key = (indent: number, name: string, first = false) => `${first ? '' : ',\n'}${' '.repeat(indent)}"${name}": `;
const K = {
  head: `{\n  "_type": "${STATEMENT_TYPE}",\n  "subject": [\n    {\n`,
  name: key(6, 'name', true),
  digest: ',\n      "digest": {\n',
  gitCommit: key(8, 'gitCommit', true),
  middle: `\n      }\n    }\n  ],\n  "predicateType": "${PREDICATE_TYPE}",\n  "predicate": {\n`,
  host: key(4, 'host', true),
  appliedCommit: key(4, 'appliedCommit'),
  rolloutTarget: key(4, 'rolloutTarget'),
  rolloutNull: key(4, 'rolloutTarget') + 'null',
  renderHash: key(4, 'renderHash'),
  policyHash: key(4, 'policyHash'),
  tools: key(4, 'tools'),
  drift: key(4, 'drift'),
  tests: key(4, 'tests'),
  status: key(4, 'status'),
  agentVersion: key(4, 'agentVersion'),
  sequence: key(4, 'sequence'),
  issuedAt: key(4, 'issuedAt'),
  toolName: key(8, 'name', true),
  version: key(8, 'version'),
  requirement: key(8, 'requirement'),
  ok: key(8, 'ok'),
  path: key(8, 'path', true),
  type: key(8, 'type'),
  testName: key(8, 'name', true),
  testStatus: key(8, 'status'),
  durationMs: key(8, 'durationMs'),
  output: key(8, 'output'),
  tail: '\n  }\n}\n',
};

const readTool = (r: ExactReader): Predicate['tools'][number] | undefined => {
  const name = r.strField(K.toolName, true);
  if (name === undefined) return undefined;
  const version = r.strOrNull(K.version);
  if (version === undefined) return undefined;
  const requirement = r.strOrNull(K.requirement);
  if (requirement === undefined || !r.lit(K.ok)) return undefined;
  const ok = r.lit('true') ? true : r.lit('false') ? false : undefined;
  return ok === undefined ? undefined : { name, version, requirement, ok };
};
const readDrift = (r: ExactReader): Predicate['drift'][number] | undefined => {
  const path = r.strField(K.path, true);
  if (path === undefined) return undefined;
  const type = r.strField(K.type, false);
  return type !== undefined && DRIFT_TYPES.includes(type as never) ? { path, type: type as (typeof DRIFT_TYPES)[number] } : undefined;
};
const readTest = (r: ExactReader): Predicate['tests'][number] | undefined => {
  const name = r.strField(K.testName, true);
  if (name === undefined) return undefined;
  const status = r.strField(K.testStatus, false);
  if (status === undefined || !TEST_STATUSES.includes(status as never)) return undefined;
  const durationMs = r.int(K.durationMs, 0);
  if (durationMs === undefined) return undefined;
  if (r.text.charCodeAt(r.at) !== 0x2c) return { name, status: status as (typeof TEST_STATUSES)[number], durationMs };
  const output = r.strField(K.output, false);
  return output === undefined ? undefined : { name, status: status as (typeof TEST_STATUSES)[number], durationMs, output };
};

/**
 * The statement in `text` when `text` is exactly `serialise(statement)` of a statement the schema
 * accepts, read in one pass against the serialised layout with the schema's checks on the way;
 * undefined when it is not, or when this reader is not sure (a string with an escape, a number of
 * 16 digits), and the general path decides. So it can only be faster than the general path,
 * never more lenient: a test holds the two to one answer on the corpus and on every one-byte
 * change of signed statements.
 */
export function readExactForm(text: string): Statement | undefined {
  const r = new ExactReader(text);
  if (!r.lit(K.head)) return undefined;
  const name = r.strField(K.name, true);
  if (name === undefined || !r.lit(K.digest)) return undefined;
  const gitCommit = r.hex(K.gitCommit, '', 40);
  if (gitCommit === undefined || !r.lit(K.middle)) return undefined;
  const host = r.strField(K.host, true);
  if (host === undefined) return undefined;
  const appliedCommit = r.hex(K.appliedCommit, '', 40);
  if (appliedCommit === undefined) return undefined;
  const rolloutTarget = r.lit(K.rolloutNull) ? null : r.hex(K.rolloutTarget, '', 40);
  if (rolloutTarget === undefined) return undefined;
  const renderHash = r.hex(K.renderHash, 'sha256:', 64);
  if (renderHash === undefined) return undefined;
  const policyHash = r.hex(K.policyHash, 'sha256:', 64);
  if (policyHash === undefined || !r.lit(K.tools)) return undefined;
  const tools = r.list(readTool);
  if (tools === undefined || !r.lit(K.drift)) return undefined;
  const drift = r.list(readDrift);
  if (drift === undefined || !r.lit(K.tests)) return undefined;
  const tests = r.list(readTest);
  if (tests === undefined) return undefined;
  const status = r.strField(K.status, false);
  if (status === undefined || !STATUSES.includes(status as never)) return undefined;
  const agentVersion = r.strField(K.agentVersion, true);
  if (agentVersion === undefined) return undefined;
  const sequence = r.int(K.sequence, 1);
  if (sequence === undefined) return undefined;
  const issuedAt = r.strField(K.issuedAt, false);
  if (issuedAt === undefined || issuedAtSeconds(issuedAt) === undefined || !r.lit(K.tail) || r.at !== text.length) return undefined;
  if (gitCommit !== appliedCommit) return undefined;
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name, digest: { gitCommit } }],
    predicateType: PREDICATE_TYPE,
    predicate: { host, appliedCommit, rolloutTarget, renderHash, policyHash, tools, drift, tests, status: status as Predicate['status'], agentVersion, sequence, issuedAt },
  };
}
