import { readFileSync } from 'node:fs';
import { DotfleetError } from '../../src/core/errors.js';
import { parseDirName, parseFileName } from '../../src/core/source-names.js';

/**
 * Source names mean what they mean to chezmoi. chezmoi's own attribute tests (copied into
 * test/fixtures/chezmoi/attr-cases.json, with .hbs for .tmpl) generate every combination of
 * attributes and target names and write each as chezmoi's SourceName() writes it; dotfleet must
 * read back chezmoi's target name, mode, template and empty flags, or refuse by name the types it
 * does not support (create_, modify_, remove_, run_, encrypted_; exact_, external_, remove_ dirs).
 */
const T = JSON.parse(readFileSync(new URL('../fixtures/chezmoi/attr-cases.json', import.meta.url), 'utf8'));

type Flags = Record<string, any>;
/** combinator.Generate: the cartesian product of the flags (booleans unless listed). */
function combinations(flags: string[], values: Record<string, unknown[]> = {}): Flags[] {
  let out: Flags[] = [{}];
  for (const f of flags) out = out.flatMap((o) => (values[f] ?? [false, true]).map((v) => ({ ...o, [f]: v })));
  return out;
}

const DIR_PREFIX = /^(dot|exact|literal|readonly|private)_/;
const FILE_PREFIX = /^(after|before|create|dot|empty|encrypted|executable|literal|modify|once|private|readonly|remove|run|symlink)_/;
const FILE_SUFFIX = /\.(literal|hbs)$/;

function namePart(target: string, prefixRx: RegExp): string {
  if (target.startsWith('.')) return 'dot_' + target.slice(1);
  return prefixRx.test(target) ? 'literal_' + target : target;
}

/** chezmoi's DirAttr.SourceName(). */
function dirSourceName(a: Flags): string {
  return (a.remove ? 'remove_' : '') + (a.external ? 'external_' : '') + (a.exact ? 'exact_' : '') + (a.private ? 'private_' : '') + (a.readOnly ? 'readonly_' : '') + namePart(a.targetName, DIR_PREFIX);
}

/** chezmoi's FileAttr.SourceName(""). */
function fileSourceName(a: Flags): string {
  const attrs = (keys: string[]) => keys.map((k) => (a[k] ? { encrypted: 'encrypted_', private: 'private_', readOnly: 'readonly_', empty: 'empty_', executable: 'executable_' }[k] : '')).join('');
  let s = '';
  switch (a.type) {
    case 'create': s = 'create_' + attrs(['encrypted', 'private', 'readOnly', 'empty', 'executable']); break;
    case 'file': s = attrs(['encrypted', 'private', 'readOnly', 'empty', 'executable']); break;
    case 'modify': s = 'modify_' + attrs(['encrypted', 'private', 'readOnly', 'executable']); break;
    case 'remove': s = 'remove_'; break;
    case 'script': s = 'run_' + ({ always: '', once: 'once_', onchange: 'onchange_' } as Record<string, string>)[a.condition] + ({ before: 'before_', during: '', after: 'after_' } as Record<string, string>)[a.order]; break;
    case 'symlink': s = 'symlink_'; break;
  }
  s += namePart(a.targetName, FILE_PREFIX);
  if (FILE_SUFFIX.test(a.targetName)) s += '.literal';
  if (a.template) s += '.hbs';
  return s;
}

/** chezmoi's perm() with the usual umask 022. */
function perm(a: Flags): number {
  let p = 0o666;
  if (a.executable) p |= 0o111;
  if (a.private) p &= ~0o077;
  if (a.readOnly) p &= ~0o222;
  return p & ~0o022;
}

type Outcome = { refused: true } | { name: string; kind: string; mode: number; template: boolean; empty: boolean };
function attempt(fn: () => { name: string; kind: string; mode: number; template: boolean; empty: boolean }): Outcome {
  try {
    const p = fn();
    return { name: p.name, kind: p.kind, mode: p.mode, template: p.template, empty: p.empty };
  } catch (e) {
    if (e instanceof DotfleetError && (e.code === 'bad-source-name' || e.code === 'path-escape')) return { refused: true };
    throw e;
  }
}

interface Case {
  sourceName: string;
  kind: 'dir' | 'file';
  expected: Outcome;
}

function dirExpected(a: Flags): Outcome {
  if (a.exact || a.external || a.remove) return { refused: true };
  let mode = 0o777;
  if (a.private) mode &= ~0o077;
  if (a.readOnly) mode &= ~0o222;
  return { name: a.targetName, kind: 'dir', mode: mode & ~0o022, template: false, empty: false };
}

function fileExpected(a: Flags): Outcome {
  if (a.type === 'symlink') return { name: a.targetName, kind: 'symlink', mode: 0, template: !!a.template, empty: false };
  if (a.type !== 'file' || a.encrypted) return { refused: true };
  return { name: a.targetName, kind: 'file', mode: perm(a), template: !!a.template, empty: !!a.empty };
}

const cases: Case[] = [];
for (const a of combinations(['targetName', ...T.dirFlags], { targetName: T.dirTargetNames })) cases.push({ sourceName: dirSourceName(a), kind: 'dir', expected: dirExpected(a) });
for (const l of T.dirLiteral) cases.push({ sourceName: l.sourceName, kind: 'dir', expected: dirExpected(l) });
for (const [type, flags] of Object.entries(T.fileTypes as Record<string, string[]>)) {
  const values = { targetName: T.fileTargetNames, type: [type], condition: ['always', 'once', 'onchange'], order: ['before', 'during', 'after'] };
  for (const a of combinations(['type', 'targetName', ...flags], values)) cases.push({ sourceName: fileSourceName(a), kind: 'file', expected: fileExpected(a) });
}
for (const l of [...T.fileLiteral, ...T.issue10]) cases.push({ sourceName: l.sourceName, kind: 'file', expected: fileExpected(l) });
for (const p of T.filePerm) {
  const a = { type: 'file', targetName: 'name', ...Object.fromEntries(p.flags.map((f: string) => [f, true])) };
  expect(perm(a)).toBe(parseInt(p.perm, 8) & ~0o022);
  cases.push({ sourceName: fileSourceName(a), kind: 'file', expected: fileExpected(a) });
}
for (const n of T.invalidDir) cases.push({ sourceName: n, kind: 'dir', expected: { refused: true } });
for (const n of T.invalidFile) cases.push({ sourceName: n, kind: 'file', expected: { refused: true } });

describe("source names: chezmoi's attribute tests", () => {
  it('reads every case as chezmoi does, or refuses what dotfleet does not support', () => {
    const differ: string[] = [];
    for (const c of cases) {
      const got = attempt(() => (c.kind === 'dir' ? parseDirName : parseFileName)(c.sourceName, `home/${c.sourceName}`));
      if (JSON.stringify(got) !== JSON.stringify(c.expected)) differ.push(`${c.kind} ${c.sourceName}: chezmoi ${JSON.stringify(c.expected)}, dotfleet ${JSON.stringify(got)}`);
    }
    const refused = cases.filter((c) => 'refused' in c.expected).length;
    process.stdout.write(`chezmoi parity: ${cases.length - differ.length}/${cases.length} source names agree (${cases.length - refused} read as chezmoi reads them, ${refused} refused by name)\n`);
    expect(cases.length).toBeGreaterThan(2500);
    expect(differ).toEqual([]);
  });

  it('names the attribute it refuses and how to keep it in the name', () => {
    expect(() => parseFileName('run_once_x.sh', 'home/run_once_x.sh')).toThrow(/run_ attribute is not supported by dotfleet: on a file it runs the file as a script/);
    expect(() => parseDirName('exact_dir', 'home/exact_dir')).toThrow(/exact_ attribute is not supported by dotfleet: on a directory it deletes everything/);
    expect(parseDirName('run_dir', 'home/run_dir').name).toBe('run_dir');
    expect(parseDirName('literal_exact_dir', 'home/literal_exact_dir').name).toBe('exact_dir');
  });
});
