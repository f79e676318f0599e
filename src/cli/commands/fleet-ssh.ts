/**
 * The fleet verbs over SSH (docs/host.md): `fleet attest` runs `dotfleet attest --stdout` on every
 * host, verifies each attestation here against the fleet's allowed_signers and prints the FLEET
 * STATUS table; `fleet sync` runs `dotfleet update` on every host; `fleet drift` runs `dotfleet
 * drift`. Hosts are reached as the inventory says (ssh_host, ssh_user, ssh_port), several at once,
 * each within a time limit; an unreachable host is reported and the others carry on.
 */
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import type { Host } from '../../core/inventory.js';
import { ATTESTATION_NAMESPACE, parseStatement } from '../../core/attestation/format.js';
import { policyHash } from '../../core/attestation/policy.js';
import { verifyAttestation } from '../../core/attestation/verify.js';
import { parseAllowedSigners } from '../../core/ssh/allowed-signers.js';
import { EMPTY_STATE, hostRecord, nextState, type HostRecord, type RenderCheck } from '../../core/state/fleet-state.js';
import { renderHashes, type HostHash } from '../../core/state/render-check.js';
import { fleetStatus, statusTableText } from '../../core/state/status.js';
import { readTreeAtRef, runGit } from '../../host/git.js';
import { failureLine, pool, runRemote, shellQuote, type RemoteResult } from '../../host/ssh.js';
import { EXIT, openFleet, write } from '../io.js';

interface SshOptions {
  repo: string;
  ref: string;
  remoteDotfleet: string;
  remoteRepo: string;
  remoteKey: string;
  sshOption: string[];
  concurrency: string;
  timeout: string;
  json?: boolean;
}

const collect = (v: string, all: string[]) => [...all, v];

const sshOptions = (c: Command): Command =>
  c
    .argument('[hosts...]', 'only these hosts (default: every host of the inventory)')
    .option('--repo <dir>', 'the fleet repository here (inventory, trust and target are read from it)', '.')
    .option('--ref <rev>', 'the target commit', 'HEAD')
    .option('--remote-dotfleet <command>', "the command that runs dotfleet on the hosts (shell text; {host} is the host's name)", 'dotfleet')
    .option('--remote-repo <path>', "the fleet clone on each host, relative to its home; {host} is the host's name", '.local/state/dotfleet/{host}/checkout')
    .option('--remote-key <path>', "each host's SSH key, relative to its home; {host} is the host's name", '.ssh/id_ed25519')
    .option('--ssh-option <option>', 'an ssh -o option, e.g. UserKnownHostsFile=… (repeatable)', collect, [])
    .option('--concurrency <n>', 'hosts at once', '8')
    .option('--timeout <seconds>', 'time limit per host', '120');

function limits(opts: SshOptions): { concurrency: number; timeoutMs: number } {
  const concurrency = Number(opts.concurrency);
  const timeout = Number(opts.timeout);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new DotfleetError('usage', `--concurrency must be a whole number from 1, got ${opts.concurrency}`);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new DotfleetError('usage', `--timeout must be a number of seconds, got ${opts.timeout}`);
  return { concurrency, timeoutMs: timeout * 1000 };
}

function selectHosts(all: Map<string, Host>, names: string[]): Host[] {
  for (const n of names) if (!all.has(n)) throw new DotfleetError('unknown-host', `no host "${n}" in the inventory`, { hint: 'dotfleet hosts lists them' });
  return names.length > 0 ? names.map((n) => all.get(n)!) : [...all.values()];
}

/** Every host's run, one result line each as it ends (and a counter on a terminal). */
async function overSsh(hosts: Host[], opts: SshOptions, command: (h: Host) => string, line: (r: RemoteResult) => string): Promise<RemoteResult[]> {
  const { concurrency, timeoutMs } = limits(opts);
  let done = 0;
  const tty = process.stderr.isTTY;
  return pool(hosts, concurrency, async (h) => {
    const r = await runRemote(h, command(h).replaceAll('{dotfleet}', opts.remoteDotfleet.replaceAll('{host}', h.name)), { sshOptions: opts.sshOption, timeoutMs });
    done++;
    if (tty) process.stderr.write('\r\x1b[K');
    write(`${h.name.padEnd(Math.max(...hosts.map((x) => x.name.length)))}  ${r.code === 0 ? line(r) : failureLine(r, timeoutMs)}`);
    if (tty && done < hosts.length) process.stderr.write(`[${done}/${hosts.length}] hosts done`);
    return r;
  });
}

const remotePath = (template: string, host: string) => shellQuote(template.replaceAll('{host}', host));

export function fleetSshCommands(fleet: Command): void {
  sshOptions(fleet.command('attest').description('run dotfleet attest on every host over SSH, verify each here, and print the fleet status'))
    .option('--json', 'print the verdicts and the status as JSON')
    .action(async (names: string[], opts: SshOptions) => {
      const { fleet: f, commit, root } = await openFleet(opts.repo, opts.ref);
      const hosts = selectHosts(f.hosts, names);
      const trust = f.tree.get(f.settings.allowed_signers);
      if (!trust) throw new DotfleetError('usage', `${f.settings.allowed_signers} is missing: nothing can be verified`, { file: f.settings.allowed_signers });
      const signers = parseAllowedSigners(Buffer.from(trust).toString('utf8'));
      const hashes = new Map<string, Record<string, HostHash> | null>([[commit!, renderHashes(f.tree)]]);
      /** Our own render of the host at the commit it applied: the claimed render hash is checked against it. */
      const renderCheck = async (host: string, at: string, claimed: string): Promise<RenderCheck> => {
        if (!hashes.has(at)) hashes.set(at, await readTreeAtRef(root, at).then(renderHashes, () => null));
        const all = hashes.get(at);
        const mine = all?.[host] ?? all?.['*'];
        if (!mine) return 'unknown-commit';
        return 'error' in mine ? 'render-error' : mine.hash === claimed ? 'match' : 'mismatch';
      };
      const records: HostRecord[] = [];
      const verdicts: { host: string; ok: boolean; message: string }[] = [];
      const results = await overSsh(
        hosts,
        opts,
        (h) => `{dotfleet} attest --stdout --host ${shellQuote(h.name)} --repo ${remotePath(opts.remoteRepo, h.name)} --key ${remotePath(opts.remoteKey, h.name)}`,
        (r) => {
          const at = r.stdout.indexOf('-----BEGIN SSH SIGNATURE-----');
          const host = f.hosts.get(r.host)!;
          const payload = Buffer.from(at < 0 ? r.stdout : r.stdout.slice(0, at), 'utf8');
          const v = verifyAttestation(payload, at < 0 ? '' : r.stdout.slice(at), { signers, expectHost: host.name, principal: host.principal, now: new Date() });
          verdicts.push({ host: r.host, ok: v.ok, message: v.message });
          if (!v.ok) return `not verified (${v.code}): ${v.message}`;
          const st = parseStatement(payload);
          records.push(hostRecord(st, payload, { render: 'match', key: v.key!, receivedAt: new Date().toISOString() }));
          const unchecked = /no apply of .* is recorded|the attestation claims no drift/.test(r.stderr) ? ' · drift not checked: no apply recorded on the host' : '';
          return `${st.predicate.status} at ${st.predicate.appliedCommit.slice(0, 7)}, verified (${v.key})${unchecked}`;
        },
      );
      for (const r of records) r.render = await renderCheck(r.path.split('/')[1]!, r.appliedCommit, r.renderHash);
      const branch = (await runGit(root, ['rev-parse', '--abbrev-ref', opts.ref])).stdout.toString('utf8').trim() || opts.ref;
      const policy = Object.fromEntries(hosts.map((h) => [h.name, policyHash(f.tree, h.name)]));
      const state = nextState(EMPTY_STATE, records, { branch, commit: commit! }, policy, new Date().toISOString());
      const status = fleetStatus(state, hosts.map((h) => h.name));
      const unreachable = results.filter((r) => r.code !== 0).map((r) => r.host);
      if (opts.json) write(JSON.stringify({ version: 1, target: state.target, verdicts, unreachable, aligned: status.aligned, total: status.total, hosts: state.hosts }, null, 2));
      else write(`\n${status.line}${unreachable.length > 0 ? `; ${unreachable.length} not reached (${unreachable.join(', ')})` : ''}\ntarget ${commit!.slice(0, 12)} (${branch})\n\n${statusTableText(status)}`);
      if (status.aligned < status.total) process.exitCode = EXIT.differences;
    });

  sshOptions(fleet.command('sync').description('run dotfleet update on every host over SSH: one result line per host'))
    .requiredOption('--source <url>', 'the fleet repository the hosts fetch (as they reach it)')
    .option('--submit <url>', 'have each host send its attestation to the dotfleet app at this URL')
    .action(async (names: string[], opts: SshOptions & { source: string; submit?: string }) => {
      const { fleet: f } = await openFleet(opts.repo, opts.ref);
      const results = await overSsh(
        selectHosts(f.hosts, names),
        opts,
        (h) => `{dotfleet} update --source ${shellQuote(opts.source)} --host ${shellQuote(h.name)} --key ${remotePath(opts.remoteKey, h.name)}${opts.submit ? ` --submit ${shellQuote(opts.submit)}` : ''}`,
        (r) => r.stdout.trim().split('\n').filter((l) => /^(updated|up to date|attested)/.test(l)).join('; ') || 'done',
      );
      const failed = results.filter((r) => r.code !== 0).length;
      write(`\n${results.length - failed}/${results.length} hosts updated or up to date${failed > 0 ? `; ${failed} failed or not reached` : ''}`);
      if (failed > 0) process.exitCode = EXIT.differences;
    });

  sshOptions(fleet.command('drift').description('run dotfleet drift on every host over SSH'))
    .action(async (names: string[], opts: SshOptions) => {
      const { fleet: f } = await openFleet(opts.repo, opts.ref);
      const results = await overSsh(
        selectHosts(f.hosts, names),
        opts,
        (h) => `{dotfleet} drift --json --host ${shellQuote(h.name)} --repo ${remotePath(opts.remoteRepo, h.name)}`,
        (r) => {
          let items: { path: string; type: string }[];
          try {
            items = JSON.parse(r.stdout) as { path: string; type: string }[];
          } catch {
            return 'answered, but not with drift JSON (is dotfleet on the host this version?)';
          }
          return items.length === 0 ? 'no drift' : `${items.length} path${items.length === 1 ? '' : 's'}: ${items.slice(0, 5).map((d) => `${d.type} ${d.path}`).join(', ')}${items.length > 5 ? ', …' : ''}`;
        },
      );
      const reached = results.filter((r) => r.code === 0);
      const drifted = reached.filter((r) => r.stdout.trim() !== '[]').length;
      write(`\n${reached.length}/${results.length} hosts reached; ${drifted} with drift`);
      if (drifted > 0 || reached.length < results.length) process.exitCode = EXIT.differences;
    });
}
