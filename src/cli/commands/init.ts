/**
 * `dotfleet init [DIR]`: a new fleet repository from the package's `templates/fleet`, with this
 * machine as its first host (its preset chosen by flag, asked on a terminal, or guessed and
 * said), its SSH key in `fleet/allowed_signers` when it has one, and a workflow that runs the
 * Action. Refuses a directory that holds anything (but an empty git repository), renders the new
 * host before it says it is done, and never commits: the first commit is the owner's to sign.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { parse as parseToml } from 'smol-toml';
import { ATTESTATION_NAMESPACE } from '../../core/attestation/format.js';
import { DotfleetError } from '../../core/errors.js';
import { HOST_NAME } from '../../core/inventory.js';
import { parseAllowedSigners } from '../../core/ssh/allowed-signers.js';
import { runGit } from '../../host/git.js';
import { packageRoot } from '../io.js';

/** Where the generated workflow finds dotfleet's Action; `--action` names another. */
export const DEFAULT_ACTION = 'OWNER/dotfleet/action@main';
const PLATFORMS = ['darwin', 'linux'] as const;
type Platform = (typeof PLATFORMS)[number];

export interface InitOptions {
  host?: string;
  preset?: string;
  platform?: string;
  key?: string | false;
  name?: string;
  email?: string;
  action: string;
  git: boolean;
  yes?: boolean;
}

const templateRoot = () => join(packageRoot(), 'templates', 'fleet');

/** The presets `templates/fleet` ships, in file order. */
export function templatePresets(): string[] {
  const text = readFileSync(join(templateRoot(), 'home', '.chezmoidata', 'hardware.toml'), 'utf8');
  return Object.keys((parseToml(text) as { hardware: Record<string, unknown> }).hardware);
}

/** This machine's name as a host name: the first label of its hostname, lower case, other characters made '-'. */
export function hostNameFrom(name: string): string {
  const label = (name.split('.')[0] ?? '').toLowerCase().replace(/[^a-z0-9_-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63);
  return HOST_NAME.test(label) ? label : 'my-machine';
}

/** A guess at this machine's preset: macOS or Linux, with a battery or not, with a desktop or not. */
export function guessPreset(platform: Platform): string {
  if (platform === 'darwin') return 'mac-laptop';
  let battery = false;
  try {
    battery = readdirSync('/sys/class/power_supply').some((d) => d.startsWith('BAT'));
  } catch {
    // No such directory (or not readable): no battery seen.
  }
  if (battery) return 'linux-laptop';
  const desktop = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY || process.env.XDG_CURRENT_DESKTOP);
  return desktop ? 'linux-desktop' : 'linux-server';
}

/** A TOML key for a host name: bare when it can be, quoted when it holds a dot (a bare dot would nest tables). */
const tomlKey = (name: string) => (/^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name));
/** JSON's string escapes are all TOML basic-string escapes. */
const tomlString = (s: string) => JSON.stringify(s);

export function inventoryText(host: string, preset: string, platform: Platform): string {
  return `# The fleet. Each host names its hardware preset (\`machine\`: a [hardware.NAME] table in
# home/.chezmoidata/hardware.toml), its platform (darwin | linux) and its rollout wave (wave 1 is
# the canary). Add a machine with another [hosts.NAME] table; [hosts.NAME.data] overrides data
# for that host only.

[hosts.${tomlKey(host)}]
machine = ${tomlString(preset)}
platform = "${platform}"
wave = 1
description = "the first host, added by dotfleet init"
`;
}

export function dataText(name: string, email: string): string {
  return `# Data every host sees. Layers merge in order: this file, then .chezmoidata/*.toml by name,
# then the host's preset (as \`hw\`), then the host's own [hosts.NAME.data] in fleet/hosts.toml.

[user]
name = ${tomlString(name)}
email = ${tomlString(email)}

[editor]
command = "vi"
tab_width = 4

[shell]
history_size = 50000

[git]
default_branch = "main"
`;
}

export function signersText(host: string, publicKey: string | undefined, keyFile: string | undefined): string {
  const head = `# Keys that may sign for this fleet (OpenSSH allowed_signers, see ssh-keygen(1)).
# Hosts sign attestations as their own name (namespace ${ATTESTATION_NAMESPACE}). Trust is read
# from the default branch only: a pull request that edits this file is shown as a trust change.
`;
  if (!publicKey) return `${head}# ${host} has no key yet: add a line such as
#   ${host} namespaces="${ATTESTATION_NAMESPACE}" ssh-ed25519 AAAA… ${host}
`;
  return `${head}# ${host}: ${keyFile}
${host} namespaces="${ATTESTATION_NAMESPACE}" ${publicKey}
`;
}

/** The public key line of `file` (a .pub, or a private key whose .pub sits next to it). */
async function readPublicKey(file: string): Promise<string> {
  const pub = file.endsWith('.pub') ? file : `${file}.pub`;
  let text: string;
  try {
    text = await readFile(pub, 'utf8');
  } catch {
    throw new DotfleetError('usage', 'cannot read this public key', { file: pub, hint: 'pass --key with an SSH public key file (ssh-keygen -t ed25519 makes one), or --no-key' });
  }
  const line = text.split('\n').find((l) => l.trim() !== '' && !l.startsWith('#'))?.trim() ?? '';
  const [type, blob] = line.split(/\s+/);
  const parsed = type && blob ? parseAllowedSigners(`x ${type} ${blob}\n`) : undefined;
  if (!parsed || parsed.entries.length !== 1) {
    throw new DotfleetError('usage', 'not an SSH public key', { file: pub, hint: 'pass --key with a .pub file as ssh-keygen writes it, or --no-key' });
  }
  return `${type} ${blob} ${pub.split('/').pop()!.replace(/\.pub$/, '')}`;
}

async function gitConfig(key: string): Promise<string | undefined> {
  const r = await runGit(process.cwd(), ['config', '--get', key]).catch(() => undefined);
  const v = r && r.code === 0 ? r.stdout.toString('utf8').trim() : '';
  return v === '' ? undefined : v;
}

/** The directory must be new, empty, or hold only an empty `.git` made by `git init` or a clone of an empty repository. */
async function checkTarget(dir: string): Promise<{ hasGit: boolean }> {
  const info = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new DotfleetError('usage', `cannot use this path (${e.code ?? e.message})`, { file: dir, hint: 'name a new or empty directory you can write to' });
  });
  if (!info) return { hasGit: false };
  if (!info.isDirectory()) throw new DotfleetError('usage', 'not a directory', { file: dir, hint: 'name a new or empty directory' });
  const entries = await readdir(dir);
  const others = entries.filter((e) => e !== '.git');
  if (others.length > 0) {
    throw new DotfleetError('usage', `the directory is not empty (${others.slice(0, 3).join(', ')}${others.length > 3 ? ', …' : ''}): dotfleet init writes a new fleet repository and never overwrites`, {
      file: dir,
      hint: 'name a new or empty directory: dotfleet init my-fleet',
    });
  }
  if (entries.includes('.git')) {
    const r = await runGit(dir, ['rev-parse', '--verify', '-q', 'HEAD']);
    if (r.code === 0) throw new DotfleetError('usage', `a git repository with commits: dotfleet init starts a new fleet repository`, { file: dir, hint: 'name a new or empty directory (an empty clone is fine)' });
    return { hasGit: true };
  }
  return { hasGit: false };
}

async function ask(question: string, choices: string[], fallback: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    process.stderr.write(`${question}\n${choices.map((c, i) => `  ${i + 1}) ${c}${c === fallback ? ' (guessed)' : ''}`).join('\n')}\n`);
    for (;;) {
      const a = (await rl.question(`choice [${choices.indexOf(fallback) + 1}]: `)).trim();
      if (a === '') return fallback;
      const n = Number(a);
      if (Number.isInteger(n) && n >= 1 && n <= choices.length) return choices[n - 1]!;
      if (choices.includes(a)) return a;
      process.stderr.write(`"${a}" is not one of them: a number from 1 to ${choices.length}, or a name\n`);
    }
  } finally {
    rl.close();
  }
}

/** The files init wrote (no links, no .git), as a fleet tree. */
async function readTree(root: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (path === '.git') continue;
      if (e.isDirectory()) await walk(path);
      else if (e.isFile()) files.set(path, await readFile(join(root, path)));
    }
  };
  await walk('');
  return files;
}

export interface InitResult {
  dir: string;
  host: string;
  preset: string;
  platform: Platform;
  key?: string;
  files: number;
  notes: string[];
}

export async function initFleet(dirArg: string, opts: InitOptions): Promise<InitResult> {
  const dir = resolve(dirArg);
  const notes: string[] = [];
  const presets = templatePresets();
  const platform = (opts.platform ?? process.platform) as Platform;
  if (!PLATFORMS.includes(platform)) {
    throw new DotfleetError('usage', opts.platform ? `--platform ${opts.platform} is not darwin or linux` : `this machine's platform (${process.platform}) is not darwin or linux`, { hint: 'pass --platform darwin or --platform linux' });
  }
  const host = opts.host ?? hostNameFrom(hostname());
  if (!HOST_NAME.test(host)) {
    throw new DotfleetError('usage', `--host ${JSON.stringify(host)} is not a host name: 1–63 letters, digits, '.', '_' or '-', starting with a letter or digit`, { hint: 'pass --host with a name such as my-laptop' });
  }
  if (opts.preset !== undefined && !presets.includes(opts.preset)) {
    throw new DotfleetError('usage', `--preset ${opts.preset} is not a preset of the new fleet`, { hint: `one of: ${presets.join(', ')}` });
  }
  const { hasGit } = await checkTarget(dir);
  let preset = opts.preset;
  if (preset === undefined) {
    const guess = guessPreset(platform);
    if (process.stdin.isTTY && !opts.yes) preset = await ask(`Which preset fits ${host}?`, presets, guess);
    else {
      preset = guess;
      notes.push(`preset ${guess} guessed for ${host} (pass --preset to choose: ${presets.join(', ')})`);
    }
  }
  let publicKey: string | undefined;
  let keyFile: string | undefined;
  if (opts.key !== false) {
    const candidate = opts.key ?? join(homedir(), '.ssh', 'id_ed25519.pub');
    if (opts.key !== undefined || existsSync(candidate)) {
      publicKey = await readPublicKey(candidate);
      keyFile = candidate.endsWith('.pub') ? candidate : `${candidate}.pub`;
    } else notes.push(`no ~/.ssh/id_ed25519.pub: fleet/allowed_signers has no key for ${host} yet (ssh-keygen -t ed25519, then add its line)`);
  }
  const name = opts.name ?? (await gitConfig('user.name')) ?? 'Your Name';
  const email = opts.email ?? (await gitConfig('user.email')) ?? 'you@example.invalid';
  if (opts.name === undefined && name === 'Your Name') notes.push('user.name and user.email are placeholders in home/.chezmoidata.toml (no git identity found; or pass --name and --email)');

  // Written whole or not at all: a failure part-way removes what this run wrote, and is named.
  const existed = await lstat(dir).then(() => true, () => false);
  try {
    await mkdir(dir, { recursive: true });
    await cp(templateRoot(), dir, { recursive: true, errorOnExist: true, force: false });
    const workflow = join(dir, '.github', 'workflows', 'dotfleet.yml');
    await writeFile(workflow, (await readFile(workflow, 'utf8')).replace('{{ACTION}}', opts.action));
    await mkdir(join(dir, 'fleet'), { recursive: true });
    await writeFile(join(dir, 'fleet', 'hosts.toml'), inventoryText(host, preset, platform));
    await writeFile(join(dir, 'fleet', 'allowed_signers'), signersText(host, publicKey, keyFile));
    await writeFile(join(dir, 'home', '.chezmoidata.toml'), dataText(name, email));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    if (!existed) await rm(dir, { recursive: true, force: true });
    else {
      // It was empty (or held only an empty clone's .git): take back only what this run wrote.
      for (const entry of await readdir(dir).catch(() => [] as string[])) {
        if (entry !== '.git') await rm(join(dir, entry), { recursive: true, force: true });
      }
    }
    throw new DotfleetError('usage', `cannot write the new fleet here (${code}); nothing was left behind`, { file: dir, hint: 'name a directory you can write to' });
  }
  if (opts.action === DEFAULT_ACTION) notes.push(`.github/workflows/dotfleet.yml uses ${DEFAULT_ACTION}: put the owner of your dotfleet copy in place of OWNER`);
  if (opts.git && !hasGit) {
    const r = await runGit(dir, ['init', '-q', '-b', 'main']).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
    if (r.code !== 0) notes.push(`git init failed (${r.stderr.trim().split('\n')[0]}): the files are written; run git init yourself`);
  }

  // The new fleet must render: a template or data error here is dotfleet's bug, said as one.
  const { loadFleet } = await import('../../core/fleet.js');
  const fleet = loadFleet(await readTree(dir));
  const { Renderer } = await import('../../core/render.js');
  const entry = fleet.hosts.get(host);
  const out = entry ? new Renderer().renderHost(fleet, entry) : undefined;
  const errors = [...fleet.sources.errors, ...(out?.errors ?? [])];
  if (!out || errors.length > 0) {
    throw new Error(`the new fleet does not render for ${host}: ${errors.map((e) => e.message).join('; ') || 'the host is not in the inventory'}`);
  }
  return { dir, host, preset, platform, key: keyFile, files: [...out.tree.values()].filter((e) => e.kind !== 'dir').length, notes };
}

export function initCommand(program: Command): void {
  program
    .command('init')
    .description('start a new fleet repository: data layers, hardware presets, templates, this machine as its first host')
    .argument('[dir]', 'where (a new or empty directory)', '.')
    .option('--host <name>', "this machine's host name (default: from its hostname)")
    .option('--preset <name>', 'its hardware preset (default: asked on a terminal, else guessed)')
    .option('--platform <platform>', 'darwin or linux (default: this machine\'s)')
    .option('--key <file>', "its SSH public key for fleet/allowed_signers (default: ~/.ssh/id_ed25519.pub when it exists)")
    .option('--no-key', 'no key in fleet/allowed_signers')
    .option('--name <name>', 'your name for git (default: git config user.name)')
    .option('--email <email>', 'your email for git (default: git config user.email)')
    .option('--action <ref>', "the Action the generated workflow uses", DEFAULT_ACTION)
    .option('--no-git', 'do not run git init')
    .option('-y, --yes', 'ask nothing: take the guesses (what scripts want)')
    .action(async (dir: string, opts: InitOptions) => {
      const r = await initFleet(dir, opts);
      process.stdout.write(
        `A new fleet in ${r.dir}: host ${r.host} (${r.preset}, ${r.platform}) renders ${r.files} files${r.key ? `; its key ${r.key} is in fleet/allowed_signers` : ''}.\n` +
          r.notes.map((n) => `note: ${n}\n`).join('') +
          `\nNext:\n  cd ${r.dir}\n  dotfleet render --host ${r.host}            # what ${r.host} gets\n  git add -A && git commit -m "fleet: start"\n  dotfleet apply --host ${r.host} --dry-run    # what it would change in your home\n`,
      );
    });
}
