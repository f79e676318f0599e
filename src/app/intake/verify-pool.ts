/**
 * A small pool of verification workers (src/app/intake/verify-worker.ts). Signature checks cost
 * about half a millisecond each; a thousand at once on the event loop would hold up webhooks and
 * the state writer's own requests for half a second. Each worker is sent a trust set (the
 * allowed_signers text at one commit) the first time it needs it. A worker that fails is replaced,
 * and the submission is verified in-process instead: a pool problem never refuses a host.
 *
 * Size: DOTFLEET_VERIFY_WORKERS, else the machine's cores less one (at least 1, at most 4).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { verifyAttestation, type Verdict } from '../../core/attestation/verify.js';
import type { AllowedSigners } from '../../core/ssh/allowed-signers.js';

/** Trust sets a worker keeps parsed. */
export const TRUSTS_KEPT = 4;

export interface VerifyRequest {
  id: number;
  trustKey: string;
  /** Sent with the first request a worker gets for this trust set. */
  signersText?: string;
  payload: Uint8Array;
  signature: string;
  expectHost: string;
  principal?: string;
}

export type VerifyReply = { id: number; verdict: Verdict; ns: number } | { id: number; error: string };

/** The trust a submission is verified against: its allowed_signers, parsed and as text, keyed by commit. */
export interface TrustSet {
  key: string;
  text: string;
  signers: AllowedSigners;
}

export function defaultPoolSize(): number {
  const env = Number(process.env.DOTFLEET_VERIFY_WORKERS);
  if (Number.isInteger(env) && env >= 0) return env;
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

interface Slot {
  worker: Worker;
  trusts: Set<string>;
  pending: Map<number, { resolve: (r: VerifyReply) => void }>;
}

/** dist/app/intake/verify-worker.js, also when this module runs from src/ under the test runner. */
function workerFile(): string {
  return join(fileURLToPath(new URL('../../../', import.meta.url)), 'dist', 'app', 'intake', 'verify-worker.js');
}

export class VerifyPool {
  private readonly slots: (Slot | undefined)[];
  private next = 1;
  /** Verifications done in a worker and in-process. */
  readonly stats = { inWorker: 0, inline: 0 };

  constructor(
    readonly size: number = defaultPoolSize(),
    private readonly log: { warn(msg: string): void } = console,
  ) {
    this.slots = Array.from({ length: size }, () => undefined);
  }

  private slot(i: number): Slot {
    const have = this.slots[i];
    if (have) return have;
    const worker = new Worker(workerFile());
    worker.unref();
    const slot: Slot = { worker, trusts: new Set(), pending: new Map() };
    const fail = (why: string) => {
      if (this.slots[i] === slot) this.slots[i] = undefined;
      for (const [id, p] of slot.pending) p.resolve({ id, error: why });
      slot.pending.clear();
    };
    worker.on('message', (r: VerifyReply) => {
      const p = slot.pending.get(r.id);
      slot.pending.delete(r.id);
      p?.resolve(r);
    });
    worker.on('error', (e) => fail(`verification worker failed: ${e.message}`));
    worker.on('exit', (code) => fail(`verification worker stopped (exit code ${code})`));
    this.slots[i] = slot;
    return slot;
  }

  /** The verdict for one submission, and the time it took; in-process when there are no workers or a worker fails. */
  async verify(trust: TrustSet, payload: Uint8Array, signature: string, expectHost: string, principal?: string): Promise<{ verdict: Verdict; ns: number }> {
    const inline = () => {
      this.stats.inline++;
      const started = process.hrtime.bigint();
      const verdict = verifyAttestation(payload, signature, { signers: trust.signers, expectHost, principal });
      return { verdict, ns: Number(process.hrtime.bigint() - started) };
    };
    if (this.size === 0) return inline();
    // The least busy worker.
    let best = 0;
    for (let i = 1; i < this.size; i++) if ((this.slots[i]?.pending.size ?? 0) < (this.slots[best]?.pending.size ?? 0)) best = i;
    const slot = this.slot(best);
    const id = this.next++;
    const request: VerifyRequest = { id, trustKey: trust.key, payload, signature, expectHost, principal };
    if (!slot.trusts.has(trust.key)) {
      request.signersText = trust.text;
      slot.trusts.add(trust.key);
      // The worker keeps the same last TRUSTS_KEPT sets, dropped in the same order.
      while (slot.trusts.size > TRUSTS_KEPT) slot.trusts.delete(slot.trusts.values().next().value!);
    }
    const reply = await new Promise<VerifyReply>((resolve) => {
      slot.pending.set(id, { resolve });
      slot.worker.postMessage(request);
    });
    if ('error' in reply) {
      this.log.warn(`${reply.error}; verifying in-process`);
      return inline();
    }
    this.stats.inWorker++;
    return { verdict: reply.verdict, ns: reply.ns };
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s?.worker.terminate()));
    this.slots.fill(undefined);
  }
}
