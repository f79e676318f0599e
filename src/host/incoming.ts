/**
 * Sending attestations without an app: each one is committed as `incoming/<host>/<name>` on the
 * state branch of the fleet repository's remote and pushed (a deploy key is enough), where the
 * Action takes it (docs/action.md, "Incoming attestations"). Built with git's plumbing in a
 * temporary index: the host's checkout, its index and its branches are never touched. A push
 * that loses a race to another host is fetched and tried again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DotfleetError } from '../core/errors.js';
import { runGit } from './git.js';
import { INCOMING_DIR } from '../core/state/fleet-state.js';

const ATTEMPTS = 5;

export interface IncomingFile {
  /** `<host>-<sequence>.json` */
  name: string;
  payload: Buffer;
  signature: string;
}

/** The envelope the app's intake takes as its request body, and the Action as a file. */
export const envelopeOf = (f: Pick<IncomingFile, 'payload' | 'signature'>) => JSON.stringify({ attestation: f.payload.toString('base64'), signature: f.signature }) + '\n';

export type PushOutcome = { ok: true; commit: string; paths: string[] } | { ok: false; message: string; final: boolean };

async function must(root: string, args: string[], what: string, input?: string, env?: Record<string, string>): Promise<string> {
  const r = await runGit(root, args, input, env);
  if (r.code !== 0) throw new DotfleetError('git', `${what}: ${r.stderr.trim().split('\n').pop() ?? `git exited ${r.code}`}`);
  return r.stdout.toString('utf8').trim();
}

/** Commit `files` under incoming/<host>/ on `branch` of `remote` and push; fetch and retry when another host pushed first. */
export async function pushIncoming(root: string, remote: string, branch: string, host: string, files: IncomingFile[], sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<PushOutcome> {
  const temp = await mkdtemp(join(tmpdir(), 'dotfleet-incoming-'));
  const env = { GIT_INDEX_FILE: join(temp, 'index') };
  const local = `refs/dotfleet/incoming/${host}`;
  try {
    let last = '';
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const fetched = await runGit(root, ['fetch', '--quiet', '--no-tags', remote, `+refs/heads/${branch}:${local}`]);
      let parent: string | undefined;
      if (fetched.code === 0) parent = await must(root, ['rev-parse', '--verify', `${local}^{commit}`], 'the fetched state branch');
      else if (!/couldn't find remote ref|could not find remote ref/i.test(fetched.stderr)) {
        return { ok: false, message: `cannot fetch ${branch} from ${remote}: ${fetched.stderr.trim().split('\n').pop()}`, final: false };
      }
      await rm(env.GIT_INDEX_FILE, { force: true });
      if (parent) await must(root, ['read-tree', parent], 'reading the state branch', undefined, env);
      const paths: string[] = [];
      for (const f of files) {
        const blob = await must(root, ['hash-object', '-w', '--stdin'], 'storing the attestation', envelopeOf(f));
        const path = `${INCOMING_DIR}/${host}/${f.name}`;
        await must(root, ['update-index', '--add', '--cacheinfo', `100644,${blob},${path}`], 'adding the attestation', undefined, env);
        paths.push(path);
      }
      const tree = await must(root, ['write-tree'], 'writing the tree', undefined, env);
      const message = `incoming: ${host} ${files.map((f) => f.name).join(' ')}`;
      const identity = { GIT_AUTHOR_NAME: `dotfleet ${host}`, GIT_AUTHOR_EMAIL: `${host}@dotfleet.invalid`, GIT_COMMITTER_NAME: `dotfleet ${host}`, GIT_COMMITTER_EMAIL: `${host}@dotfleet.invalid` };
      const commit = await must(root, ['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', message], 'committing', undefined, identity);
      const pushed = await runGit(root, ['push', '--quiet', '--porcelain', remote, `${commit}:refs/heads/${branch}`]);
      if (pushed.code === 0) return { ok: true, commit, paths };
      last = (pushed.stderr.trim() || pushed.stdout.toString('utf8').trim()).split('\n').pop() ?? '';
      // Another host pushed first: fetch its commit and add ours on top.
      if (!/non-fast-forward|fetch first|rejected|stale info/i.test(pushed.stderr + pushed.stdout.toString('utf8'))) {
        return { ok: false, message: `cannot push to ${branch} on ${remote}: ${last}`, final: /denied|permission|protected|not allowed|read only/i.test(last) };
      }
      await sleep(200 * 2 ** attempt + Math.floor(Math.random() * 200));
    }
    return { ok: false, message: `${branch} on ${remote} kept moving (${ATTEMPTS} tries): ${last}`, final: false };
  } finally {
    await rm(temp, { recursive: true, force: true });
    await runGit(root, ['update-ref', '-d', local]);
  }
}
