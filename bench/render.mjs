/**
 * bench/render: rendering and diffing a generated fleet (default 1,000 hosts × 12 presets ×
 * 200 templates). Prints figures; asserts nothing.
 *
 *   npm run bench:render            (or: node --expose-gc bench/render.mjs [hosts] [templates])
 *
 * Targets (issue 14): full render vs the bare-Handlebars floor (which renders every host ×
 * template pair) ≤ 0.6 × with the sample fleet's share of templates reading host facts, ≤ 0.1 ×
 * when none does, ≤ 1.3 × when all do; diffs no slower than before; peak RSS ≤ 250 MB.
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

const floorOf = (tree, fleet) => {
  const hosts = [...fleet.hosts.values()];
  const templates = fleet.sources.entries.filter((e) => e.template);
  const contexts = hosts.map((h) => contextFor(fleet, h));
  const hb = Handlebars.create();
  hb.registerHelper('eq', (a, b) => a === b);
  const compiled = templates.map((e) => hb.compile(Buffer.from(tree.get(e.source)).toString('utf8'), { noEscape: true }));
  compiled.forEach((f) => f(contexts[0]));
  return () => {
    let bytes = 0;
    for (const ctx of contexts) for (const f of compiled) bytes += f(ctx).length;
    return bytes;
  };
};

/**
 * One mix: the floor (every host × template through bare Handlebars, compiled once) and
 * dotfleet's full render (a fresh renderer each run, so no output is reused between runs;
 * templates compiled once, as the floor's are), interleaved.
 */
function mixRun(mix) {
  const tree = generateFleet({ hosts: HOSTS, templates: TEMPLATES, mix });
  const fleet = loadFleet(tree);
  const hosts = [...fleet.hosts.values()];
  const engine = new Renderer().engine;
  new Renderer(engine).renderHost(fleet, hosts[0]);
  let last;
  const [floor, full] = interleaved(floorOf(tree, fleet), () => {
    const r = new Renderer(engine);
    let entries = 0;
    for (const h of hosts) entries += r.renderHost(fleet, h).tree.size;
    last = r;
    return entries;
  });
  return { tree, fleet, hosts, engine, floor, full, renders: last.renders, shared: last.shared, filled: last.filled };
}

const renders = HOSTS * TEMPLATES;
console.log(`bench/render — ${HOSTS} hosts × 12 presets × ${TEMPLATES} templates (${renders.toLocaleString('en')} host × template pairs), best of ${RUNS} (floor and full render interleaved), node ${process.version}`);
const TARGET = { realistic: 0.6, preset: 0.1, worst: 1.3 };
const runs = {};
for (const mix of ['realistic', 'preset', 'worst']) {
  const r = mixRun(mix);
  runs[mix] = r;
  console.log(`full render (${mix.padEnd(9)}) ${r.full.ms.toFixed(0).padStart(6)} ms vs floor ${r.floor.ms.toFixed(0).padStart(6)} ms … ${(r.full.ms / r.floor.ms).toFixed(2)} × floor (CPU ${(r.full.cpu / r.floor.cpu).toFixed(2)} ×; target ≤ ${TARGET[mix]})   ${r.renders.toLocaleString('en')} templates rendered, ${r.shared.toLocaleString('en')} outputs shared (${r.filled.toLocaleString('en')} of them with the host's own facts put in)`);
  if (mix !== 'realistic') globalThis.gc?.();
}

const { tree: base, fleet, hosts, engine, full } = runs.realistic;
const templates = fleet.sources.entries.filter((e) => e.template);
const hashed = best(() => {
  const r = new Renderer(engine);
  for (const h of hosts) renderHash(r.renderHost(fleet, h).tree);
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
console.log(`full render + render hash (realistic)     ${hashed.ms.toFixed(0).padStart(6)} ms`);
console.log(`load fleet (TOML, inventory, index)      ${load.ms.toFixed(0).padStart(6)} ms`);
console.log(`diff, one template changed (both loads)  ${t1.ms.toFixed(0).padStart(6)} ms   ${pct(t1.ms, full.ms)} of full render (realistic)   ${t1.result.changed} hosts change, ${t1.result.renders} renders, ${t1.result.groups} groups`);
console.log(`diff, one host's data changed            ${h1.ms.toFixed(0).padStart(6)} ms   ${pct(h1.ms, full.ms)} of full render (realistic)   ${h1.result.changed} host changes, ${h1.result.renders} renders`);
console.log(`peak RSS of this benchmark process       ${rss.toFixed(0).padStart(6)} MB   (every mix, floors included; the target, ≤ 250 MB for one full render, is measured by bench:diff in a process of its own)`);
