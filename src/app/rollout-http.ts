/**
 * `GET /dotfleet/v1/rollout/{owner}/{repo}`: the current rollout manifest for hosts that poll the
 * app instead of fetching the state branch. The body is JSON, `{"manifest": "<base64 of the exact
 * signed bytes>", "signature": "-----BEGIN SSH SIGNATURE-----…"}` (the attestation envelope's
 * shape); the ETag names the manifest's sequence and digest, so an idle host's poll is one
 * conditional GET answered 304 from memory.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Rollouts } from './rollout.js';
import type { WriterLog } from './intake/writer.js';

export const ROLLOUT_PATH = '/dotfleet/v1/rollout';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body) + '\n';
  res.writeHead(status, { ...(text ? { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) } : {}), 'cache-control': 'no-cache', ...headers });
  res.end(text);
}

/** Does an If-None-Match header name this ETag (or `*`)? */
const matches = (header: string | undefined, etag: string) => !!header && header.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}` || t.trim() === '*');

export function rolloutHandler(rollouts: Rollouts, log: WriterLog) {
  const etags = new WeakMap<Buffer, string>();
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://app');
    if (url.pathname !== ROLLOUT_PATH && !url.pathname.startsWith(ROLLOUT_PATH + '/')) return false;
    const parts = url.pathname.slice(ROLLOUT_PATH.length + 1).split('/');
    if (parts.length !== 2 || parts.some((p) => p === '')) {
      send(res, 404, { code: 'not-found', message: `GET ${ROLLOUT_PATH}/OWNER/REPO` });
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, { code: 'method-not-allowed', message: 'only GET' }, { allow: 'GET, HEAD' });
      return true;
    }
    if (!rollouts.enabled) {
      send(res, 404, { code: 'no-rollouts', message: 'rollouts are off on this app (DOTFLEET_SIGNING_KEY is not set)' });
      return true;
    }
    try {
      const [owner, repo] = parts.map((p) => decodeURIComponent(p)) as [string, string];
      const cur = await rollouts.for({ owner, repo }).served();
      if (!cur.bytes || !cur.signature) {
        send(res, 404, { code: 'no-rollout', message: `${owner}/${repo} has no rollout manifest yet` });
        return true;
      }
      let etag = etags.get(cur.bytes);
      if (!etag) {
        etag = `"m${cur.manifest!.sequence}-${createHash('sha256').update(cur.bytes).digest('hex').slice(0, 16)}"`;
        etags.set(cur.bytes, etag);
      }
      if (matches(req.headers['if-none-match'] as string | undefined, etag)) {
        send(res, 304, undefined, { etag });
        return true;
      }
      send(res, 200, req.method === 'HEAD' ? undefined : { manifest: cur.bytes.toString('base64'), signature: cur.signature }, { etag });
    } catch (e) {
      const m = (e as Error).message;
      if (/not installed/.test(m)) send(res, 404, { code: 'unknown-repository', message: m });
      else {
        log.warn(`rollout route: ${(e as Error).stack ?? e}`);
        send(res, 503, { code: 'unavailable', message: 'the app cannot read the rollout now; try again later' }, { 'retry-after': '30' });
      }
    }
    return true;
  };
}
