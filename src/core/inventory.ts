/** Hardware presets and the host inventory: schemas and the layering of a host's template context. */
import { z } from 'zod';
import { DotfleetError } from './errors.js';
import { ageRecipientProblem } from './secrets/age.js';
import { isPlainObject, mergeData, parseToml, type PlainObject, type PlainValue } from './data.js';
import { locateTomlPath, schemaError } from './schema-errors.js';

export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** An age X25519 recipient: bech32, human-readable part "age", 32-byte key. */
export const AGE_RECIPIENT = /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/;

const scalarOrTable: z.ZodType<PlainValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.array(scalarOrTable), z.record(z.string(), scalarOrTable)]),
);

export const PresetSchema = z.looseObject({
  display_scale: z.number().positive(),
  kbd_layout: z.string().min(1),
  modifier_mode: z.string().min(1),
  perf_profile: z.string().min(1),
  wm: z.string().min(1),
  features: z.record(z.string(), scalarOrTable).default({}),
});
export type Preset = z.infer<typeof PresetSchema> & PlainObject;

export const PLATFORMS = ['darwin', 'linux'] as const;

export const HostSchema = z.strictObject({
  machine: z.string().min(1),
  platform: z.enum(PLATFORMS),
  wave: z.int().min(0).default(1),
  /** Principal in allowed_signers; the host name when omitted. */
  principal: z.string().min(1).optional(),
  /** The host's age public key: SOPS files the host must read list it as a recipient. */
  age_recipient: z
    .string()
    .superRefine((v, ctx) => {
      const problem = ageRecipientProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not an age public key: ${problem}` });
    })
    .optional(),
  description: z.string().optional(),
  /** How `dotfleet fleet attest|sync|drift` reach the host: address (default: the host's name), user, port. */
  ssh_host: z.string().min(1).optional(),
  ssh_user: z.string().min(1).optional(),
  ssh_port: z.int().min(1).max(65535).optional(),
  tags: z.array(z.string()).default([]),
  /** Data overrides merged over the preset for this host only. */
  data: z.record(z.string(), scalarOrTable).default({}),
});

export const InventorySchema = z.strictObject({
  hosts: z.record(z.string(), HostSchema),
});

export interface Host {
  name: string;
  machine: string;
  platform: (typeof PLATFORMS)[number];
  wave: number;
  principal: string;
  age_recipient?: string;
  description?: string;
  /** How the fleet verbs reach the host over SSH; not part of its template context. */
  ssh?: { host?: string; user?: string; port?: number };
  tags: string[];
  data: PlainObject;
}

export function parseInventory(text: string, file: string): Host[] {
  const raw = parseToml(text, file);
  if (!isPlainObject(raw.hosts) || Object.keys(raw.hosts).length === 0) {
    throw new DotfleetError('schema', `${file} has no hosts`, { file, hint: 'add a [hosts.NAME] table per host, with machine, platform and wave; see docs/fleet-repo.md' });
  }
  const res = InventorySchema.safeParse(raw);
  if (!res.success) {
    throw schemaError(res.error.issues[0]!, file, text, 'each host is a [hosts.NAME] table with machine, platform and wave; see docs/fleet-repo.md');
  }
  const byLower = new Map<string, string>();
  for (const name of Object.keys(res.data.hosts)) {
    // Names that differ only by case would share files and principals on a case-insensitive disk.
    const other = byLower.get(name.toLowerCase());
    if (other !== undefined) {
      throw new DotfleetError('schema', `hosts "${other}" and "${name}" differ only by case`, {
        file,
        line: locateTomlPath(text, ['hosts', name]),
        hint: 'host names name files, directories and SSH principals; give each host a name of its own',
      });
    }
    byLower.set(name.toLowerCase(), name);
    if (!HOST_NAME.test(name)) {
      throw new DotfleetError('schema', `"${name}" is not a valid host name`, {
        file,
        line: locateTomlPath(text, ['hosts', name]),
        hint: 'host names are 1 to 63 letters, digits, ".", "_" and "-", starting with a letter or digit (they name files and SSH principals)',
      });
    }
  }
  return Object.entries(res.data.hosts)
    .map(([name, h]) => ({
      name,
      machine: h.machine,
      platform: h.platform,
      wave: h.wave,
      principal: h.principal ?? name,
      age_recipient: h.age_recipient,
      description: h.description,
      ...(h.ssh_host || h.ssh_user || h.ssh_port ? { ssh: { host: h.ssh_host, user: h.ssh_user, port: h.ssh_port } } : {}),
      tags: h.tags,
      data: h.data as PlainObject,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Validate the `hardware` table of the merged data. Boolean features that some preset declares
 * are `false` on presets that do not, so `{{#if hw.features.x}}` is meaningful on every host.
 */
export function parsePresets(hardware: PlainValue | undefined, file: string, text: string | undefined): Map<string, Preset> {
  const out = new Map<string, Preset>();
  if (hardware === undefined) return out;
  if (!isPlainObject(hardware)) {
    throw new DotfleetError('schema', 'hardware must be a table of presets ([hardware.NAME])', { file });
  }
  const booleanFeatures = new Set<string>();
  for (const [name, raw] of Object.entries(hardware)) {
    const res = PresetSchema.safeParse(raw);
    if (!res.success) {
      const issue = res.error.issues[0]!;
      throw schemaError({ ...issue, path: ['hardware', name, ...issue.path] }, file, text,
        'a preset needs display_scale, kbd_layout, modifier_mode, perf_profile and wm; see docs/fleet-repo.md');
    }
    for (const [k, v] of Object.entries(res.data.features)) if (typeof v === 'boolean') booleanFeatures.add(k);
    out.set(name, res.data as Preset);
  }
  for (const preset of out.values()) {
    for (const f of booleanFeatures) if (!(f in preset.features)) preset.features[f] = false;
  }
  return out;
}

/** The `host` object every template sees. */
export function hostFacts(host: Host): PlainObject {
  const facts: PlainObject = {
    name: host.name,
    machine: host.machine,
    platform: host.platform,
    wave: host.wave,
    principal: host.principal,
    tags: host.tags,
  };
  if (host.age_recipient) facts.age_recipient = host.age_recipient;
  if (host.description) facts.description = host.description;
  return facts;
}

/**
 * A host's template context: the fleet data (without the preset table) → `hw`, the host's
 * preset → the host's own overrides (which may override `hw.*` too), plus `host`.
 */
export function hostContext(data: PlainObject, preset: Preset, host: Host): PlainObject {
  const { hardware: _presets, ...defaults } = data;
  const layered = mergeData(mergeData(defaults, { hw: preset as PlainObject }), host.data);
  layered.host = hostFacts(host);
  return withoutPrototypes(layered) as PlainObject;
}

/**
 * Converted tables and lists by the data they came from. mergeData never mutates its inputs and
 * keeps untouched subtrees by reference, so the fleet's data and a preset's tables are the same
 * objects in every host's layers: they are converted once and shared by every host's context
 * (contexts are only read, never written).
 */
const converted = new WeakMap<object, PlainValue>();

/**
 * Tables without a prototype: strict templates then see only the fleet's own keys, so
 * `{{constructor}}` is "not defined" rather than an inherited member.
 */
function withoutPrototypes(v: PlainValue): PlainValue {
  if (typeof v !== 'object' || v === null) return v;
  const done = converted.get(v);
  if (done !== undefined) return done;
  let out: PlainValue;
  if (Array.isArray(v)) out = v.map(withoutPrototypes);
  else if (isPlainObject(v)) {
    const table = Object.create(null) as PlainObject;
    // Handlebars concatenates the table into its strict-mode message; a symbol key is out of
    // reach of template names.
    Object.defineProperty(table, Symbol.toPrimitive, { value: () => '[table]' });
    for (const [k, val] of Object.entries(v)) table[k] = withoutPrototypes(val);
    out = table;
  } else return v;
  converted.set(v, out);
  return out;
}
