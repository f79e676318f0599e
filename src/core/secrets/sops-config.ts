/**
 * `.sops.yaml` creation rules: which recipients a new file at a path is encrypted for. The first
 * rule whose `path_regex` matches (or that has none) applies, as in sops.
 */
import { DotfleetError } from '../errors.js';
import { isPlainObject, parseYaml } from '../data.js';
import type { Recipient, RecipientKind } from './sops-file.js';

export const SOPS_CONFIG = '.sops.yaml';

export interface CreationRule {
  index: number;
  pathRegex?: RegExp;
  recipients: Recipient[];
}

/**
 * Keys holding recipients, by kind: a comma-separated string or a list. Creation rules say
 * `azure_keyvault` and `hc_vault_transit_uri`; key groups use the file's own `azure_kv`, `hc_vault`.
 */
const RULE_KEYS: Record<string, RecipientKind> = {
  age: 'age',
  pgp: 'pgp',
  kms: 'kms',
  gcp_kms: 'gcp_kms',
  azure_keyvault: 'azure_kv',
  azure_kv: 'azure_kv',
  hc_vault_transit_uri: 'hc_vault',
  hc_vault: 'hc_vault',
};

function ids(v: unknown): string[] {
  if (typeof v === 'string') return v.split(',').map((x) => x.trim()).filter(Boolean);
  if (Array.isArray(v)) return v.flatMap((x) => (typeof x === 'string' ? ids(x) : isPlainObject(x) && typeof x.arn === 'string' ? [x.arn] : isPlainObject(x) && typeof x.resource_id === 'string' ? [x.resource_id] : []));
  return [];
}

function ruleRecipients(table: Record<string, unknown>, group: number): Recipient[] {
  const out: Recipient[] = [];
  for (const [key, kind] of Object.entries(RULE_KEYS)) for (const id of ids(table[key])) out.push({ kind, id, group });
  return out;
}

export function parseSopsConfig(text: string): CreationRule[] {
  const doc = parseYaml(text, SOPS_CONFIG);
  const rules = isPlainObject(doc) && Array.isArray(doc.creation_rules) ? doc.creation_rules : [];
  return rules.filter(isPlainObject).map((r, index) => {
    let pathRegex: RegExp | undefined;
    if (typeof r.path_regex === 'string') {
      try {
        pathRegex = new RegExp(r.path_regex);
      } catch {
        throw new DotfleetError('schema', `creation_rules[${index}].path_regex is not a valid regular expression`, { file: SOPS_CONFIG });
      }
    }
    const groups = Array.isArray(r.key_groups) ? r.key_groups.filter(isPlainObject) : [];
    const recipients = groups.length > 0 ? groups.flatMap((g, i) => ruleRecipients(g, i)) : ruleRecipients(r, 0);
    return { index, pathRegex, recipients };
  });
}

/** The rule sops would use for a new file at `path` (relative to the repository root). */
export function ruleFor(rules: CreationRule[], path: string): CreationRule | undefined {
  return rules.find((r) => !r.pathRegex || r.pathRegex.test(path));
}
