/**
 * The app's own render of every host at a commit, as render hashes: an attestation's claimed
 * render hash is checked against it. A fleet that does not load, or a host that does not render,
 * gives an error for that host instead of a hash.
 */
import { isDotfleetError } from '../errors.js';
import { loadFleet } from '../fleet.js';
import { Renderer } from '../render.js';
import { renderHash } from '../render-hash.js';
import type { RepoTree } from '../tree.js';

export type HostHash = { hash: string } | { error: string };

export function renderHashes(tree: RepoTree): Record<string, HostHash> {
  const out: Record<string, HostHash> = {};
  let fleet;
  try {
    fleet = loadFleet(tree);
  } catch (e) {
    if (!isDotfleetError(e)) throw e;
    return { '*': { error: e.describe() } };
  }
  const renderer = new Renderer();
  for (const host of fleet.hosts.values()) {
    const r = renderer.renderHost(fleet, host);
    out[host.name] = r.errors.length > 0 ? { error: r.errors[0]!.describe() } : { hash: renderHash(r.tree) };
  }
  return out;
}
