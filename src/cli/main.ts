#!/usr/bin/env node
/** The `dotfleet` CLI: parse arguments, run one command, turn user errors into one clear line. */
import { Command, CommanderError } from 'commander';
import { isDotfleetError } from '../core/errors.js';
import { EXIT, packageVersion } from './io.js';
import { demoCommand } from './commands/demo.js';
import { diffCommand } from './commands/diff.js';
import { fleetCommand } from './commands/fleet.js';
import { hostsCommand } from './commands/hosts.js';
import { renderCommand } from './commands/render.js';
import { attestCommand } from './commands/attest.js';
import { verifyCommand } from './commands/verify.js';
import { signersCommand } from './commands/signers.js';
import { secretsCommand } from './commands/secrets.js';
import { hostCommands } from './commands/apply.js';
import { updateCommand } from './commands/update.js';
import { agentCommand } from './commands/agent.js';

const version = packageVersion();

export function buildProgram(): Command {
  const program = new Command('dotfleet')
    .description('Git-native GitOps for fleets of machines: render, diff, apply and attest dotfiles per host')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addHelpText(
    'after',
    `
Exit codes: 0 ok · 1 differences (with --exit-code) or not verified · 2 usage or input error · 3 render errors · 5 apply refused (nothing written) · 6 update failed and was rolled back
Docs: docs/cli.md, docs/fleet-repo.md`,
  );
  for (const add of [hostsCommand, renderCommand, diffCommand, fleetCommand, hostCommands, updateCommand, agentCommand, attestCommand, verifyCommand, signersCommand, secretsCommand, demoCommand]) add(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version exit 0; commander already printed what was wrong otherwise.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (isDotfleetError(e)) {
      process.stderr.write(`dotfleet: error: ${e.describe()}\n`);
      return e.code === 'refused' ? EXIT.refused : EXIT.usage;
    }
    throw e;
  }
}

// Output piped into `head` (or a closed pager) ends the command quietly, not with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
  throw e;
});

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`dotfleet: internal error (please report it): ${(e as Error).stack ?? e}\n`);
    process.exitCode = 70;
  },
);
