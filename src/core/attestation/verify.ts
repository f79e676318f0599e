/**
 * Verifying an attestation: the signature (SSHSIG, namespace dotfleet-attestation), the payload's
 * exact form and schema, the signer against allowed_signers (principal = the host, validity at
 * issued-at), and, when the caller knows them, freshness, sequence and the expected host.
 * The answer is a verdict with a reason code, never a bare boolean.
 */
import { fingerprint } from '../ssh/keys.js';
import { knownSigner, lookupSigner, type AllowedSigners, type KnownSigner, type LookupFault } from '../ssh/allowed-signers.js';
import { SignatureError, verifyMessage, type SignatureFault } from '../ssh/sshsig.js';
import { ATTESTATION_NAMESPACE, issuedAtSeconds, parseStatement, PayloadError, type PayloadFault, type Statement } from './format.js';

export type VerdictCode = 'verified' | SignatureFault | PayloadFault | LookupFault | 'host-mismatch' | 'stale' | 'future' | 'sequence';

export interface Verdict {
  ok: boolean;
  code: VerdictCode;
  message: string;
  host?: string;
  sequence?: number;
  issuedAt?: string;
  /** SHA256:… of the signing key, when the signature could be read. */
  key?: string;
  /** allowed_signers line that verified (or came closest). */
  line?: number;
  statement?: Statement;
}

export interface VerifyOptions {
  signers: AllowedSigners;
  /** The host the attestation must be for (from the submission path, or a file's directory). */
  expectHost?: string;
  /** Check freshness against this time; skipped when absent (offline re-verification). */
  now?: Date;
  /** Oldest acceptable issued-at, in seconds before `now` (default 1 hour). */
  maxAgeSeconds?: number;
  /** Clock skew tolerated for an issued-at in the future (default 5 minutes). */
  maxSkewSeconds?: number;
  /** The host's last accepted sequence number: this one must be greater. */
  lastSequence?: number;
  /** Check the key's validity window at this time instead of at issued-at. */
  at?: Date;
  /** The principal the host signs as, when the inventory gives it one (default: the host's name). */
  principal?: string;
}

const fail = (code: VerdictCode, message: string, extra: Partial<Verdict> = {}): Verdict => ({ ok: false, code, message, ...extra });

export function verifyAttestation(payload: Uint8Array, signature: string, options: VerifyOptions): Verdict {
  let key: string | undefined;
  let signed;
  let known: KnownSigner | undefined;
  try {
    signed = verifyMessage(payload, signature, ATTESTATION_NAMESPACE, (blob) => (known = knownSigner(options.signers, blob))?.key);
    key = fingerprint(signed.publicKey);
  } catch (e) {
    if (e instanceof SignatureError) return fail(e.code, e.message);
    throw e;
  }
  let st: Statement;
  try {
    st = parseStatement(payload);
  } catch (e) {
    if (e instanceof PayloadError) return fail(e.code, e.message, { key });
    throw e;
  }
  const p = st.predicate;
  const base = { host: p.host, sequence: p.sequence, issuedAt: p.issuedAt, key, statement: st };
  if (options.expectHost !== undefined && options.expectHost !== p.host) {
    return fail('host-mismatch', `the attestation is for "${p.host}", submitted as "${options.expectHost}"`, base);
  }
  // The schema admits only real instants, so this is a number.
  const at = options.at ? Math.floor(options.at.getTime() / 1000) : issuedAtSeconds(p.issuedAt)!;
  const signer = lookupSigner(options.signers, known?.key === signed.publicKey ? known : signed.publicKey, options.principal ?? p.host, ATTESTATION_NAMESPACE, at);
  if (!signer.ok) return fail(signer.code, signer.message, { ...base, line: signer.line });
  if (options.now) {
    const late = freshness(p.issuedAt, options.now, options);
    if (late) return fail(late.code, late.message, base);
  }
  if (options.lastSequence !== undefined && p.sequence <= options.lastSequence) {
    return fail('sequence', `sequence ${p.sequence} is not greater than the last accepted ${options.lastSequence} (a replay?)`, base);
  }
  return { ok: true, code: 'verified', message: `good signature by ${p.host} (${key})`, host: p.host, sequence: p.sequence, issuedAt: p.issuedAt, key, statement: st, line: signer.entry.line };
}

/** `stale` or `future` when issued-at is outside the freshness window around `now`; undefined when inside. */
export function freshness(issuedAt: string, now: Date, options: { maxAgeSeconds?: number; maxSkewSeconds?: number } = {}): { code: 'stale' | 'future'; message: string } | undefined {
  const issued = issuedAtSeconds(issuedAt);
  const t = Math.floor(now.getTime() / 1000);
  if (issued === undefined) return { code: 'stale', message: `issued-at "${issuedAt}" is not a time` };
  if (issued > t + (options.maxSkewSeconds ?? 300)) return { code: 'future', message: `issued at ${issuedAt}, which is in the future` };
  if (t - issued > (options.maxAgeSeconds ?? 3600)) return { code: 'stale', message: `issued at ${issuedAt}, older than the freshness window` };
  return undefined;
}
