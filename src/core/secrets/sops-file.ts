/**
 * Reading SOPS files without decrypting them: the metadata (recipients of every kind, key
 * groups, MAC, version, lastmodified, which keys are meant to be encrypted) and, for each value,
 * whether it is encrypted and a digest of its ciphertext. The bot never holds a key; a value is
 * only ever "changed", never shown.
 *
 * YAML and JSON keep the metadata in a `sops` table; dotenv (`sops_…=`) and INI (`[sops]`)
 * flatten it with `__` between keys, `list_N` for list items and `map_KEY` for table keys.
 */
import { createHash } from 'node:crypto';
import YAML from 'yaml';
import { DotfleetError, lineColumnAt } from '../errors.js';
import { isPlainObject } from '../data.js';
import { ageRecipientProblem } from './age.js';

export type SopsFormat = 'yaml' | 'json' | 'dotenv' | 'ini';
export type RecipientKind = 'age' | 'pgp' | 'kms' | 'gcp_kms' | 'azure_kv' | 'hc_vault';
export const RECIPIENT_KINDS: RecipientKind[] = ['age', 'pgp', 'kms', 'gcp_kms', 'azure_kv', 'hc_vault'];

export interface Recipient {
  kind: RecipientKind;
  /** age public key, PGP fingerprint, KMS ARN, GCP resource id, Azure key URL, Vault key URL. */
  id: string;
  /** Index of the key group (0 when the file has no key_groups). */
  group: number;
}

export const ENCRYPTION_RULES = ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex', 'unencrypted_comment_regex', 'encrypted_comment_regex', 'mac_only_encrypted'] as const;
export type EncryptionRules = Partial<Record<(typeof ENCRYPTION_RULES)[number], string | boolean>>;

export interface SopsValue {
  encrypted: boolean;
  /** Encrypted: the `type:` sops recorded (str, int, float, bool, bytes, comment). */
  type?: string;
  /** SHA-256 of the stored text (ciphertext for encrypted values): tells "changed", shows nothing. */
  digest: string;
  /** Whether the rules say this key should be encrypted (undefined: the file's comment rules decide, which dotfleet does not track). */
  expectEncrypted: boolean | undefined;
}

export interface BadRecipient {
  id: string;
  problem: string;
  line?: number;
}

export interface SopsFile {
  path: string;
  format: SopsFormat;
  version?: string;
  lastModified?: string;
  mac: boolean;
  recipients: Recipient[];
  keyGroups: number;
  /** Shares needed to decrypt: shamir_threshold, or the number of key groups (1 without groups). */
  shamirThreshold: number;
  rules: EncryptionRules;
  /** age recipients that are not valid age keys. */
  badRecipients: BadRecipient[];
  /** Rule regular expressions JavaScript cannot compile (they match nothing here). */
  invalidRules: string[];
  /** Key path (`db.password`, `an_array.0`) → value facts, in file order. */
  values: Map<string, SopsValue>;
}

const ENC = /^ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:(\w+)\]$/;

export function formatOf(path: string): SopsFormat | undefined {
  if (/\.ya?ml$/i.test(path)) return 'yaml';
  if (/\.json$/i.test(path)) return 'json';
  if (/\.env$/i.test(path) || /(^|\/)\.env(\.|$)/.test(path)) return 'dotenv';
  if (/\.ini$/i.test(path)) return 'ini';
  return undefined;
}

/**
 * Does this text carry SOPS metadata? Robust to the forms a person or a tool may write: a YAML
 * `sops` key in block or flow style, quoted, with a trailing comment; JSON's `"sops"` anywhere;
 * dotenv's `sops_…=` lines; INI's `[sops]` section, spaced or not.
 */
export function looksLikeSops(text: string, format: SopsFormat): boolean {
  switch (format) {
    case 'yaml':
      return /^(?:sops|"sops"|'sops')[ \t]*:/m.test(text) || /^\{[\s\S]*["']?sops["']?\s*:/.test(text.trimStart());
    case 'json':
      return /"sops"\s*:/.test(text);
    case 'dotenv':
      return /^[ \t]*(?:export[ \t]+)?sops_\w+[ \t]*=/m.test(text);
    case 'ini':
      return /^[ \t]*\[[ \t]*sops[ \t]*\]/m.test(text);
  }
}

/** SOPS content in any format, or a sops-encrypted value: such text is summarised, never printed. */
export function looksLikeSopsAny(text: string): boolean {
  return /ENC\[AES256_GCM,/.test(text) || (['yaml', 'json', 'dotenv', 'ini'] as const).some((f) => looksLikeSops(text, f));
}

/**
 * A SOPS file that cannot be read. Its message says where (line, column) and what kind of fault,
 * never the parser's own words nor any byte of the file: the file holds secrets, and a parser's
 * message quotes what it choked on.
 */
export class SopsSyntaxError extends DotfleetError {
  constructor(file: string, line: number | undefined, column: number | undefined, kind: string) {
    super('yaml-syntax', `cannot read this SOPS file${line !== undefined ? ` at line ${line}${column !== undefined ? `, column ${column}` : ''}` : ''}: ${kind}`, {
      file,
      line,
      column,
      hint: 'fix the file by hand where it says, or re-create it with sops; dotfleet never prints its content',
    });
  }
}

/** The first fault of a YAML text, by position and the parser's code (never its message). */
function yamlFault(docs: YAML.Document.Parsed[]): { offset?: number; kind: string } | undefined {
  for (const doc of docs) {
    const e = doc.errors[0];
    if (e) return { offset: e.pos?.[0], kind: `a YAML error (${e.code})` };
  }
  return undefined;
}

function parseYamlSops(path: string, text: string): unknown {
  const docs = YAML.parseAllDocuments(text, { logLevel: 'silent', prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  const fault = yamlFault(list);
  if (fault) {
    const at = fault.offset === undefined ? undefined : lineColumnAt(text, fault.offset);
    throw new SopsSyntaxError(path, at?.line, at?.column, fault.kind);
  }
  if (list.length > 1) {
    const second = list[1]!.range?.[0];
    const at = second === undefined ? undefined : lineColumnAt(text, second);
    throw new SopsSyntaxError(path, at?.line, undefined, `${list.length} YAML documents; a SOPS file that dotfleet reads holds one (split it into one file per document)`);
  }
  try {
    return list[0]?.toJS({ maxAliasCount: 100 }) ?? null;
  } catch {
    throw new SopsSyntaxError(path, undefined, undefined, 'YAML aliases that cannot be expanded');
  }
}

function parseJsonSops(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    // Only the position is taken from the message; YAML (a superset of JSON) places the fault otherwise.
    const m = /position (\d+)/.exec((e as Error).message);
    let offset = m ? Number(m[1]) : undefined;
    if (offset === undefined) offset = yamlFault([YAML.parseDocument(text, { logLevel: 'silent', prettyErrors: false })])?.offset;
    const at = offset === undefined ? undefined : lineColumnAt(text, offset);
    throw new SopsSyntaxError(path, at?.line, at?.column, 'a JSON syntax error');
  }
}

/** `pgp__list_0__map_fp` → ['pgp', 0, 'fp'] → nested tables and lists. */
function unflatten(flat: Map<string, string>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of flat) {
    const parts = key.split('__').map((p) => (/^list_\d+$/.test(p) ? Number(p.slice(5)) : p.startsWith('map_') ? p.slice(4) : p));
    let node: any = root;
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      if (last) node[part] = value.replace(/\\n/g, '\n');
      else {
        node[part] ??= typeof parts[i + 1] === 'number' ? [] : {};
        node = node[part];
      }
    });
  }
  return root;
}

function parseDotenv(path: string, text: string): { data: Map<string, unknown>; sops: Record<string, unknown> } {
  const data = new Map<string, unknown>();
  const meta = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new SopsSyntaxError(path, i + 1, undefined, 'not a KEY=VALUE line');
    const key = line.slice(0, eq).trim().replace(/^export\s+/, '');
    if (key === '') throw new SopsSyntaxError(path, i + 1, 1, 'a value with no key');
    const value = line.slice(eq + 1);
    if (key.startsWith('sops_')) meta.set(key.slice(5), value);
    else data.set(key, value);
  });
  return { data, sops: unflatten(meta) };
}

/**
 * INI as sops reads it (go-ini): each section is a branch of the tree, so `[db] password` is
 * the path ["db", "password"], and keys before any section are in the section "DEFAULT".
 */
function parseIni(path: string, text: string): { data: Map<string, unknown>; sops: Record<string, unknown> } {
  const data = new Map<string, unknown>();
  const meta = new Map<string, string>();
  let section = 'DEFAULT';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) return;
    if (line.startsWith('[')) {
      const s = /^\[([^\]]*)\]/.exec(line);
      if (!s) throw new SopsSyntaxError(path, i + 1, 1, 'a section header with no closing "]"');
      section = s[1]!.trim() || 'DEFAULT';
      return;
    }
    const eq = line.search(/[=:]/);
    if (eq < 0) throw new SopsSyntaxError(path, i + 1, undefined, 'not a KEY = VALUE line');
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (section === 'sops') {
      meta.set(key, value);
      return;
    }
    let table = data.get(section) as Record<string, unknown> | undefined;
    if (!table) data.set(section, (table = {}));
    table[key] = value;
  });
  return { data, sops: unflatten(meta) };
}

function recipientId(kind: RecipientKind, r: Record<string, unknown>): string | undefined {
  const s = (k: string) => (typeof r[k] === 'string' ? (r[k] as string) : undefined);
  switch (kind) {
    case 'age':
      return s('recipient');
    case 'pgp':
      return s('fp');
    case 'kms':
      return s('arn');
    case 'gcp_kms':
      return s('resource_id');
    case 'azure_kv':
      return s('vault_url') && `${s('vault_url')}/keys/${s('name')}/${s('version') ?? ''}`.replace(/\/$/, '');
    case 'hc_vault':
      return s('vault_address') && `${s('vault_address')}/v1/${s('engine_path')}/keys/${s('key_name')}`;
  }
}

function recipientsOf(table: Record<string, unknown>, group: number): Recipient[] {
  const out: Recipient[] = [];
  for (const kind of RECIPIENT_KINDS) {
    const list = table[kind];
    if (!Array.isArray(list)) continue;
    for (const r of list) {
      const id = isPlainObject(r) ? recipientId(kind, r) : undefined;
      if (id) out.push({ kind, id, group });
    }
  }
  return out;
}

/**
 * Whether sops encrypts the value at this key path (the keys from the root; list positions are
 * not part of it), by the file's rules, in sops' own order (shouldBeEncrypted). Undefined when
 * the file uses comment rules, which depend on comments dotfleet does not track.
 */
export function expectEncrypted(keys: string[], rules: EncryptionRules): boolean | undefined {
  const str = (k: keyof EncryptionRules) => (typeof rules[k] === 'string' && rules[k] !== '' ? (rules[k] as string) : undefined);
  if (str('unencrypted_comment_regex') !== undefined || str('encrypted_comment_regex') !== undefined) return undefined;
  const us = str('unencrypted_suffix');
  const es = str('encrypted_suffix');
  const ur = str('unencrypted_regex');
  const er = str('encrypted_regex');
  const none = us === undefined && es === undefined && ur === undefined && er === undefined;
  let encrypted = true;
  const suffix = none ? '_unencrypted' : us;
  if (suffix !== undefined && keys.some((k) => k.endsWith(suffix))) encrypted = false;
  if (es !== undefined) encrypted = keys.some((k) => k.endsWith(es));
  if (ur !== undefined && keys.some((k) => safeRegex(ur).test(k))) encrypted = false;
  if (er !== undefined) encrypted = keys.some((k) => safeRegex(er).test(k));
  return encrypted;
}

const regexes = new Map<string, RegExp>();
/** A rule's regular expression; one that JavaScript cannot compile matches nothing (and is reported by the caller). */
function safeRegex(source: string): RegExp {
  let r = regexes.get(source);
  if (!r) {
    try {
      r = new RegExp(source);
    } catch {
      r = /(?!)/;
    }
    regexes.set(source, r);
  }
  return r;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function walk(value: unknown, path: string[], keys: string[], rules: EncryptionRules, out: Map<string, SopsValue>): void {
  if (Array.isArray(value)) return value.forEach((v, i) => walk(v, [...path, String(i)], keys, rules, out));
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) walk(v, [...path, k], [...keys, k], rules, out);
    return;
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const m = ENC.exec(text);
  // sops leaves empty strings as they are: there is nothing to protect.
  const expect = text !== '' && text !== '""' ? expectEncrypted(keys, rules) : false;
  out.set(path.join('.'), { encrypted: !!m, type: m?.[1], digest: digest(text), expectEncrypted: expect });
}

/** Age recipients that are not valid age keys, with the line that names them. */
function badAgeRecipients(text: string, recipients: Recipient[]): BadRecipient[] {
  const out: BadRecipient[] = [];
  for (const r of recipients) {
    if (r.kind !== 'age') continue;
    const problem = ageRecipientProblem(r.id);
    if (!problem) continue;
    const at = text.indexOf(r.id);
    out.push({ id: r.id, problem, line: at < 0 ? undefined : lineColumnAt(text, at).line });
  }
  return out;
}

/**
 * Parse a SOPS file; null when the file is not one (no metadata). A file that claims to be one
 * but cannot be read throws a SopsSyntaxError naming its line and the kind of fault, and nothing
 * of its content.
 */
export function parseSopsFile(path: string, bytes: Uint8Array): SopsFile | null {
  const format = formatOf(path);
  if (!format) return null;
  const text = Buffer.from(bytes).toString('utf8');
  if (!looksLikeSops(text, format)) return null;
  let data: unknown;
  let meta: Record<string, unknown>;
  if (format === 'yaml' || format === 'json') {
    const doc = format === 'json' ? parseJsonSops(path, text) : parseYamlSops(path, text);
    if (!isPlainObject(doc) || !isPlainObject(doc.sops)) throw new SopsSyntaxError(path, undefined, undefined, 'a "sops" entry that is not a table at the top of the file');
    const { sops, ...rest } = doc;
    data = rest;
    meta = sops as Record<string, unknown>;
  } else {
    const parsed = format === 'dotenv' ? parseDotenv(path, text) : parseIni(path, text);
    data = Object.fromEntries(parsed.data);
    meta = parsed.sops;
  }
  const rules: EncryptionRules = {};
  for (const r of ENCRYPTION_RULES) if (meta[r] !== undefined) rules[r] = meta[r] as string | boolean;
  const groups = Array.isArray(meta.key_groups) ? meta.key_groups.filter(isPlainObject) : [];
  const recipients = groups.length > 0 ? groups.flatMap((g, i) => recipientsOf(g, i)) : recipientsOf(meta, 0);
  const values = new Map<string, SopsValue>();
  walk(data, [], [], rules, values);
  const threshold = Number(meta.shamir_threshold);
  return {
    path,
    format,
    version: typeof meta.version === 'string' ? meta.version : undefined,
    lastModified: typeof meta.lastmodified === 'string' ? meta.lastmodified : undefined,
    mac: typeof meta.mac === 'string' && meta.mac !== '',
    recipients,
    keyGroups: Math.max(groups.length, 1),
    // sops: the shares needed are shamir_threshold, or every group when it is not set.
    shamirThreshold: Number.isInteger(threshold) && threshold > 0 ? threshold : Math.max(groups.length, 1),
    rules,
    values,
    badRecipients: badAgeRecipients(text, recipients),
    invalidRules: (['unencrypted_regex', 'encrypted_regex', 'unencrypted_comment_regex', 'encrypted_comment_regex'] as const).filter((k) => typeof rules[k] === 'string' && safeRegex(rules[k] as string).source === '(?!)'),
  };
}
