/**
 * bench/verify-stages: where one attestation verification's time goes, stage by stage, on one
 * sample with a 1,001-line allowed_signers (bench/verify measures 2,000 distinct samples against
 * the bare ed25519 floor). Prints figures; asserts nothing.
 *
 *   npm run build && taskset -c 0 node bench/verify-stages.mjs
 */
import { createHash, createPublicKey, generateKeyPairSync, verify as edVerify } from 'node:crypto';
import { ed25519Blob, formatPublicKey, publicKeyFromBlob } from '../dist/core/ssh/keys.js';
import { parseArmouredSignature, signMessage, verifyMessage } from '../dist/core/ssh/sshsig.js';
import { knownKey, lookupSigner, parseAllowedSigners } from '../dist/core/ssh/allowed-signers.js';
import { ATTESTATION_NAMESPACE, parseStatement, serialise, statement } from '../dist/core/attestation/format.js';
import { verifyAttestation } from '../dist/core/attestation/verify.js';

const newPub = () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { pub: publicKeyFromBlob(ed25519Blob(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32))), privateKey };
};
const me = newPub();
const lines = Array.from({ length: 1000 }, (_, i) => `host-${String(i + 2).padStart(4, '0')} namespaces="${ATTESTATION_NAMESPACE}" ${formatPublicKey(newPub().pub)}`);
lines.splice(700, 0, `host-1 namespaces="${ATTESTATION_NAMESPACE}" ${formatPublicKey(me.pub)}`);
const signers = parseAllowedSigners(lines.join('\n') + '\n');
const payload = serialise(statement('git+https://github.com/example/fleet', {
  host: 'host-1', appliedCommit: 'a'.repeat(40), rolloutTarget: 'a'.repeat(40), renderHash: 'sha256:' + 'b'.repeat(64), policyHash: 'sha256:' + 'c'.repeat(64),
  tools: [{ name: 'git', version: '2.39.5', requirement: '>=2.30', ok: true }, { name: 'ssh-keygen', version: '9.2p1', requirement: null, ok: true }],
  drift: [], tests: [{ name: 'T10-git.sh', status: 'pass', durationMs: 31 }], status: 'SUCCESS', agentVersion: 'dotfleet/0.1.0', sequence: 1, issuedAt: '2026-11-22T10:00:00Z',
}));
const sig = signMessage(payload, { public: me.pub, key: me.privateKey }, ATTESTATION_NAMESPACE);
const blob = Buffer.from(sig.split('\n').slice(1, -2).join(''), 'base64');
const wire = (b) => Buffer.concat([Buffer.from([b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b]);
const data = Buffer.concat([Buffer.from('SSHSIG'), wire(Buffer.from(ATTESTATION_NAMESPACE)), wire(Buffer.alloc(0)), wire(Buffer.from('sha512')), wire(createHash('sha512').update(payload).digest())]);
const ko = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), me.pub.blob.subarray(-32)]), format: 'der', type: 'spki' });

const N = 20000;
const time = (name, f) => {
  for (let i = 0; i < 2000; i++) f();
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) f();
  const us = Number(process.hrtime.bigint() - t) / N / 1000;
  console.log(`  ${name.padEnd(34)} ${us.toFixed(2).padStart(7)} µs`);
  return us;
};
console.log(`bench/verify-stages — node ${process.version}, payload ${payload.length} bytes, best of 2 rounds`);
const best = {};
for (let round = 0; round < 2; round++) {
  const r = {
    floor: time('bare ed25519 (the floor)', () => edVerify(null, data, ko, blob.subarray(blob.length - 64))),
    sha: time('SHA-512 of the payload', () => createHash('sha512').update(payload).digest()),
    armour: time('armour and signature blob', () => parseArmouredSignature(sig, (b) => knownKey(signers, b))),
    statement: time('statement (exact form, schema)', () => parseStatement(payload)),
    lookup: time('allowed_signers lookup (1,001 lines)', () => lookupSigner(signers, me.pub, 'host-1', ATTESTATION_NAMESPACE, 1764000000)),
    message: time('verifyMessage (SSHSIG)', () => verifyMessage(payload, sig, ATTESTATION_NAMESPACE, (b) => knownKey(signers, b))),
    full: time('verifyAttestation (everything)', () => verifyAttestation(payload, sig, { signers, expectHost: 'host-1' })),
  };
  for (const [k, v] of Object.entries(r)) best[k] = Math.min(best[k] ?? Infinity, v);
}
console.log(`one sample: verifyAttestation ${best.full.toFixed(1)} µs = ${((best.floor / best.full) * 100).toFixed(1)} % of the floor (${best.floor.toFixed(1)} µs)`);
