/**
 * SSH keys: public key lines, unencrypted OpenSSH private keys, fingerprints. dotfleet signs
 * and verifies with ed25519 only; every other key type is refused with a clear message.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { DotfleetError } from '../errors.js';
import { WireError, WireReader, wireString } from './wire.js';

export const ED25519 = 'ssh-ed25519';

export interface SshPublicKey {
  type: string;
  /** The wire-encoded public key (what SSHSIG and fingerprints use). */
  blob: Buffer;
  /** The raw 32-byte ed25519 key. */
  raw?: Buffer;
  /** The node:crypto key, made on first use (keyObject()): making one costs more than a verification. */
  key?: KeyObject;
}

/** The node:crypto key for an ed25519 public key, made once per key object. */
export function keyObject(pub: SshPublicKey): KeyObject {
  if (!pub.raw) throw new Error(`no ed25519 key in a ${pub.type} key`);
  pub.key ??= createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub.raw]), format: 'der', type: 'spki' });
  return pub.key;
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Parse a wire-encoded public key blob; any type is accepted here, ed25519 gets a KeyObject. */
export function publicKeyFromBlob(blob: Uint8Array): SshPublicKey {
  const r = new WireReader(blob);
  const type = r.text('key type');
  if (type !== ED25519) return { type, blob: Buffer.from(blob) };
  const raw = r.string('ed25519 public key');
  r.end('the public key');
  if (raw.length !== 32) throw new WireError(`an ed25519 public key is 32 bytes, got ${raw.length}`);
  return { type, blob: Buffer.from(blob), raw };
}

export function ed25519Blob(raw32: Uint8Array): Buffer {
  return Buffer.concat([wireString(ED25519), wireString(raw32)]);
}

/** SHA256:… as ssh-keygen -l prints it. */
export function fingerprint(key: SshPublicKey): string {
  return 'SHA256:' + createHash('sha256').update(key.blob).digest('base64').replace(/=+$/, '');
}

export function sameKey(a: SshPublicKey, b: SshPublicKey): boolean {
  return a.blob.equals(b.blob);
}

/** `ssh-ed25519 AAAA… comment` → key; null when the text is not a key of a known shape. */
export function parsePublicKeyText(type: string, base64: string): SshPublicKey | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return null;
  const blob = Buffer.from(base64, 'base64');
  try {
    const key = publicKeyFromBlob(blob);
    return key.type === type ? key : null;
  } catch {
    return null;
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
    if (type !== ED25519) {
      throw new DotfleetError('usage', `the key type ${type} is not accepted`, { file, hint: 'dotfleet signs with ed25519 keys: ssh-keygen -t ed25519' });
    }
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
