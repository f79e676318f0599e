/**
 * SOPS decryption given the data key, as sops does it (getsops/sops sops.go Tree.Decrypt and
 * aes/cipher.go), for YAML, JSON and dotenv files: every value walked in document order;
 * encrypted ones opened with AES-256-GCM under the data key, the path of keys (list positions
 * are not part of it) joined by ":" plus ":" as additional data; the MAC (SHA-512 over every
 * value, or only encrypted ones with mac_only_encrypted, comments left out) checked against the
 * stored one, itself encrypted with lastmodified as additional data.
 *
 * Only the host calls this (src/host/secrets.ts). Its errors name the file and key and say what
 * failed, never a byte of a value.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import YAML from 'yaml';
import { DotfleetError } from '../errors.js';
import { expectEncrypted, formatOf, parseSopsFile, type EncryptionRules } from './sops-file.js';

const ENC = /^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:(\w+)\]$/;

/** sops.go MACOnlyEncryptedInitialization. */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from([0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69]);

/** A value of the tree: its key path (with list positions, as markers name it) and sops' path (keys only). */
interface Leaf {
  key: string[];
  aad: string[];
  value: string | bigint | number | boolean;
}

/** The data key's wrapped copies a host may open: age stanzas (armoured age files) and PGP messages. */
export interface SopsKeys {
  age: { recipient: string; enc: string }[];
  pgp: { fp: string; enc: string }[];
  /** More than one key group: the data key is split (Shamir); only sops itself can join it. */
  keyGroups: number;
  mac: string | undefined;
  lastModified: string | undefined;
  rules: EncryptionRules;
  macOnlyEncrypted: boolean;
}

const stanzas = <T>(list: unknown, pick: (o: Record<string, unknown>) => T | undefined): T[] =>
  Array.isArray(list) ? list.flatMap((o) => (o && typeof o === 'object' ? (pick(o as Record<string, unknown>) ?? []) : [])) : [];

function keysOf(meta: Record<string, unknown>): SopsKeys {
  const groups = Array.isArray(meta.key_groups) ? (meta.key_groups as Record<string, unknown>[]) : [meta];
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const rules: EncryptionRules = {};
  for (const k of ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex', 'unencrypted_comment_regex', 'encrypted_comment_regex'] as const) if (typeof meta[k] === 'string') rules[k] = meta[k] as string;
  return {
    age: groups.flatMap((g) => stanzas(g.age, (o) => (str(o.recipient) && str(o.enc) ? { recipient: str(o.recipient)!, enc: str(o.enc)! } : undefined))),
    pgp: groups.flatMap((g) => stanzas(g.pgp, (o) => (str(o.fp) && str(o.enc) ? { fp: str(o.fp)!, enc: str(o.enc)! } : undefined))),
    keyGroups: Array.isArray(meta.key_groups) ? meta.key_groups.length : 1,
    mac: str(meta.mac),
    lastModified: str(meta.lastmodified),
    rules,
    macOnlyEncrypted: meta.mac_only_encrypted === true || meta.mac_only_encrypted === 'true',
  };
}

/** The tree in document order (Maps keep it, integer-like keys included) and the metadata. */
function readTree(path: string, text: string): { leaves: Leaf[]; keys: SopsKeys } {
  const format = formatOf(path);
  const leaves: Leaf[] = [];
  if (format === 'dotenv') {
    const meta = new Map<string, string>();
    // As sops' dotenv store reads it: lines split at "\n", empty ones skipped, "#" in the first
    // column a comment, the key everything before the first "=" (spaces included), "\n" in a value a newline.
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const eq = line.indexOf('=');
      if (eq < 0) throw new DotfleetError('usage', `${path}: a line that is not KEY=VALUE`, { file: path, hint: 're-encrypt the file with sops' });
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1).replace(/\\n/g, '\n');
      if (key.startsWith('sops_')) meta.set(key.slice(5), value);
      // Markers name the key as dotfleet reads it (trimmed); sops authenticates it as written.
      else leaves.push({ key: [key.trim().replace(/^export\s+/, '')], aad: [key], value });
    }
    const flat: Record<string, unknown> = {};
    const age: { recipient: string; enc: string }[] = [];
    const pgp: { fp: string; enc: string }[] = [];
    for (const [k, v] of meta) {
      const m = /^(age|pgp)__list_(\d+)__map_(\w+)$/.exec(k);
      if (m) {
        const list: Record<string, string>[] = m[1] === 'age' ? (age as never) : (pgp as never);
        (list[Number(m[2])] ??= {})[m[3]!] = v;
      } else flat[k] = v;
    }
    if (Object.keys(meta).some((k) => k.startsWith('key_groups'))) flat.key_groups = [{}, {}];
    const keys = keysOf({ ...flat, age: age.filter(Boolean), pgp: pgp.filter(Boolean) });
    return { leaves, keys };
  }
  if (format !== 'yaml' && format !== 'json') throw new DotfleetError('usage', `dotfleet decrypts YAML, JSON and dotenv SOPS files itself; ${path} needs sops`, { file: path, hint: 'install sops on this host' });
  const doc = YAML.parseDocument(text, { intAsBigInt: true, logLevel: 'silent', uniqueKeys: false });
  const root = doc.toJS({ mapAsMap: true, maxAliasCount: 100 }) as Map<unknown, unknown>;
  const walk = (v: unknown, key: string[], aad: string[]) => {
    if (v === null || v === undefined) return;
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, [...key, String(i)], aad));
    if (v instanceof Map) {
      for (const [k, x] of v) walk(x, [...key, String(k)], [...aad, String(k)]);
      return;
    }
    if (typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') leaves.push({ key, aad, value: v });
    else leaves.push({ key, aad, value: String(v) });
  };
  let meta: Record<string, unknown> = {};
  for (const [k, v] of root) {
    if (k === 'sops') meta = toPlain(v) as Record<string, unknown>;
    else walk(v, [String(k)], [String(k)]);
  }
  return { leaves, keys: keysOf(meta) };
}

const toPlain = (v: unknown): unknown => (v instanceof Map ? Object.fromEntries([...v].map(([k, x]) => [String(k), toPlain(x)])) : Array.isArray(v) ? v.map(toPlain) : typeof v === 'bigint' ? Number(v) : v);

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest digits, never an exponent. */
export function goFloat(f: number): string {
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : f < 0 ? '-Inf' : 'NaN';
  const s = String(f);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = '', exp] = m;
  const digits = int! + frac;
  const point = 1 + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** sops.ToBytes of a value, after Decrypt turned it into its type. */
function toBytes(v: string | bigint | number | boolean | Buffer): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'boolean') return Buffer.from(v ? 'True' : 'False');
  if (typeof v === 'number') return Buffer.from(goFloat(v));
  return Buffer.from(String(v), 'utf8');
}

const GO_BOOL: Record<string, boolean> = { '1': true, t: true, T: true, TRUE: true, true: true, True: true, '0': false, f: false, F: false, FALSE: false, false: false, False: false };

/** One ENC[…] value opened: its plaintext, as the type sops recorded. */
function open(enc: string, dataKey: Buffer, aad: string, where: () => string): string | bigint | number | boolean | Buffer {
  const m = ENC.exec(enc)!;
  const iv = Buffer.from(m[2]!, 'base64');
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', dataKey, iv);
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(Buffer.from(m[3]!, 'base64'));
    plain = Buffer.concat([d.update(Buffer.from(m[1]!, 'base64')), d.final()]);
  } catch {
    throw new DotfleetError('usage', `cannot decrypt ${where()}: it does not authenticate under this file's data key (the value, its key path or the data key is not what sops wrote)`, { hint: 'the file was edited by hand, or its data key belongs to another file: re-encrypt it with sops' });
  }
  const text = plain.toString('utf8');
  const bad = (t: string) => new DotfleetError('usage', `cannot decrypt ${where()}: its type is ${t}, and the decrypted value is not one`, { hint: 're-encrypt the file with sops' });
  switch (m[4]) {
    case 'str':
    case 'comment':
    case 'time':
      return text;
    case 'bytes':
      return plain;
    case 'int':
      if (!/^[+-]?\d+$/.test(text)) throw bad('int');
      return BigInt(text.replace(/^\+/, ''));
    case 'float': {
      const f = Number(text);
      if (text.trim() === '' || Number.isNaN(f)) throw bad('float');
      return f;
    }
    case 'bool':
      if (!(text in GO_BOOL)) throw bad('bool');
      return GO_BOOL[text]!;
    default:
      throw new DotfleetError('usage', `cannot decrypt ${where()}: unknown value type "${m[4]}"`, { hint: 're-encrypt the file with sops' });
  }
}

/** RFC 3339 as Go's time.Format(time.RFC3339) writes a parsed lastmodified (no fraction of a second). */
const rfc3339 = (t: string) => t.replace(/\.\d+(?=Z$|[+-]\d\d:\d\d$)/, '');

/**
 * Every value of a SOPS file decrypted with its data key, keyed by its dotted key path
 * (`db.password`, `list.0`), as `sops --decrypt --extract` prints it. The MAC is checked first:
 * a file whose values were changed, added, removed or reordered outside sops is refused whole.
 */
export function decryptSops(path: string, bytes: Uint8Array, dataKey: Buffer): Map<string, string> {
  const parsed = parseSopsFile(path, bytes);
  if (!parsed) throw new DotfleetError('usage', `${path} is not a SOPS file`, { file: path });
  const { leaves, keys } = readTree(path, Buffer.from(bytes).toString('utf8'));
  if (keys.rules.unencrypted_comment_regex || keys.rules.encrypted_comment_regex) {
    throw new DotfleetError('usage', `${path} uses comment rules (encrypted_comment_regex): only sops decrypts it`, { file: path, hint: 'install sops on this host' });
  }
  const hash = createHash('sha512');
  if (keys.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const out = new Map<string, string>();
  for (const leaf of leaves) {
    const name = leaf.key.join('.');
    const encrypted = typeof leaf.value === 'string' && leaf.value !== '' && expectEncrypted(leaf.aad, keys.rules) !== false;
    let value: string | bigint | number | boolean | Buffer = leaf.value;
    if (encrypted) {
      if (!ENC.test(leaf.value as string)) throw new DotfleetError('usage', `${path}: ${name} should be encrypted by the file's rules but is not an ENC[…] value`, { file: path, hint: 'the file was edited by hand: re-encrypt it with sops' });
      value = open(leaf.value as string, dataKey, leaf.aad.join(':') + ':', () => `${path} ${name}`);
    }
    if (!keys.macOnlyEncrypted || encrypted) hash.update(toBytes(value));
    out.set(name, Buffer.isBuffer(value) ? value.toString('utf8') : typeof value === 'number' ? goFloat(value) : typeof value === 'boolean' ? String(value) : String(value));
  }
  if (!keys.mac || !ENC.test(keys.mac)) throw new DotfleetError('usage', `${path} has no MAC: its values cannot be trusted`, { file: path, hint: 're-encrypt it with sops' });
  const stored = open(keys.mac, dataKey, rfc3339(keys.lastModified ?? ''), () => `${path}'s MAC`);
  if (String(stored) !== hash.digest('hex').toUpperCase()) {
    throw new DotfleetError('usage', `${path}: the MAC does not match its values: they were changed, added, removed or reordered outside sops`, { file: path, hint: 're-encrypt the file with sops; dotfleet does not use it as it is' });
  }
  return out;
}

/** The wrapped data keys of a SOPS file (age stanzas, PGP messages) and how many key groups it has. */
export function sopsKeys(path: string, bytes: Uint8Array): SopsKeys {
  return readTree(path, Buffer.from(bytes).toString('utf8')).keys;
}
