/** The bot's settings, `.github/dotfleet.yml` in the fleet repo. Every field is optional. */
import { z } from 'zod';
import { parseYaml } from './data.js';
import { schemaError } from './schema-errors.js';

export const SETTINGS_FILE = '.github/dotfleet.yml';

const repoPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'must be a path inside the repository');

export const SettingsSchema = z.strictObject({
  /** Host inventory (TOML). */
  inventory: repoPath.default('fleet/hosts.toml'),
  /** OpenSSH allowed_signers file: host keys that may sign attestations, and the bot's key. */
  allowed_signers: repoPath.default('fleet/allowed_signers'),
  /** Branch that holds attestations, fleet.json and FLEET.md. */
  state_branch: z.string().min(1).default('dotfleet/state'),
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
