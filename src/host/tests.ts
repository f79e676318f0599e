/**
 * A host's own tests (`hosts/<host>/tests/T*.sh` in the fleet checkout), run after an apply:
 * each with `sh`, in the checkout, with HOME set to the target, DOTFLEET_HOST and DOTFLEET_TARGET
 * set, and a time limit. Exit 0 passes, 77 skips (as in automake), anything else fails; a test
 * still running at its limit is killed and fails. Output (stdout and stderr together) is kept,
 * cut to OUTPUT_LIMIT characters, for the attestation.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Predicate } from '../core/attestation/format.js';

export const OUTPUT_LIMIT = 4000;
export const SKIP_CODE = 77;

export type TestResult = Predicate['tests'][number];

/** The test files of a host, in name order. */
export function hostTests(checkout: string, host: string): string[] {
  const dir = join(checkout, 'hosts', host, 'tests');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /^T.*\.sh$/.test(n)).sort().map((n) => join(dir, n));
}

export async function runTest(file: string, opts: { checkout: string; host: string; target: string; timeoutMs: number }): Promise<TestResult> {
  const started = Date.now();
  const name = file.slice(file.lastIndexOf('/') + 1);
  return new Promise((resolve) => {
    const child = spawn('sh', [file], {
      cwd: opts.checkout,
      env: { ...process.env, HOME: opts.target, DOTFLEET_HOST: opts.host, DOTFLEET_TARGET: opts.target },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    const take = (b: Buffer) => {
      if (output.length < OUTPUT_LIMIT + 1) output += b.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The whole process group: a test's own children go too.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, opts.timeoutMs);
    const finish = (code: number | null, error?: string) => {
      clearTimeout(timer);
      let out = error ? `${output}${error}\n` : output;
      if (timedOut) out += `\n(killed after ${Math.round(opts.timeoutMs / 1000)} s)\n`;
      if (out.length > OUTPUT_LIMIT) out = `${out.slice(0, OUTPUT_LIMIT)}\n(cut at ${OUTPUT_LIMIT} characters)\n`;
      const status = !timedOut && code === 0 ? 'pass' : !timedOut && code === SKIP_CODE ? 'skip' : 'fail';
      resolve({ name, status, durationMs: Date.now() - started, ...(out ? { output: out } : {}) });
    };
    child.on('error', (e) => finish(null, `cannot run: ${e.message}`));
    child.on('close', (code) => finish(code));
  });
}

export async function runHostTests(checkout: string, host: string, target: string, timeoutMs: number): Promise<TestResult[]> {
  const out: TestResult[] = [];
  for (const file of hostTests(checkout, host)) out.push(await runTest(file, { checkout, host, target, timeoutMs }));
  return out;
}
