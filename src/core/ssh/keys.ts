/**
 * SSH keys: public key blobs of every type OpenSSH signs with, read and checked as OpenSSH reads
 * them (sshkey_fromb), public key lines, unencrypted OpenSSH private keys, fingerprints. dotfleet
 * signs natively with ed25519 (other keys sign through ssh-keygen) and verifies ed25519,
 * ECDSA (P-256, P-384, P-521), RSA (rsa-sha2-256/512) and the FIDO (sk-) variants of ed25519 and
 * ECDSA P-256. Certificates and DSA keys are read but never verify.
 */
import { createHash, createPrivateKey, createPublicKey, ECDH, type KeyObject } from 'node:crypto';
import { DotfleetError } from '../errors.js';
import { opensshBase64 } from './base64.js';
import { WireError, WireReader, wireString } from './wire.js';

export const ED25519 = 'ssh-ed25519';
export const SK_ED25519 = 'sk-ssh-ed25519@openssh.com';
export const SK_ECDSA = 'sk-ecdsa-sha2-nistp256@openssh.com';
export const RSA = 'ssh-rsa';
export const DSA = 'ssh-dss';

export type KeyKind = 'ed25519' | 'sk-ed25519' | 'ecdsa' | 'sk-ecdsa' | 'rsa' | 'dsa' | 'cert';
export type Curve = 'nistp256' | 'nistp384' | 'nistp521';

/** ECDSA curves: their OpenSSL name, the hash OpenSSH signs with, and the scalar size. */
export const CURVES: Record<Curve, { openssl: string; jwk: string; hash: 'sha256' | 'sha384' | 'sha512'; size: number }> = {
  nistp256: { openssl: 'prime256v1', jwk: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { openssl: 'secp384r1', jwk: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { openssl: 'secp521r1', jwk: 'P-521', hash: 'sha512', size: 66 },
};

/**
 * Every key type name OpenSSH 9 reads in a key line (peek_type_nid), and the type of key its
 * blob must then hold: `rsa-sha2-256` and `rsa-sha2-512` name RSA keys too.
 */
export const KEY_LINE_TYPES: Record<string, string> = {
  [ED25519]: ED25519,
  [SK_ED25519]: SK_ED25519,
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521',
  [SK_ECDSA]: SK_ECDSA,
  [RSA]: RSA,
  'rsa-sha2-256': RSA,
  'rsa-sha2-512': RSA,
  [DSA]: DSA,
  'ssh-ed25519-cert-v01@openssh.com': 'ssh-ed25519-cert-v01@openssh.com',
  'sk-ssh-ed25519-cert-v01@openssh.com': 'sk-ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com': 'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ssh-rsa-cert-v01@openssh.com': 'ssh-rsa-cert-v01@openssh.com',
  'rsa-sha2-256-cert-v01@openssh.com': 'ssh-rsa-cert-v01@openssh.com',
  'rsa-sha2-512-cert-v01@openssh.com': 'ssh-rsa-cert-v01@openssh.com',
  'ssh-dss-cert-v01@openssh.com': 'ssh-dss-cert-v01@openssh.com',
};

export interface SshPublicKey {
  /** The type name in the blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …). */
  type: string;
  kind: KeyKind;
  /** The wire-encoded public key (what SSHSIG and fingerprints use). */
  blob: Buffer;
  /** What OpenSSH compares to decide two keys are the same (sshkey_equal): type and public values. */
  identity: string;
  /** The raw 32-byte ed25519 key (ed25519, sk-ed25519). */
  raw?: Buffer;
  curve?: Curve;
  /** The uncompressed EC point (ecdsa, sk-ecdsa). */
  point?: Buffer;
  /** The FIDO application string (sk- keys). */
  application?: Buffer;
  /** RSA modulus and exponent, without leading zeros. */
  n?: Buffer;
  e?: Buffer;
  /** The node:crypto key, made on first use (keyObject()): making one costs more than a verification. */
  key?: KeyObject;
  /** SHA256:…, made on first use. */
  fingerprint?: string;
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const b64url = (b: Buffer) => b.toString('base64url');

/** The node:crypto key for a key that verifies (not DSA, not a certificate), made once per key object. */
export function keyObject(pub: SshPublicKey): KeyObject {
  if (pub.key) return pub.key;
  if (pub.raw) pub.key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub.raw]), format: 'der', type: 'spki' });
  else if (pub.point && pub.curve) {
    const size = CURVES[pub.curve].size;
    pub.key = createPublicKey({ key: { kty: 'EC', crv: CURVES[pub.curve].jwk, x: b64url(pub.point.subarray(1, 1 + size)), y: b64url(pub.point.subarray(1 + size)) }, format: 'jwk' });
  } else if (pub.n && pub.e) pub.key = createPublicKey({ key: { kty: 'RSA', n: b64url(pub.n), e: b64url(pub.e) }, format: 'jwk' });
  else throw new Error(`no verifying key for the key type ${pub.type}`);
  return pub.key;
}

/** An SSH mpint as OpenSSH reads it: not negative, at most 16,384 bits, leading zeros dropped. */
export function readMpint(r: WireReader, what: string): Buffer {
  const d = r.string(what);
  if (d.length > 0 && (d[0]! & 0x80) !== 0) throw new WireError(`${what} is negative`);
  if (d.length > 2049 || (d.length === 2049 && d[0] !== 0)) throw new WireError(`${what} is too large`);
  let i = 0;
  while (i < d.length && d[i] === 0) i++;
  return d.subarray(i);
}

/** A string OpenSSH reads as a C string: no NUL inside. */
function cstring(r: WireReader, what: string): Buffer {
  const b = r.string(what);
  if (b.includes(0)) throw new WireError(`${what} has a NUL byte`);
  return b;
}

function bits(n: Buffer): number {
  return n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
}

/** The order of each curve's group. */
const ORDERS: Record<Curve, bigint> = {
  nistp256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  nistp384: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  nistp521: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};
const bitLength = (x: bigint) => x.toString(2).length;

/** An EC public point as OpenSSH accepts it (sshbuf_get_eckey, sshkey_ec_validate_public). */
function ecPoint(curve: Curve, q: Buffer): Buffer {
  const size = CURVES[curve].size;
  // OpenSSH reads uncompressed points only.
  if (q.length !== 1 + 2 * size || q[0] !== 0x04) throw new WireError(`not an uncompressed point on ${curve}`);
  try {
    // On the curve?
    ECDH.convertKey(q, CURVES[curve].openssl, undefined, undefined, 'uncompressed');
  } catch {
    throw new WireError(`not a point on ${curve}`);
  }
  // OpenSSH's further checks: each coordinate longer than half the order, and below order - 1.
  const order = ORDERS[curve];
  for (const c of [q.subarray(1, 1 + size), q.subarray(1 + size)]) {
    const v = BigInt('0x' + c.toString('hex'));
    if (bitLength(v) <= Math.floor(bitLength(order) / 2) || v >= order - 1n) throw new WireError(`a point OpenSSH refuses on ${curve}`);
  }
  return q;
}

/** Parse a wire-encoded public key blob as OpenSSH does; WireError when OpenSSH would refuse it. */
export function publicKeyFromBlob(blob: Uint8Array): SshPublicKey {
  const r = new WireReader(blob);
  const type = cstring(r, 'key type').toString('latin1');
  const base = { type, blob: Buffer.from(blob) };
  let key: SshPublicKey;
  if (type === ED25519 || type === SK_ED25519) {
    const raw = r.string('ed25519 public key');
    if (raw.length !== 32) throw new WireError(`an ed25519 public key is 32 bytes, got ${raw.length}`);
    const application = type === SK_ED25519 ? cstring(r, 'application') : undefined;
    key = { ...base, kind: application ? 'sk-ed25519' : 'ed25519', raw, application, identity: `${type}:${raw.toString('hex')}:${application?.toString('hex') ?? ''}` };
  } else if (/^ecdsa-sha2-nistp(256|384|521)$/.test(type) || type === SK_ECDSA) {
    const curve = (type === SK_ECDSA ? 'nistp256' : type.slice('ecdsa-sha2-'.length)) as Curve;
    if (cstring(r, 'curve name').toString('latin1') !== curve) throw new WireError(`the curve does not match ${type}`);
    const point = ecPoint(curve, r.string('EC point'));
    const application = type === SK_ECDSA ? cstring(r, 'application') : undefined;
    key = { ...base, kind: application ? 'sk-ecdsa' : 'ecdsa', curve, point, application, identity: `${type}:${point.toString('hex')}:${application?.toString('hex') ?? ''}` };
  } else if (type === RSA) {
    const e = readMpint(r, 'RSA exponent');
    const n = readMpint(r, 'RSA modulus');
    if (bits(n) < 1024) throw new WireError(`an RSA key of ${bits(n)} bits is too small (OpenSSH needs 1024 or more)`);
    key = { ...base, kind: 'rsa', e, n, identity: `${type}:${e.toString('hex')}:${n.toString('hex')}` };
  } else if (type === DSA) {
    const parts = ['p', 'q', 'g', 'y'].map((x) => readMpint(r, `DSA ${x}`).toString('hex'));
    key = { ...base, kind: 'dsa', identity: `${type}:${parts.join(':')}` };
  } else if (Object.hasOwn(KEY_LINE_TYPES, type) && type.includes('-cert-')) {
    // Certificates: never a signer here (dotfleet trusts plain keys); their body is not read.
    return { ...base, kind: 'cert', identity: `${type}:${base.blob.toString('hex')}` };
  } else throw new WireError(`unknown key type "${type}"`);
  r.end('the public key');
  return key;
}

export function ed25519Blob(raw32: Uint8Array): Buffer {
  return Buffer.concat([wireString(ED25519), wireString(raw32)]);
}

/** SHA256:… as ssh-keygen -l prints it. */
export function fingerprint(key: SshPublicKey): string {
  key.fingerprint ??= 'SHA256:' + createHash('sha256').update(key.blob).digest('base64').replace(/=+$/, '');
  return key.fingerprint;
}

/** The same key, as OpenSSH's sshkey_equal decides (the same type and public values, however encoded). */
export function sameKey(a: SshPublicKey, b: SshPublicKey): boolean {
  return a.identity === b.identity;
}

/**
 * `TYPE BASE64` from a key line → key, as sshkey_read reads it; null when OpenSSH would refuse
 * it. `base64` is one character per byte (latin1).
 */
export function parsePublicKeyText(type: string, base64: string): SshPublicKey | null {
  const want = KEY_LINE_TYPES[type];
  if (!want) return null;
  const blob = opensshBase64(base64);
  if (!blob) return null;
  try {
    const key = publicKeyFromBlob(blob);
    return key.type === want ? key : null;
  } catch (e) {
    if (e instanceof WireError) return null;
    throw e;
  }
}

export function formatPublicKey(key: SshPublicKey, comment?: string): string {
  return `${key.type} ${key.blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

export interface SshPrivateKey {
  public: SshPublicKey;
  key: KeyObject;
  comment: string;
}

export class EncryptedKeyError extends DotfleetError {}
/** A key of another type than ed25519: sign with it through ssh-keygen. */
export class OtherKeyTypeError extends DotfleetError {}

const PRIVATE_BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const PRIVATE_END = '-----END OPENSSH PRIVATE KEY-----';
const AUTH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

/**
 * An unencrypted OpenSSH private key (openssh-key-v1, PROTOCOL.key). An encrypted key throws
 * EncryptedKeyError (sign through ssh-keygen instead); a key type other than ed25519 throws a
 * DotfleetError naming it.
 */
export function parseOpenSshPrivateKey(text: string, file: string): SshPrivateKey {
  const start = text.indexOf(PRIVATE_BEGIN);
  const end = text.indexOf(PRIVATE_END);
  if (start < 0 || end < start) {
    const hint = /BEGIN (RSA|EC|DSA) PRIVATE KEY/.test(text)
      ? 'this is a PEM key of another type; dotfleet signs with ed25519 keys (ssh-keygen -t ed25519)'
      : 'pass an OpenSSH private key file (ssh-keygen -t ed25519 creates one)';
    throw new DotfleetError('usage', 'not an OpenSSH private key', { file, hint });
  }
  const body = Buffer.from(text.slice(start + PRIVATE_BEGIN.length, end).replace(/\s+/g, ''), 'base64');
  try {
    if (!body.subarray(0, AUTH_MAGIC.length).equals(AUTH_MAGIC)) throw new WireError('bad magic');
    const r = new WireReader(body.subarray(AUTH_MAGIC.length));
    const cipher = r.text('cipher name');
    const kdf = r.text('kdf name');
    r.string('kdf options');
    if (cipher !== 'none' || kdf !== 'none') {
      throw new EncryptedKeyError('usage', `the private key is encrypted (${cipher}, ${kdf})`, {
        file,
        hint: 'dotfleet signs with it through ssh-keygen -Y sign, which asks for the passphrase or uses your ssh-agent',
      });
    }
    if (r.uint32('key count') !== 1) throw new WireError('expected exactly one key');
    const pub = publicKeyFromBlob(r.string('public key'));
    const p = new WireReader(r.string('private section'));
    if (p.uint32('check 1') !== p.uint32('check 2')) throw new WireError('check integers differ');
    const type = p.text('key type');
    if (type !== ED25519) throw new OtherKeyTypeError('usage', `dotfleet signs ${type} keys through ssh-keygen`, { file });
    const rawPub = p.string('public key');
    const rawPriv = p.string('private key');
    const comment = p.text('comment');
    if (rawPriv.length !== 64 || !rawPriv.subarray(32).equals(rawPub)) throw new WireError('malformed ed25519 private key');
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, rawPriv.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
    if (!pub.blob.equals(ed25519Blob(rawPub))) throw new WireError('the public and private halves do not match');
    return { public: pub, key, comment };
  } catch (e) {
    if (e instanceof WireError) throw new DotfleetError('usage', `malformed OpenSSH private key: ${e.message}`, { file });
    throw e;
  }
}
