/** The host's own small state: the last attestation sequence number, written atomically. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultStateDir(): string {
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'dotfleet');
}

export async function lastSequence(stateDir: string, host: string): Promise<number> {
  try {
    const v = JSON.parse(await readFile(join(stateDir, `${host}.json`), 'utf8')) as { sequence?: unknown };
    return typeof v.sequence === 'number' && Number.isInteger(v.sequence) ? v.sequence : 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

export async function saveSequence(stateDir: string, host: string, sequence: number): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const file = join(stateDir, `${host}.json`);
  await writeFile(`${file}.tmp`, JSON.stringify({ sequence }) + '\n');
  await rename(`${file}.tmp`, file);
}
