import { readFileSync } from 'node:fs';
import { OtherKeyTypeError, parseOpenSshPrivateKey } from '../../src/core/ssh/keys.js';
import { armour, dearmour, parseArmouredSignature, signMessage, SignatureError, verifyBlob, verifyMessage } from '../../src/core/ssh/sshsig.js';
import { knownSigner, lookupSigner, parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';
import { parseSshTime } from '../../src/core/ssh/time.js';
import { keygenSign, keygenVerify, newKey, scratchDir } from '../helpers/ssh.js';
import { wireString, wireUint32 } from '../../src/core/ssh/wire.js';

const NS = 'dotfleet-attestation';
const dir = scratchDir();
const alice = newKey(dir, 'alice');
const bob = newKey(dir, 'bob');
const message = Buffer.from('{\n  "hello": "fleet"\n}\n');

function fault(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SignatureError) return e.code;
    throw e;
  }
  return 'none';
}

describe('SSHSIG against the real ssh-keygen', () => {
  it.each(['sha512', 'sha256'] as const)('our %s signature verifies with ssh-keygen -Y verify', (hash) => {
    const sig = signMessage(message, alice.parsed!, NS, hash);
    expect(keygenVerify(dir, `alice ${alice.publicKey}\n`, 'alice', NS, message, sig)).toBe(true);
    expect(keygenVerify(dir, `alice ${alice.publicKey}\n`, 'alice', NS, Buffer.concat([message, Buffer.from('x')]), sig)).toBe(false);
  });

  it.each(['sha512', 'sha256'])("ssh-keygen's %s signature verifies with ours", (hash) => {
    const sig = keygenSign(dir, alice, message, NS, hash);
    const parsed = verifyMessage(message, sig, NS);
    expect(parsed.hashAlgorithm).toBe(hash);
    expect(parsed.publicKey.blob.equals(alice.parsed!.public.blob)).toBe(true);
  });

  it.each(['sha512', 'sha256'] as const)('our armoured %s output is byte-identical to ssh-keygen -Y sign', (hash) => {
    for (const msg of [message, Buffer.alloc(0), Buffer.alloc(100_000, 7)]) {
      expect(signMessage(msg, alice.parsed!, NS, hash)).toBe(keygenSign(dir, alice, msg, NS, hash));
    }
  });

  it('wraps the armour at 70 columns and ends with a newline', () => {
    const sig = signMessage(message, alice.parsed!, NS);
    const lines = sig.split('\n');
    expect(lines[0]).toBe('-----BEGIN SSH SIGNATURE-----');
    expect(lines.slice(1, -3).every((l) => l.length === 70)).toBe(true);
    expect(sig.endsWith('-----END SSH SIGNATURE-----\n')).toBe(true);
  });

  it('reads keys written by ssh-keygen, and sends encrypted keys and other key types to ssh-keygen', () => {
    expect(alice.parsed!.comment).toBe('alice');
    const locked = newKey(dir, 'locked', 'ed25519', 'correct horse');
    expect(() => parseOpenSshPrivateKey(readFileSync(locked.path, 'utf8'), locked.path)).toThrow(/encrypted/);
    // Other key types sign through ssh-keygen: the parser says so by its error's class.
    const rsa = newKey(dir, 'rsa', 'rsa');
    expect(() => parseOpenSshPrivateKey(readFileSync(rsa.path, 'utf8'), rsa.path)).toThrow(OtherKeyTypeError);
  });
});

describe("the ed25519 fast path gives the general reading's verdict", () => {
  // verifyMessage reads the usual signature (ed25519, SHA-512, a key we hold) by its fixed layout;
  // verifyBlob reads every field. Same answer on every one-byte change, length change and namespace.
  const key = alice.parsed!.public;
  const known = (blob: Buffer) => (blob.equals(key.blob) ? key : undefined);
  const outcome = (fn: () => ReturnType<typeof verifyBlob>) => {
    try {
      const p = fn();
      return { key: p.publicKey.identity, namespace: p.namespace, hash: p.hashAlgorithm, signature: p.signature.toString('hex'), blob: p.blob.toString('hex'), sk: p.sk };
    } catch (e) {
      if (e instanceof SignatureError) return { code: e.code, message: e.message };
      throw e;
    }
  };
  const same = (msg: Buffer, blob: Buffer, ns: string, lookup = known) =>
    expect(outcome(() => verifyMessage(msg, armour(blob), ns, lookup))).toEqual(outcome(() => verifyBlob(msg, Buffer.from(blob), ns, lookup)));

  it('on the signature itself, another message, another namespace, an unknown key', () => {
    const blob = dearmour(signMessage(message, alice.parsed!, NS));
    expect(outcome(() => verifyMessage(message, armour(blob), NS, known))).toMatchObject({ namespace: NS, hash: 'sha512' });
    same(message, blob, NS);
    same(Buffer.from('other'), blob, NS);
    same(message, blob, 'git');
    same(message, Buffer.concat([blob.subarray(0, 65), wireString('dotfleet-\ud800'), blob.subarray(65 + 4 + NS.length)]), 'dotfleet-\ud800');
    same(message, blob, NS, () => undefined);
    same(message, blob, NS, (b) => (b.equals(key.blob) ? bob.parsed!.public : undefined));
    same(message, dearmour(signMessage(message, alice.parsed!, NS, 'sha256')), NS);
  });

  it('on every one-byte change and every truncation of the blob', () => {
    const blob = dearmour(signMessage(message, alice.parsed!, NS));
    let checked = 0;
    for (let i = 0; i < blob.length; i++) {
      for (const x of [0x01, 0x20, 0x80, 0xff]) {
        const b = Buffer.from(blob);
        b[i]! ^= x;
        same(message, b, NS);
        checked++;
      }
      same(message, blob.subarray(0, i), NS);
    }
    same(message, Buffer.concat([blob, Buffer.from([0])]), NS);
    expect(checked).toBe(blob.length * 4);
  });
});

describe('negative corpus: every bad signature has its own reason', () => {
  const good = signMessage(message, alice.parsed!, NS);
  const blob = dearmour(good);
  const rsa = newKey(dir, 'rsa2', 'rsa');
  const ecdsa = newKey(dir, 'ecdsa', 'ecdsa');

  /** Rebuild a signature blob with one field replaced. */
  function reblob(fields: { magic?: Buffer; version?: number; key?: Buffer; namespace?: string; hash?: string; sig?: Buffer; trailing?: Buffer }): string {
    const p = parseArmouredSignature(good);
    const sigField = fields.sig ?? Buffer.concat([wireString('ssh-ed25519'), wireString(p.signature)]);
    return armour(
      Buffer.concat([
        fields.magic ?? Buffer.from('SSHSIG'),
        wireUint32(fields.version ?? 1),
        wireString(fields.key ?? p.publicKey.blob),
        wireString(fields.namespace ?? NS),
        wireString(''),
        wireString(fields.hash ?? 'sha512'),
        wireString(sigField),
        fields.trailing ?? Buffer.alloc(0),
      ]),
    );
  }

  it.each([
    ['tampered payload', () => verifyMessage(Buffer.from(message.toString().replace('fleet', 'fleat')), good, NS), 'signature'],
    ['tampered signature byte', () => { const b = Buffer.from(blob); b.writeUInt8(b.readUInt8(b.length - 5) ^ 1, b.length - 5); return verifyMessage(message, armour(b), NS); }, 'signature'],
    ['wrong namespace', () => verifyMessage(message, good, 'git'), 'namespace'],
    ['empty namespace', () => verifyMessage(message, reblob({ namespace: '' }), ''), 'namespace'],
    ['RSA key, signature tampered', () => verifyMessage(Buffer.from('other'), keygenSign(dir, rsa, message, NS), NS), 'signature'],
    ['ECDSA key, signature tampered', () => verifyMessage(Buffer.from('other'), keygenSign(dir, ecdsa, message, NS), NS), 'signature'],
    ['RSA with SHA-1 (ssh-rsa), refused as ssh-keygen refuses it', () => verifyMessage(message, keygenSign(dir, rsa, message, NS).replace(/[\s\S]*/, (t) => { const p = parseArmouredSignature(t); const inner = p.signature.subarray(4 + 12); return armour(Buffer.concat([Buffer.from('SSHSIG'), wireUint32(1), wireString(p.publicKey.blob), wireString(NS), wireString(''), wireString('sha512'), wireString(Buffer.concat([wireString('ssh-rsa'), inner]))])); }), NS), 'key-type'],
    ['truncated armour', () => verifyMessage(message, good.split('\n').slice(0, 3).join('\n') + '\n-----END SSH SIGNATURE-----\n', NS), 'truncated'],
    ['truncated base64', () => verifyMessage(message, good.split('\n').slice(0, 3).join('\n').slice(0, -1) + '\n-----END SSH SIGNATURE-----\n', NS), 'armour'],
    ['missing END line', () => verifyMessage(message, good.replace('-----END SSH SIGNATURE-----\n', ''), NS), 'armour'],
    ['not base64', () => verifyMessage(message, good.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!'), NS), 'armour'],
    ['trailing bytes', () => verifyMessage(message, reblob({ trailing: Buffer.from([0, 0, 0, 0]) }), NS), 'trailing-bytes'],
    ['version 2 blob', () => verifyMessage(message, reblob({ version: 2 }), NS), 'version'],
    ['bad magic', () => verifyMessage(message, reblob({ magic: Buffer.from('SSHSIH') }), NS), 'malformed'],
    ['unknown hash', () => verifyMessage(message, reblob({ hash: 'md5' }), NS), 'hash-algorithm'],
    ['short signature', () => verifyMessage(message, reblob({ sig: Buffer.concat([wireString('ssh-ed25519'), wireString(Buffer.alloc(63))]) }), NS), 'signature'],
    ['signature type mismatch', () => verifyMessage(message, reblob({ sig: Buffer.concat([wireString('ssh-rsa'), wireString(Buffer.alloc(64))]) }), NS), 'key-type'],
    ['signature made by another key', () => verifyMessage(message, reblob({ key: bob.parsed!.public.blob }), NS), 'signature'],
  ])('%s', (_name, run, code) => {
    expect(fault(run as () => unknown)).toBe(code);
  });

  it('and ssh-keygen rejects the same tampered inputs', () => {
    const allowed = `alice ${alice.publicKey}\n`;
    const tampered = Buffer.from(blob);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 5) ^ 1, tampered.length - 5);
    expect(keygenVerify(dir, allowed, 'alice', NS, message, armour(tampered))).toBe(false);
    expect(keygenVerify(dir, allowed, 'alice', NS, message, reblob({ trailing: Buffer.from([0]) }))).toBe(false);
    expect(keygenVerify(dir, allowed, 'alice', NS, message, reblob({ version: 2 }))).toBe(false);
    expect(keygenVerify(dir, allowed, 'alice', 'git', message, good)).toBe(false);
  });
});

describe('allowed_signers: the same verdicts as ssh-keygen', () => {
  const A = alice.publicKey;
  const B = bob.publicKey;
  const sigA = signMessage(message, alice.parsed!, NS);
  const cases: { name: string; file: string; principal: string; ns?: string; at?: string; code: string }[] = [
    { name: 'plain line', file: `alice ${A}`, principal: 'alice', code: 'verified' },
    { name: 'key listed under another principal', file: `bob ${A}`, principal: 'alice', code: 'principal' },
    { name: 'unknown key', file: `alice ${B}`, principal: 'alice', code: 'unknown-key' },
    { name: 'namespaces allows', file: `alice namespaces="${NS}" ${A}`, principal: 'alice', code: 'verified' },
    { name: 'namespaces excludes', file: `alice namespaces="git,file" ${A}`, principal: 'alice', code: 'namespace-not-allowed' },
    { name: 'namespaces pattern', file: `alice namespaces="dotfleet-*" ${A}`, principal: 'alice', code: 'verified' },
    { name: 'namespaces negated', file: `alice namespaces="!dotfleet-attestation,*" ${A}`, principal: 'alice', code: 'namespace-not-allowed' },
    { name: 'option names are case-insensitive', file: `alice NAMESPACES="${NS}" ${A}`, principal: 'alice', code: 'verified' },
    { name: 'principal list', file: `bob,alice ${A}`, principal: 'alice', code: 'verified' },
    { name: 'principal wildcard', file: `al* ${A}`, principal: 'alice', code: 'verified' },
    { name: 'principal ? wildcard', file: `alic? ${A}`, principal: 'alice', code: 'verified' },
    { name: 'negated principal wins', file: `!alice,* ${A}`, principal: 'alice', code: 'principal' },
    { name: 'negation of another name', file: `!bob,* ${A}`, principal: 'alice', code: 'verified' },
    { name: 'quoted principals with a space', file: `"bob alice,alice" ${A}`, principal: 'alice', code: 'verified' },
    { name: 'valid window contains the time', file: `alice valid-after="20260101Z",valid-before="20270101Z" ${A}`, principal: 'alice', at: '20261122Z', code: 'verified' },
    { name: 'not yet valid', file: `alice valid-after="20270101Z" ${A}`, principal: 'alice', at: '20261122Z', code: 'not-yet-valid' },
    { name: 'expired', file: `alice valid-before="20260101Z" ${A}`, principal: 'alice', at: '20261122Z', code: 'expired' },
    { name: 'valid-after bound is inclusive', file: `alice valid-after="20261122000000Z" ${A}`, principal: 'alice', at: '20261122000000Z', code: 'verified' },
    { name: 'valid-before bound is inclusive', file: `alice valid-before="20261122000000Z" ${A}`, principal: 'alice', at: '20261122000000Z', code: 'verified' },
    { name: 'minute precision', file: `alice valid-before="202611220930Z" ${A}`, principal: 'alice', at: '20261122093100Z', code: 'expired' },
    { name: 'time without Z (local time)', file: `alice valid-after="20260101" ${A}`, principal: 'alice', at: '20261122Z', code: 'verified' },
    { name: 'cert-authority is not a plain key', file: `alice cert-authority ${A}`, principal: 'alice', code: 'cert-authority' },
    { name: 'malformed line skipped, next line used', file: `alice bogus-option ${A}\nalice ${A}`, principal: 'alice', code: 'verified' },
    { name: 'unquoted namespaces value is malformed', file: `alice namespaces=${NS} ${A}`, principal: 'alice', code: 'unknown-key' },
    { name: 'expired line, then a valid one', file: `alice valid-before="20200101Z" ${A}\nalice ${A}`, principal: 'alice', at: '20261122Z', code: 'verified' },
    { name: 'comments and blank lines', file: `# fleet keys\n\n   # indented comment\nalice ${A} alice@laptop`, principal: 'alice', code: 'verified' },
    { name: 'wrong key type text for the blob', file: `alice ssh-rsa ${A.split(' ')[1]}`, principal: 'alice', code: 'unknown-key' },
    { name: 'two namespaces clauses', file: `alice namespaces="${NS}",namespaces="git" ${A}`, principal: 'alice', code: 'unknown-key' },
  ];

  it('covers at least 20 cases', () => expect(cases.length).toBeGreaterThanOrEqual(20));

  it.each(cases)('$name', ({ file, principal, ns = NS, at, code }) => {
    const time = at ? parseSshTime(at)!.seconds : Math.floor(Date.now() / 1000);
    const signers = parseAllowedSigners(file + '\n');
    const key = parseArmouredSignature(sigA).publicKey;
    const ours = lookupSigner(signers, key, principal, ns, time);
    // The verifier's way in (the key with its lines, from the blob): the same verdict, reason included.
    const known = knownSigner(signers, key.blob);
    if (known) expect(lookupSigner(signers, known, principal, ns, time)).toEqual(ours);
    const theirs = keygenVerify(dir, file + '\n', principal, ns, message, sigA, at);
    expect({ ours: ours.ok, theirs }).toEqual({ ours: theirs, theirs });
    expect(ours.ok ? 'verified' : ours.code).toBe(code);
  });

  it('names the first line that allows the key, as ssh-keygen stops at it, however the key is looked up', () => {
    const file = [
      `alice ${B}`,
      `alice namespaces="git" ${A}`,
      `bob ${A}`,
      `*,alice namespaces="${NS}" ${A}`,
      `alice ${A}`,
    ].join('\n');
    const signers = parseAllowedSigners(file + '\n');
    const key = parseArmouredSignature(sigA).publicKey;
    const now = Math.floor(Date.now() / 1000);
    for (const signer of [key, knownSigner(signers, key.blob)!]) {
      expect(lookupSigner(signers, signer, 'alice', NS, now)).toMatchObject({ ok: true, entry: { line: 4 } });
      expect(lookupSigner(signers, signer, 'bob', NS, now)).toMatchObject({ ok: true, entry: { line: 3 } });
      expect(lookupSigner(signers, signer, 'alice', 'git', now)).toMatchObject({ ok: true, entry: { line: 2 } });
      expect(lookupSigner(signers, signer, 'carol', 'git', now)).toMatchObject({ ok: false, code: 'namespace-not-allowed', line: 4 });
    }
    expect(knownSigner(signers, key.blob)!.lines.map((e) => e.line)).toEqual([2, 3, 4, 5]);
  });

  it('reports unusable lines with their line numbers', () => {
    const parsed = parseAllowedSigners(`# c\nalice bogus-option ${A}\nbob\nalice cert-authority ${A}\nalice valid-after="2026" ${A}\nalice valid-after="20260101" ${A}\n`);
    expect(parsed.problems.map((p) => [p.line, p.severity])).toEqual([[2, 'error'], [3, 'error'], [4, 'error'], [5, 'error'], [6, 'warning']]);
    expect(parsed.problems[0]!.message).toMatch(/unknown option "bogus-option"; ssh-keygen skips this line/);
    expect(parsed.problems[3]!.message).toMatch(/is not a time/);
  });
});
