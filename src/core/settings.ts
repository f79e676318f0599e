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
