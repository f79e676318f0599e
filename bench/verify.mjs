/**
 * bench/verify: attestation verifications per second on one core, everything included (armour
 * and signature parsing, ed25519, the payload's exact-form and schema checks, the allowed_signers
 * lookup in a 1,000-host file). Prints figures; asserts nothing. Target (issue 3): ≥ 5,000/s.
 *
 *   npm run bench:verify          (or: node bench/verify.mjs [hosts] [attestations])
 */
import { generateKeyPairSync } from 'node:crypto';
import { ed25519Blob, formatPublicKey, publicKeyFromBlob } from '../dist/core/ssh/keys.js';
import { signMessage } from '../dist/core/ssh/sshsig.js';
import { parseAllowedSigners } from '../dist/core/ssh/allowed-signers.js';
import { ATTESTATION_NAMESPACE, serialise, statement } from '../dist/core/attestation/format.js';
import { verifyAttestation } from '../dist/core/attestation/verify.js';

const HOSTS = Number(process.argv[2] ?? 1000);
const N = Number(process.argv[3] ?? 20000);

const keys = [];
const lines = [];
for (let i = 0; i < HOSTS; i++) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const pub = publicKeyFromBlob(ed25519Blob(raw));
  const host = `host-${String(i).padStart(4, '0')}`;
  keys.push({ host, key: { public: pub, key: privateKey } });
  lines.push(`${host} namespaces="${ATTESTATION_NAMESPACE}" ${formatPublicKey(pub)}`);
}
const t0 = process.hrtime.bigint();
const signers = parseAllowedSigners(lines.join('\n') + '\n');
const parseMs = Number(process.hrtime.bigint() - t0) / 1e6;

const samples = [];
for (let i = 0; i < 2000; i++) {
  const { host, key } = keys[(i * 7919) % HOSTS];
  const payload = serialise(statement('git+https://github.com/example/fleet', {
    host, appliedCommit: 'a'.repeat(40), rolloutTarget: 'a'.repeat(40), renderHash: 'sha256:' + 'b'.repeat(64), policyHash: 'sha256:' + 'c'.repeat(64),
    tools: [{ name: 'git', version: '2.39.5', requirement: '>=2.30', ok: true }, { name: 'ssh-keygen', version: '9.2p1', requirement: null, ok: true }],
    drift: [], tests: [{ name: 'T10-git.sh', status: 'pass', durationMs: 31 }], status: 'SUCCESS', agentVersion: 'dotfleet/0.1.0', sequence: i + 1, issuedAt: '2026-11-22T10:00:00Z',
  }));
  samples.push({ payload, sig: signMessage(payload, key, ATTESTATION_NAMESPACE), host });
}

for (let i = 0; i < 1000; i++) verifyAttestation(samples[i % samples.length].payload, samples[i % samples.length].sig, { signers });
let ok = 0;
const cpu0 = process.cpuUsage();
const start = process.hrtime.bigint();
for (let i = 0; i < N; i++) {
  const s = samples[i % samples.length];
  if (verifyAttestation(s.payload, s.sig, { signers, expectHost: s.host }).ok) ok++;
}
const secs = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
console.log(`bench/verify — ${N.toLocaleString('en')} verifications, ${HOSTS} hosts in allowed_signers, one core, node ${process.version}`);
console.log(`allowed_signers parse (${HOSTS} lines)   ${parseMs.toFixed(1)} ms`);
console.log(`verified                              ${ok.toLocaleString('en')} of ${N.toLocaleString('en')}`);
console.log(`verifications per second              ${Math.round(N / secs).toLocaleString('en')} wall-clock, ${Math.round(N / cpuSecs).toLocaleString('en')} per CPU-second   (target ≥ 5,000)`);
console.log(`time per verification                 ${((secs / N) * 1e6).toFixed(1)} µs wall, ${((cpuSecs / N) * 1e6).toFixed(1)} µs CPU`);
