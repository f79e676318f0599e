import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { loadFleet } from '../../core/fleet.js';
import { compareStrings } from '../../core/paths.js';
import { parseAllowedSigners, type AllowedSigners } from '../../core/ssh/allowed-signers.js';
import { parseSshTime } from '../../core/ssh/time.js';
import { verifyAttestation, type Verdict } from '../../core/attestation/verify.js';
import { readTreeAtRef, repoRoot, resolveCommit } from '../../host/git.js';
import { EXIT, write } from '../io.js';

export function parseTime(text: string): Date {
  const ssh = /^\d{8}/.test(text) ? parseSshTime(text) : null;
  const ms = ssh ? ssh.seconds * 1000 : Date.parse(text);
  if (!Number.isFinite(ms)) throw new DotfleetError('usage', `"${text}" is not a time`, { hint: 'use ISO-8601 (2026-11-22T10:00:00Z) or ssh-keygen\'s YYYYMMDDHHMMSSZ' });
  return new Date(ms);
}

/** Print the trust file's problems; true when any is an error (the command then exits 2, verdicts printed all the same). */
function reportProblems(signers: AllowedSigners, file: string): boolean {
  for (const p of signers.problems) process.stderr.write(`dotfleet: ${p.severity}: ${file}:${p.line}: ${p.message}\n`);
  return signers.problems.some((p) => p.severity === 'error');
}

/** The exit code: an error printed about the trust file outranks the verdicts. */
const exitFor = (allVerified: boolean, trustErrors: boolean) => (trustErrors ? EXIT.usage : allVerified ? EXIT.ok : EXIT.differences);

function verdictLine(name: string, v: Verdict): string {
  return v.ok ? `${name}: verified: ${v.message}` : `${name}: REJECTED [${v.code}]: ${v.message}`;
}

interface VerifyOpts {
  sig?: string;
  allowedSigners?: string;
  at?: string;
  repo?: string;
  ref?: string;
  trustRef: string;
  json?: boolean;
}

async function verifyBranch(opts: VerifyOpts): Promise<number> {
  const root = await repoRoot(opts.repo!);
  const tree = await readTreeAtRef(root, opts.ref!);
  let signers: AllowedSigners;
  let trustFrom: string;
  if (opts.allowedSigners) {
    signers = parseAllowedSigners(await readFile(opts.allowedSigners, 'utf8'));
    trustFrom = opts.allowedSigners;
  } else {
    const trustCommit = await resolveCommit(root, opts.trustRef);
    const trustTree = await readTreeAtRef(root, trustCommit);
    const path = loadFleet(trustTree).settings.allowed_signers;
    const body = trustTree.get(path);
    if (!body) throw new DotfleetError('usage', `no ${path} at ${opts.trustRef}`, { hint: 'pass --trust-ref with your default branch, or --allowed-signers FILE' });
    signers = parseAllowedSigners(Buffer.from(body).toString('utf8'));
    trustFrom = `${opts.trustRef}:${path}`;
  }
  const trustErrors = reportProblems(signers, trustFrom);
  const files = [...tree.keys()].filter((p) => /^attestations\/[^/]+\/[^/]+\.json$/.test(p)).sort(compareStrings);
  const rows: { file: string; verdict: Verdict }[] = [];
  const lastSeq = new Map<string, { sequence: number; file: string }>();
  const at = opts.at ? parseTime(opts.at) : undefined;
  const verdicts = files.map((file) => {
    const sig = tree.get(`${file}.sig`);
    const host = file.split('/')[1]!;
    const verdict: Verdict = sig
      ? verifyAttestation(tree.get(file)!, Buffer.from(sig).toString('utf8'), { signers, expectHost: host, at })
      : { ok: false, code: 'armour', message: `no ${file}.sig` };
    return { file, host, verdict };
  });
  // Sequence numbers must increase per host, in sequence order, without repeats.
  verdicts.sort((a, b) => compareStrings(a.host, b.host) || (a.verdict.sequence ?? 0) - (b.verdict.sequence ?? 0));
  for (const v of verdicts) {
    const prev = lastSeq.get(v.host);
    if (v.verdict.ok && prev !== undefined && v.verdict.sequence! <= prev.sequence) {
      v.verdict = { ...v.verdict, ok: false, code: 'sequence', message: `sequence ${v.verdict.sequence} of ${v.host} is also used by ${prev.file}` };
    }
    if (v.verdict.ok) lastSeq.set(v.host, { sequence: v.verdict.sequence!, file: v.file });
    rows.push({ file: v.file, verdict: v.verdict });
  }
  if (opts.json) {
    write(JSON.stringify({ ref: opts.ref, trust: trustFrom, results: rows.map((r) => ({ file: r.file, ...r.verdict, statement: undefined })) }, null, 2));
  } else {
    const table = [['FILE', 'HOST', 'SEQ', 'ISSUED', 'STATUS', 'VERDICT'], ...rows.map(({ file, verdict: v }) => [file, v.host ?? '?', String(v.sequence ?? '?'), v.issuedAt ?? '?', v.statement?.predicate.status ?? '?', v.ok ? 'verified' : `REJECTED ${v.code}: ${v.message}`])];
    const w = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    write(table.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n'));
    write(`${rows.filter((r) => r.verdict.ok).length} of ${rows.length} attestations verified against ${trustFrom}`);
  }
  return exitFor(rows.every((r) => r.verdict.ok), trustErrors);
}

export function verifyCommand(program: Command): void {
  program
    .command('verify')
    .description('verify attestations: one file, or every attestation on a branch')
    .argument('[file]', 'an attestation (NAME.json); its signature is NAME.json.sig unless --sig')
    .option('--sig <file>', 'the signature file')
    .option('--allowed-signers <file>', 'trust: an OpenSSH allowed_signers file')
    .option('--at <time>', "check the key's validity at this time (default: the attestation's issued-at)")
    .option('--repo <dir>', 'verify every attestations/HOST/*.json in this repository at --ref')
    .option('--ref <rev>', 'the branch or commit holding attestations (e.g. dotfleet/state)')
    .option('--trust-ref <rev>', 'read allowed_signers from this revision (your default branch)', 'main')
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, opts: VerifyOpts) => {
      if (opts.repo || opts.ref) {
        if (!opts.repo || !opts.ref || file) throw new DotfleetError('usage', 'verify a branch with --repo DIR --ref REF (and no FILE)');
        process.exitCode = await verifyBranch(opts);
        return;
      }
      if (!file) throw new DotfleetError('usage', 'name an attestation file, or use --repo DIR --ref REF');
      if (!opts.allowedSigners) throw new DotfleetError('usage', '--allowed-signers is required', { hint: 'pass the allowed_signers file from your default branch' });
      const read = async (p: string) => readFile(p).catch(() => Promise.reject(new DotfleetError('usage', `cannot read ${p}`, { file: p })));
      const payload = await read(file);
      const sig = (await read(opts.sig ?? `${file}.sig`)).toString('utf8');
      const signers = parseAllowedSigners((await read(opts.allowedSigners)).toString('utf8'));
      const trustErrors = reportProblems(signers, opts.allowedSigners);
      const verdict = verifyAttestation(payload, sig, { signers, at: opts.at ? parseTime(opts.at) : undefined });
      if (opts.json) write(JSON.stringify({ file, ...verdict, statement: undefined }, null, 2));
      else write(verdictLine(file, verdict));
      process.exitCode = exitFor(verdict.ok, trustErrors);
    });
}
