/**
 * `POST /dotfleet/v1/attestations/{owner}/{repo}/{host}` on the app's server (Probot's
 * addHandler). The body is JSON: `{"attestation": "<base64 of the exact signed bytes>",
 * "signature": "-----BEGIN SSH SIGNATURE-----…"}`. Every answer is JSON with `code` and `message`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Intake, IntakeReply } from './service.js';
import type { WriterLog } from './writer.js';

export const INTAKE_PATH = '/dotfleet/v1/attestations';

export interface HttpOptions {
  /** Take the client address from X-Forwarded-For (only behind a proxy you run). */
  trustProxy: boolean;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function send(res: ServerResponse, r: IntakeReply): void {
  const body = JSON.stringify(r.body) + '\n';
  res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...r.headers });
  res.end(body);
}

const error = (status: number, code: string, message: string, headers?: Record<string, string>): IntakeReply => ({ status, body: { code, message }, headers });

/** The body, or undefined (after answering 413) when it is larger than `max`. */
async function readBody(req: IncomingMessage, res: ServerResponse, max: number): Promise<Buffer | undefined> {
  const tooBig = () => {
    send(res, error(413, 'too-large', `the request body is larger than ${max} bytes`));
    req.resume();
    return undefined;
  };
  if (Number(req.headers['content-length'] ?? 0) > max) return tooBig();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) return tooBig();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The envelope's two fields, or a reason it is malformed. */
export function parseEnvelope(body: Buffer): { payload: Buffer; signature: string } | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return `the body is not JSON: ${(e as Error).message}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the body must be a JSON object {"attestation", "signature"}';
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).filter((k) => k !== 'attestation' && k !== 'signature');
  if (extra.length > 0) return `unknown field "${extra[0]}": the body has only "attestation" and "signature"`;
  if (typeof v.attestation !== 'string' || v.attestation.length === 0) return '"attestation" must be the attestation\'s bytes in base64';
  if (typeof v.signature !== 'string' || v.signature.length === 0) return '"signature" must be the armoured SSH signature (the .json.sig file)';
  if (!BASE64.test(v.attestation) || v.attestation.length % 4 !== 0) return '"attestation" is not valid base64';
  const payload = Buffer.from(v.attestation, 'base64');
  if (payload.toString('base64') !== v.attestation) return '"attestation" is not canonical base64';
  return { payload, signature: v.signature };
}

export function intakeHandler(intake: Intake, log: WriterLog, options: Partial<HttpOptions> = {}) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://intake');
    if (url.pathname !== INTAKE_PATH && !url.pathname.startsWith(INTAKE_PATH + '/')) return false;
    try {
      const parts = url.pathname.slice(INTAKE_PATH.length + 1).split('/');
      if (parts.length !== 3 || parts.some((p) => p === '')) {
        send(res, error(404, 'not-found', `post to ${INTAKE_PATH}/OWNER/REPO/HOST`));
        return true;
      }
      if (req.method !== 'POST') {
        send(res, error(405, 'method-not-allowed', 'only POST', { allow: 'POST' }));
        return true;
      }
      const forwarded = options.trustProxy ? String(req.headers['x-forwarded-for'] ?? '').split(',')[0]!.trim() : '';
      const address = forwarded || req.socket.remoteAddress || 'unknown';
      const limited = intake.addressLimiter.take(address);
      if (!limited.ok) {
        send(res, error(429, 'rate-limited', `too many requests from ${address}`, { 'retry-after': String(limited.retryAfter) }));
        req.resume();
        return true;
      }
      const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') {
        send(res, error(415, 'unsupported-media-type', `the body must be sent as Content-Type: application/json${type ? `, not ${type}` : ''}`, { accept: 'application/json' }));
        req.resume();
        return true;
      }
      const body = await readBody(req, res, intake.options.maxBytes);
      if (!body) return true;
      const envelope = parseEnvelope(body);
      if (typeof envelope === 'string') {
        send(res, error(400, 'malformed', envelope));
        return true;
      }
      let owner: string, repo: string, host: string;
      try {
        [owner, repo, host] = parts.map((p) => decodeURIComponent(p)) as [string, string, string];
      } catch {
        send(res, error(400, 'malformed', 'the path is not valid percent-encoding'));
        return true;
      }
      send(res, await intake.submit({ owner, repo, host, ...envelope }));
    } catch (e) {
      log.warn(`intake: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) send(res, error(503, 'unavailable', 'the app could not process the attestation now; send the same attestation again later (if it was recorded meanwhile, the answer is "already-recorded")', { 'retry-after': '30' }));
    }
    return true;
  };
}
