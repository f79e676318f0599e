import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import type { RenderedTree, RepoTree } from '../../core/tree.js';
import { computeDrift, desiredState } from '../../core/drift.js';
import { Home, HostState, openTarget } from '../../host/home.js';
import { getHost } from '../../core/fleet.js';
import { Renderer } from '../../core/render.js';
import { renderHash } from '../../core/render-hash.js';
import { ATTESTATION_NAMESPACE, serialise, statement, STATUSES, subjectName, type Predicate } from '../../core/attestation/format.js';
import { meets, policyHash, toolRequirements } from '../../core/attestation/policy.js';
import { EncryptedKeyError, OtherKeyTypeError, parseOpenSshPrivateKey } from '../../core/ssh/keys.js';
import { signMessage } from '../../core/ssh/sshsig.js';
import { lookupSigner, parseAllowedSigners } from '../../core/ssh/allowed-signers.js';
import { runGit } from '../../host/git.js';
import { signWithSshKeygen } from '../../host/ssh-keygen.js';
import { defaultStateDir, lastSequence, saveSequence } from '../../host/state.js';
import { DEFAULT_TOOLS, toolVersion } from '../../host/tools.js';
import { agentVersion, EXIT, openFleet, write, writeExact } from '../io.js';
import { githubRepoOf, intakeUrl, Outbox, submitAttestation } from '../../host/submit.js';
import { pushIncoming } from '../../host/incoming.js';
import { parseSignatureBlob, dearmour } from '../../core/ssh/sshsig.js';


interface AttestOptions {
  repo: string;
  ref: string;
  host: string;
  key: string;
  out?: string;
  stdout?: boolean;
  submit?: string;
  githubRepo?: string;
  submitTimeout: string;
  status: (typeof STATUSES)[number];
  rolloutTarget?: string;
  sequence?: string;
  stateDir: string;
  target?: string;
}

/** The key file's text; a clear error when it cannot be read (checked before anything is built). */
export async function readKeyFile(keyFile: string): Promise<string> {
  try {
    return await readFile(keyFile, 'utf8');
  } catch {
    throw new DotfleetError('usage', `cannot read the key ${keyFile}`, { file: keyFile, hint: 'pass --key with the host\'s SSH private key (or its .pub when ssh-agent holds it)' });
  }
}

/** Sign with our own code when we can read the key; through ssh-keygen when it is encrypted or in an agent. */
export async function signAttestation(keyFile: string, payload: Buffer): Promise<string> {
  const text = await readKeyFile(keyFile);
  if (/^(ssh-|ecdsa-|sk-|rsa-)\S+ /.test(text.trim())) {
    process.stderr.write(`dotfleet: ${keyFile} is a public key: signing through ssh-keygen -Y sign with ssh-agent (or a hardware key)\n`);
    return signWithSshKeygen(keyFile, ATTESTATION_NAMESPACE, payload);
  }
  try {
    return signMessage(payload, parseOpenSshPrivateKey(text, keyFile), ATTESTATION_NAMESPACE);
  } catch (e) {
    if (e instanceof OtherKeyTypeError) return signWithSshKeygen(keyFile, ATTESTATION_NAMESPACE, payload);
    if (!(e instanceof EncryptedKeyError)) throw e;
    process.stderr.write(`dotfleet: ${keyFile} is encrypted: signing through ssh-keygen -Y sign\n`);
    return signWithSshKeygen(keyFile, ATTESTATION_NAMESPACE, payload);
  }
}

/** The subject: the app's one form for a GitHub repository, else the remote's URL (or the directory's name). */
export async function repositoryName(opts: { githubRepo?: string }, root: string): Promise<string> {
  const r = await runGit(root, ['config', '--get', 'remote.origin.url']);
  const url = r.code === 0 ? r.stdout.toString('utf8').trim() : '';
  const gh = opts.githubRepo !== undefined || githubRepoOf(url) ? await githubRepo(opts, root) : undefined;
  if (gh) return subjectName(gh.owner, gh.repo);
  return url ? `git+${url.replace(/^git@([^:]+):/, 'https://$1/')}` : basename(root);
}

export async function githubRepo(opts: { githubRepo?: string }, root: string): Promise<{ owner: string; repo: string }> {
  const given = opts.githubRepo ?? (await runGit(root, ['config', '--get', 'remote.origin.url'])).stdout.toString('utf8');
  const found = opts.githubRepo ? /^([^/\s]+)\/([^/\s]+)$/.exec(opts.githubRepo) : null;
  const repo = found ? { owner: found[1]!, repo: found[2]! } : githubRepoOf(given);
  if (!repo) throw new DotfleetError('usage', `cannot tell the fleet's GitHub repository from "${given.trim() || 'no remote origin'}"`, { hint: 'pass --github-repo OWNER/REPO' });
  return repo;
}

/** Where --submit sends: the app's intake URL, or (`git`, `git:REMOTE`) incoming/ on the state branch of a git remote, for the Action. */
export type SubmitTo = { kind: 'app'; url: string } | { kind: 'git'; root: string; remote: string; branch: string };

export async function submitTo(submit: string, opts: { githubRepo?: string }, root: string, host: string, stateBranch: string): Promise<SubmitTo> {
  const git = /^git(?::(.*))?$/.exec(submit);
  if (!git) return { kind: 'app', url: intakeUrl({ url: submit, ...(await githubRepo(opts, root)), host }) };
  const remote = git[1] ?? 'origin';
  if (!remote || remote.startsWith('-')) throw new DotfleetError('usage', `--submit git:REMOTE needs a remote name or URL, got "${submit}"`);
  return { kind: 'git', root, remote, branch: stateBranch };
}

/** Send the outbox to wherever --submit points. */
export async function sendTo(outbox: Outbox, to: SubmitTo, timeout: number): Promise<number> {
  return to.kind === 'app' ? sendOutbox(outbox, to.url, timeout) : pushOutbox(outbox, to);
}

/**
 * Push every waiting attestation of this host to incoming/ in one commit; pushed ones leave the
 * outbox (the Action records or refuses them; a refusal is kept on the branch under rejected/).
 */
export async function pushOutbox(outbox: Outbox, to: Extract<SubmitTo, { kind: 'git' }>): Promise<number> {
  const pending = await outbox.pending();
  if (pending.length === 0) return EXIT.ok;
  const files = await Promise.all(pending.map(async (file) => ({ file, name: basename(file), ...(await outbox.read(file)) })));
  const pushed = await pushIncoming(to.root, to.remote, to.branch, outbox.host, files);
  if (!pushed.ok) {
    process.stderr.write(`dotfleet: not pushed: ${pushed.message}\n`);
    process.stderr.write(`dotfleet: ${files.length === 1 ? 'it stays' : `all ${files.length} stay`} in ${outbox.dir} and ${files.length === 1 ? 'is' : 'are'} pushed again by the next attest --submit\n`);
    return EXIT.notAcknowledged;
  }
  for (const f of files) await outbox.done(f.file);
  write(`pushed ${pushed.paths.join(', ')} to ${to.branch} on ${to.remote} (${pushed.commit.slice(0, 12)}): the Action records ${files.length === 1 ? 'it' : 'them'} on its next run`);
  return EXIT.ok;
}

/** Send every waiting attestation of this host, oldest first; an acknowledged one leaves the outbox. */
export async function sendOutbox(outbox: Outbox, url: string, timeout: number): Promise<number> {
  let code: number = EXIT.ok;
  for (const file of await outbox.pending()) {
    const { payload, signature } = await outbox.read(file);
    const answer = await submitAttestation(url, payload, signature, {
      timeoutMs: timeout * 1000,
      onRetry: (why, wait) => process.stderr.write(`dotfleet: ${basename(file)}: ${why}; retrying in ${Math.ceil(wait / 1000)} s\n`),
    });
    if (answer.ok) {
      await outbox.done(file);
      write(`${basename(file)}: ${answer.code === 'already-recorded' ? 'already recorded' : 'recorded'} as ${answer.path ?? '?'} in ${answer.commit?.slice(0, 12) ?? '?'}`);
      continue;
    }
    process.stderr.write(`dotfleet: ${basename(file)}: ${answer.final ? 'refused' : 'not acknowledged'} (HTTP ${answer.status} ${answer.code}): ${answer.message}\n`);
    if (!answer.final) {
      process.stderr.write(`dotfleet: it stays in ${outbox.dir} and is sent again by the next attest --submit\n`);
      return EXIT.notAcknowledged;
    }
    // Refused for good (a bad key, a stale or replayed one): set aside, not lost, not resent.
    process.stderr.write(`dotfleet: moved to ${await outbox.setAside(file)}\n`);
    code = EXIT.differences;
  }
  return code;
}

/** Each tool's version on this host against its requirement in fleet/policy.toml. */
export function toolResults(tree: RepoTree): Predicate['tools'] {
  const requirements = toolRequirements(tree);
  return [...new Set([...DEFAULT_TOOLS, ...Object.keys(requirements)])].sort().map((name) => {
    const v = toolVersion(name);
    const req = requirements[name] ?? null;
    return { name, version: v, requirement: req, ok: req === null ? true : v !== null && meets(v, req) };
  });
}

/**
 * The real drift of the home directory against this render, when dotfleet applied there (a
 * record in the state directory); none is claimed, and a note says so, when it never did.
 */
async function attestedDrift(opts: { stateDir: string; target?: string }, host: string, tree: RenderedTree): Promise<Predicate['drift']> {
  const record = await new HostState(opts.stateDir, host).record();
  if (!record) {
    process.stderr.write(`dotfleet: no apply of ${host} is recorded in ${opts.stateDir}: the attestation claims no drift (dotfleet apply or update records one)\n`);
    return [];
  }
  const home = new Home(await openTarget(opts.target ?? record.target));
  if (home.root !== record.target) {
    process.stderr.write(`dotfleet: the last apply recorded went to ${record.target}, not ${home.root}: the attestation claims no drift\n`);
    return [];
  }
  const desired = desiredState(tree);
  const items = computeDrift(desired, record, await home.observeAll(new Set([...desired.keys(), ...Object.keys(record.entries)])));
  if (items.length > 0) process.stderr.write(`dotfleet: ${items.length} path${items.length === 1 ? '' : 's'} drifted (dotfleet drift lists them): the attestation says so\n`);
  return items.map((d) => ({ path: d.path, type: d.type }));
}

/** The agent's version, as attestations name it. */
export const AGENT_VERSION = agentVersion();

/** Now, as an attestation's issuedAt (whole seconds, UTC). */
export const issuedNow = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export function attestCommand(program: Command): void {
  program
    .command('attest')
    .description('build and sign an attestation of what this host applied')
    .option('--repo <dir>', 'the fleet repository (a clone on this host)', '.')
    .option('--ref <rev>', 'the applied commit', 'HEAD')
    .requiredOption('--host <name>', 'this host')
    .requiredOption('--key <file>', "the host's SSH private key: ed25519 signs in-process; ECDSA, RSA, FIDO (sk-) and encrypted keys, or a .pub held by ssh-agent, sign through ssh-keygen")
    .option('--out <dir>', 'write HOST-SEQUENCE.json and .json.sig here (default: the current directory, or the outbox with --submit)')
    .option('--stdout', 'print the attestation and its signature instead of writing files')
    .option('--status <status>', 'SUCCESS, PARTIAL or FAILED', 'SUCCESS')
    .option('--rollout-target <commit>', 'the commit the rollout asked for')
    .option('--sequence <n>', 'the sequence number (default: one more than the last, kept in --state-dir)')
    .option('--state-dir <dir>', 'where the last sequence number, the outbox and the record of the last apply are kept', defaultStateDir())
    .option('--target <dir>', 'the home directory whose drift is attested (default: where the last apply recorded in --state-dir went)')
    .option('--submit <url>', 'send it to the dotfleet app at this URL, or with `git` (`git:REMOTE`) push it to incoming/ on the state branch for the Action; it waits in the outbox until then')
    .option('--github-repo <owner/repo>', 'the fleet repository on GitHub (default: from the remote "origin")')
    .option('--submit-timeout <seconds>', 'keep retrying this long before leaving it in the outbox', '600')
    .action(async (opts: AttestOptions) => {
      if (!(STATUSES as readonly string[]).includes(opts.status)) {
        throw new DotfleetError('usage', `unknown status "${opts.status}"`, { hint: 'use SUCCESS, PARTIAL or FAILED' });
      }
      await readKeyFile(opts.key);
      const { fleet, commit, root } = await openFleet(opts.repo, opts.ref);
      const host = getHost(fleet, opts.host);
      // Where to send it, checked before anything is signed.
      let submit: { to: SubmitTo; timeout: number } | undefined;
      if (opts.submit) {
        const timeout = Number(opts.submitTimeout);
        if (!Number.isFinite(timeout) || timeout < 0) throw new DotfleetError('usage', `--submit-timeout must be a number of seconds, got ${opts.submitTimeout}`);
        submit = { to: await submitTo(opts.submit, opts, root, host.name, fleet.settings.state_branch), timeout };
      }
      const rendered = new Renderer().renderHost(fleet, host);
      if (rendered.errors.length > 0) {
        for (const e of rendered.errors) process.stderr.write(`dotfleet: ${e.describe()}\n`);
        throw new DotfleetError('usage', `${host.name} does not render at ${commit!.slice(0, 12)}: nothing to attest`, { host: host.name });
      }
      const tools = toolResults(fleet.tree);
      const drift = await attestedDrift(opts, host.name, rendered.tree);
      const sequence = opts.sequence !== undefined ? Number(opts.sequence) : (await lastSequence(opts.stateDir, host.name)) + 1;
      if (!Number.isInteger(sequence) || sequence < 1) throw new DotfleetError('usage', `--sequence must be a whole number from 1, got ${opts.sequence}`);
      const rolloutTarget = opts.rolloutTarget ?? null;
      if (rolloutTarget !== null && !/^[0-9a-f]{40}$/.test(rolloutTarget)) {
        throw new DotfleetError('usage', '--rollout-target must be a full 40-character commit id');
      }
      const predicate: Predicate = {
        host: host.name,
        appliedCommit: commit!,
        rolloutTarget,
        renderHash: renderHash(rendered.tree),
        policyHash: policyHash(fleet.tree, host.name),
        tools,
        drift,
        tests: [],
        status: !tools.every((t) => t.ok) ? 'FAILED' : drift.length > 0 && opts.status === 'SUCCESS' ? 'PARTIAL' : opts.status,
        agentVersion: AGENT_VERSION,
        sequence,
        issuedAt: issuedNow(),
      };
      const subject = await repositoryName(opts, root);
      const payload = serialise(statement(subject, predicate));
      const signature = await signAttestation(opts.key, payload);

      // Say now, not when the bot refuses it, if this key is not trusted for this host.
      const trust = fleet.tree.get(fleet.settings.allowed_signers);
      if (trust) {
        const key = parseSignatureBlob(dearmour(signature)).publicKey;
        const found = lookupSigner(parseAllowedSigners(Buffer.from(trust).toString('utf8')), key, host.principal, ATTESTATION_NAMESPACE, Math.floor(Date.now() / 1000));
        if (!found.ok) process.stderr.write(`dotfleet: warning: ${fleet.settings.allowed_signers} would not accept this signature: ${found.message}\n`);
      }

      const name = `${host.name}-${String(sequence).padStart(6, '0')}.json`;
      // Exactly the signed bytes: whoever reads them verifies the signature over them.
      if (opts.stdout) writeExact(payload.toString('utf8') + signature);
      else if (opts.out !== undefined || !opts.submit) {
        const out = opts.out ?? '.';
        await mkdir(out, { recursive: true });
        await writeFile(join(out, name), payload);
        await writeFile(join(out, `${name}.sig`), signature);
        write(`${join(out, name)} (+ .sig): ${predicate.status}, sequence ${sequence}, ${predicate.renderHash}`);
      }
      if (opts.sequence === undefined) await saveSequence(opts.stateDir, host.name, sequence);
      if (submit) {
        const outbox = new Outbox(join(opts.stateDir, 'outbox'), host.name);
        await outbox.put(name, payload, signature);
        const code = await sendTo(outbox, submit.to, submit.timeout);
        if (code !== EXIT.ok) process.exitCode = code;
      }
      if (predicate.status === 'FAILED' && opts.status !== 'FAILED') {
        process.stderr.write(`dotfleet: tools below their requirements: ${tools.filter((t) => !t.ok).map((t) => `${t.name} ${t.version ?? 'missing'} (needs ${t.requirement})`).join(', ')}\n`);
        process.exitCode = EXIT.renderErrors;
      }
    });
}
