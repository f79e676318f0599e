/**
 * "No secret byte is ever printed": SOPS files broken in every way a hand edit breaks them, each
 * with a unique marker planted where the parser chokes (a plaintext value, a key, an alias, a
 * tag, a second document), in YAML, JSON, dotenv and INI, under secrets/ and inside the source
 * tree. Every output is searched for every marker: the findings, the secrets diff, the fleet
 * diff (text, markdown, JSON), the PR comment and check run, and the CLI's stdout and stderr of
 * `diff` and `secrets check`. Each fault is still reported by file and line.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseSopsFile, SopsSyntaxError } from '../../src/core/secrets/sops-file.js';
import { checkSecrets } from '../../src/core/secrets/scope.js';
import { diffSecrets } from '../../src/core/secrets/sops-diff.js';
import { loadFleet } from '../../src/core/fleet.js';
import { pullRequestReport } from '../../src/core/pull-request.js';
import { commit, exampleTree, gitRepo, PROJECT_ROOT, text } from '../helpers/fleet.js';
import { enc, sopsYaml } from '../helpers/sops.js';

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'dotfleet.mjs');
const dotfleet = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout + r.stderr };
};

let n = 0;
const marker = () => `LEAKMARK${String(++n).padStart(3, '0')}x${Math.random().toString(36).slice(2, 8)}`;

const tree0 = exampleTree();
const kestrelAge = /\[hosts\.kestrel\][\s\S]*?age_recipient = "(\w+)"/.exec(text(tree0, 'fleet/hosts.toml'))![1]!;
const meta = sopsYaml({ recipients: [kestrelAge], values: {} });

/** [name, file name, content] — every one is broken, and carries its own markers. */
function brokenFiles(): { name: string; file: string; body: string; markers: string[] }[] {
  const out: { name: string; file: string; body: string; markers: string[] }[] = [];
  const add = (name: string, file: string, make: (m: () => string) => string) => {
    const ms: string[] = [];
    const body = make(() => {
      const m = marker();
      ms.push(m);
      return m;
    });
    out.push({ name, file, body, markers: ms });
  };
  add('YAML: an unclosed flow sequence after a plain value', 'a.sops.yaml', (m) => `password: ${m()}\nlist: [${m()}, \n${meta}`);
  add('YAML: a duplicate key', 'b.sops.yaml', (m) => { const k = m(); return `${k}: ${enc(8)}\n${k}: ${m()}\n${meta}`; });
  add('YAML: an alias to an anchor that does not exist', 'c.sops.yaml', (m) => `token: *${m()}\n${meta}`);
  add('YAML: a bad indentation inside a value', 'd.sops.yaml', (m) => `db:\n  password: ${m()}\n bad: ${m()}\n${meta}`);
  add('YAML: a tab as indentation', 'e.sops.yaml', (m) => `db:\n\tpassword: ${m()}\n${meta}`);
  add('YAML: two documents', 'f.sops.yaml', (m) => `token: ${m()}\n---\nother: ${m()}\n${meta}`);
  add('YAML: flow-style sops with a syntax error', 'g.sops.yaml', (m) => `token: ${m()}\nsops: {age: [${m()}}\n`);
  add('YAML: sops key with a trailing comment, value cut short', 'h.sops.yaml', (m) => `token: "${m()}\nsops:   # metadata\n  version: 3.9.4\n`);
  add('YAML: an unknown tag on a plain value, then a syntax error', 'i.sops.yaml', (m) => `token: !${m()} ${m()}\nx: [\n${meta}`);
  add('JSON: a trailing comma after a plain value', 'a.sops.json', (m) => `{"password": "${m()}",}\n"sops": {}`);
  add('JSON: an unquoted key', 'b.sops.json', (m) => `{"sops": {"version": "3"}, ${m()}: "${m()}"}`);
  add('JSON: cut short inside a value', 'c.sops.json', (m) => `{"sops": {"mac": "x"}, "password": "${m()}`);
  add('JSON: a single-quoted string', 'd.sops.json', (m) => `{"sops": {}, "password": '${m()}'}`);
  add('dotenv: a line with no =', 'a.sops.env', (m) => `TOKEN=${enc(8)}\n${m()}\nsops_version=3.9.4\nsops_mac=${enc(8)}\n`);
  add('dotenv: a value with no key', 'b.sops.env', (m) => `=${m()}\nsops_version=3.9.4\n`);
  add('INI: a section header that does not close', 'a.sops.ini', (m) => `[${m()}\npassword = ${m()}\n[sops]\nversion = 3.9.4\n`);
  add('INI: a line with no =', 'b.sops.ini', (m) => `[db]\n${m()}\n[sops]\nversion = 3.9.4\n`);
  return out;
}

describe('no byte of a broken SOPS file is ever printed', () => {
  const files = brokenFiles();
  const all = files.flatMap((f) => f.markers);

  it('each fault is reported by file and line (when the parser knows it), with none of the file', () => {
    for (const f of files) {
      let error: unknown;
      try {
        parseSopsFile(`secrets/hosts/kestrel/${f.file}`, Buffer.from(f.body));
      } catch (e) {
        error = e;
      }
      expect([f.name, error instanceof SopsSyntaxError]).toEqual([f.name, true]);
      const e = error as SopsSyntaxError;
      expect(e.file).toBe(`secrets/hosts/kestrel/${f.file}`);
      const said = JSON.stringify({ message: e.message, hint: e.hint, stack: e.stack });
      for (const m of f.markers) expect([f.name, said.includes(m)]).toEqual([f.name, false]);
    }
  });

  it('no parser writes to stderr or raises a process warning', () => {
    const writes: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    const emit = process.emitWarning;
    process.stderr.write = ((chunk: string) => (writes.push(String(chunk)), true)) as typeof process.stderr.write;
    process.emitWarning = ((w: string | Error) => void writes.push(String(w))) as typeof process.emitWarning;
    try {
      for (const f of files) {
        try {
          parseSopsFile(f.file, Buffer.from(f.body));
        } catch {
          /* reported above */
        }
      }
      // A tag alone is only a warning for the parser: the file reads, and says nothing on stderr.
      const tagged = parseSopsFile('t.sops.yaml', Buffer.from(`token: !custom ${enc(8)}\n${meta}`));
      expect(tagged?.values.get('token')?.encrypted).toBe(true);
    } finally {
      process.stderr.write = write;
      process.emitWarning = emit;
    }
    expect(writes).toEqual([]);
  });

  it('the findings, the secrets diff and the fleet diff hold none of it, in every format; the CLI neither', () => {
    const tree = exampleTree();
    const repo = gitRepo(tree);
    const base = commit(repo, { 'README.md': 'base\n' }, 'base');
    const changes: Record<string, string> = {};
    for (const f of files) {
      changes[`secrets/hosts/kestrel/${f.file}`] = f.body;
      // The same broken file inside the source tree, rendered as a dotfile of every host.
      changes[`home/dot_broken_${f.file}`] = f.body;
    }
    const head = commit(repo, changes, 'broken secrets');
    const fleet = loadFleet(new Map([...tree, ...Object.entries(changes).map(([k, v]) => [k, Buffer.from(v)] as const)]));
    const outputs: [string, string][] = [
      ['findings', JSON.stringify(checkSecrets(fleet, new Map()).findings)],
      ['secrets diff', JSON.stringify(diffSecrets(tree, fleet.tree))],
    ];
    const pr = pullRequestReport({ base: tree, head: fleet.tree, trust: tree, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40), repoHint: 'dotfleet diff --base a --head b' });
    outputs.push(['PR comment and check run', JSON.stringify(pr)]);
    for (const format of ['text', 'markdown', 'json']) outputs.push([`diff --format ${format}`, dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--format', format).out]);
    outputs.push(['diff --host kestrel', dotfleet('diff', '--repo', repo, '--base', base, '--head', head, '--host', 'kestrel').out]);
    outputs.push(['secrets check', dotfleet('secrets', 'check', '--repo', repo).out]);
    outputs.push(['render', dotfleet('render', '--repo', repo, '--host', 'kestrel').out]);
    for (const [name, out] of outputs) {
      const leaked = all.filter((m) => out.includes(m));
      expect([name, leaked]).toEqual([name, []]);
    }
    // And the faults are named, with their lines.
    const check = outputs.find(([name]) => name === 'secrets check')![1];
    expect(check).toMatch(/kestrel\/a\.sops\.yaml: error: cannot read this SOPS file at line 3, column 1: a YAML error \(BAD_INDENT\)/);
    expect(check).toMatch(/kestrel\/b\.sops\.yaml: error: .*line 2, column 1: a YAML error \(DUPLICATE_KEY\)/);
    expect(check).toMatch(/f\.sops\.yaml.*2 YAML documents/);
    expect(check).toMatch(/a\.sops\.env.*line 2.*not a KEY=VALUE line/);
  });
});
