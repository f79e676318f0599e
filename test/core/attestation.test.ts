import { ATTESTATION_NAMESPACE, parseStatement, PayloadError, readExactForm, serialise, statement, StatementSchema, wellFormed, type Predicate } from '../../src/core/attestation/format.js';
import { verifyAttestation } from '../../src/core/attestation/verify.js';
import { meets, policyHash, toolRequirements } from '../../src/core/attestation/policy.js';
import { parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';
import { signMessage } from '../../src/core/ssh/sshsig.js';
import { newKey, scratchDir } from '../helpers/ssh.js';
import { treeOf } from '../helpers/fleet.js';

const dir = scratchDir();
const kestrel = newKey(dir, 'kestrel');
const tern = newKey(dir, 'tern');
const intruder = newKey(dir, 'intruder');
const signers = parseAllowedSigners(
  [
    `kestrel namespaces="${ATTESTATION_NAMESPACE}" ${kestrel.publicKey}`,
    `tern namespaces="${ATTESTATION_NAMESPACE}",valid-before="20261101Z" ${tern.publicKey}`,
  ].join('\n') + '\n',
);

const predicate = (over: Partial<Predicate> = {}): Predicate => ({
  host: 'kestrel',
  appliedCommit: 'a'.repeat(40),
  rolloutTarget: null,
  renderHash: 'sha256:' + 'b'.repeat(64),
  policyHash: 'sha256:' + 'c'.repeat(64),
  tools: [{ name: 'git', version: '2.39.5', requirement: '>=2.30', ok: true }],
  drift: [],
  tests: [{ name: 'T10-git.sh', status: 'pass', durationMs: 12 }],
  status: 'SUCCESS',
  agentVersion: 'dotfleet/0.1.0',
  sequence: 7,
  issuedAt: '2026-11-22T10:00:00Z',
  ...over,
});

const payloadOf = (p: Partial<Predicate> = {}) => serialise(statement('git+https://github.com/robin/fleet', predicate(p)));
const sign = (payload: Buffer, key = kestrel) => signMessage(payload, key.parsed!, ATTESTATION_NAMESPACE);
const verdict = (payload: Buffer, sig: string, opts = {}) => verifyAttestation(payload, sig, { signers, ...opts });

describe('attestation format', () => {
  it('is an in-toto Statement v1 about the applied commit, serialised as pretty JSON plus newline', () => {
    const bytes = payloadOf();
    const text = bytes.toString('utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n  "_type": "https://in-toto.io/Statement/v1",\n');
    const st = parseStatement(bytes);
    expect(st.subject).toEqual([{ name: 'git+https://github.com/robin/fleet', digest: { gitCommit: 'a'.repeat(40) } }]);
    expect(Object.keys(st.predicate)).toEqual(['host', 'appliedCommit', 'rolloutTarget', 'renderHash', 'policyHash', 'tools', 'drift', 'tests', 'status', 'agentVersion', 'sequence', 'issuedAt']);
  });

  const code = (bytes: Buffer) => {
    try {
      parseStatement(bytes);
      return 'ok';
    } catch (e) {
      return (e as PayloadError).code;
    }
  };

  it.each([
    ['a BOM', (t: string) => '\ufeff' + t, 'payload-bom'],
    ['CRLF line endings', (t: string) => t.replace(/\n/g, '\r\n'), 'payload-crlf'],
    ['a duplicate key', (t: string) => t.replace('  "predicateType"', '  "predicateType": "x",\n  "predicateType"'), 'payload-form'],
    ['compact JSON', (t: string) => JSON.stringify(JSON.parse(t)), 'payload-form'],
    ['no final newline', (t: string) => t.slice(0, -1), 'payload-form'],
    ['reordered keys', (t: string) => { const v = JSON.parse(t); return JSON.stringify({ predicateType: v.predicateType, ...v }, null, 2) + '\n'; }, 'payload-form'],
    ['not JSON', () => 'hello\n', 'payload-json'],
    ['an unknown field', (t: string) => t.replace('"status": "SUCCESS"', '"status": "SUCCESS",\n    "extra": 1'), 'payload-schema'],
    ['a lowercase status', (t: string) => t.replace('"SUCCESS"', '"success"'), 'payload-schema'],
    ['a time without Z', (t: string) => t.replace('10:00:00Z', '10:00:00+01:00'), 'payload-schema'],
    ['a subject at another commit than the applied one', (t: string) => t.replace('"gitCommit": "' + 'a'.repeat(40), '"gitCommit": "' + 'b'.repeat(40)), 'payload-schema'],
  ])('refuses %s', (_n, mutate, expected) => {
    expect(code(Buffer.from(mutate(payloadOf().toString('utf8')), 'utf8'))).toBe(expected);
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(code(Buffer.concat([payloadOf(), Buffer.from([0xff])]))).toBe('payload-encoding');
  });
});

describe('attestation verification', () => {
  const good = payloadOf();

  it('verifies a good attestation and says who signed it, with which allowed_signers line', () => {
    const v = verdict(good, sign(good));
    expect(v).toMatchObject({ ok: true, code: 'verified', host: 'kestrel', sequence: 7, line: 1 });
    expect(v.key).toMatch(/^SHA256:/);
  });

  it.each([
    ['signed by a key not in allowed_signers', () => [good, sign(good, intruder)], {}, 'unknown-key'],
    ["signed by another host's key", () => [good, sign(good, tern)], {}, 'principal'],
    ['for a host whose key expired before issued-at', () => { const p = payloadOf({ host: 'tern' }); return [p, sign(p, tern)]; }, {}, 'expired'],
    ['in the wrong namespace', () => [good, signMessage(good, kestrel.parsed!, 'git')], {}, 'namespace'],
    ['altered after signing', () => [Buffer.from(good.toString().replace('"sequence": 7', '"sequence": 8')), sign(good)], {}, 'signature'],
    ['signed in CRLF form', () => { const p = Buffer.from(good.toString().replace(/\n/g, '\r\n')); return [p, sign(p)]; }, {}, 'payload-crlf'],
    ['submitted under another host', () => [good, sign(good)], { expectHost: 'tern' }, 'host-mismatch'],
    ['too old', () => [good, sign(good)], { now: new Date('2026-11-22T12:00:00Z') }, 'stale'],
    ['from the future', () => [good, sign(good)], { now: new Date('2026-11-22T09:00:00Z') }, 'future'],
    ['a replayed sequence', () => [good, sign(good)], { lastSequence: 7 }, 'sequence'],
  ])('rejects an attestation %s', (_n, make, opts, expected) => {
    const [p, s] = (make as () => [Buffer, string])();
    const v = verdict(p, s, opts);
    expect(v.ok).toBe(false);
    expect(v.code).toBe(expected);
    expect(v.message.length).toBeGreaterThan(10);
  });

  it('accepts a fresh attestation with the next sequence', () => {
    expect(verdict(good, sign(good), { now: new Date('2026-11-22T10:20:00Z'), lastSequence: 6, expectHost: 'kestrel' }).ok).toBe(true);
  });

  it("checks the key's validity at issued-at, or at --at", () => {
    const p = payloadOf({ host: 'tern', issuedAt: '2026-10-01T00:00:00Z' });
    expect(verdict(p, sign(p, tern)).ok).toBe(true);
    expect(verdict(p, sign(p, tern), { at: new Date('2026-11-22T00:00:00Z') }).code).toBe('expired');
  });
});

describe('policy', () => {
  it("hashes the host's tests and the tool requirements, sha256sum-style", () => {
    const tree = treeOf({ 'hosts/kestrel/tests/T10.sh': 'true\n', 'hosts/tern/tests/T10.sh': 'false\n', 'fleet/policy.toml': '[tools]\ngit = ">=2.30"\n' });
    const a = policyHash(tree, 'kestrel');
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(policyHash(tree, 'tern')).not.toBe(a);
    tree.set('hosts/tern/tests/T20.sh', Buffer.from('x'));
    expect(policyHash(tree, 'kestrel')).toBe(a);
    expect(toolRequirements(tree)).toEqual({ git: '>=2.30' });
  });

  it('compares versions numerically', () => {
    expect(meets('2.39.5', '>=2.30')).toBe(true);
    expect(meets('2.9', '>=2.30')).toBe(false);
    expect(meets('9.2p1', '>=9.2')).toBe(true);
  });

  it('refuses a requirement it cannot check', () => {
    expect(() => toolRequirements(treeOf({ 'fleet/policy.toml': '[tools]\ngit = "latest"\n' }))).toThrow(/tools.git: a requirement is ">=VERSION"/);
  });
});

/** `base` with each field, at every depth, replaced by each of `odd` (undefined: removed), and an extra key on every object. */
function mutations(base: unknown, odd: unknown[]): unknown[] {
  const out: unknown[] = [];
  const at = (path: (string | number)[]) => {
    const copy = structuredClone(base);
    let t: any = copy;
    for (const p of path) t = t[p];
    return { copy, t };
  };
  const walk = (v: any, path: (string | number)[]) => {
    if (v === null || typeof v !== 'object') return;
    for (const k of Object.keys(v)) {
      for (const o of odd) {
        const { copy, t } = at(path);
        if (o === undefined) delete t[k];
        else t[k] = structuredClone(o);
        out.push(copy);
      }
      walk(v[k], [...path, Array.isArray(v) ? Number(k) : k]);
    }
    if (!Array.isArray(v)) {
      const { copy, t } = at(path);
      t.extra = 1;
      out.push(copy);
    }
  };
  walk(base, []);
  return out;
}

describe('the fast schema check is the schema', () => {
  it('gives the same answer as StatementSchema on every mutation of every field', () => {
    const base = JSON.parse(serialise(statement('git+https://github.com/robin/fleet', predicate({ tests: [{ name: 'T1', status: 'fail', durationMs: 0, output: 'x' }], drift: [{ path: '.zshrc', type: 'modified' }], tools: [{ name: 'nix', version: null, requirement: null, ok: false }] }))).toString());
    const odd: unknown[] = [null, undefined, '', 'x', 'SUCCESS', 'pass', 'modified', 'a'.repeat(40), 'A'.repeat(40), 'sha256:' + 'b'.repeat(64), 'sha256:' + 'B'.repeat(64), '2026-11-22T10:00:00Z', '2026-02-30T10:00:00Z', 0, -0, 1, -1, 1.5, 2 ** 53, NaN, true, false, [], [{}], {}, { a: 1 }, ' ', '\u0000', '2026-11-22T10:00:00.123Z', 'sha256:' + 'b'.repeat(63), 'g'.repeat(40), 'FAILED', 'skip', 'unmanaged'];
    const variants: unknown[] = [base, ...mutations(base, odd)];
    let accepted = 0;
    for (const v of variants) {
      const fast = wellFormed(v);
      const schema = StatementSchema.safeParse(v).success;
      expect([JSON.stringify(v), fast]).toEqual([JSON.stringify(v), schema]);
      if (schema) accepted++;
    }
    expect(variants.length).toBeGreaterThan(1000);
    expect(accepted).toBeGreaterThan(20);
  });
});

describe('the exact-form reader (the verifier\'s hot path) is the general path', () => {
  /** The general path's answer, written out: JSON, the schema, then re-serialising gives back the same text. */
  const general = (text: string): unknown => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return 'refused';
    }
    const r = StatementSchema.safeParse(v);
    if (!r.success) return 'refused';
    return serialise(statement(r.data.subject[0]!.name, r.data.predicate)).toString('utf8') === text ? r.data : 'refused';
  };
  /** The reader either leaves a text to the general path or gives exactly its answer, keys in the same order. */
  const agree = (text: string) => {
    const exact = readExactForm(text);
    if (exact === undefined) return general(text) === 'refused' ? 'both refuse' : 'left to the general path';
    expect([text, JSON.stringify(exact)]).toEqual([text, JSON.stringify(general(text))]);
    return 'read';
  };
  const statements = [
    payloadOf(),
    payloadOf({ rolloutTarget: 'f'.repeat(40), tools: [], tests: [], drift: [{ path: '.zshrc', type: 'modified' }, { path: '.config/niri/config.kdl', type: 'unmanaged' }], status: 'PARTIAL', sequence: 123456789012345 }),
    payloadOf({ tools: [{ name: 'nix', version: null, requirement: '>=2.18', ok: false }, { name: 'git', version: '', requirement: null, ok: true }], tests: [{ name: 'T1', status: 'fail', durationMs: 0, output: 'boom' }, { name: 'T2 ünïcødé 🙂', status: 'skip', durationMs: 10 }], status: 'FAILED' }),
  ].map((b) => b.toString('utf8'));

  it('reads every signed statement without an escape itself, and leaves escapes to the general path', () => {
    for (const t of statements) expect(agree(t)).toBe('read');
    const escaped = payloadOf({ tests: [{ name: 'T1', status: 'fail', durationMs: 3, output: 'line 1\nsaid "no"\\' }] }).toString('utf8');
    expect(escaped).toContain('\\n');
    expect(agree(escaped)).toBe('left to the general path');
    expect(parseStatement(Buffer.from(escaped)).predicate.tests[0]!.output).toBe('line 1\nsaid "no"\\');
  });

  it('agrees on every one-character change, deletion and duplication of signed statements', () => {
    const swaps = ['"', '\\', ' ', '\n', '\t', '0', '9', 'a', 'f', 'g', 'A', '{', '}', '[', ']', ',', ':', '-', 'Z', 'é', '\u0000', '\u001f'];
    const tally: Record<string, number> = {};
    for (const t of statements) {
      for (let i = 0; i < t.length; i++) {
        const variants = [t.slice(0, i) + t.slice(i + 1), t.slice(0, i + 1) + t.slice(i)];
        for (const c of swaps) if (c !== t[i]) variants.push(t.slice(0, i) + c + t.slice(i + 1));
        for (const v of variants) {
          // Text decoded from bytes holds no lone surrogate (cutting the emoji in half makes one).
          if (Buffer.from(v, 'utf8').toString('utf8') !== v) continue;
          const r = agree(v);
          tally[r] = (tally[r] ?? 0) + 1;
        }
      }
    }
    // Some changes keep a valid statement (a digit of a hash, a letter of a name): the reader reads those.
    expect(tally.read).toBeGreaterThan(500);
    expect(tally['both refuse']).toBeGreaterThan(50_000);
  });

  it('agrees on every mutation of every field, written in the signed layout', () => {
    const base = JSON.parse(statements[2]!);
    const odd: unknown[] = [null, '', 'x', 'SUCCESS', 'pass', 'modified', 'a'.repeat(40), 'A'.repeat(40), 'sha256:' + 'b'.repeat(64), '2026-02-29T10:00:00Z', '2028-02-29T10:00:00Z', '2026-11-22T24:00:00Z', '1969-12-31T23:59:59Z', 0, -1, 1.5, 1e21, 2 ** 53, 9007199254740991, 123456789012345, '0123', true, [], [{}], {}, 'a"b', 'a\\b', '\n'];
    let read = 0;
    for (const v of mutations(base, odd)) if (agree(JSON.stringify(v, null, 2) + '\n') === 'read') read++;
    expect(read).toBeGreaterThan(20);
  });
});
