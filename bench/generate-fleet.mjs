import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
/**
 * A generated fleet for benchmarks: N hosts over 12 presets and T templates of realistic shape
 * (conditionals on the preset, loops over data, host facts), as a RepoTree (path → bytes).
 */
const WMS = ['aerospace', 'niri', 'kde', 'gnome', 'none'];

export function presetsToml(n = 12) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(`[hardware.preset-${i}]`, `display_scale = ${[1, 1.5, 2][i % 3]}`, `kbd_layout = "${['us', 'de', 'gb'][i % 3]}"`,
      `modifier_mode = "${i % 4 === 0 ? 'mac' : 'pc'}"`, `perf_profile = "${['balanced', 'battery', 'performance'][i % 3]}"`,
      `wm = "${WMS[i % WMS.length]}"`, `features = { battery = ${i % 2 === 0}, nvidia = ${i % 5 === 0}, touchbar = ${i === 0} }`, '');
  }
  return out.join('\n');
}

export function dataToml(sections = 20) {
  const out = ['[user]', 'name = "Bench User"', 'email = "bench@example.invalid"', ''];
  for (let s = 0; s < sections; s++) {
    out.push(`[app${s}]`, `enabled = ${s % 3 !== 0}`, `level = ${s}`, `name = "app-${s}"`, `items = [${Array.from({ length: 5 }, (_, i) => `"item-${s}-${i}"`).join(', ')}]`, '');
  }
  return out.join('\n');
}

export function hostsToml(hosts = 1000, presets = 12, overrides = true) {
  const out = [];
  for (let h = 0; h < hosts; h++) {
    out.push(`[hosts.host-${String(h).padStart(4, '0')}]`, `machine = "preset-${h % presets}"`, `platform = "${h % 4 === 0 ? 'darwin' : 'linux'}"`, `wave = ${1 + (h % 3)}`);
    if (overrides && h % 10 === 0) out.push(`[hosts.host-${String(h).padStart(4, '0')}.data.app${h % 20}]`, `level = ${100 + h}`);
    out.push('');
  }
  return out.join('\n');
}

/**
 * Template i. `host`: 'name' reads host.name (and machine, platform), 'facts' reads host.machine
 * and host.platform only, false reads only preset and fleet data. The sample fleet's 22
 * templates: 7 read host.name, 3 other host facts only, 12 no host fact.
 */
export function template(i, host = 'name') {
  const s = i % 20;
  const first = {
    name: `# template ${i} — managed by dotfleet for {{host.name}} ({{host.machine}}, {{host.platform}})`,
    facts: `# template ${i} — managed by dotfleet for a {{host.machine}} ({{host.platform}})`,
  };
  return [
    host ? first[host] : `# template ${i} — managed by dotfleet ({{hw.wm}})`,
    `[general]`,
    `user = "{{user.name}} <{{user.email}}>"`,
    `scale = {{hw.display_scale}}`,
    `layout = "{{hw.kbd_layout}}"`,
    `{{#if (eq hw.wm "${WMS[i % WMS.length]}")}}`,
    `wm_specific = true`,
    `{{else}}`,
    `wm_specific = false`,
    `{{/if}}`,
    `[app]`,
    `{{#if app${s}.enabled}}`,
    `name = "{{app${s}.name}}"`,
    `level = {{app${s}.level}}`,
    `items = [{{#each app${s}.items}}"{{this}}"{{#unless @last}}, {{/unless}}{{/each}}]`,
    `{{/if}}`,
    `{{#if hw.features.battery}}`,
    `power = "{{hw.perf_profile}}"`,
    `{{/if}}`,
    host ? `{{#if (eq host.platform "darwin")}}` : `{{#if (eq hw.modifier_mode "mac")}}`,
    `path = "/opt/homebrew/bin"`,
    `{{else}}`,
    `path = "/usr/local/bin"`,
    `{{/if}}`,
    `modifier = "{{hw.modifier_mode}}"`,
    '',
  ].join('\n');
}

/** Which host facts template i reads: as in the sample fleet (7 + 3 of 22), none, or the name in all. */
export const MIXES = {
  realistic: (i) => (i % 22 < 7 ? 'name' : i % 22 < 10 ? 'facts' : false),
  preset: () => false,
  worst: () => 'name',
};

export function generateFleet({ hosts = 1000, presets = 12, templates = 200, mix = 'worst' } = {}) {
  const tree = new Map();
  const put = (p, s) => tree.set(p, Buffer.from(s));
  const readsHost = MIXES[mix];
  put('home/.chezmoidata.toml', dataToml());
  put('home/.chezmoidata/hardware.toml', presetsToml(presets));
  // Per-host data overrides make a host's inputs its own; the preset-only mix has none.
  put('fleet/hosts.toml', hostsToml(hosts, presets, mix !== 'preset'));
  put('home/.chezmoiignore', '{{#if (eq host.platform "darwin")}}\n.config/linux-only\n{{/if}}\n');
  for (let i = 0; i < templates; i++) put(`home/dot_config/app${i % 20}/conf-${i}.toml.hbs`, template(i, readsHost(i)));
  return tree;
}

/** A bench helper: `git` with a fixed identity, in `cwd`. */
export const git = (cwd, ...args) => execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', '-c', 'commit.gpgsign=false', ...args], { cwd, encoding: 'utf8' }).trim();

/** A new git repository (branch main) whose first commit is `tree`; returns its directory and commit. */
export function gitRepoOf(tree, prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const [p, b] of tree) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), b);
  }
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'fleet');
  return { dir, commit: git(dir, 'rev-parse', 'HEAD') };
}
