import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DotfleetError } from '../../core/errors.js';
import { plural } from '../../core/report/common.js';
import { lintAllowedSigners, parseAllowedSigners } from '../../core/ssh/allowed-signers.js';
import { findingsExitCode, openFleet, write } from '../io.js';

export function signersCommand(program: Command): void {
  const signers = program.command('signers').description('the fleet\'s allowed_signers');
  signers
    .command('lint')
    .description('check allowed_signers: lines ssh-keygen would skip, and fleet hygiene (patterns, shared keys, missing namespaces=)')
    .argument('[file]', 'an allowed_signers file (default: the fleet\'s, from --repo)')
    .option('--repo <dir>', 'fleet repository', '.')
    .option('--ref <rev>', 'read the fleet at this revision (default: the working tree)')
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, opts: { repo: string; ref?: string; json?: boolean }) => {
      let name: string;
      let text: string;
      if (file) {
        name = file;
        text = await readFile(file, 'utf8').catch(() => Promise.reject(new DotfleetError('usage', `cannot read ${file}`, { file })));
      } else {
        const { fleet } = await openFleet(opts.repo, opts.ref);
        name = fleet.settings.allowed_signers;
        const body = fleet.tree.get(name);
        if (!body) throw new DotfleetError('usage', `${name} does not exist`, { file: name, hint: 'create it: one line per host, "HOST namespaces=\\"dotfleet-attestation\\" ssh-ed25519 AAAA…"' });
        text = Buffer.from(body).toString('utf8');
      }
      const parsed = parseAllowedSigners(text);
      const problems = lintAllowedSigners(parsed);
      if (opts.json) write(JSON.stringify({ file: name, entries: parsed.entries.length, problems }, null, 2));
      else {
        for (const p of problems) write(`${name}:${p.line}: ${p.severity}: ${p.message}`);
        write(`${plural(parsed.entries.length, 'key')}, ${plural(problems.filter((p) => p.severity === 'error').length, 'error')}, ${plural(problems.filter((p) => p.severity === 'warning').length, 'warning')}`);
      }
      process.exitCode = findingsExitCode(problems);
    });
}
