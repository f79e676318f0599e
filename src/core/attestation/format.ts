/**
 * The attestation a host signs: an in-toto Statement v1 whose subject is the fleet repository
 * at the applied commit. Serialised once, as pretty JSON (2-space indent) plus a newline; those
 * exact bytes are signed and stored. Verification refuses any other form.
 */
import { z } from 'zod';
import { escapeRegExp } from '../regexp.js';

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
  // The hot path: the exact signed form, the schema's checks in its patterns (which admit no
  // carriage return, so the check for one below is needed only when they do not match).
  const exact = readExactForm(text);
  if (exact) return exact;
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

/*
 * The exact signed form as patterns: the literal text JSON.stringify(statement, null, 2) writes
 * around each value, and each value as the schema admits it. A string token is matched only when
 * it holds no escape (no '"', '\\' or control character): its text is then its value, and the
 * token is JSON.stringify's own (a fatal UTF-8 decode leaves no lone surrogate to escape).
 * Anything else (an escape, a number of 16 digits) fails the pattern and the general path decides.
 */
const STR = '"([^"\\\\\\x00-\\x1f]+)"';
const STR0 = '"([^"\\\\\\x00-\\x1f]*)"';
const OR_NULL = `(?:null|${STR0})`;
const SHA1_HEX = '"([0-9a-f]{40})"';
const SHA256_HEX = '"(sha256:[0-9a-f]{64})"';
/** A whole number as JSON.stringify writes it: no sign, no leading zero, at most 15 digits. */
const INT0 = '(0|[1-9][0-9]{0,14})';
const INT1 = '([1-9][0-9]{0,14})';
const one = (values: readonly string[]) => `"(${values.join('|')})"`;
/** `"NAME": ` at its indent, after the previous field's `,\n` (none for the first). */
const key = (indent: number, name: string, first = false) => escapeRegExp(`${first ? '' : ',\n'}${' '.repeat(indent)}"${name}": `);
const sticky = (...parts: string[]) => new RegExp(parts.join(''), 'y');

const HEAD = sticky(
  escapeRegExp(`{\n  "_type": "${STATEMENT_TYPE}",\n  "subject": [\n    {\n`),
  key(6, 'name', true), STR,
  escapeRegExp(',\n      "digest": {\n'),
  key(8, 'gitCommit', true), SHA1_HEX,
  escapeRegExp(`\n      }\n    }\n  ],\n  "predicateType": "${PREDICATE_TYPE}",\n  "predicate": {\n`),
  key(4, 'host', true), STR,
  key(4, 'appliedCommit'), SHA1_HEX,
  key(4, 'rolloutTarget'), `(?:null|${SHA1_HEX})`,
  key(4, 'renderHash'), SHA256_HEX,
  key(4, 'policyHash'), SHA256_HEX,
  key(4, 'tools'),
);
/** A list item: the object at its indent, then `,\n` (another follows) or the list's end. */
const item = (...fields: string[]) => sticky(escapeRegExp('      {\n'), ...fields, escapeRegExp('\n      }'), '(,\\n|\\n    \\])');
const TOOL = item(key(8, 'name', true), STR, key(8, 'version'), OR_NULL, key(8, 'requirement'), OR_NULL, key(8, 'ok'), '(true|false)');
const DRIFT = item(key(8, 'path', true), STR, key(8, 'type'), one(DRIFT_TYPES));
const TEST = item(key(8, 'name', true), STR, key(8, 'status'), one(TEST_STATUSES), key(8, 'durationMs'), INT0, `(?:${key(8, 'output')}${STR0})?`);
const DRIFT_KEY = sticky(key(4, 'drift'));
const TESTS_KEY = sticky(key(4, 'tests'));
const TAIL = sticky(key(4, 'status'), one(STATUSES), key(4, 'agentVersion'), STR, key(4, 'sequence'), INT1, key(4, 'issuedAt'), STR0, escapeRegExp('\n  }\n}\n'), '$');

/** Does `re` match at `from` in `text` (then it ends at re.lastIndex)? */
function lookingAt(re: RegExp, text: string, from: number): boolean {
  re.lastIndex = from;
  return re.test(text);
}

/** Match `re` at `from` in `text`: its groups (it ends at re.lastIndex), or undefined. */
function at(re: RegExp, text: string, from: number): RegExpExecArray | undefined {
  re.lastIndex = from;
  return re.exec(text) ?? undefined;
}

/** `[]`, or `[\n` and items `re` matches, each turned into a value by `make`; undefined when the text is not that. */
function list<T>(text: string, from: number, re: RegExp, make: (m: RegExpExecArray) => T): { items: T[]; end: number } | undefined {
  if (text.startsWith('[]', from)) return { items: [], end: from + 2 };
  if (!text.startsWith('[\n', from)) return undefined;
  const items: T[] = [];
  let pos = from + 2;
  for (;;) {
    const m = at(re, text, pos);
    if (!m) return undefined;
    items.push(make(m));
    pos = re.lastIndex;
    if (m[m.length - 1] !== ',\n') return { items, end: pos };
  }
}

const nullable = (v: string | undefined) => (v === undefined ? null : v);

/**
 * The statement in `text` when `text` is exactly `serialise(statement)` of a statement the schema
 * accepts, matched against the serialised layout with the schema's checks in the patterns;
 * undefined when it is not, or when the patterns are not sure (a string with an escape, a number
 * of 16 digits), and the general path decides. So it can only be faster than the general path,
 * never more lenient: a test holds the two to one answer on the corpus and on every one-byte
 * change of signed statements.
 */
export function readExactForm(text: string): Statement | undefined {
  const h = at(HEAD, text, 0);
  if (!h) return undefined;
  const [, name, gitCommit, host, appliedCommit, rolloutTarget, renderHash, policyHash] = h as unknown as string[];
  if (gitCommit !== appliedCommit) return undefined;
  const tools = list(text, HEAD.lastIndex, TOOL, (m) => ({ name: m[1]!, version: nullable(m[2]), requirement: nullable(m[3]), ok: m[4] === 'true' }));
  if (!tools || !lookingAt(DRIFT_KEY, text, tools.end)) return undefined;
  const drift = list(text, DRIFT_KEY.lastIndex, DRIFT, (m) => ({ path: m[1]!, type: m[2] as (typeof DRIFT_TYPES)[number] }));
  if (!drift || !lookingAt(TESTS_KEY, text, drift.end)) return undefined;
  const tests = list(text, TESTS_KEY.lastIndex, TEST, (m) => {
    const t = { name: m[1]!, status: m[2] as (typeof TEST_STATUSES)[number], durationMs: Number(m[3]) };
    return m[4] === undefined ? t : { ...t, output: m[4] };
  });
  if (!tests) return undefined;
  const t = at(TAIL, text, tests.end);
  if (!t || issuedAtSeconds(t[4]!) === undefined) return undefined;
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: name!, digest: { gitCommit: gitCommit! } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      host: host!,
      appliedCommit: appliedCommit!,
      rolloutTarget: nullable(rolloutTarget),
      renderHash: renderHash!,
      policyHash: policyHash!,
      tools: tools.items,
      drift: drift.items,
      tests: tests.items,
      status: t[1] as Predicate['status'],
      agentVersion: t[2]!,
      sequence: Number(t[3]),
      issuedAt: t[4]!,
    },
  };
}
