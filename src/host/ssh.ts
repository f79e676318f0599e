/**
 * Running dotfleet on other hosts with the real `ssh` client: batch mode (never a password
 * prompt), a connect timeout, a per-host time limit (the ssh process is killed at it), and a
 * bounded number of hosts at once. Arguments are quoted for the remote shell, except the command
 * prefix (`--remote-dotfleet`), which is the user's own shell text.
 */
import { spawn } from 'node:child_process';
import type { Host } from '../core/inventory.js';

export interface RemoteResult {
  host: string;
  /** ssh's exit code (255: ssh itself failed, e.g. the host is unreachable), or null when killed at the time limit. */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** A word for a POSIX shell: single-quoted unless it is plainly safe. */
export const shellQuote = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

export function sshArgs(host: Host, options: string[], command: string): string[] {
  const args = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'];
  for (const o of options) args.push('-o', o);
  if (host.ssh?.port) args.push('-p', String(host.ssh.port));
  const address = host.ssh?.host ?? host.name;
  args.push(host.ssh?.user ? `${host.ssh.user}@${address}` : address, '--', command);
  return args;
}

export function runRemote(host: Host, command: string, opts: { sshOptions: string[]; timeoutMs: number }): Promise<RemoteResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('ssh', sshArgs(host, opts.sshOptions, command), { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    const done = (code: number | null, extra = '') => {
      clearTimeout(timer);
      resolve({ host: host.name, code: timedOut ? null : code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') + extra, timedOut, ms: Date.now() - started });
    };
    child.on('error', (e) => done(255, `cannot run ssh: ${e.message}\n`));
    child.on('close', (code) => done(code));
  });
}

/** `fn` over every item, at most `limit` at once; results in the items' order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Why a remote run failed, in one line: ssh's own complaint, the command's last error line, or the time limit. */
export function failureLine(r: RemoteResult, timeoutMs: number): string {
  if (r.timedOut) return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  const last = r.stderr.trim().split('\n').filter(Boolean).pop() ?? '';
  if (r.code === 255) return `unreachable: ${last.replace(/^ssh: /, '') || 'ssh failed'}`;
  return `exit ${r.code}${last ? `: ${last.replace(/^dotfleet: (error: )?/, '')}` : ''}`;
}
