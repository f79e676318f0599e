/**
 * Reading a fleet repository at one commit: settings, data layers, hardware presets, inventory
 * and the index of the source tree. Fleet-wide mistakes (bad TOML, bad schema) throw; mistakes
 * that concern one host (an unknown preset) are raised when that host is rendered.
 */
import { DotfleetError } from './errors.js';
import { mergeData, parseDataFile, type PlainObject } from './data.js';
import { hostContext, parseInventory, parsePresets, type Host, type Preset } from './inventory.js';
import { locateTomlPath } from './schema-errors.js';
import { parseSettings, SETTINGS_FILE, type Settings } from './settings.js';
import { indexSources, type SourceIndex } from './source-names.js';
import { joinPath } from './paths.js';
import { notFiles, repoPaths, type RepoTree } from './tree.js';

export const ROOT_FILE = '.chezmoiroot';
export const DEFAULT_SOURCE_ROOT = 'home';

export interface Fleet {
  tree: RepoTree;
  settings: Settings;
  /** Directory of the source tree inside the repository. */
  sourceRoot: string;
  /** Data files in merge order (chezmoi's). */
  dataFiles: string[];
  /** Merged data, `hardware` (the presets) included. */
  data: PlainObject;
  presets: Map<string, Preset>;
  hosts: Map<string, Host>;
  sources: SourceIndex;
  /** Where the presets are defined, for error messages. */
  presetFile: string;
  /** Hosts that cannot be rendered at all (an unknown preset), with the reason. */
  hostErrors: Map<string, DotfleetError>;
}

const text = (tree: RepoTree, path: string): string | undefined => {
  const b = tree.get(path);
  return b === undefined ? undefined : Buffer.from(b).toString('utf8');
};

/** `.chezmoiroot` names the source directory; dotfleet's default is `home`. */
export function sourceRootOf(tree: RepoTree): string {
  const declared = text(tree, ROOT_FILE)?.trim();
  if (declared === undefined) return DEFAULT_SOURCE_ROOT;
  if (declared === '' || declared.startsWith('/') || declared.split('/').includes('..')) {
    throw new DotfleetError('schema', `${ROOT_FILE} must name a directory inside the repository, got "${declared}"`, {
      file: ROOT_FILE,
      line: 1,
      hint: 'write a relative directory such as "home"',
    });
  }
  return declared.replace(/\/+$/, '');
}

export function loadFleet(tree: RepoTree): Fleet {
  const settings = parseSettings(text(tree, SETTINGS_FILE));
  const sourceRoot = sourceRootOf(tree);
  const paths = repoPaths(tree);
  // No source tree at all: one error, not "unknown preset" on every host.
  const prefix = sourceRoot === '' || sourceRoot === '.' ? '' : `${sourceRoot.replace(/\/+$/, '')}/`;
  const refused = notFiles(tree);
  if (prefix !== '' && ![...paths, ...refused.keys()].some((p) => p.startsWith(prefix))) {
    throw new DotfleetError('schema', `the source directory ${prefix} does not exist`, {
      file: tree.has(ROOT_FILE) ? ROOT_FILE : undefined,
      hint: tree.has(ROOT_FILE) ? `${ROOT_FILE} names ${sourceRoot}: create that directory or fix the name` : `the dotfiles live under ${prefix} (or name another directory in ${ROOT_FILE}); see docs/fleet-repo.md`,
    });
  }
  const sources = indexSources(paths, sourceRoot, refused);
  // Data: every .chezmoidata.* and .chezmoidata/ file, in the order chezmoi reads them.
  const dataFiles = sources.dataFiles;
  let data: PlainObject = {};
  let presetFile = dataFiles[0] ?? joinPath(sourceRoot, '.chezmoidata/hardware.toml');
  let presetText: string | undefined;
  for (const file of dataFiles) {
    const why = refused.get(file);
    if (why !== undefined) throw new DotfleetError('schema', `the data file ${file} is ${why}`, { file, hint: 'commit the data file itself' });
    const body = text(tree, file)!;
    const layer = parseDataFile(body, file);
    if ('hardware' in layer) {
      presetFile = file;
      presetText = body;
    }
    data = mergeData(data, layer);
  }
  const presets = parsePresets(data.hardware, presetFile, presetText);

  const inventoryText = text(tree, settings.inventory);
  if (inventoryText === undefined) {
    const why = refused.get(settings.inventory);
    throw new DotfleetError('schema', `the host inventory ${settings.inventory} ${why ? `is ${why}` : 'does not exist'}`, {
      file: settings.inventory,
      hint: `create it with a [hosts.NAME] table per host, or set "inventory:" in ${SETTINGS_FILE}`,
    });
  }
  const hostList = parseInventory(inventoryText, settings.inventory);
  const hosts = new Map(hostList.map((h) => [h.name, h]));
  const hostErrors = new Map<string, DotfleetError>();
  for (const h of hostList) {
    if (!presets.has(h.machine)) {
      // Recorded per host so the rest of the fleet still renders.
      hostErrors.set(h.name, new DotfleetError(
        'unknown-preset',
        `machine "${h.machine}" is not a hardware preset`,
        {
          file: settings.inventory,
          line: locateTomlPath(inventoryText, ['hosts', h.name, 'machine']),
          host: h.name,
          hint: presets.size
            ? `use one of: ${[...presets.keys()].sort().join(', ')}; or add [hardware.${h.machine}] to ${presetFile}`
            : `add [hardware.${h.machine}] to ${presetFile}`,
        },
      ));
    }
  }

  return { tree, settings, sourceRoot, dataFiles, data, presets, hosts, sources, presetFile, hostErrors };
}

export function getHost(fleet: Fleet, name: string): Host {
  const h = fleet.hosts.get(name);
  if (!h) {
    throw new DotfleetError('unknown-host', `no host "${name}" in ${fleet.settings.inventory}`, {
      file: fleet.settings.inventory,
      hint: `known hosts: ${[...fleet.hosts.keys()].join(', ') || '(none)'}`,
    });
  }
  return h;
}

/** The host's template context; throws the host's preset error if its machine is unknown. */
export function contextFor(fleet: Fleet, host: Host): PlainObject {
  const hostError = fleet.hostErrors.get(host.name);
  if (hostError) throw hostError;
  return hostContext(fleet.data, fleet.presets.get(host.machine)!, host);
}
