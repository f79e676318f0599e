/**
 * allowed_signers (ssh-keygen(1), ALLOWED SIGNERS): who may sign, in which namespaces, when.
 *
 * Lines are read and matched as `ssh-keygen -Y verify` does: in order, a line whose principals
 * do not match, that cannot be parsed, whose `namespaces=` excludes the namespace, whose validity
 * window excludes the time, or whose key differs is skipped; the first line that passes
 * verifies. Lines that cannot be used are reported with their line numbers instead of silently
 * ignored, and a failed lookup says why the closest line did not match.
 */
import { parsePublicKeyText, sameKey, type SshPublicKey } from './keys.js';
import { isWildcardList, matchPatternList } from './patterns.js';
import { parseSshTime, type SshTime } from './time.js';

export interface AllowedSigner {
  line: number;
  /** Principal pattern list (`host1,host2`, `*.lan`, `!x,*`). */
  principals: string;
  namespaces?: string;
  validAfter?: SshTime;
  validBefore?: SshTime;
  certAuthority: boolean;
  key: SshPublicKey;
  comment: string;
}

export interface SignersProblem {
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

export interface AllowedSigners {
  entries: AllowedSigner[];
  problems: SignersProblem[];
  /** Lines by plain principal and by key; lines whose principals are a pattern or a list are always candidates. */
  index: { byPrincipal: Map<string, AllowedSigner[]>; byKey: Map<string, AllowedSigner[]>; patterned: AllowedSigner[] };
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function buildIndex(entries: AllowedSigner[]): AllowedSigners['index'] {
  const index: AllowedSigners['index'] = { byPrincipal: new Map(), byKey: new Map(), patterned: [] };
  for (const e of entries) {
    push(index.byKey, e.key.blob.toString('base64'), e);
    if (/[*?!,]/.test(e.principals)) index.patterned.push(e);
    else push(index.byPrincipal, e.principals, e);
  }
  return index;
}

/** The trusted key object with this blob, if any line lists it (it keeps its node:crypto key). */
export function knownKey(signers: AllowedSigners, blob: Buffer): SshPublicKey | undefined {
  return signers.index.byKey.get(blob.toString('base64'))?.[0]?.key;
}

/** A token as OpenSSH's strdelimw reads it: a quoted string, or up to whitespace. */
function token(s: { rest: string }): string | null {
  s.rest = s.rest.replace(/^[ \t]+/, '');
  if (s.rest === '') return null;
  if (s.rest.startsWith('"')) {
    const close = s.rest.indexOf('"', 1);
    if (close < 0) return null;
    const t = s.rest.slice(1, close);
    s.rest = s.rest.slice(close + 1);
    return t;
  }
  const m = /^[^ \t]+/.exec(s.rest)!;
  s.rest = s.rest.slice(m[0].length);
  return m[0];
}

/** The options field: up to the first whitespace outside double quotes. */
function optionsField(s: { rest: string }): string | null {
  s.rest = s.rest.replace(/^[ \t]+/, '');
  let quoted = false;
  let i = 0;
  for (; i < s.rest.length; i++) {
    const c = s.rest[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) break;
  }
  if (quoted) return null;
  const out = s.rest.slice(0, i);
  s.rest = s.rest.slice(i);
  return out;
}

interface Options {
  certAuthority: boolean;
  namespaces?: string;
  validAfter?: SshTime;
  validBefore?: SshTime;
}

function parseOptions(text: string): Options | string {
  const out: Options = { certAuthority: false };
  let rest = text;
  while (rest !== '') {
    const m = /^(cert-authority|namespaces|valid-after|valid-before)(?=[=,]|$)/i.exec(rest);
    if (!m) return `unknown option "${rest.split(',')[0]}"`;
    const name = m[1]!.toLowerCase();
    rest = rest.slice(m[0].length);
    if (name === 'cert-authority') out.certAuthority = true;
    else {
      const v = /^="([^"]*)"/.exec(rest);
      if (!v) return `${name} needs a quoted value: ${name}="…"`;
      rest = rest.slice(v[0].length);
      if (name === 'namespaces') {
        if (out.namespaces !== undefined) return 'more than one namespaces= option';
        out.namespaces = v[1]!;
      } else {
        const key = name === 'valid-after' ? 'validAfter' : 'validBefore';
        if (out[key] !== undefined) return `more than one ${name}= option`;
        const t = parseSshTime(v[1]!);
        if (!t) return `${name}="${v[1]}" is not a time (YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, then Z for UTC)`;
        out[key] = t;
      }
    }
    if (rest === '') break;
    if (!rest.startsWith(',') || rest === ',') return 'options must be separated by single commas';
    rest = rest.slice(1);
  }
  return out;
}

function readKey(s: { rest: string }): { key: SshPublicKey; comment: string } | null {
  const m = /^[ \t]*(\S+)[ \t]+(\S+)[ \t]*(.*)$/.exec(s.rest);
  if (!m) return null;
  const key = parsePublicKeyText(m[1]!, m[2]!);
  return key ? { key, comment: m[3]!.trim() } : null;
}

export function parseAllowedSigners(text: string): AllowedSigners {
  const entries: AllowedSigner[] = [];
  const problems: SignersProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const body = raw.replace(/\r$/, '');
    const trimmed = body.replace(/^[ \t]+/, '');
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const s = { rest: trimmed };
    const bad = (message: string) => problems.push({ line, severity: 'error', message: `${message}; ssh-keygen skips this line` });
    const principals = token(s);
    if (principals === null || principals === '') return void bad('no principals (or an unclosed quote)');
    let options: Options = { certAuthority: false };
    let key = readKey(s);
    if (!key) {
      const field = optionsField(s);
      if (field === null) return void bad('an unclosed quote in the options');
      const parsed = parseOptions(field);
      if (typeof parsed === 'string') return void bad(parsed);
      options = parsed;
      key = readKey(s);
      if (!key) return void bad('no valid public key (expected "ssh-ed25519 AAAA…")');
    }
    if (options.certAuthority) {
      problems.push({ line, severity: 'error', message: 'cert-authority keys are not supported: dotfleet verifies plain host keys, so this line never matches' });
    }
    for (const [name, t] of [['valid-after', options.validAfter], ['valid-before', options.validBefore]] as const) {
      if (t && !t.utc) problems.push({ line, severity: 'warning', message: `${name} has no trailing Z: it is read in the local time zone of whoever verifies; add Z for UTC` });
    }
    entries.push({ line, principals, ...options, key: key.key, comment: key.comment });
  });
  return { entries, problems, index: buildIndex(entries) };
}

export type LookupFault = 'unknown-key' | 'principal' | 'namespace-not-allowed' | 'not-yet-valid' | 'expired' | 'cert-authority';

export type Lookup =
  | { ok: true; entry: AllowedSigner }
  | { ok: false; code: LookupFault; message: string; line?: number };

/**
 * Is `key` allowed to sign as `principal` in `namespace` at `time` (seconds)? The first line
 * that passes wins, as in ssh-keygen; otherwise the reason of the most specific near-miss.
 */
export function lookupSigner(signers: AllowedSigners, key: SshPublicKey, principal: string, namespace: string, time: number): Lookup {
  let nearMiss: { code: LookupFault; message: string; line: number; rank: number } | undefined;
  const miss = (code: LookupFault, message: string, line: number, rank: number) => {
    if (!nearMiss || rank > nearMiss.rank) nearMiss = { code, message, line, rank };
  };
  // Only these lines can match the principal or hold the key; taken in file order, this is the
  // same scan as ssh-keygen's over every line.
  const { byPrincipal, byKey, patterned } = signers.index;
  const candidates = [...new Set([...(byPrincipal.get(principal) ?? []), ...patterned, ...(byKey.get(key.blob.toString('base64')) ?? [])])].sort((a, b) => a.line - b.line);
  for (const e of candidates) {
    const keyMatches = sameKey(e.key, key);
    if (matchPatternList(principal, e.principals) !== 1) {
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
    if (e.certAuthority) {
      miss('cert-authority', 'the key is listed only as a cert-authority, which dotfleet does not support', e.line, 2);
      continue;
    }
    return { ok: true, entry: e };
  }
  if (nearMiss) return { ok: false, code: nearMiss.code, message: nearMiss.message, line: nearMiss.line };
  return { ok: false, code: 'unknown-key', message: `the signing key is not in allowed_signers for "${principal}"` };
}

/** Fleet hygiene on top of what ssh-keygen accepts. */
export function lintAllowedSigners(signers: AllowedSigners, options: { hostNamespace?: string } = {}): SignersProblem[] {
  const out: SignersProblem[] = [...signers.problems];
  const byKey = new Map<string, AllowedSigner[]>();
  for (const e of signers.entries) {
    const k = e.key.blob.toString('base64');
    byKey.set(k, [...(byKey.get(k) ?? []), e]);
    if (isWildcardList(e.principals)) {
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
