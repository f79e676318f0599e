/** What every CLI command shares: opening a fleet from a repository, output, exit codes. */
import { Option } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Fleet } from '../core/fleet.js';
import { packageVersion } from '../host/package.js';
import { readTreeAtRef, readWorkingTree, repoRoot, resolveCommit } from '../host/git.js';
import { ansi, type Paint } from '../core/report/paint.js';
import { visible } from '../core/visible.js';

/** Documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  /** `--exit-code`: there are differences. */
  differences: 1,
  /** A user error: bad arguments, a repository or fleet file that cannot be read. */
  usage: 2,
  /** The fleet has render errors. */
  renderErrors: 3,
  /** `attest --submit`: the app did not acknowledge in time; the attestation waits in the outbox. */
  notAcknowledged: 4,
  /** `apply`: a path would lose a local change or a file dotfleet never wrote; nothing was written. */
  refused: 5,
  /** `update`: the new configuration failed validation (drift, tools, host tests) and was rolled back, or was refused. */
  failed: 6,
} as const;

/** Checks that report findings: 3 with any error, 1 with warnings only, 0 with none. */
export function findingsExitCode(findings: { severity: 'error' | 'warning' }[]): number {
  if (findings.some((f) => f.severity === 'error')) return EXIT.renderErrors;
  return findings.length > 0 ? EXIT.differences : EXIT.ok;
}

export interface OpenedFleet {
  fleet: Fleet;
  /** The commit read, or undefined for the working tree. */
  commit?: string;
  root: string;
}

export async function openFleet(repo: string, ref?: string): Promise<OpenedFleet> {
  const root = await repoRoot(repo);
  // Loaded when a command reads a fleet: the host commands often need no render at all.
  const { loadFleet } = await import('../core/fleet.js');
  if (ref === undefined) return { fleet: loadFleet(await readWorkingTree(root)), root };
  const commit = await resolveCommit(root, ref);
  return { fleet: loadFleet(await readTreeAtRef(root, commit)), commit, root };
}

export type ColorChoice = 'auto' | 'always' | 'never';

/** `--color <when>`: auto, always or never, refused otherwise (by commander, as a usage error). */
export function colorOption(): Option {
  return new Option('--color <when>', 'auto, always or never').choices(['auto', 'always', 'never']).default('auto');
}

export function paintFor(choice: ColorChoice = 'auto', stream: NodeJS.WriteStream = process.stdout): Paint | undefined {
  if (choice === 'always') return ansi;
  if (choice === 'never') return undefined;
  return stream.isTTY && !process.env.NO_COLOR ? ansi : undefined;
}

export { packageRoot, packageVersion } from '../host/package.js';

/** The agent's version, as attestations and apply records name it. */
export const agentVersion = (): string => `dotfleet/${packageVersion()}`;

export function write(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** dotfleet's own terminal sequences: the colours of src/core/report/paint.ts. */
const OWN_SEQUENCE = /^\x1b\[(?:1|2|22|31|32|36|39)m$/;
/** A progress line's own reset, written alone (fleet ssh on a terminal). */
const LINE_RESET = '\r\x1b[K';
const TERMINAL = /\x1b\[\d{1,2}m|[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Text for the terminal with every control character shown, never obeyed, whatever printed it: a
 * file name, principal or line from a fleet repository (maybe a fork's) cannot move the cursor,
 * erase or hide what dotfleet printed (a trust change, say). Line breaks, tabs and dotfleet's own
 * colours stay.
 */
export function terminalSafe(text: string): string {
  if (text === LINE_RESET) return text;
  return text.replace(TERMINAL, (c) => (c.length > 1 ? (OWN_SEQUENCE.test(c) ? c : visible(c)) : visible(c)));
}

let exactWrite: ((text: string) => void) | undefined;

/** Every text the CLI writes to stdout and stderr goes through terminalSafe (installed once, by src/cli/main.ts). */
export function guardOutput(): void {
  if (exactWrite) return;
  const out = process.stdout.write.bind(process.stdout);
  exactWrite = (text) => void out(text);
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => original(typeof chunk === 'string' ? terminalSafe(chunk) : chunk, ...rest)) as typeof stream.write;
  }
}

/** Bytes that must reach stdout exactly as they are (a signed attestation, which a caller verifies). */
export function writeExact(text: string): void {
  const line = text.endsWith('\n') ? text : text + '\n';
  (exactWrite ?? ((t: string) => void process.stdout.write(t)))(line);
}
