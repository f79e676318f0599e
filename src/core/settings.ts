/** The bot's settings, `.github/dotfleet.yml` in the fleet repo. Every field is optional. */
import { z } from 'zod';
import { parseYaml } from './data.js';
import { schemaError } from './schema-errors.js';

export const SETTINGS_FILE = '.github/dotfleet.yml';

const repoPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'must be a path inside the repository');

const SecretScopeSchema = z.strictObject({
  /** A glob over repository paths (`secrets/wifi.sops.yaml`, `secrets/office/**`). */
  path: z.string().min(1),
  hosts: z.array(z.string()).default([]),
  tags: z.array(z.string()).default([]),
});

export const SecretsSettingsSchema = z.strictObject({
  /** Recipients allowed on every secret without being a host: the owner's age key, a PGP fingerprint, a KMS ARN. */
  admins: z.array(z.string().min(1)).default([]),
  /** Which hosts a secret is for, overriding the path convention and template usage. */
  scopes: z.array(SecretScopeSchema).default([]),
});

const duration = (example: string) => z.string().regex(/^\d+\s*[smhd]$/, `must be a duration: a number and s, m, h or d ("${example}")`);

export const RolloutSettingsSchema = z.strictObject({
  /** Hosts of the first wave. When set, waves are these hosts, then `steps` of the rest; otherwise the inventory's `wave`. */
  canary: z.array(z.string().min(1)).default([]),
  /** With `canary`: cumulative percentages of the other affected hosts, one wave each ([25, 100]). */
  steps: z.array(z.number().gt(0).max(100)).min(1).default([100]),
  /** Share of a wave's hosts that must be SUCCESS before the next wave opens (0 < r ≤ 1). */
  success_ratio: z.number().gt(0).max(1).default(1),
  /** Failed, timed-out (and, unless partial_ok, partial) hosts the rollout tolerates before it halts. */
  max_failures: z.int().min(0).default(0),
  /** Count a PARTIAL host (drift or tools, tests passing) as a success for the gates. */
  partial_ok: z.boolean().default(false),
  /** How long a wave may run before its silent hosts are TIMED_OUT and the rollout halts. */
  wave_timeout: duration('1h').default('1h'),
  /** How long a host stays in VALIDATING (post) after its SUCCESS before it counts (a later failure within it counts instead). */
  soak: duration('10m').default('0s'),
  /** A manifest is valid this long; hosts refuse an older one. Each transition renews it. */
  expiry: duration('7d').default('7d'),
  /** The principal of the app's key in allowed_signers (namespace dotfleet-rollout). */
  signer: z.string().min(1).default('dotfleet-rollout'),
});
export type RolloutSettings = z.infer<typeof RolloutSettingsSchema>;

export const SettingsSchema = z.strictObject({
  /** Host inventory (TOML). */
  inventory: repoPath.default('fleet/hosts.toml'),
  /** OpenSSH allowed_signers file: host keys that may sign attestations, and the bot's key. */
  allowed_signers: repoPath.default('fleet/allowed_signers'),
  /** Branch that holds attestations, fleet.json and FLEET.md. */
  state_branch: z
    .string()
    .regex(/^(?!\/|.*\/\/|.*\.\.|.*\.lock$|.*\/$)[A-Za-z0-9._/-]+$/, 'must be a branch name (letters, digits, ".", "_", "-" and "/")')
    .default('dotfleet/state'),
  /** A host with no attestation for this long is listed as quiet on the dashboard ("24h", "7d"). */
  quiet_after: z.string().regex(/^\d+\s*[smhd]$/, 'must be a duration: a number and s, m, h or d ("24h")').default('24h'),
  secrets: SecretsSettingsSchema.default({ admins: [], scopes: [] }),
  /** Block a rollout whose target commit is not signed by a trusted key (or GitHub's web-flow key). */
  require_signed_target: z.boolean().default(false),
  /** When a rollout halts, open a pull request that reverts the default branch to the previous target. */
  revert: z.boolean().default(false),
  rollout: RolloutSettingsSchema.default(RolloutSettingsSchema.parse({})),
});

export type Settings = z.infer<typeof SettingsSchema>;

export const DEFAULT_SETTINGS: Settings = SettingsSchema.parse({});

export function parseSettings(text: string | undefined, file = SETTINGS_FILE): Settings {
  if (text === undefined) return DEFAULT_SETTINGS;
  const raw = parseYaml(text, file);
  const res = SettingsSchema.safeParse(raw ?? {});
  if (!res.success) {
    throw schemaError(res.error.issues[0]!, file, undefined, `see docs/fleet-repo.md for the settings ${file} accepts`);
  }
  return res.data;
}
