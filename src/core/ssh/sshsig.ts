/**
 * SSHSIG (OpenSSH PROTOCOL.sshsig): detached signatures over a message, namespaced, armoured
 * exactly as `ssh-keygen -Y sign` writes them. Parsing is strict; a verdict always carries a
 * reason code.
 */
import { createHash, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { ED25519, keyObject, publicKeyFromBlob, type SshPublicKey } from './keys.js';
import { TruncatedError, WireError, WireReader, wireString, wireUint32 } from './wire.js';

const MAGIC = Buffer.from('SSHSIG', 'latin1');
const VERSION = 1;
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';
const LINE = 70;

export type HashAlgorithm = 'sha256' | 'sha512';
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['sha256', 'sha512'];

export type SignatureFault =
  | 'armour'
  | 'truncated'
  | 'malformed'
  | 'trailing-bytes'
  | 'version'
  | 'namespace'
  | 'key-type'
  | 'hash-algorithm'
  | 'signature';

export class SignatureError extends Error {
  constructor(
    readonly code: SignatureFault,
    message: string,
  ) {
    super(message);
  }
}

export interface ParsedSignature {
  publicKey: SshPublicKey;
  namespace: string;
  hashAlgorithm: HashAlgorithm;
  /** The raw signature bytes (64 for ed25519). */
  signature: Buffer;
}

function signedData(namespace: string, hash: HashAlgorithm, message: Uint8Array): Buffer {
  const digest = createHash(hash).update(message).digest();
  return Buffer.concat([MAGIC, wireString(namespace), wireString(''), wireString(hash), wireString(digest)]);
}

export function armour(blob: Uint8Array): string {
  const b64 = Buffer.from(blob).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += LINE) lines.push(b64.slice(i, i + LINE));
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

/** The signature blob inside an armoured signature; strict about the frame and the base64. */
export function dearmour(text: string): Buffer {
  const trimmed = text.replace(/\n$/, '');
  const lines = trimmed.split('\n');
  if (lines[0] !== BEGIN || lines[lines.length - 1] !== END || lines.length < 3) {
    throw new SignatureError('armour', 'not an SSH signature: expected "-----BEGIN SSH SIGNATURE-----" … "-----END SSH SIGNATURE-----"');
  }
  const body = lines.slice(1, -1).join('');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
    throw new SignatureError('armour', 'the signature armour is not valid base64 (truncated or altered)');
  }
  return Buffer.from(body, 'base64');
}

export function parseSignatureBlob(blob: Uint8Array): ParsedSignature {
  try {
    const r = new WireReader(blob);
    if (!r.bytes(6, 'magic').equals(MAGIC)) throw new SignatureError('malformed', 'not an SSHSIG signature (bad magic)');
    const version = r.uint32('version');
    if (version !== VERSION) throw new SignatureError('version', `unsupported SSHSIG version ${version} (only version 1 exists)`);
    const keyBlob = r.string('public key');
    const namespace = r.text('namespace');
    r.string('reserved');
    const hash = r.text('hash algorithm');
    const sigBlob = r.string('signature');
    if (r.remaining !== 0) throw new SignatureError('trailing-bytes', `the signature has ${r.remaining} trailing bytes`);
    if (namespace === '') throw new SignatureError('namespace', 'the signature has an empty namespace');
    if (!HASH_ALGORITHMS.includes(hash as HashAlgorithm)) throw new SignatureError('hash-algorithm', `unsupported hash algorithm "${hash}" (sha256 or sha512)`);
    const publicKey = publicKeyFromBlob(keyBlob);
    if (publicKey.type !== ED25519) throw new SignatureError('key-type', `signed with a ${publicKey.type} key; dotfleet accepts ssh-ed25519 only`);
    const s = new WireReader(sigBlob);
    const sigType = s.text('signature type');
    const raw = s.string('signature bytes');
    s.end('the signature');
    if (sigType !== ED25519) throw new SignatureError('key-type', `signature type ${sigType} does not match the ${ED25519} key`);
    if (raw.length !== 64) throw new SignatureError('malformed', `an ed25519 signature is 64 bytes, got ${raw.length}`);
    return { publicKey, namespace, hashAlgorithm: hash as HashAlgorithm, signature: raw };
  } catch (e) {
    if (e instanceof TruncatedError) throw new SignatureError('truncated', `the signature is truncated: ${e.message}`);
    if (e instanceof WireError) throw new SignatureError('malformed', `malformed signature: ${e.message}`);
    throw e;
  }
}

export function parseArmouredSignature(text: string): ParsedSignature {
  return parseSignatureBlob(dearmour(text));
}

/** Sign `message`: the armoured text, byte-identical to `ssh-keygen -Y sign -n NAMESPACE`. */
export function signMessage(message: Uint8Array, key: { public: SshPublicKey; key: KeyObject }, namespace: string, hash: HashAlgorithm = 'sha512'): string {
  if (namespace === '') throw new Error('a namespace is required');
  if (key.public.type !== ED25519) throw new Error(`cannot sign with ${key.public.type}`);
  const sig = edSign(null, signedData(namespace, hash, message), key.key);
  const blob = Buffer.concat([
    MAGIC,
    wireUint32(VERSION),
    wireString(key.public.blob),
    wireString(namespace),
    wireString(''),
    wireString(hash),
    wireString(Buffer.concat([wireString(ED25519), wireString(sig)])),
  ]);
  return armour(blob);
}

/**
 * Check a signature over `message` in `namespace`; returns the parsed signature (its key is the
 * signer to look up in allowed_signers) or throws SignatureError with the reason.
 */
export function verifyMessage(message: Uint8Array, armoured: string, namespace: string, knownKey?: (blob: Buffer) => SshPublicKey | undefined): ParsedSignature {
  const sig = parseArmouredSignature(armoured);
  // A key we already hold (allowed_signers) carries its node:crypto key from earlier uses.
  const key = knownKey?.(sig.publicKey.blob) ?? sig.publicKey;
  if (sig.namespace !== namespace) {
    throw new SignatureError('namespace', `the signature is for namespace "${sig.namespace}", expected "${namespace}"`);
  }
  if (!edVerify(null, signedData(sig.namespace, sig.hashAlgorithm, message), keyObject(key), sig.signature)) {
    throw new SignatureError('signature', 'the signature does not match the message (altered content or signature)');
  }
  return sig;
}
