/**
 * Who a secret is for, and where the recipients and the fleet disagree. The bot never decrypts:
 * it compares each SOPS file's recipients with the inventory's `age_recipient`s.
 *
 * Scope of a file (docs/secrets.md):
 * 1. the first `secrets.scopes` entry in .github/dotfleet.yml whose `path` glob matches: its
 *    `hosts` and the hosts carrying one of its `tags` (this overrides 2);
 * 2. otherwise: `secrets/hosts/<host>/…` → that host; `secrets/tags/<tag>/…` → hosts tagged so;
 *    plus every host whose rendered configuration uses the file through `{{secret}}`.
 */
import type { Fleet } from '../fleet.js';
import { compareStrings } from '../paths.js';
import { globMatcher } from '../ignore.js';
import { parseSopsConfig, ruleFor, SOPS_CONFIG, type CreationRule } from './sops-config.js';
import { parseSopsFile, type SopsFile } from './sops-file.js';
import { DotfleetError, lineColumnAt } from '../errors.js';
import { shortRecipient } from './marker.js';
import { ageRecipientProblem } from './age.js';

export type FindingCode = 'outside-scope' | 'partial-share' | 'cannot-decrypt' | 'stale-recipient' | 'rule-mismatch' | 'plain-value' | 'no-mac' | 'not-encrypted' | 'unused' | 'unreadable' | 'bad-recipient' | 'rules-unchecked';

export interface SecretFinding {
  code: FindingCode;
  severity: 'error' | 'warning';
  file: string;
  host?: string;
  /** A recipient's public identifier (never a secret). */
  recipient?: string;
  /** A key path inside the file (never its value). */
  key?: string;
  message: string;
  hint?: string;
}

export interface SecretsReport {
  files: SopsFile[];
  /** File → hosts it is for. */
  scopes: Map<string, string[]>;
  findings: SecretFinding[];
}

/** Files named like SOPS files: they must carry SOPS metadata. */
export const SOPS_NAME = /(^|\/)[^/]+\.(sops|enc)\.(ya?ml|json|env|ini)$/i;

export function sopsFilesOf(fleet: Fleet): { files: SopsFile[]; findings: SecretFinding[] } {
  const files: SopsFile[] = [];
  const findings: SecretFinding[] = [];
  for (const [path, bytes] of fleet.tree) {
    try {
      const f = parseSopsFile(path, bytes);
      if (f) files.push(f);
      else if (SOPS_NAME.test(path)) {
        findings.push({ code: 'not-encrypted', severity: 'error', file: path, message: `${path} is named like a SOPS file but has no SOPS metadata: is it committed unencrypted?`, hint: `encrypt it: sops --encrypt --in-place ${path}` });
      }
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      findings.push({ code: 'unreadable', severity: 'error', file: path, message: e.message, hint: e.hint });
    }
  }
  files.sort((a, b) => compareStrings(a.path, b.path));
  return { files, findings };
}

export function scopeOf(fleet: Fleet, file: string, usedBy: Iterable<string>): string[] {
  const hosts = [...fleet.hosts.values()];
  const tagged = (tags: string[]) => hosts.filter((h) => h.tags.some((t) => tags.includes(t))).map((h) => h.name);
  const explicit = fleet.settings.secrets.scopes.find((s) => globMatcher(s.path)(file));
  if (explicit) return [...new Set([...explicit.hosts, ...tagged(explicit.tags)])].sort(compareStrings);
  const out = new Set(usedBy);
  const byHost = /^secrets\/hosts\/([^/]+)\//.exec(file);
  if (byHost && fleet.hosts.has(byHost[1]!)) out.add(byHost[1]!);
  const byTag = /^secrets\/tags\/([^/]+)\//.exec(file);
  if (byTag) for (const h of tagged([byTag[1]!])) out.add(h);
  return [...out].sort(compareStrings);
}


/**
 * Check every SOPS file against the fleet. `usage` maps a file to the hosts whose rendered
 * configuration uses it (from rendering; see Renderer.secretUses).
 */
export function checkSecrets(fleet: Fleet, usage: Map<string, Set<string>>): SecretsReport {
  const { files, findings } = sopsFilesOf(fleet);
  const configText = fleet.tree.get(SOPS_CONFIG);
  let rules: CreationRule[] = [];
  if (configText) {
    try {
      const text = Buffer.from(configText).toString('utf8');
      rules = parseSopsConfig(text);
      for (const rule of rules) {
        for (const r of rule.recipients) {
          const problem = r.kind === 'age' ? ageRecipientProblem(r.id) : undefined;
          if (!problem) continue;
          const at = text.indexOf(r.id);
          findings.push({ code: 'bad-recipient', severity: 'error', file: SOPS_CONFIG, recipient: r.id, message: `line ${at < 0 ? '?' : lineColumnAt(text, at).line}: creation rule ${rule.index + 1} names ${r.id}, which is not a valid age key: ${problem}`, hint: 'copy the recipient again from age-keygen -y (or the host\'s key file)' });
        }
      }
    } catch (e) {
      if (!(e instanceof DotfleetError)) throw e;
      findings.push({ code: 'unreadable', severity: 'error', file: SOPS_CONFIG, message: e.message });
    }
  }
  const owner = new Map<string, string>();
  for (const h of fleet.hosts.values()) if (h.age_recipient) owner.set(h.age_recipient, h.name);
  const admins = new Set(fleet.settings.secrets.admins);
  const scopes = new Map<string, string[]>();

  for (const f of files) {
    const scope = scopeOf(fleet, f.path, usage.get(f.path) ?? []);
    scopes.set(f.path, scope);
    const inScope = new Set(scope);
    const ids = new Set(f.recipients.map((r) => r.id));
    const add = (x: Omit<SecretFinding, 'file'>) => findings.push({ file: f.path, ...x });

    if (!f.mac) add({ code: 'no-mac', severity: 'error', message: 'the file has no MAC: its values can be swapped or removed undetected', hint: `re-encrypt it with sops (sops --encrypt --in-place ${f.path} after decrypting)` });
    for (const b of f.badRecipients) {
      add({ code: 'bad-recipient', severity: 'error', recipient: b.id, message: `line ${b.line ?? '?'}: the age recipient ${b.id} is not a valid age key: ${b.problem}`, hint: 'copy the recipient again from age-keygen -y (or the host\'s key file), then: sops updatekeys ' + f.path });
    }
    for (const r of f.invalidRules) {
      add({ code: 'rules-unchecked', severity: 'warning', message: `${r} is a regular expression dotfleet cannot evaluate: which values must be encrypted is not checked`, hint: 'write it in the syntax Go and JavaScript share' });
    }
    if ([...f.values.values()].some((v) => v.expectEncrypted === undefined)) {
      add({ code: 'rules-unchecked', severity: 'warning', message: 'the file decides encryption by comments (unencrypted_comment_regex / encrypted_comment_regex), which dotfleet does not evaluate: plain-text values are not checked', hint: 'check it with sops; or use key suffixes or key regexes' });
    }
    for (const [key, v] of f.values) {
      if (v.expectEncrypted === true && !v.encrypted) add({ code: 'plain-value', severity: 'error', key, message: `"${key}" is stored in plain text where the file's rules expect it encrypted`, hint: `sops --encrypt --in-place ${f.path} (or name the key with the unencrypted suffix if it is not secret)` });
    }
    if (scope.length === 0) {
      add({ code: 'unused', severity: 'warning', message: 'no host uses this secret and no scope names it', hint: 'use it in a template with {{secret}}, move it under secrets/hosts/<host>/, or add a secrets.scopes entry' });
    }
    // With key groups the data key is split: a host decrypts alone only if its key is in at least
    // shamir_threshold groups (each group holds one share).
    const groupsOf = (id: string) => new Set(f.recipients.filter((r) => r.id === id).map((r) => r.group));
    const groupNames = (gs: number[]) => gs.map((g) => `#${g + 1}`).join(', ');
    const reported = new Set<string>();
    for (const r of f.recipients) {
      const host = owner.get(r.id);
      if (host !== undefined) {
        if (scope.length > 0 && !inScope.has(host) && !reported.has(host)) {
          reported.add(host);
          const held = groupsOf(r.id);
          if (held.size >= f.shamirThreshold) {
            add({ code: 'outside-scope', severity: 'error', host, recipient: r.id, message: `${host} can decrypt this file but is not in its scope (${scope.join(', ')})`, hint: `remove ${shortRecipient(r.id)} from the recipients (.sops.yaml), then: sops updatekeys ${f.path} && sops rotate -i ${f.path}` });
          } else {
            add({ code: 'partial-share', severity: 'warning', host, recipient: r.id, message: `${host} is not in this file's scope (${scope.join(', ')}) and holds ${held.size} of the ${f.shamirThreshold} key-group shares needed (groups ${groupNames([...held].sort())}): it cannot decrypt alone`, hint: `remove ${shortRecipient(r.id)} from the key groups unless it is meant to hold a share` });
          }
        }
      } else if (!admins.has(r.id)) {
        add({ code: 'stale-recipient', severity: 'warning', recipient: r.id, message: `the ${r.kind} recipient ${shortRecipient(r.id)} belongs to no current host and is not an admin`, hint: `a removed host can still decrypt this file: dotfleet secrets rotate (or list the key in secrets.admins if it is yours)` });
      }
    }
    for (const host of scope) {
      const h = fleet.hosts.get(host);
      if (!h) continue;
      if (!h.age_recipient) add({ code: 'cannot-decrypt', severity: 'error', host, message: `${host} needs this file but has no age_recipient in ${fleet.settings.inventory}`, hint: `add age_recipient = "age1…" to [hosts.${host}]` });
      else if (!ids.has(h.age_recipient)) add({ code: 'cannot-decrypt', severity: 'error', host, recipient: h.age_recipient, message: `${host} needs this file but is not one of its recipients`, hint: `add ${shortRecipient(h.age_recipient)} to the matching rule in ${SOPS_CONFIG}, then: sops updatekeys ${f.path}` });
      else {
        const held = groupsOf(h.age_recipient);
        if (held.size < f.shamirThreshold) {
          const lacking = Array.from({ length: f.keyGroups }, (_, g) => g).filter((g) => !held.has(g));
          add({ code: 'cannot-decrypt', severity: 'error', host, recipient: h.age_recipient, message: `${host} needs this file but can decrypt only ${held.size} of the ${f.shamirThreshold} key-group shares needed (shamir_threshold ${f.shamirThreshold} of ${f.keyGroups} groups); it is in no key of groups ${groupNames(lacking)}`, hint: `add ${shortRecipient(h.age_recipient)} to enough key groups in ${SOPS_CONFIG}, then: sops updatekeys ${f.path}` });
        }
      }
    }
    const rule = ruleFor(rules, f.path);
    if (rule) {
      const want = new Set(rule.recipients.map((r) => r.id));
      const missing = [...want].filter((id) => !ids.has(id));
      const extra = [...ids].filter((id) => !want.has(id));
      if (missing.length || extra.length) {
        add({ code: 'rule-mismatch', severity: 'warning', message: `the recipients differ from ${SOPS_CONFIG} rule ${rule.index + 1}${missing.length ? `; missing: ${missing.map(shortRecipient).join(', ')}` : ''}${extra.length ? `; not in the rule: ${extra.map(shortRecipient).join(', ')}` : ''}`, hint: `sops updatekeys ${f.path}` });
      }
    }
  }
  findings.sort((a, b) => compareStrings(a.file, b.file) || (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
  return { files, scopes, findings };
}
