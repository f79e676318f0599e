/** Child of bench/diff.mjs: one full render of a generated fleet; prints its peak RSS in MB. */
import { loadFleet } from '../dist/core/fleet.js';
import { Renderer } from '../dist/core/render.js';
import { renderHash } from '../dist/core/render-hash.js';
import { generateFleet } from './generate-fleet.mjs';
const fleet = loadFleet(generateFleet({ hosts: 1000, templates: 200, mix: process.argv[2] ?? 'realistic' }));
const r = new Renderer();
for (const h of fleet.hosts.values()) renderHash(r.renderHost(fleet, h).tree);
console.log((process.resourceUsage().maxRSS / 1024).toFixed(0));
