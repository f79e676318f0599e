/**
 * "A pool failure falls back to checking in-process: it never refuses a host." A worker that dies
 * with requests under way, and a worker that no longer holds the trust set a request names: the
 * verdict is still given, and is the same as verifying in-process.
 */
import { VerifyPool } from '../../src/app/intake/verify-pool.js';
import { parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';
import { ATTESTATION_NAMESPACE, serialise, statement, subjectName } from '../../src/core/attestation/format.js';
import { signMessage } from '../../src/core/ssh/sshsig.js';
import { newHostKey, signerLine } from '../helpers/intake.js';

const key = newHostKey();
const text = signerLine('kestrel', key) + '\n';
const trust = { key: 'o/r@1:fleet/allowed_signers', text, signers: parseAllowedSigners(text) };
const payload = serialise(
  statement(subjectName('o', 'r'), {
    host: 'kestrel', appliedCommit: 'a'.repeat(40), rolloutTarget: null, renderHash: 'sha256:' + '1'.repeat(64), policyHash: 'sha256:' + '2'.repeat(64),
    tools: [], drift: [], tests: [], status: 'SUCCESS', agentVersion: 'dotfleet/test', sequence: 1, issuedAt: '2026-11-22T10:00:00Z',
  }),
);
const signature = signMessage(payload, key, ATTESTATION_NAMESPACE);

describe('the verification pool', () => {
  it('verifies in a worker, and in-process when the worker dies with the request under way', async () => {
    const warnings: string[] = [];
    const pool = new VerifyPool(1, { warn: (m) => warnings.push(m) });
    try {
      expect((await pool.verify(trust, payload, signature, 'kestrel')).verdict.ok).toBe(true);
      expect(pool.stats).toEqual({ inWorker: 1, inline: 0 });
      // The request is handed over and the worker stops before answering it. The hand-over is held
      // back, so the worker cannot answer first (it did, once, on a loaded CI machine).
      const slot = (pool as any).slots[0];
      slot.worker.postMessage = () => undefined;
      const pending = pool.verify(trust, payload, signature, 'kestrel');
      expect(slot.pending.size).toBe(1);
      await slot.worker.terminate();
      const { verdict } = await pending;
      expect(verdict).toMatchObject({ ok: true, code: 'verified', host: 'kestrel' });
      expect(pool.stats.inline).toBe(1);
      expect(warnings.join('\n')).toMatch(/verification worker stopped.*verifying in-process/);
      // A new worker takes the next one.
      expect((await pool.verify(trust, payload, signature, 'kestrel')).verdict.ok).toBe(true);
      expect(pool.stats.inWorker).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('a refusal is the same in a worker as in-process', async () => {
    const pool = new VerifyPool(1, { warn: () => undefined });
    const inline = new VerifyPool(0);
    try {
      const other = newHostKey();
      const forged = signMessage(payload, other, ATTESTATION_NAMESPACE);
      const a = (await pool.verify(trust, payload, forged, 'kestrel')).verdict;
      const b = (await inline.verify(trust, payload, forged, 'kestrel')).verdict;
      expect(a.code).toBe('unknown-key');
      expect({ ...a, statement: undefined }).toEqual({ ...b, statement: undefined });
    } finally {
      await pool.close();
    }
  });
});
