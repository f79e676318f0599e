/** The fleet diff for scripts: stable field names, errors as {code, message, file, line, …}. */
import type { FleetDiff } from '../fleet-diff.js';

export const FLEET_DIFF_SCHEMA_VERSION = 1;

export function fleetDiffJson(diff: FleetDiff, refs: { base?: string; head?: string } = {}): string {
  return JSON.stringify({ version: FLEET_DIFF_SCHEMA_VERSION, ...refs, ...diff }, null, 2) + '\n';
}
