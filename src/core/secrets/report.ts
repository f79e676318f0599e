/**
 * Secrets in the fleet diff and in `dotfleet secrets check`.
 *
 * Which host uses which secret is learnt by rendering, for every host, only the templates that
 * call {{secret}} (and are not ignored on the host): exact (a secret used in an {{#if}} branch
 * the host does not take is not "used"), and cheap next to a full render.
 */
import { deepEqual } from '../data.js';
import { DotfleetError } from '../errors.js';
import type { Fleet } from '../fleet.js';
import { Renderer } from '../render.js';
import { checkSecrets, SOPS_NAME, type SecretFinding, type SecretsReport } from './scope.js';
import { diffSecrets, type SecretChange } from './sops-diff.js';
import { SOPS_CONFIG } from './sops-config.js';
import { SETTINGS_FILE } from '../settings.js';
import { bytesEqual } from '../tree.js';
import { formatOf } from './sops-file.js';

export function secretUses(fleet: Fleet, renderer: Renderer): Map<string, Set<string>> {
  const users = fleet.sources.entries.filter((e) => renderer.secretFilesOf(fleet, e).length > 0);
  if (users.length > 0) {
    for (const host of fleet.hosts.values()) {
      let context;
      let ignore;
      try {
        context = renderer.context(fleet, host);
        ignore = renderer.ignoreList(fleet, context);
      } catch (e) {
        if (!(e instanceof DotfleetError)) throw e;
        continue;
      }
      for (const e of users) {
        if (ignore.ignores(e.target)) continue;
        try {
          renderer.renderEntry(fleet, e, context, host.name);
        } catch (e) {
          // Render errors are the fleet diff's to report; here only usage counts.
          if (!(e instanceof DotfleetError)) throw e;
        }
      }
    }
  }
  return renderer.secretUses(fleet);
}

export function secretsReport(fleet: Fleet, renderer: Renderer = new Renderer()): SecretsReport {
  return checkSecrets(fleet, secretUses(fleet, renderer));
}

export interface SecretsDiff {
  changes: SecretChange[];
  /** Findings at head; present when something that decides them changed. */
  findings?: SecretFinding[];
}

/** Did anything that decides secret findings change: SOPS files, rules, settings, recipients, tags, hosts? */
function findingsInputsChanged(base: Fleet, head: Fleet, changes: SecretChange[]): boolean {
  if (changes.length > 0) return true;
  for (const p of [SOPS_CONFIG, SETTINGS_FILE]) {
    const a = base.tree.get(p);
    const b = head.tree.get(p);
    if (!(a === b || (a && b && bytesEqual(a, b)))) return true;
  }
  const facts = (f: Fleet) => [...f.hosts.values()].map((h) => [h.name, h.age_recipient ?? null, h.tags]);
  if (!deepEqual(facts(base), facts(head))) return true;
  // A template that starts or stops using a secret changes who uses it.
  for (const [p, b] of head.tree) {
    const a = base.tree.get(p);
    if ((!a || !bytesEqual(a, b)) && p.endsWith('.hbs') && /\{\{~?\s*secret\s/.test(Buffer.from(b).toString('utf8'))) return true;
    // A file named like a SOPS file, added or changed: it may be committed unencrypted.
    if ((!a || !bytesEqual(a, b)) && SOPS_NAME.test(p)) return true;
  }
  for (const p of base.tree.keys()) if (!head.tree.has(p) && formatOf(p) && /\.(sops|enc)\./.test(p)) return true;
  return false;
}

export function diffFleetSecrets(base: Fleet, head: Fleet, renderer: Renderer = new Renderer()): SecretsDiff {
  const changes = diffSecrets(base.tree, head.tree);
  if (!findingsInputsChanged(base, head, changes)) return { changes };
  return { changes, findings: secretsReport(head, renderer).findings };
}
