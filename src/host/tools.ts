/** Versions of the tools a host applies and attests with; null when a tool is missing. */
import { spawnSync } from 'node:child_process';

const PROBES: Record<string, { args: string[]; pattern: RegExp }> = {
  git: { args: ['git', '--version'], pattern: /git version (\S+)/ },
  'ssh-keygen': { args: ['ssh', '-V'], pattern: /OpenSSH_([\w.]+)/ },
  sops: { args: ['sops', '--version'], pattern: /sops (\d[\w.]*)/ },
};

export const DEFAULT_TOOLS = Object.keys(PROBES);

export function toolVersion(name: string): string | null {
  const probe = PROBES[name] ?? { args: [name, '--version'], pattern: /(\d+(?:\.\d+)+)/ };
  const r = spawnSync(probe.args[0]!, probe.args.slice(1), { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return null;
  return probe.pattern.exec(`${r.stdout}\n${r.stderr}`)?.[1] ?? null;
}
