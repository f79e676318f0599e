/** Generated fleets for property tests: N hosts over a few presets, T templates, seeded. */
import { treeOf } from './fleet.js';

export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // From the high bits: an LCG's low bits repeat with a short period (s % 2 alternates).
    return Math.floor((s / 2 ** 32) * n);
  };
}

export interface GeneratedFleet {
  base: Map<string, Uint8Array>;
  head: Map<string, Uint8Array>;
}

/**
 * A fleet and a change to it. `lines` sets how long each template is and `hostSpecific` whether
 * every host's change differs (one group per host: the worst case for the comment's size).
 */
export function generatedChange(opts: { hosts: number; templates: number; lines: number; hostSpecific: boolean; seed: number; brokenTemplates?: number }): GeneratedFleet {
  const r = rng(opts.seed);
  const presets = ['laptop', 'server'];
  const hosts = Array.from({ length: opts.hosts }, (_, i) => `[hosts.h${String(i).padStart(4, '0')}]\nmachine = "${presets[i % 2]}"\nplatform = "linux"\nwave = ${1 + (i % 3)}\n`).join('\n');
  const files: Record<string, string> = {
    'home/.chezmoidata.toml': 'user = "u"\n',
    'home/.chezmoidata/hardware.toml': presets.map((p, i) => `[hardware.${p}]\ndisplay_scale = ${i + 1}.0\nkbd_layout = "us"\nmodifier_mode = "pc"\nperf_profile = "balanced"\nwm = "none"\n`).join('\n'),
    'fleet/hosts.toml': hosts,
  };
  const body = (t: number, variant: string) =>
    Array.from({ length: opts.lines }, (_, l) => `key_${t}_${l} = "${variant}${l % 7 === 0 ? ' {{host.name}}' : ''} ${'`'.repeat(r(4))}value ${r(1000)}"`).join('\n') + '\n';
  const head: Record<string, string> = { ...files };
  for (let t = 0; t < opts.templates; t++) {
    const path = `home/dot_config/app${t}.conf.hbs`;
    files[path] = body(t, 'old');
    head[path] = opts.hostSpecific ? files[path]!.replace(/old/g, 'new {{host.name}}') : files[path]!.replace(/old/g, 'new');
  }
  for (let b = 0; b < (opts.brokenTemplates ?? 0); b++) head[`home/dot_config/broken${b}.hbs`] = `x\n{{nope.k${b}}}\n`;
  return { base: treeOf(files), head: treeOf(head) };
}
