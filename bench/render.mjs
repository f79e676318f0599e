/**
 * bench/render: rendering and diffing a generated fleet (default 1,000 hosts × 12 presets ×
 * 200 templates). Prints figures; asserts nothing.
 *
 *   npm run bench:render            (or: node --expose-gc bench/render.mjs [hosts] [templates])
 *
 * Targets (issue 2): full render ≤ 1.5 × the bare-Handlebars floor; a one-template diff ≤ 10 %
 * and a one-host data diff ≤ 5 % of the full render; peak RSS ≤ 400 MB.
 */
import Handlebars from 'handlebars';
import { loadFleet, contextFor } from '../dist/core/fleet.js';
import { Renderer } from '../dist/core/render.js';
import { diffFleets } from '../dist/core/fleet-diff.js';
import { renderHash } from '../dist/core/render-hash.js';
import { generateFleet } from './generate-fleet.mjs';

const HOSTS = Number(process.argv[2] ?? 1000);
const TEMPLATES = Number(process.argv[3] ?? 200);
const RUNS = 7;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** One timed run: wall-clock and this process's CPU time (less disturbed by a busy machine). */
function once(fn) {
  globalThis.gc?.();
  const t0 = process.hrtime.bigint();
  const c0 = cpuMs();
  const result = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, cpu: cpuMs() - c0, result };
}
function best(fn) {
  let out = { ms: Infinity, cpu: Infinity, result: undefined };
  for (let i = 0; i < RUNS; i++) {
    const r = once(fn);
    out = { ms: Math.min(out.ms, r.ms), cpu: Math.min(out.cpu, r.cpu), result: r.result };
  }
  return out;
}
/** The floor and the full render alternately, so a busy machine slows both alike. */
function interleaved(a, b) {
  const ra = { ms: Infinity, cpu: Infinity };
  const rb = { ms: Infinity, cpu: Infinity };
  for (let i = 0; i < RUNS; i++) {
    for (const [fn, acc] of [[a, ra], [b, rb]]) {
      const r = once(fn);
      acc.ms = Math.min(acc.ms, r.ms);
      acc.cpu = Math.min(acc.cpu, r.cpu);
      acc.result = r.result;
    }
  }
  return [ra, rb];
}

const base = generateFleet({ hosts: HOSTS, templates: TEMPLATES });
const fleet = loadFleet(base);
const hosts = [...fleet.hosts.values()];
const templates = fleet.sources.entries.filter((e) => e.template);

// The floor: the same templates and contexts through bare Handlebars, compiled once.
const contexts = hosts.map((h) => contextFor(fleet, h));
const hb = Handlebars.create();
hb.registerHelper('eq', (a, b) => a === b);
const compiled = templates.map((e) => hb.compile(Buffer.from(base.get(e.source)).toString('utf8'), { noEscape: true }));
compiled.forEach((f) => f(contexts[0]));
const renderer = new Renderer();
renderer.renderHost(fleet, hosts[0]);
const [floor, full] = interleaved(
  () => {
    let bytes = 0;
    for (const ctx of contexts) for (const f of compiled) bytes += f(ctx).length;
    return bytes;
  },
  () => {
    let entries = 0;
    for (const h of hosts) entries += renderer.renderHost(fleet, h).tree.size;
    return entries;
  },
);
const hashed = best(() => {
  for (const h of hosts) renderHash(renderer.renderHost(fleet, h).tree);
});

// A one-template change that touches every host.
const oneTemplate = new Map(base);
const tpath = templates[7].source;
oneTemplate.set(tpath, Buffer.from(Buffer.from(base.get(tpath)).toString('utf8').replace('[general]', '[general]\nchanged = true')));
// A one-host data change.
const oneHost = new Map(base);
oneHost.set('fleet/hosts.toml', Buffer.from(Buffer.from(base.get('fleet/hosts.toml')).toString('utf8').replace('[hosts.host-0500]\nmachine = "preset-8"', '[hosts.host-0500.data.app4]\nlevel = 77\n\n[hosts.host-0500]\nmachine = "preset-8"')));

const diffOf = (head) => best(() => {
  const r = new Renderer();
  const d = diffFleets(loadFleet(base), loadFleet(head), {}, r);
  return { changed: d.hosts.filter((h) => h.changes.length > 0).length, renders: d.renders, groups: d.groups.length };
});
const t1 = diffOf(oneTemplate);
const h1 = diffOf(oneHost);
const load = best(() => loadFleet(base));

const rss = process.resourceUsage().maxRSS / 1024;
const pct = (a, b) => `${((100 * a) / b).toFixed(1)} %`;
const renders = HOSTS * TEMPLATES;
console.log(`bench/render — ${HOSTS} hosts × 12 presets × ${TEMPLATES} templates (${renders.toLocaleString('en')} renders), best of ${RUNS} (floor and full render interleaved), node ${process.version}`);
console.log(`floor (bare Handlebars, compiled once)   ${floor.ms.toFixed(0).padStart(6)} ms   (CPU ${floor.cpu.toFixed(0)} ms)   ${(renders / floor.ms * 1000).toFixed(0)} renders/s`);
console.log(`full render of the fleet                 ${full.ms.toFixed(0).padStart(6)} ms   (CPU ${full.cpu.toFixed(0)} ms)   ${(full.ms / floor.ms).toFixed(2)} × floor wall, ${(full.cpu / floor.cpu).toFixed(2)} × CPU (target ≤ 1.5)   ${full.result.toLocaleString('en')} entries`);
console.log(`full render + render hash of every host  ${hashed.ms.toFixed(0).padStart(6)} ms`);
console.log(`load fleet (TOML, inventory, index)      ${load.ms.toFixed(0).padStart(6)} ms`);
console.log(`diff, one template changed (both loads)  ${t1.ms.toFixed(0).padStart(6)} ms   ${pct(t1.ms, full.ms)} of full (target ≤ 10 %)   ${t1.result.changed} hosts change, ${t1.result.renders} renders, ${t1.result.groups} groups`);
console.log(`diff, one host's data changed            ${h1.ms.toFixed(0).padStart(6)} ms   ${pct(h1.ms, full.ms)} of full (target ≤ 5 %)    ${h1.result.changed} host changes, ${h1.result.renders} renders`);
console.log(`peak RSS                                 ${rss.toFixed(0).padStart(6)} MB   (target ≤ 400)`);
