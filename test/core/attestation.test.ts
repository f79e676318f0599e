import { ATTESTATION_NAMESPACE, parseStatement, PayloadError, serialise, statement, StatementSchema, wellFormed, type Predicate } from '../../src/core/attestation/format.js';
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

describe('the fast schema check is the schema', () => {
  it('gives the same answer as StatementSchema on every mutation of every field', () => {
    const base = JSON.parse(serialise(statement('git+https://github.com/robin/fleet', predicate({ tests: [{ name: 'T1', status: 'fail', durationMs: 0, output: 'x' }], drift: [{ path: '.zshrc', type: 'modified' }], tools: [{ name: 'nix', version: null, requirement: null, ok: false }] }))).toString());
    const odd: unknown[] = [null, undefined, '', 'x', 'SUCCESS', 'pass', 'modified', 'a'.repeat(40), 'A'.repeat(40), 'sha256:' + 'b'.repeat(64), 'sha256:' + 'B'.repeat(64), '2026-11-22T10:00:00Z', '2026-02-30T10:00:00Z', 0, -0, 1, -1, 1.5, 2 ** 53, NaN, true, false, [], [{}], {}, { a: 1 }, ' ', '\u0000', '2026-11-22T10:00:00.123Z', 'sha256:' + 'b'.repeat(63), 'g'.repeat(40), 'FAILED', 'skip', 'unmanaged'];
    const variants: unknown[] = [base];
    const walk = (v: any, path: (string | number)[]) => {
      if (v === null || typeof v !== 'object') return;
      for (const k of Object.keys(v)) {
        for (const o of odd) {
          const copy = structuredClone(base);
          let t: any = copy;
          for (const p of path) t = t[p];
          if (o === undefined) delete t[k];
          else t[k] = structuredClone(o);
          variants.push(copy);
        }
        walk(v[k], [...path, Array.isArray(v) ? Number(k) : k]);
      }
      // An extra key on every object.
      if (!Array.isArray(v)) {
        const copy = structuredClone(base);
        let t: any = copy;
        for (const p of path) t = t[p];
        t.extra = 1;
        variants.push(copy);
      }
    };
    walk(base, []);
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
