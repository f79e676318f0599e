#!/usr/bin/env node
/** The `dotfleet` CLI: parse arguments, run one command, turn user errors into one clear line. */
import { Command, CommanderError } from 'commander';
import { isDotfleetError } from '../core/errors.js';
import { EXIT, guardOutput, packageVersion } from './io.js';
const version = packageVersion();

type Register = (program: Command) => void;

/**
 * Each command's module, by the names it registers, in the order help lists them. A run loads only
 * the module of the command it names (a host's drift check needs neither the diff nor the
 * attestation code); help, --version and an unknown command load them all.
 */
const COMMANDS: [string[], () => Promise<Register>][] = [
  [['hosts'], async () => (await import('./commands/hosts.js')).hostsCommand],
  [['render'], async () => (await import('./commands/render.js')).renderCommand],
  [['diff'], async () => (await import('./commands/diff.js')).diffCommand],
  [['fleet'], async () => (await import('./commands/fleet.js')).fleetCommand],
  [['drift', 'apply', 'rollback', 'heal'], async () => (await import('./commands/apply.js')).hostCommands],
  [['update'], async () => (await import('./commands/update.js')).updateCommand],
  [['agent'], async () => (await import('./commands/agent.js')).agentCommand],
  [['attest'], async () => (await import('./commands/attest.js')).attestCommand],
  [['verify'], async () => (await import('./commands/verify.js')).verifyCommand],
  [['signers'], async () => (await import('./commands/signers.js')).signersCommand],
  [['secrets'], async () => (await import('./commands/secrets.js')).secretsCommand],
  [['demo'], async () => (await import('./commands/demo.js')).demoCommand],
  [['init'], async () => (await import('./commands/init.js')).initCommand],
];

export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
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
  const named = COMMANDS.find(([names]) => names.includes(argv[2] ?? ''));
  for (const [, load] of named ? [named] : COMMANDS) (await load())(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
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

guardOutput();
main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`dotfleet: internal error (please report it): ${(e as Error).stack ?? e}\n`);
    process.exitCode = 70;
  },
);
