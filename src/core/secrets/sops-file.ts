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
import { DotfleetError } from '../errors.js';
import { isPlainObject } from '../data.js';

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
  /** Whether the rules say this key should be encrypted. */
  expectEncrypted: boolean;
}

export interface SopsFile {
  path: string;
  format: SopsFormat;
  version?: string;
  lastModified?: string;
  mac: boolean;
  recipients: Recipient[];
  keyGroups: number;
  shamirThreshold?: number;
  rules: EncryptionRules;
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

/** Cheap check before parsing: does this text carry SOPS metadata at all? */
export function looksLikeSops(text: string, format: SopsFormat): boolean {
  switch (format) {
    case 'yaml':
      return /^sops:\s*$/m.test(text);
    case 'json':
      return /"sops"\s*:/.test(text);
    case 'dotenv':
      return /^sops_(version|mac|lastmodified)=/m.test(text);
    case 'ini':
      return /^\[sops\]\s*$/m.test(text);
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

function parseDotenv(text: string): { data: Map<string, string>; sops: Record<string, unknown> } {
  const data = new Map<string, string>();
  const meta = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1);
    if (key.startsWith('sops_')) meta.set(key.slice(5), value);
    else data.set(key, value);
  }
  return { data, sops: unflatten(meta) };
}

function parseIni(text: string): { data: Map<string, string>; sops: Record<string, unknown> } {
  const data = new Map<string, string>();
  const meta = new Map<string, string>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (section === 'sops') meta.set(key, value);
    else data.set(section ? `${section}.${key}` : key, value);
  }
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

/** Whether sops encrypts the value at this key path, by the file's rules (sops' own logic). */
function expectEncrypted(path: string[], rules: EncryptionRules): boolean {
  const keys = path.filter((p) => !/^\d+$/.test(p));
  const str = (k: keyof EncryptionRules) => (typeof rules[k] === 'string' ? (rules[k] as string) : undefined);
  const us = str('unencrypted_suffix');
  const es = str('encrypted_suffix');
  const ur = str('unencrypted_regex');
  const er = str('encrypted_regex');
  if (es !== undefined) return keys.some((k) => k.endsWith(es));
  if (er !== undefined) return keys.some((k) => new RegExp(er).test(k));
  if (ur !== undefined) return !keys.some((k) => new RegExp(ur).test(k));
  return !keys.some((k) => k.endsWith(us ?? '_unencrypted'));
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function walk(value: unknown, path: string[], rules: EncryptionRules, out: Map<string, SopsValue>): void {
  if (Array.isArray(value)) return value.forEach((v, i) => walk(v, [...path, String(i)], rules, out));
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) walk(v, [...path, k], rules, out);
    return;
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const m = ENC.exec(text);
  // sops leaves empty strings as they are: there is nothing to protect.
  const expect = text !== '' && text !== '""' && expectEncrypted(path, rules);
  out.set(path.join('.'), { encrypted: !!m, type: m?.[1], digest: digest(text), expectEncrypted: expect });
}

/**
 * Parse a SOPS file; null when the file is not one (no metadata). A file that claims to be one
 * but cannot be read throws a DotfleetError naming it.
 */
export function parseSopsFile(path: string, bytes: Uint8Array): SopsFile | null {
  const format = formatOf(path);
  if (!format) return null;
  const text = Buffer.from(bytes).toString('utf8');
  if (!looksLikeSops(text, format)) return null;
  let data: unknown;
  let meta: Record<string, unknown>;
  try {
    if (format === 'yaml' || format === 'json') {
      const doc = format === 'json' ? JSON.parse(text) : YAML.parse(text);
      if (!isPlainObject(doc) || !isPlainObject(doc.sops)) return null;
      const { sops, ...rest } = doc;
      data = rest;
      meta = sops as Record<string, unknown>;
    } else {
      const parsed = format === 'dotenv' ? parseDotenv(text) : parseIni(text);
      data = Object.fromEntries(parsed.data);
      meta = parsed.sops;
    }
  } catch (e) {
    throw new DotfleetError('yaml-syntax', `cannot read the SOPS file: ${(e as Error).message.split('\n')[0]}`, { file: path, hint: 'is it a valid SOPS file? sops --decrypt would say more' });
  }
  const rules: EncryptionRules = {};
  for (const r of ENCRYPTION_RULES) if (meta[r] !== undefined) rules[r] = meta[r] as string | boolean;
  const groups = Array.isArray(meta.key_groups) ? meta.key_groups.filter(isPlainObject) : [];
  const recipients = groups.length > 0 ? groups.flatMap((g, i) => recipientsOf(g, i)) : recipientsOf(meta, 0);
  const values = new Map<string, SopsValue>();
  walk(data, [], rules, values);
  return {
    path,
    format,
    version: typeof meta.version === 'string' ? meta.version : undefined,
    lastModified: typeof meta.lastmodified === 'string' ? meta.lastmodified : undefined,
    mac: typeof meta.mac === 'string' && meta.mac !== '',
    recipients,
    keyGroups: Math.max(groups.length, 1),
    shamirThreshold: typeof meta.shamir_threshold === 'number' ? meta.shamir_threshold : undefined,
    rules,
    values,
  };
}
