/**
 * A verification worker: checks attestation signatures and signers off the app's event loop, so
 * a thousand hosts attesting at once do not stall its webhooks. It keeps the last few trust sets
 * (allowed_signers by the commit they were read at), parsed once each.
 */
import { parentPort } from 'node:worker_threads';
import { parseAllowedSigners, type AllowedSigners } from '../../core/ssh/allowed-signers.js';
import { verifyAttestation } from '../../core/attestation/verify.js';
import { TRUSTS_KEPT, type VerifyReply, type VerifyRequest } from './verify-pool.js';
const trusts = new Map<string, AllowedSigners>();

parentPort!.on('message', (m: VerifyRequest) => {
  let reply: VerifyReply;
  try {
    if (m.signersText !== undefined) {
      trusts.delete(m.trustKey);
      trusts.set(m.trustKey, parseAllowedSigners(m.signersText));
      while (trusts.size > TRUSTS_KEPT) trusts.delete(trusts.keys().next().value!);
    }
    const signers = trusts.get(m.trustKey);
    if (!signers) reply = { id: m.id, error: `no trust set ${m.trustKey} in this worker` };
    else {
      const started = process.hrtime.bigint();
      const verdict = verifyAttestation(m.payload, m.signature, { signers, expectHost: m.expectHost, principal: m.principal });
      reply = { id: m.id, verdict, ns: Number(process.hrtime.bigint() - started) };
    }
  } catch (e) {
    reply = { id: m.id, error: (e as Error).message };
  }
  parentPort!.postMessage(reply);
});
