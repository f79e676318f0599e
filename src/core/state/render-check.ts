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
import { diffFleets } from '../fleet-diff.js';

export type HostHash = { hash: string } | { error: string };

/** A commit's tree and every host's render hash there: what a later commit's hashes can start from. */
export interface KnownHashes {
  tree: RepoTree;
  hashes: Record<string, HostHash>;
}

/**
 * Every host's render hash at `tree`. With `since` (an earlier commit's tree and hashes), only the
 * hosts the change between the two can reach are rendered, with the fleet diff's fast path (held
 * to a full render by its property test, and this function to `renderHashes(tree)` by its own):
 * a host the diff finds unchanged keeps its hash. A rollout after a one-preset change renders
 * that preset's hosts, not the fleet.
 */
export function renderHashes(tree: RepoTree, since?: KnownHashes): Record<string, HostHash> {
  const out: Record<string, HostHash> = {};
  let fleet;
  try {
    fleet = loadFleet(tree);
  } catch (e) {
    if (!isDotfleetError(e)) throw e;
    return { '*': { error: e.describe() } };
  }
  const renderer = new Renderer();
  let unchanged = new Set<string>();
  if (since && !since.hashes['*']) {
    try {
      const diff = diffFleets(loadFleet(since.tree), fleet, { changesOnly: true }, renderer);
      unchanged = new Set(diff.hosts.filter((h) => h.status === 'unchanged').map((h) => h.host));
    } catch (e) {
      if (!isDotfleetError(e)) throw e;
      // The earlier commit does not load: render everything.
    }
  }
  for (const host of fleet.hosts.values()) {
    const known = since?.hashes[host.name];
    if (unchanged.has(host.name) && known && 'hash' in known) {
      out[host.name] = known;
      continue;
    }
    const r = renderer.renderHost(fleet, host);
    out[host.name] = r.errors.length > 0 ? { error: r.errors[0]!.describe() } : { hash: renderHash(r.tree) };
  }
  return out;
}
