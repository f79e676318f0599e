/** Intake settings from the environment (docs/app.md): the app's and the Action's. */
import type { IntakeOptions } from './service.js';

export const envNumber = (name: string, env: NodeJS.ProcessEnv = process.env): number | undefined => {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, got "${v}"`);
  return n;
};

/** Operators tune intake with environment variables (docs/app.md). */
export function intakeOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<IntakeOptions> {
  const out: Partial<IntakeOptions> = {};
  const window = envNumber('DOTFLEET_INTAKE_WINDOW_MS', env);
  const maxBytes = envNumber('DOTFLEET_INTAKE_MAX_BYTES', env);
  const maxAge = envNumber('DOTFLEET_INTAKE_MAX_AGE_SECONDS', env);
  const perHost = envNumber('DOTFLEET_INTAKE_HOST_PER_MINUTE', env);
  const perAddress = envNumber('DOTFLEET_INTAKE_ADDRESS_PER_MINUTE', env);
  if (window !== undefined) out.writer = { ...(out.writer as IntakeOptions['writer']), windowMs: window };
  if (maxBytes !== undefined) out.maxBytes = maxBytes;
  if (maxAge !== undefined) out.maxAgeSeconds = maxAge;
  if (perHost !== undefined) out.perHost = { perMinute: perHost, burst: Math.max(1, Math.ceil(perHost / 2)) };
  if (perAddress !== undefined) out.perAddress = { perMinute: perAddress, burst: Math.max(1, Math.ceil(perAddress / 2)) };
  return out;
}
