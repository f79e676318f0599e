/**
 * The policy a host is held to: its post-apply tests (`hosts/<host>/tests/`) and tool
 * requirements (`fleet/policy.toml`, `[tools] git = ">=2.30"`). The policy hash lets the fleet
 * see which policy each host last ran:
 *
 *   policyHash = "sha256:" || hex SHA-256 of, for each policy file in byte order of paths,
 *                hex(SHA-256(content)) || "  " || path || "\n"     (sha256sum's format)
 */
import { createHash } from 'node:crypto';
import { parseToml } from '../data.js';
import { DotfleetError } from '../errors.js';
import { compareStrings } from '../paths.js';
import type { RepoTree } from '../tree.js';

export const POLICY_FILE = 'fleet/policy.toml';

export function policyFiles(tree: RepoTree, host: string): string[] {
  const tests = `hosts/${host}/tests/`;
  return [...tree.keys()].filter((p) => p === POLICY_FILE || p.startsWith(tests)).sort(compareStrings);
}

export function policyHash(tree: RepoTree, host: string): string {
  const listing = policyFiles(tree, host)
    .map((p) => `${createHash('sha256').update(tree.get(p)!).digest('hex')}  ${p}\n`)
    .join('');
  return 'sha256:' + createHash('sha256').update(listing).digest('hex');
}

/** Tool name → requirement (">=2.30"). */
export function toolRequirements(tree: RepoTree): Record<string, string> {
  const body = tree.get(POLICY_FILE);
  if (!body) return {};
  const text = Buffer.from(body).toString('utf8');
  const tools = parseToml(text, POLICY_FILE).tools ?? {};
  const out: Record<string, string> = {};
  for (const [name, req] of Object.entries(tools as Record<string, unknown>)) {
    if (typeof req !== 'string' || !/^>=\s*\d+(\.\d+)*$/.test(req)) {
      throw new DotfleetError('schema', `tools.${name}: a requirement is ">=VERSION", got ${JSON.stringify(req)}`, { file: POLICY_FILE });
    }
    out[name] = req.replace(/\s+/g, '');
  }
  return out;
}

function numbers(v: string): number[] {
  return (/\d+(\.\d+)*/.exec(v)?.[0] ?? '').split('.').filter(Boolean).map(Number);
}

/** Does `version` meet ">=X.Y"? Compares the leading dotted numbers. */
export function meets(version: string, requirement: string): boolean {
  const have = numbers(version);
  const want = numbers(requirement);
  for (let i = 0; i < Math.max(have.length, want.length); i++) {
    const a = have[i] ?? 0;
    const b = want[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}
