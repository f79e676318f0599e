/**
 * allowed_signers (ssh-keygen(1), ALLOWED SIGNERS): who may sign, in which namespaces, when.
 *
 * Read byte for byte as OpenSSH 9 reads it (sshsig.c, misc.c, match.c): lines split at "\n" and
 * cut at a NUL; the principals are the first token as strdelimw takes it (white space is
 * " \t\r\n", a double quote may open anywhere in it and runs to the next one); then a key, or
 * options up to the first unquoted blank and then a key; options as sshsigopt_parse reads them
 * (names in any case, `\"` inside quotes, empty options between commas, times as
 * parse_absolute_time reads them); key blobs as sshkey_read decodes them. Patterns match bytes,
 * not characters. A line OpenSSH cannot read is skipped by ssh-keygen (it logs an error), and
 * reported here with its line number. Lookups follow ssh-keygen line by line: the first line
 * that passes verifies; a failed lookup names the nearest miss.
 *
 * dotfleet is stricter than ssh-keygen in one place, on purpose: a line whose key is a
 * certificate is reported and never used (ssh-keygen would check the certificate's CA signature
 * and then, for a plain signing key, skip it too).
 */
import { KEY_LINE_TYPES, parsePublicKeyText, sameKey, type SshPublicKey } from './keys.js';
import { isWildcardList, matchPatternList } from './patterns.js';
import { parseSshTime, type SshTime } from './time.js';

export interface AllowedSigner {
  line: number;
  /** Principal pattern list (`host1,host2`, `*.lan`, `!x,*`), as text for people. */
  principals: string;
  /** The same, one character per byte (what patterns match against). */
  principalBytes: string;
  /** `namespaces=` pattern list, one character per byte. */
  namespaces?: string;
  validAfter?: SshTime;
  validBefore?: SshTime;
  certAuthority: boolean;
  key: SshPublicKey;
  comment: string;
}

/** A line ssh-keygen cannot read; it is skipped when its principals match (or always, when they cannot be read). */
export interface BrokenLine {
  line: number;
  /** The principals token (bytes), when it could be read. */
  principalBytes?: string;
  reason: string;
  /** ssh-keygen reads the line (a certificate): only dotfleet sets it aside. */
  readable?: boolean;
}

export interface SignersProblem {
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

type Line = AllowedSigner | BrokenLine;

export interface AllowedSigners {
  entries: AllowedSigner[];
  broken: BrokenLine[];
  problems: SignersProblem[];
  /** Lines by plain principal and by key; lines whose principals are a pattern or a list are always candidates. */
  index: { byPrincipal: Map<string, AllowedSigner[]>; byKey: Map<string, AllowedSigner[]>; patterned: AllowedSigner[]; byBlob: Map<string, KnownSigner> };
}

/** A key some line lists (by its blob, base64), and every line that holds it, in file order. */
export interface KnownSigner {
  key: SshPublicKey;
  lines: AllowedSigner[];
}

/** Add `v` to the list under `k`; the list. */
function push<K, V>(m: Map<K, V[]>, k: K, v: V): V[] {
  let list = m.get(k);
  if (!list) m.set(k, (list = []));
  list.push(v);
  return list;
}

function buildIndex(entries: AllowedSigner[]): AllowedSigners['index'] {
  const index: AllowedSigners['index'] = { byPrincipal: new Map(), byKey: new Map(), patterned: [], byBlob: new Map() };
  for (const e of entries) {
    const lines = push(index.byKey, e.key.identity, e);
    const blob = e.key.blob.toString('base64');
    if (!index.byBlob.has(blob)) index.byBlob.set(blob, { key: e.key, lines });
    if (/[*?!,]/.test(e.principalBytes)) index.patterned.push(e);
    else push(index.byPrincipal, e.principalBytes, e);
  }
  return index;
}

/** The trusted key object with this blob, if any line lists it (it keeps its node:crypto key). */
export function knownKey(signers: AllowedSigners, blob: Buffer): SshPublicKey | undefined {
  return knownSigner(signers, blob)?.key;
}

/** The same, with the lines that hold the key (what lookupSigner would look up again). */
export function knownSigner(signers: AllowedSigners, blob: Buffer): KnownSigner | undefined {
  return signers.index.byBlob.get(blob.toString('base64'));
}

/** Text for people from one-character-per-byte text. */
export const fromBytes = (b: string) => Buffer.from(b, 'latin1').toString('utf8');
/** One-character-per-byte text (UTF-8 bytes) from text. */
export const toBytes = (t: string) => Buffer.from(t, 'utf8').toString('latin1');

const WHITESPACE = /[ \t\r\n]/;
const skipBlanks = (s: string, i = 0) => {
  while (s[i] === ' ' || s[i] === '\t') i++;
  return i;
};

/** strdelimw: the token and what follows it, or null (no delimiter after it, or an unclosed quote). */
function strdelimw(s: string): { token: string; rest: string } | null {
  let at = -1;
  for (let i = 0; i < s.length; i++) {
    if (WHITESPACE.test(s[i]!) || s[i] === '"') {
      at = i;
      break;
    }
  }
  if (at < 0) return null;
  let t = s;
  if (t[at] === '"') {
    t = t.slice(0, at) + t.slice(at + 1);
    at = t.indexOf('"', at);
    if (at < 0) return null;
  }
  let next = at + 1;
  while (next < t.length && WHITESPACE.test(t[next]!)) next++;
  return { token: t.slice(0, at), rest: t.slice(next) };
}

/** sshkey_read: `TYPE BASE64 [comment]`; null when OpenSSH would not read a key here. */
function sshkeyRead(s: string): { key: SshPublicKey; comment: string } | null {
  const space = s.search(/[ \t]/);
  if (space < 0) return null;
  const type = s.slice(0, space);
  if (!Object.hasOwn(KEY_LINE_TYPES, type)) return null;
  const start = skipBlanks(s, space);
  if (start >= s.length) return null;
  let end = s.slice(start).search(/[ \t]/);
  end = end < 0 ? s.length : start + end;
  const key = parsePublicKeyText(type, s.slice(start, end));
  if (!key) return null;
  return { key, comment: fromBytes(s.slice(skipBlanks(s, end))).trim() };
}

/** sshkey_advance_past_options: the index of the first blank outside double quotes (`\"` is skipped), or null for an open quote. */
function pastOptions(s: string): number | null {
  let quoted = false;
  let i = 0;
  for (; i < s.length && (quoted || (s[i] !== ' ' && s[i] !== '\t')); i++) {
    if (s[i] === '\\' && s[i + 1] === '"') i++;
    else if (s[i] === '"') quoted = !quoted;
  }
  return i >= s.length && quoted ? null : i;
}

interface Options {
  certAuthority: boolean;
  namespaces?: string;
  validAfter?: SshTime;
  validBefore?: SshTime;
}

/** sshsigopt_parse: the options, or the reason OpenSSH gives for refusing them. */
function parseOptions(opts: string): Options | string {
  const out: Options = { certAuthority: false };
  let o = 0;
  const dequote = (): string | null => {
    if (opts[o] !== '"') return null;
    o++;
    let v = '';
    while (o < opts.length && opts[o] !== '"') {
      if (opts[o] === '\\' && opts[o + 1] === '"') o++;
      v += opts[o++];
    }
    if (o >= opts.length) return null;
    o++;
    return v;
  };
  const match = (term: string) => {
    if (opts.slice(o, o + term.length).toLowerCase() === term && opts[o + term.length] === '=') {
      o += term.length + 1;
      return true;
    }
    return false;
  };
  while (o < opts.length && opts[o] !== ' ' && opts[o] !== '\t') {
    if (opts.slice(o, o + 14).toLowerCase() === 'cert-authority') {
      o += 14;
      out.certAuthority = true;
    } else if (match('namespaces')) {
      if (out.namespaces !== undefined) return 'more than one namespaces= option';
      const v = dequote();
      if (v === null) return 'namespaces= needs a value in double quotes';
      out.namespaces = v;
    } else {
      for (const [name, field] of [['valid-after', 'validAfter'], ['valid-before', 'validBefore']] as const) {
        if (!match(name)) continue;
        if (out[field] !== undefined) return `more than one ${name}= option`;
        const v = dequote();
        if (v === null) return `${name}= needs a value in double quotes`;
        const t = parseSshTime(v);
        if (!t || t.seconds === 0) return `${name}="${fromBytes(v)}" is not a time OpenSSH reads (YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS after 1970, then Z for UTC)`;
        out[field] = t;
        break;
      }
    }
    if (o >= opts.length || opts[o] === ' ' || opts[o] === '\t') break;
    if (opts[o] !== ',') return `unknown option "${fromBytes(opts.slice(o).split(',')[0]!)}"`;
    o++;
    if (o >= opts.length) return 'the options end with a comma';
  }
  if (out.validAfter && out.validBefore && out.validBefore.seconds <= out.validAfter.seconds) return 'valid-before is not after valid-after';
  return out;
}

/** One line, read as check_allowed_keys_line reads it (`text` one character per byte, its "\n" included). */
function parseLine(text: string, line: number): Line | undefined {
  const nul = text.indexOf('\0');
  const raw = nul >= 0 ? text.slice(0, nul) : text;
  const cp = raw.slice(skipBlanks(raw));
  if (cp === '' || cp.startsWith('#')) return undefined;
  const first = strdelimw(cp);
  if (!first) return { line, reason: 'no principals and key (an unclosed quote, or nothing after the principals)' };
  const broken = (reason: string): BrokenLine => ({ line, principalBytes: first.token, reason });
  let options: Options = { certAuthority: false };
  let key = sshkeyRead(first.rest);
  if (!key) {
    const end = pastOptions(first.rest);
    if (end === null) return broken('an unclosed quote in the options');
    if (end >= first.rest.length) return broken(first.token === '' ? 'an empty line (ssh-keygen reports it as "missing key")' : 'no key');
    key = sshkeyRead(first.rest.slice(skipBlanks(first.rest, end + 1)));
    if (!key) return broken('no valid public key (expected "ssh-ed25519 AAAA…"; the key may be truncated or its base64 altered)');
    const parsed = parseOptions(first.rest.slice(0, end));
    if (typeof parsed === 'string') return broken(parsed);
    options = parsed;
  }
  if (key.key.kind === 'cert') return { line, principalBytes: first.token, reason: 'a certificate as the key: dotfleet trusts plain keys only and never uses this line', readable: true };
  return { line, principals: fromBytes(first.token), principalBytes: first.token, ...options, key: key.key, comment: key.comment };
}

export function parseAllowedSigners(input: string | Uint8Array): AllowedSigners {
  const text = typeof input === 'string' ? toBytes(input) : Buffer.from(input).toString('latin1');
  const entries: AllowedSigner[] = [];
  const broken: BrokenLine[] = [];
  const problems: SignersProblem[] = [];
  const lines = text.split('\n');
  // getline keeps each line's newline; a file ending in one has no line after it.
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((body, i) => {
    const line = i + 1;
    const parsed = parseLine(i < lines.length - 1 || text.endsWith('\n') ? `${body}\n` : body, line);
    if (!parsed) return;
    if ('reason' in parsed) {
      broken.push(parsed);
      const message = parsed.readable ? parsed.reason : `${parsed.reason}; ssh-keygen skips this line`;
      problems.push({ line, severity: parsed.principalBytes === '' ? 'warning' : 'error', message });
      return;
    }
    if (parsed.certAuthority) {
      problems.push({ line, severity: 'error', message: 'cert-authority keys are not supported: dotfleet verifies plain host keys, so this line never matches' });
    }
    for (const [name, t] of [['valid-after', parsed.validAfter], ['valid-before', parsed.validBefore]] as const) {
      if (t && !t.utc) problems.push({ line, severity: 'warning', message: `${name} has no trailing Z: OpenSSH reads it as local standard time (not summer time) of whoever verifies; add Z for UTC` });
    }
    entries.push(parsed);
  });
  return { entries, broken, problems, index: buildIndex(entries) };
}

export type LookupFault = 'unknown-key' | 'principal' | 'namespace-not-allowed' | 'not-yet-valid' | 'expired' | 'cert-authority';

export type Lookup =
  | { ok: true; entry: AllowedSigner }
  | { ok: false; code: LookupFault; message: string; line?: number };

/**
 * Is the key allowed to sign as `principal` in `namespace` at `time` (seconds)? The first line
 * that passes wins, as in ssh-keygen; otherwise the reason of the most specific near-miss.
 */
export function lookupSigner(signers: AllowedSigners, signer: SshPublicKey | KnownSigner, principal: string, namespace: string, time: number): Lookup {
  const { byPrincipal, byKey, patterned } = signers.index;
  const wanted = principalBytes(principal);
  // A KnownSigner (knownSigner on these same signers) carries its lines: no second look-up.
  const known = 'lines' in signer ? signer : undefined;
  const key = known ? known.key : (signer as SshPublicKey);
  const holding = known ? known.lines : (byKey.get(key.identity) ?? []);
  // Only these lines hold the key, in file order: the first of them that allows the signature
  // is the line ssh-keygen's scan over every line stops at.
  for (const e of holding) if (allows(e, wanted, namespace, time)) return { ok: true, entry: e };
  // None does: the reason is the nearest miss among the lines that could match the principal or
  // hold the key, taken in file order as ssh-keygen takes them.
  let nearMiss: { code: LookupFault; message: string; line: number; rank: number } | undefined;
  const miss = (code: LookupFault, message: string, line: number, rank: number) => {
    if (!nearMiss || rank > nearMiss.rank) nearMiss = { code, message, line, rank };
  };
  const candidates = [...new Set([...(byPrincipal.get(wanted) ?? []), ...patterned, ...holding])].sort((a, b) => a.line - b.line);
  for (const e of candidates) {
    const keyMatches = sameKey(e.key, key);
    if (matchPatternList(wanted, e.principalBytes) !== 1) {
      if (keyMatches) miss('principal', `the key is allowed for "${e.principals}", not for "${principal}"`, e.line, 1);
      continue;
    }
    if (!keyMatches) continue;
    if (e.namespaces !== undefined && matchPatternList(namespace, e.namespaces) !== 1) {
      miss('namespace-not-allowed', `the key may sign only in namespaces "${e.namespaces}", not "${namespace}"`, e.line, 3);
      continue;
    }
    if (e.validAfter && time < e.validAfter.seconds) {
      miss('not-yet-valid', `the key is valid only from ${new Date(e.validAfter.seconds * 1000).toISOString()}`, e.line, 3);
      continue;
    }
    if (e.validBefore && time > e.validBefore.seconds) {
      miss('expired', `the key was valid only until ${new Date(e.validBefore.seconds * 1000).toISOString()}`, e.line, 3);
      continue;
    }
    // (A line that passes every check holds the key and allows it: it was taken above.)
    if (e.certAuthority) miss('cert-authority', 'the key is listed only as a cert-authority, which dotfleet does not support', e.line, 2);
  }
  if (nearMiss) return { ok: false, code: nearMiss.code, message: nearMiss.message, line: nearMiss.line };
  return { ok: false, code: 'unknown-key', message: `the signing key is not in allowed_signers for "${principal}"` };
}

/** A principal as allowed_signers lines hold it: one character per byte. */
const principalBytes = (principal: string) => (/^[\x20-\x7e]*$/.test(principal) ? principal : toBytes(principal));

/** Does this line let its key sign as `wanted` (bytes) in `namespace` at `time`: what the scan above accepts. */
function allows(e: AllowedSigner, wanted: string, namespace: string, time: number): boolean {
  return (
    matchPatternList(wanted, e.principalBytes) === 1 &&
    (e.namespaces === undefined || matchPatternList(namespace, e.namespaces) === 1) &&
    !(e.validAfter && time < e.validAfter.seconds) &&
    !(e.validBefore && time > e.validBefore.seconds) &&
    !e.certAuthority
  );
}

/**
 * Could some key sign as `principal` in `namespace` at `time`? A line whose principals match,
 * whose namespaces allow it, that is valid then and not a cert-authority: what lookupSigner
 * would accept for the right key. (A rollout's pre-check: a host no key can speak for could
 * never be verified.)
 */
export function someKeyMaySign(signers: AllowedSigners, principal: string, namespace: string, time: number): boolean {
  const wanted = principalBytes(principal);
  const candidates = [...(signers.index.byPrincipal.get(wanted) ?? []), ...signers.index.patterned];
  return candidates.some((e) => allows(e, wanted, namespace, time));
}

/**
 * The principals a key may sign as in `namespace` at `time`, as `ssh-keygen -Y find-principals`
 * finds them (the principals field of each line that holds the key and allows it), in file order.
 */
export function principalsFor(signers: AllowedSigners, key: SshPublicKey, namespace: string, time: number): { principals: string; line: number }[] {
  return (signers.index.byKey.get(key.identity) ?? [])
    .filter(
      (e) =>
        sameKey(e.key, key) &&
        (e.namespaces === undefined || matchPatternList(namespace, e.namespaces) === 1) &&
        !(e.validAfter && time < e.validAfter.seconds) &&
        !(e.validBefore && time > e.validBefore.seconds) &&
        !e.certAuthority,
    )
    .map((e) => ({ principals: e.principals, line: e.line }));
}

/** Fleet hygiene on top of what ssh-keygen accepts. */
export function lintAllowedSigners(signers: AllowedSigners, options: { hostNamespace?: string } = {}): SignersProblem[] {
  const out: SignersProblem[] = [...signers.problems];
  const byKey = new Map<string, AllowedSigner[]>();
  for (const e of signers.entries) {
    const k = e.key.identity;
    byKey.set(k, [...(byKey.get(k) ?? []), e]);
    if (isWildcardList(e.principalBytes)) {
      out.push({ line: e.line, severity: 'warning', message: `the principals "${e.principals}" are a pattern: any matching host name could sign as this key; list hosts by name` });
    } else if (e.principals.includes(',')) {
      out.push({ line: e.line, severity: 'warning', message: `one key for several principals (${e.principals}): each host should have its own key` });
    }
    if (e.namespaces === undefined) {
      out.push({ line: e.line, severity: 'warning', message: `no namespaces= option: the key is trusted for every namespace; add namespaces="${options.hostNamespace ?? 'dotfleet-attestation'}"` });
    }
  }
  for (const list of byKey.values()) {
    const principals = new Set(list.map((e) => e.principals));
    if (principals.size > 1) {
      for (const e of list.slice(1)) {
        out.push({ line: e.line, severity: 'warning', message: `this key is also listed for "${list[0]!.principals}" (line ${list[0]!.line}): one key under two principals` });
      }
    }
  }
  return out.sort((a, b) => a.line - b.line);
}
