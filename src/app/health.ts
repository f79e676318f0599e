/**
 * `GET /dotfleet/v1/health`: what a container's health check and a load balancer ask. 200 with
 * the version and whether rollouts are on, once the app has loaded and its routes are served
 * (Probot's own `/ping` answers before the app is ready; this route is the app's own).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { packageVersion } from '../host/package.js';

export const HEALTH_PATH = '/dotfleet/v1/health';

export function healthHandler(state: () => { rollouts: boolean }) {
  const version = packageVersion();
  const started = Date.now();
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if ((req.url ?? '').split('?')[0] !== HEALTH_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    const body = JSON.stringify({ status: 'ok', version, rollouts: state().rollouts ? 'on' : 'off', uptimeSeconds: Math.floor((Date.now() - started) / 1000) }) + '\n';
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
