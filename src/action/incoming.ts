/**
 * Attestations that hosts push to the state branch when there is no app to post them to: each
 * host commits `incoming/<host>/<name>.json` (the intake's envelope, `{"attestation", "signature"}`)
 * with a deploy key. The Action hands every such file to the same intake the app runs, so an
 * accepted one lands in the history exactly as if it had been posted; then one commit removes the
 * files it decided on and records each refusal under `rejected/<host>/<name>.json` with its code
 * and reason. A file the intake could not decide on now (GitHub unavailable, rate limit) stays for
 * the next run.
 */
import { HOST_NAME } from '../core/inventory.js';
import { codeCell, inline } from '../core/report/common.js';
import { INCOMING_DIR, REJECTED_DIR } from '../core/state/fleet-state.js';
import type { RepoRef, StateGitHub } from '../github/port.js';
import { parseEnvelope } from '../app/intake/http.js';
import type { Intake } from '../app/intake/service.js';
import type { WriterLog } from '../app/intake/writer.js';

/** Attestations decided on at once (the writer batches their commits). */
const CONCURRENCY = 32;
/** Tries of the clean-up commit against a moving branch. */
const ATTEMPTS = 5;

export interface IncomingOutcome {
  file: string;
  host: string;
  status: number;
  code: string;
  message: string;
}

export interface IncomingReport {
  branch: string;
  outcomes: IncomingOutcome[];
  /** GitHub cut the directory listing: the rest is taken by the next run. */
  truncated: boolean;
  /** The clean-up commit, when one was made. */
  commit?: string;
}

const decided = (o: IncomingOutcome) => o.status < 300 || (o.status >= 400 && o.status < 500 && o.status !== 429);

/** Recorded (accepted or already recorded), refused for good, and left for the next run. */
export function tally(r: IncomingReport): { recorded: IncomingOutcome[]; rejected: IncomingOutcome[]; waiting: IncomingOutcome[] } {
  return { recorded: r.outcomes.filter((o) => o.status < 300), rejected: r.outcomes.filter((o) => o.status >= 400 && decided(o)), waiting: r.outcomes.filter((o) => !decided(o)) };
}

/** `incoming/<host>/<name>.json` → the host, or why the path is not one. */
function hostOfPath(file: string): string | { why: string } {
  const parts = file.split('/');
  if (parts.length !== 3 || !parts[2]!.endsWith('.json')) return { why: `${file} is not incoming/<host>/<name>.json` };
  if (!HOST_NAME.test(parts[1]!)) return { why: `"${parts[1]}" in ${file} is not a host name` };
  return parts[1]!;
}

export async function takeIncoming(github: StateGitHub, intake: Intake, ref: RepoRef, log: WriterLog): Promise<IncomingReport> {
  const repo = intake.repository(ref);
  const trust = await repo.trust();
  const branch = trust.fleet.settings.state_branch;
  const head = await github.branchHead(ref, branch);
  if (!head) return { branch, outcomes: [], truncated: false };
  const { files, truncated } = await github.listFiles(ref, head, INCOMING_DIR);
  if (files.length === 0) return { branch, outcomes: [], truncated };
  log.info(`${files.length} file(s) in ${INCOMING_DIR}/ on ${branch} at ${head.slice(0, 7)}`);

  const kept = new Map<string, Uint8Array>();
  const one = async (file: string): Promise<IncomingOutcome> => {
    const host = hostOfPath(file);
    if (typeof host !== 'string') return { file, host: '', status: 400, code: 'malformed', message: host.why };
    const bytes = await github.readFile(ref, head, file);
    if (!bytes) return { file, host, status: 409, code: 'gone', message: `${file} is no longer on ${branch}` };
    if (bytes.length > intake.options.maxBytes) return { file, host, status: 413, code: 'too-large', message: `${file} is ${bytes.length} bytes; at most ${intake.options.maxBytes}` };
    kept.set(file, bytes);
    const envelope = parseEnvelope(Buffer.from(bytes));
    if (typeof envelope === 'string') return { file, host, status: 400, code: 'malformed', message: envelope };
    const r = await intake.submit({ owner: ref.owner, repo: ref.repo, host, payload: envelope.payload, signature: envelope.signature });
    return { file, host, status: r.status, code: r.body.code, message: r.body.message };
  };
  const outcomes: IncomingOutcome[] = new Array(files.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, files.length) }, async () => {
      while (next < files.length) {
        const i = next++;
        outcomes[i] = await one(files[i]!).catch((e) => ({ file: files[i]!, host: '', status: 503, code: 'unavailable', message: (e as Error).message.split('\n')[0]!.slice(0, 300) }));
      }
    }),
  );

  // One commit: the decided files leave incoming/, each refusal is kept with its reason.
  const done = outcomes.filter(decided);
  if (done.length === 0) return { branch, outcomes, truncated };
  const at = new Date().toISOString();
  const additions = done
    .filter((o) => o.status >= 400)
    .map((o) => {
      const original = kept.get(o.file);
      const record = { file: o.file, code: o.code, message: o.message, rejectedAt: at, ...(original && original.length <= intake.options.maxBytes ? { envelope: Buffer.from(original).toString('utf8') } : {}) };
      const name = o.file.slice(INCOMING_DIR.length + 1);
      return { path: `${REJECTED_DIR}/${name.split('/').length === 2 ? name : name.replace(/\//g, '_')}`, contents: Buffer.from(JSON.stringify(record, null, 2) + '\n') };
    });
  const accepted = done.filter((o) => o.status < 300).length;
  const message = { headline: `incoming: ${accepted} recorded, ${done.length - accepted} rejected`, body: done.map((o) => `${o.file}: ${o.code}`).join('\n').slice(0, 60_000) };
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const now = await github.branchHead(ref, branch);
    if (!now) break;
    const still = new Set((await github.listFiles(ref, now, INCOMING_DIR)).files);
    const deletions = done.map((o) => o.file).filter((f) => still.has(f));
    if (deletions.length === 0 && additions.length === 0) break;
    const commit = await github.commitOnBranch(ref, branch, now, message, additions, deletions);
    if (commit !== 'stale') return { branch, outcomes, truncated, commit };
  }
  log.warn(`${branch} kept moving: the ${INCOMING_DIR}/ clean-up is left to the next run (the recorded attestations are answered "already recorded" then)`);
  return { branch, outcomes, truncated };
}

/** The job summary's section for the files taken. */
export function incomingMarkdown(r: IncomingReport): string {
  if (r.outcomes.length === 0) return `#### Incoming attestations\n\nNone in \`${INCOMING_DIR}/\` on \`${r.branch}\`.\n`;
  const { recorded: accepted, rejected, waiting } = tally(r);
  // A file name and a refusal's message come from whoever pushed (a host's deploy key): inert.
  const cell = (s: string) => inline(s.slice(0, 300));
  const out = [`#### Incoming attestations`, '', `${accepted.length} recorded, ${rejected.length} rejected, ${waiting.length} left for the next run (\`${r.branch}\`${r.commit ? `, clean-up ${r.commit.slice(0, 7)}` : ''}).`, ''];
  const listed = [...rejected, ...waiting];
  if (listed.length > 0) {
    out.push('| File | Code | Reason |', '|---|---|---|');
    for (const o of listed) out.push(`| ${codeCell(o.file.slice(0, 300))} | ${o.code} | ${cell(o.message)} |`);
    out.push('');
  }
  if (r.truncated) out.push(`> GitHub listed only part of \`${INCOMING_DIR}/\`; the next run takes the rest.`, '');
  return out.join('\n');
}
