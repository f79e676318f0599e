/**
 * Sending attestations to the app. An attestation waits in the outbox (`<state dir>/outbox/`)
 * until the app acknowledges it (201 recorded, or 200 already recorded); it is retried with
 * backoff on network errors, 429 and 5xx (honouring Retry-After), and kept when the app refuses
 * it (4xx), so nothing signed is lost before it is in git.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DotfleetError } from '../core/errors.js';
import { envelopeOf } from './incoming.js';

export const INTAKE_PATH = '/dotfleet/v1/attestations';

export interface SubmitTarget {
  /** The app's base URL (`https://dotfleet.example.org`) or the full intake URL for this repository. */
  url: string;
  owner: string;
  repo: string;
  host: string;
}

export function intakeUrl(t: SubmitTarget): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(t.url);
  } catch {
    /* said below */
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new DotfleetError('usage', `--submit needs the app's URL, got "${t.url}"`, { hint: 'e.g. --submit https://dotfleet.example.org' });
  }
  const base = t.url.replace(/\/+$/, '');
  if (base.includes(INTAKE_PATH + '/')) return `${base}/${encodeURIComponent(t.host)}`;
  return `${base}${INTAKE_PATH}/${encodeURIComponent(t.owner)}/${encodeURIComponent(t.repo)}/${encodeURIComponent(t.host)}`;
}

/** "https://github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@github.com/o/r" → o/r */
export function githubRepoOf(remote: string): { owner: string; repo: string } | undefined {
  const m = /github\.com[:/]+([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(remote.trim());
  return m ? { owner: m[1]!, repo: m[2]! } : undefined;
}

export type Answer = { ok: true; status: number; code: string; commit?: string; path?: string } | { ok: false; status: number; code: string; message: string; final: boolean; retryAfter?: number };

export interface SubmitOptions {
  /** Give up after this long, a request under way included (default 10 minutes; 0: one try); the attestation stays in the outbox. */
  timeoutMs: number;
  /** Longest wait for one answer (default 2 minutes; never past `timeoutMs`). */
  requestTimeoutMs: number;
  /** First backoff (default 1 s), doubled up to `maxBackoffMs` (default 60 s). */
  backoffMs: number;
  maxBackoffMs: number;
  fetch: typeof fetch;
  sleep: (ms: number) => Promise<void>;
  onRetry?: (why: string, waitMs: number) => void;
}

export const DEFAULT_SUBMIT: SubmitOptions = {
  timeoutMs: 10 * 60_000,
  requestTimeoutMs: 2 * 60_000,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  fetch: (...a) => fetch(...a),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

async function once(url: string, payload: Buffer, signature: string, f: typeof fetch, timeoutMs: number): Promise<Answer> {
  let res: Response;
  let body: { code?: string; message?: string; commit?: string; path?: string } = {};
  // One deadline for the whole exchange: a server that accepts the connection and never
  // answers (or stops half-way through the body) cannot hold the host past --submit-timeout.
  const signal = AbortSignal.timeout(Math.max(1, timeoutMs));
  try {
    res = await f(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'dotfleet-cli' }, body: envelopeOf({ payload, signature }), signal });
    try {
      body = (await res.json()) as typeof body;
    } catch (e) {
      if (signal.aborted) throw e;
      /* a proxy's HTML error page: the status says enough */
    }
  } catch (e) {
    const message = signal.aborted ? `no answer within ${Math.ceil(timeoutMs / 1000)} s` : (e as Error).message;
    return { ok: false, status: 0, code: signal.aborted ? 'timeout' : 'network', message, final: false };
  }
  if (res.status === 200 || res.status === 201) return { ok: true, status: res.status, code: body.code ?? 'accepted', commit: body.commit, path: body.path };
  const retryAfter = Number(res.headers.get('retry-after'));
  const final = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
  return { ok: false, status: res.status, code: body.code ?? `http-${res.status}`, message: body.message ?? res.statusText, final, retryAfter: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined };
}

/** Send until acknowledged, refused for good, or out of time. */
export async function submitAttestation(url: string, payload: Buffer, signature: string, options: Partial<SubmitOptions> = {}): Promise<Answer> {
  const o = { ...DEFAULT_SUBMIT, ...options };
  const deadline = Date.now() + o.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const a = await once(url, payload, signature, o.fetch, o.timeoutMs === 0 ? o.requestTimeoutMs : Math.min(o.requestTimeoutMs, deadline - Date.now()));
    if (a.ok || a.final) return a;
    const wait = a.retryAfter !== undefined ? a.retryAfter * 1000 : Math.min(o.maxBackoffMs, o.backoffMs * 2 ** attempt);
    if (Date.now() + wait > deadline) return a;
    o.onRetry?.(`${a.status === 0 ? 'network error' : `HTTP ${a.status}`} ${a.code}: ${a.message}`, wait);
    await o.sleep(wait);
  }
}

/** A host's outbox: attestations signed but not yet acknowledged. */
export class Outbox {
  constructor(
    readonly dir: string,
    readonly host: string,
  ) {}

  async put(name: string, payload: Buffer, signature: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, name);
    // The signature first, then the attestation by rename: a listed .json always has its .sig.
    await writeFile(`${file}.sig`, signature);
    await writeFile(`${file}.tmp`, payload);
    await rename(`${file}.tmp`, file);
    return file;
  }

  /** Waiting attestations of the host, oldest sequence first. */
  async pending(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return names
      .filter((n) => n.startsWith(`${this.host}-`) && n.endsWith('.json'))
      .sort()
      .map((n) => join(this.dir, n));
  }

  async read(file: string): Promise<{ payload: Buffer; signature: string }> {
    return { payload: await readFile(file), signature: await readFile(`${file}.sig`, 'utf8') };
  }

  /** Move a refused attestation to `refused/`, where it is kept but not sent again. */
  async setAside(file: string): Promise<string> {
    const dir = join(this.dir, 'refused');
    await mkdir(dir, { recursive: true });
    const to = join(dir, basename(file));
    await rename(file, to);
    await rename(`${file}.sig`, `${to}.sig`);
    return to;
  }

  async done(file: string): Promise<void> {
    await rm(file, { force: true });
    await rm(`${file}.sig`, { force: true });
  }
}
