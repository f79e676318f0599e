/**
 * The conformance corpus: dotfleet's verdict against the real `ssh-keygen -Y verify` (OpenSSH 9)
 * on the same bytes, for
 *  - allowed_signers files: principals, quoting, separators, options, times (every form
 *    parse_absolute_time and glibc's strptime take or refuse, local standard time in a zone with
 *    summer time), key encodings;
 *  - every key type OpenSSH signs with: ed25519, ECDSA P-256/384/521 and RSA signed by ssh-keygen,
 *    and FIDO sk-ed25519 / sk-ecdsa signatures built as an authenticator builds them;
 *  - malleability: every byte of a signature blob flipped, and armour variants.
 * The agreement is printed; the target is every case. Where dotfleet is stricter on purpose, the
 * case says so and checks that dotfleet refuses (never the other way round).
 */
import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { knownSigner, lookupSigner, parseAllowedSigners } from '../../src/core/ssh/allowed-signers.js';
import { ed25519Blob, publicKeyFromBlob } from '../../src/core/ssh/keys.js';
import { armour, dearmour, signMessage, SignatureError, verifyMessage } from '../../src/core/ssh/sshsig.js';
import { parseSshTime } from '../../src/core/ssh/time.js';
import { wireString, wireUint32 } from '../../src/core/ssh/wire.js';
import { keygenSign, newKey, scratchDir } from '../helpers/ssh.js';
import { PROJECT_ROOT } from '../helpers/fleet.js';

const NS = 'dotfleet-attestation';
const dir = scratchDir();
const message = Buffer.from('{\n  "host": "kestrel"\n}\n');
const kestrel = newKey(dir, 'kestrel');
const other = newKey(dir, 'other');
const K = kestrel.publicKey;
const [KT, KB] = K.split(' ') as [string, string];
const sigK = signMessage(message, kestrel.parsed!, NS);

let n = 0;
/** ssh-keygen's verdict: exit 0 and a good-signature line. */
function theirs(allowed: Buffer | string, principal: string, signature: string, opts: { ns?: string; at?: string; tz?: string; msg?: Buffer } = {}): boolean {
  const base = join(dir, `c${++n}`);
  writeFileSync(`${base}.as`, allowed);
  writeFileSync(`${base}.sig`, signature);
  const args = ['-Y', 'verify', '-f', `${base}.as`, '-I', principal, '-n', opts.ns ?? NS, '-s', `${base}.sig`];
  if (opts.at) args.push('-O', `verify-time=${opts.at}`);
  const r = spawnSync('ssh-keygen', args, { input: opts.msg ?? message, env: { ...process.env, ...(opts.tz ? { TZ: opts.tz } : {}) } });
  return r.status === 0 && /Good ".*" signature for/.test(r.stdout.toString() + r.stderr.toString());
}

/**
 * dotfleet's verdict in another time zone: the built code in a child process with TZ set (the
 * test runner's sandbox does not pass a changed TZ on to the clock).
 */
function oursInZone(allowed: Buffer | string, principal: string, signature: string, opts: { ns?: string; at?: string; tz: string }): boolean {
  const script = `
    import { lookupSigner, parseAllowedSigners } from ${JSON.stringify(join(PROJECT_ROOT, 'dist/core/ssh/allowed-signers.js'))};
    import { verifyMessage } from ${JSON.stringify(join(PROJECT_ROOT, 'dist/core/ssh/sshsig.js'))};
    import { parseSshTime } from ${JSON.stringify(join(PROJECT_ROOT, 'dist/core/ssh/time.js'))};
    const [allowed, principal, signature, message, ns, at] = JSON.parse(process.argv[1]);
    const sig = verifyMessage(Buffer.from(message, 'base64'), signature, ns);
    const t = at ? parseSshTime(at) : { seconds: Math.floor(Date.now() / 1000) };
    console.log(t && t.seconds !== 0 && lookupSigner(parseAllowedSigners(Buffer.from(allowed, 'base64')), sig.publicKey, principal, ns, t.seconds).ok ? 'yes' : 'no');
  `;
  const args = JSON.stringify([Buffer.from(allowed).toString('base64'), principal, signature, message.toString('base64'), opts.ns ?? NS, opts.at]);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, args], { env: { ...process.env, TZ: opts.tz } });
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout.toString().trim() === 'yes';
}

/** dotfleet's verdict on the same bytes, in the same time zone. */
function ours(allowed: Buffer | string, principal: string, signature: string, opts: { ns?: string; at?: string; tz?: string; msg?: Buffer } = {}): boolean {
  if (opts.tz) return oursInZone(allowed, principal, signature, { ...opts, tz: opts.tz });
  {
    let sig;
    try {
      sig = verifyMessage(opts.msg ?? message, signature, opts.ns ?? NS);
    } catch (e) {
      if (e instanceof SignatureError) return false;
      throw e;
    }
    // ssh-keygen refuses a verify-time it cannot read, or 0.
    const at = opts.at ? parseSshTime(opts.at) : undefined;
    if (at === null || at?.seconds === 0) return false;
    const time = at ? at.seconds : Math.floor(Date.now() / 1000);
    const signers = parseAllowedSigners(typeof allowed === 'string' ? allowed : new Uint8Array(allowed));
    const verdict = lookupSigner(signers, sig.publicKey, principal, opts.ns ?? NS, time);
    // The verifier's way in (the key with its lines, from the blob) gives the same verdict, reason included.
    const known = knownSigner(signers, sig.publicKey.blob);
    if (known) expect(lookupSigner(signers, known, principal, opts.ns ?? NS, time)).toEqual(verdict);
    return verdict.ok;
  }
}

interface Case {
  name: string;
  allowed: string | Buffer;
  principal?: string;
  signature?: string;
  at?: string;
  tz?: string;
  /** dotfleet refuses on purpose where ssh-keygen accepts (documented in docs/attestation.md). */
  stricter?: string;
}

const tally = { agree: 0, stricter: 0, total: 0 };
afterAll(() => {
  process.stdout.write(`ssh-keygen conformance: ${tally.agree}/${tally.total} cases agree with ssh-keygen -Y verify (OpenSSH ${spawnSync('ssh', ['-V']).stderr.toString().trim()}); ${tally.stricter} documented cases where dotfleet refuses and ssh-keygen accepts\n`);
});

function check(cases: Case[]): void {
  const differ: string[] = [];
  for (const c of cases) {
    const opts = { at: c.at, tz: c.tz };
    const signature = c.signature ?? sigK;
    const t = theirs(c.allowed, c.principal ?? 'kestrel', signature, opts);
    const o = ours(c.allowed, c.principal ?? 'kestrel', signature, opts);
    tally.total++;
    if (c.stricter) {
      // Never accept what ssh-keygen refuses; refusing what it accepts is the documented choice.
      if (o) differ.push(`${c.name}: dotfleet accepts (documented as stricter: ${c.stricter})`);
      else tally.stricter++;
      continue;
    }
    if (o === t) tally.agree++;
    else differ.push(`${c.name}: dotfleet ${o ? 'accepts' : 'refuses'}, ssh-keygen ${t ? 'accepts' : 'refuses'}`);
  }
  expect(differ).toEqual([]);
}

const line = (principals: string, options = '', key = K, tail = '\n') => `${principals} ${options ? options + ' ' : ''}${key}${tail}`;

describe('allowed_signers files: the same verdict as ssh-keygen', () => {
  it('principals: names, lists, patterns, negation, quoting, bytes', () => {
    const cases: Case[] = [];
    const add = (name: string, allowed: string, principal = 'kestrel') => cases.push({ name, allowed, principal });
    add('plain', line('kestrel'));
    add('another principal', line('tern'));
    add('upper case principal', line('Kestrel'));
    add('list', line('tern,kestrel'));
    add('list with empty items', line(',kestrel,'));
    add('star', line('*'));
    add('prefix star', line('kes*'));
    add('question marks', line('k?str?l'));
    add('too many question marks', line('k?strel?'));
    add('negated, then star', line('!kestrel,*'));
    add('star, then negated', line('*,!kestrel'));
    add('negation of another', line('!tern,*'));
    add('only a negation', line('!tern'));
    add('double star', line('**'));
    add('quoted principal', line('"kestrel"'));
    add('quoted list with a space', line('"tern kestrel,kestrel"'));
    add('principal with a space, quoted', line('"kes trel"'), 'kes trel');
    add('quote in the middle of a token', line('kes"trel"'));
    add('quote in the middle, then more', line('ke"st r"el'), 'kest rel');
    add('unclosed quote', line('"kestrel'));
    add('escaped quote is not an escape in principals', line('"kes\\"trel"'));
    add('non-ASCII principal, exact', line('késtrel'), 'késtrel');
    add('non-ASCII principal, one ? per character', line('k?strel'), 'késtrel');
    add('non-ASCII principal, one ? per byte', line('k??strel'), 'késtrel');
    add('emoji principal with four ?', line('h????'), 'h😀');
    add('pattern of 1,022 characters', line('*' + 'x'.repeat(1021) + ',kestrel'));
    add('pattern of 1,023 characters', line('*' + 'x'.repeat(1022) + ',kestrel'));
    add('pattern of 1,023 characters, after the match', line('kestrel,*' + 'x'.repeat(1022)));
    add('principal of 1,023 characters', line('k'.repeat(1023)), 'k'.repeat(1023));
    add('principal with a comma looked up', line('"a,b"'), 'a,b');
    add('principal of one star looked up literally', line('*'), '*');
    expect(cases.length).toBeGreaterThanOrEqual(30);
    check(cases);
  });

  it('separators, comments, blank lines, line endings, NUL bytes', () => {
    const cases: Case[] = [
      { name: 'tab separators', allowed: `kestrel\t${KT}\t${KB}\n` },
      { name: 'several spaces', allowed: `kestrel    ${KT}   ${KB}\n` },
      { name: 'leading white space', allowed: ` \t kestrel ${K}\n` },
      { name: 'CRLF line ending', allowed: `kestrel ${K}\r\n` },
      { name: 'CR after the principal', allowed: `kestrel\r${K}\n` },
      { name: 'CR between type and key', allowed: `kestrel ${KT}\r${KB}\n` },
      { name: 'vertical tab inside the base64', allowed: `kestrel ${KT} ${KB.slice(0, 10)}\v${KB.slice(10)}\n` },
      { name: 'form feed after the principal', allowed: `kestrel\f${K}\n` },
      { name: 'trailing white space', allowed: `kestrel ${K}   \t\n` },
      { name: 'a comment after the key', allowed: `kestrel ${K} kestrel@laptop and more\n` },
      { name: 'no final newline', allowed: `kestrel ${K}` },
      { name: 'comment line', allowed: `#kestrel ${K}\n` },
      { name: 'indented comment line', allowed: `   # kestrel ${K}\n` },
      { name: 'blank lines before', allowed: `\n\n   \n\t\nkestrel ${K}\n` },
      { name: 'CRLF blank line before', allowed: `\r\nkestrel ${K}\r\n` },
      { name: 'a NUL byte cuts the line', allowed: Buffer.from(`kestrel ${K}\0 garbage\n`, 'latin1') },
      { name: 'a NUL byte inside the key', allowed: Buffer.from(`kestrel ${KT} ${KB.slice(0, 20)}\0${KB.slice(20)}\n`, 'latin1') },
      { name: 'only the principal', allowed: 'kestrel\n' },
      { name: 'only the principal, no newline', allowed: 'kestrel' },
      { name: 'a bad line, then a good one', allowed: `kestrel bogus ${K}\nkestrel ${K}\n` },
      { name: 'an unreadable line, then a good one', allowed: `"kestrel ${K}\nkestrel ${K}\n` },
      { name: 'invalid UTF-8 in a comment', allowed: Buffer.concat([Buffer.from(`kestrel ${K} `), Buffer.from([0xff, 0xfe, 0x0a])]) },
    ];
    check(cases);
  });

  it('options: names, quoting, commas, namespaces', () => {
    const cases: Case[] = [];
    const add = (name: string, options: string) => cases.push({ name, allowed: line('kestrel', options) });
    add('namespaces', `namespaces="${NS}"`);
    add('namespaces, other', 'namespaces="git"');
    add('namespaces pattern', 'namespaces="dotfleet-*"');
    add('namespaces list', `namespaces="git,${NS}"`);
    add('namespaces negated', `namespaces="!${NS},*"`);
    add('namespaces with a space in the list', `namespaces="git, ${NS}"`);
    add('namespaces upper case name', `NAMESPACES="${NS}"`);
    add('namespaces mixed case name', `NameSpaces="${NS}"`);
    add('namespaces unquoted', `namespaces=${NS}`);
    add('namespaces empty', 'namespaces=""');
    add('namespaces twice', `namespaces="${NS}",namespaces="git"`);
    add('namespaces with an escaped quote', `namespaces="a\\"b,${NS}"`);
    add('namespaces with an escaped quote, no match', 'namespaces="a\\"b"');
    add('namespaces unclosed quote', `namespaces="${NS}`);
    add('namespaces with a quoted space', `namespaces="git ${NS},${NS}"`);
    add('leading comma', `,namespaces="${NS}"`);
    add('double comma', `namespaces="${NS}",,valid-after="20200101Z"`);
    add('trailing comma', `namespaces="${NS}",`);
    add('only a comma', ',');
    add('unknown option', 'no-touch-required');
    add('unknown option after a good one', `namespaces="${NS}",verify-required`);
    add('cert-authority', 'cert-authority');
    add('cert-authority upper case', 'CERT-AUTHORITY');
    add('cert-authority with more letters', 'cert-authorityx');
    add('cert-authority with a value', 'cert-authority="x"');
    add('namespaces with no = sign', `namespaces"${NS}"`);
    add('a space before =', `namespaces ="${NS}"`);
    add('options in quotes as a whole', `"namespaces=${NS}"`);
    add('backslash before a quote in the options', `namespaces=\\"${NS}\\"`);
    check(cases);
  });

  it('key encodings', () => {
    const pad = KB.endsWith('=') ? KB : KB + '=';
    const flipped = KB.slice(0, -2) + (KB.at(-2) === 'Q' ? 'R' : 'Q') + '=';
    const rsa = newKey(dir, 'rsa-line', 'rsa');
    const cases: Case[] = [
      { name: 'extra = padding', allowed: `kestrel ${KT} ${pad}=\n` },
      { name: 'two extra = padding', allowed: `kestrel ${KT} ${pad}==\n` },
      { name: 'padding removed', allowed: `kestrel ${KT} ${KB.replace(/=+$/, '')}\n` },
      { name: 'non-zero bits in the last quantum', allowed: `kestrel ${KT} ${flipped}\n` },
      { name: 'base64 cut short', allowed: `kestrel ${KT} ${KB.slice(0, -8)}\n` },
      { name: 'base64 with a character outside the alphabet', allowed: `kestrel ${KT} ${KB.slice(0, 10)}*${KB.slice(11)}\n` },
      { name: 'base64url instead of base64', allowed: `kestrel ${KT} ${KB.replace(/\+/g, '-').replace(/\//g, '_')}\n` },
      { name: 'the wrong type name for the blob', allowed: `kestrel ssh-rsa ${KB}\n` },
      { name: 'an unknown type name', allowed: `kestrel ssh-ed448 ${KB}\n` },
      { name: 'type name upper case', allowed: `kestrel SSH-ED25519 ${KB}\n` },
      { name: 'the key twice, second for kestrel', allowed: `tern ${K}\nkestrel ${K}\n` },
      { name: 'other key, then this key', allowed: `kestrel ${other.publicKey}\nkestrel ${K}\n` },
      { name: 'an RSA key line named rsa-sha2-256 before', allowed: `kestrel rsa-sha2-256 ${rsa.publicKey.split(' ')[1]}\nkestrel ${K}\n` },
      { name: 'an RSA key under the ssh-ed25519 name before', allowed: `kestrel ssh-ed25519 ${rsa.publicKey.split(' ')[1]}\nkestrel ${K}\n` },
      { name: 'blob of 33-byte key', allowed: `kestrel ${KT} ${Buffer.concat([wireString('ssh-ed25519'), wireString(Buffer.alloc(33, 1))]).toString('base64')}\nkestrel ${K}\n` },
      { name: 'blob with trailing bytes', allowed: `kestrel ${KT} ${Buffer.concat([kestrel.parsed!.public.blob, Buffer.from([0])]).toString('base64')}\n` },
    ];
    check(cases);
  });

  it('times: every form parse_absolute_time takes or refuses, at and around its instant', () => {
    const cases: Case[] = [];
    // [value, an instant it means (UTC, YYYYMMDDHHMMSSZ) or null when OpenSSH refuses it]
    const values: [string, string | null][] = [
      ['20250101', '20250101000000Z'],
      ['20250101Z', '20250101000000Z'],
      ['20250101z', '20250101000000Z'],
      ['20250101UTC', '20250101000000Z'],
      ['20250101utc', '20250101000000Z'],
      ['202501011230Z', '20250101123000Z'],
      ['20250101123045Z', '20250101123045Z'],
      ['20250101235960Z', '20250102000000Z'],
      ['20250101235961Z', '20250102000001Z'],
      ['20250101235962Z', null],
      ['20250231Z', '20250303000000Z'],
      ['20240231Z', '20240302000000Z'],
      ['20250230Z', '20250302000000Z'],
      ['20250132Z', null],
      ['20251301Z', null],
      ['20250001Z', null],
      ['20250100Z', null],
      ['20250101240000Z', null],
      ['20250101236000Z', null],
      ['19691231Z', null],
      ['19700101Z', null],
      ['19700101000001Z', '19700101000001Z'],
      ['99991231235959Z', '99991231235959Z'],
      ['2025010Z', null],
      ['250101Z', null],
      ['202501011Z', null],
      ['2025 1 1Z', '20250101000000Z'],
      ['2025\t1\t1Z', '20250101000000Z'],
      ['2025-1-1Z', null],
      ['+2025011Z', null],
      ['20250101 Z', null],
      ['Z', null],
      ['', null],
      ['20250101ZZ', null],
      ['20250101GMT', null],
    ];
    for (const [value, instant] of values) {
      for (const [opt, later] of [['valid-after', true], ['valid-before', false]] as const) {
        const allowed = line('kestrel', `${opt}="${value}"`);
        if (!instant) {
          cases.push({ name: `${opt}="${value}" (refused) at 20260101Z`, allowed, at: '20260101Z' });
          continue;
        }
        const t = parseSshTime(instant)!.seconds;
        const fmt = (s: number) => new Date(s * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '');
        for (const d of later ? [-1, 0] : [0, 1]) cases.push({ name: `${opt}="${value}" at ${fmt(t + d)}`, allowed, at: fmt(t + d) });
      }
    }
    // The window's order.
    cases.push({ name: 'valid-before equal to valid-after', allowed: line('kestrel', 'valid-after="20250101Z",valid-before="20250101Z"'), at: '20250101Z' });
    cases.push({ name: 'valid-before before valid-after', allowed: line('kestrel', 'valid-after="20250102Z",valid-before="20250101Z"'), at: '20250101Z' });
    cases.push({ name: 'valid-before one second after valid-after', allowed: line('kestrel', 'valid-after="20250101000000Z",valid-before="20250101000001Z"'), at: '20250101000001Z' });
    cases.push({ name: 'valid-after twice', allowed: line('kestrel', 'valid-after="20250101Z",valid-after="20250102Z"'), at: '20260101Z' });
    cases.push({ name: 'valid-after unquoted', allowed: line('kestrel', 'valid-after=20250101Z'), at: '20260101Z' });
    // Local times in a zone with summer time: read as standard time, in summer too.
    for (const [value, at] of [
      ['20250701120000', '20250701105959Z'],
      ['20250701120000', '20250701110000Z'],
      ['20250701120000', '20250701100000Z'],
      ['20250115120000', '20250115105959Z'],
      ['20250115120000', '20250115110000Z'],
      ['20250330023000', '20250330013000Z'],
      ['20251026023000', '20251026013000Z'],
    ] as const) {
      cases.push({ name: `valid-after="${value}" (Europe/Berlin) at ${at}`, allowed: line('kestrel', `valid-after="${value}"`), at, tz: 'Europe/Berlin' });
    }
    expect(cases.length).toBeGreaterThanOrEqual(100);
    check(cases);
  });
});

describe('every key type OpenSSH signs with', () => {
  it.each([
    ['ecdsa', '256'],
    ['ecdsa', '384'],
    ['ecdsa', '521'],
    ['rsa', '2048'],
    ['ed25519', ''],
  ])('%s %s signed by ssh-keygen: verified by both, altered refused by both', (type, bits) => {
    const k = type === 'ecdsa' ? ecdsaKey(bits) : newKey(dir, `k-${type}-${bits}`, type);
    for (const hash of ['sha512', 'sha256']) {
      const sig = keygenSign(dir, k, message, NS, hash);
      const allowed = `kestrel ${k.publicKey}\n`;
      check([
        { name: `${type}${bits} ${hash}`, allowed, signature: sig },
        { name: `${type}${bits} ${hash} under another principal`, allowed: `tern ${k.publicKey}\n`, signature: sig },
      ]);
      expect(ours(allowed, 'kestrel', sig, { msg: Buffer.from('altered') })).toBe(false);
      expect(theirs(allowed, 'kestrel', sig, { msg: Buffer.from('altered') })).toBe(false);
    }
  });

  function ecdsaKey(bits: string) {
    const path = join(dir, `ecdsa-${bits}-${++n}`);
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', bits, '-N', '', '-C', 'e', '-f', path]);
    if (r.status !== 0) throw new Error(r.stderr.toString());
    const publicLine = readFileSync(`${path}.pub`, 'utf8').trim();
    return { path, publicLine, publicKey: publicLine.split(' ').slice(0, 2).join(' ') };
  }

  /** A FIDO signature as an authenticator makes it: over SHA-256(application) ‖ flags ‖ counter ‖ SHA-256(data). */
  function skSignature(kind: 'ed25519' | 'ecdsa', flags: number, counter: number, tamper = false) {
    const { publicKey, privateKey } = kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const app = Buffer.from('ssh:');
    let pubBlob: Buffer;
    if (kind === 'ed25519') {
      const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
      pubBlob = Buffer.concat([wireString('sk-ssh-ed25519@openssh.com'), wireString(raw), wireString(app)]);
    } else {
      const jwk = publicKey.export({ format: 'jwk' });
      const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
      pubBlob = Buffer.concat([wireString('sk-ecdsa-sha2-nistp256@openssh.com'), wireString('nistp256'), wireString(point), wireString(app)]);
    }
    const hash = 'sha512';
    const data = Buffer.concat([Buffer.from('SSHSIG'), wireString(NS), wireString(''), wireString(hash), wireString(createHash(hash).update(message).digest())]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const signed = Buffer.concat([createHash('sha256').update(app).digest(), Buffer.from([flags]), c, createHash('sha256').update(tamper ? Buffer.from('x') : data).digest()]);
    let field: Buffer;
    if (kind === 'ed25519') {
      field = Buffer.concat([wireString('sk-ssh-ed25519@openssh.com'), wireString(cryptoSign(null, signed, privateKey as KeyObject)), Buffer.from([flags]), c]);
    } else {
      const der = cryptoSign('sha256', signed, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const mpint = (b: Buffer) => {
        let i = 0;
        while (i < b.length - 1 && b[i] === 0) i++;
        const t = b.subarray(i);
        return wireString(t[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), t]) : t);
      };
      field = Buffer.concat([wireString('sk-ecdsa-sha2-nistp256@openssh.com'), wireString(Buffer.concat([mpint(der.subarray(0, 32)), mpint(der.subarray(32))])), Buffer.from([flags]), c]);
    }
    const blob = Buffer.concat([Buffer.from('SSHSIG'), wireUint32(1), wireString(pubBlob), wireString(NS), wireString(''), wireString(hash), wireString(field)]);
    const type = kind === 'ed25519' ? 'sk-ssh-ed25519@openssh.com' : 'sk-ecdsa-sha2-nistp256@openssh.com';
    return { signature: armour(blob), allowed: `kestrel ${type} ${pubBlob.toString('base64')}\n` };
  }

  it.each([
    ['ed25519', 0x01],
    ['ed25519', 0x05],
    ['ed25519', 0x00],
    ['ecdsa', 0x01],
    ['ecdsa', 0x04],
    ['ecdsa', 0x00],
  ] as const)('FIDO sk-%s, flags 0x%s: the same verdict, and the flags are reported', (kind, flags) => {
    const good = skSignature(kind, flags, 42);
    const bad = skSignature(kind, flags, 42, true);
    check([
      { name: `sk-${kind} flags ${flags}`, allowed: good.allowed, signature: good.signature },
      { name: `sk-${kind} flags ${flags}, tampered`, allowed: bad.allowed, signature: bad.signature },
    ]);
    expect(verifyMessage(message, good.signature, NS).sk).toEqual({ flags, counter: 42 });
  });

  it('refuses RSA with SHA-1 and a DSA key, as ssh-keygen refuses them for SSHSIG', () => {
    const rsa = newKey(dir, 'rsa-sha1', 'rsa');
    const sig = keygenSign(dir, rsa, message, NS);
    const p = dearmour(sig);
    // Rename the RSA signature's algorithm to ssh-rsa (SHA-1): the bytes no longer match anyway,
    // and the algorithm is refused before that.
    const text = p.toString('latin1').replace('rsa-sha2-512', 'ssh-rsa\0\0\0\0\0').replace('\0\0\0\x0crsa-sha2-512', '\0\0\0\x07ssh-rsa');
    check([{ name: 'ssh-rsa signature', allowed: `kestrel ${rsa.publicKey}\n`, signature: armour(Buffer.from(text, 'latin1')) }]);
  });
});

describe('malleability: altered signatures and armour', () => {
  it('every byte of the signature blob flipped: the same verdict as ssh-keygen', () => {
    const blob = dearmour(sigK);
    const cases: Case[] = [];
    for (let i = 0; i < blob.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const b = Buffer.from(blob);
        b[i] = b[i]! ^ mask;
        cases.push({ name: `byte ${i} ^ 0x${mask.toString(16)}`, allowed: line('kestrel'), signature: armour(b) });
      }
    }
    check(cases);
  });

  it('armour variants: the same verdict as ssh-keygen', () => {
    const b64 = dearmour(sigK).toString('base64');
    const body = (width: number) => b64.match(new RegExp(`.{1,${width}}`, 'g'))!.join('\n');
    const frame = (inner: string, tail = '\n') => `-----BEGIN SSH SIGNATURE-----\n${inner}\n-----END SSH SIGNATURE-----${tail}`;
    const lastQuantum = b64.slice(-4);
    const cases: Case[] = [
      { name: 'as ssh-keygen writes it', allowed: line('kestrel'), signature: sigK },
      { name: 'lines of 64', allowed: line('kestrel'), signature: frame(body(64)) },
      { name: 'one long line', allowed: line('kestrel'), signature: frame(b64) },
      { name: 'lines of 1', allowed: line('kestrel'), signature: frame(body(1)) },
      { name: 'no final newline', allowed: line('kestrel'), signature: frame(body(70), '') },
      { name: 'text after the END line', allowed: line('kestrel'), signature: frame(body(70), '\ntrailing words\n') },
      { name: 'CRLF line endings', allowed: line('kestrel'), signature: frame(body(70)).replace(/\n/g, '\r\n') },
      { name: 'CRLF inside the base64 only', allowed: line('kestrel'), signature: `-----BEGIN SSH SIGNATURE-----\n${body(70).replace(/\n/g, '\r\n')}\n-----END SSH SIGNATURE-----\n` },
      { name: 'spaces inside the base64', allowed: line('kestrel'), signature: frame(body(70).replace(/(.{10})/g, '$1 ')) },
      { name: 'tabs inside the base64', allowed: line('kestrel'), signature: frame(body(70).replace(/(.{7})/g, '$1\t')) },
      { name: 'text before BEGIN', allowed: line('kestrel'), signature: `hello\n${sigK}` },
      { name: 'blank line after BEGIN', allowed: line('kestrel'), signature: frame(`\n${body(70)}`) },
      { name: 'BEGIN without a newline after it', allowed: line('kestrel'), signature: `-----BEGIN SSH SIGNATURE----- ${body(70)}\n-----END SSH SIGNATURE-----\n` },
      { name: 'END without a newline before it', allowed: line('kestrel'), signature: `-----BEGIN SSH SIGNATURE-----\n${b64}-----END SSH SIGNATURE-----\n` },
      { name: 'padding removed', allowed: line('kestrel'), signature: frame(b64.replace(/=+$/, '')) },
      { name: 'an extra =', allowed: line('kestrel'), signature: frame(b64 + '=') },
      { name: 'non-canonical last quantum', allowed: line('kestrel'), signature: frame(b64.slice(0, -4) + (lastQuantum.includes('=') ? lastQuantum.replace(/[A-Za-z0-9+/](?==)/, (c) => (c === 'A' ? 'B' : 'A')) : lastQuantum)) },
      { name: 'base64url alphabet', allowed: line('kestrel'), signature: frame(b64.replace(/\+/g, '-').replace(/\//g, '_')) },
      { name: 'lower-case markers', allowed: line('kestrel'), signature: sigK.replace('BEGIN SSH SIGNATURE', 'begin ssh signature') },
      { name: 'a PGP frame', allowed: line('kestrel'), signature: sigK.replace(/SSH SIGNATURE/g, 'PGP SIGNATURE') },
      { name: 'two signatures, first END wins', allowed: line('kestrel'), signature: sigK + sigK },
      { name: 'a signature blob with version 0', allowed: line('kestrel'), signature: armour(Buffer.concat([Buffer.from('SSHSIG'), wireUint32(0), dearmour(sigK).subarray(10)])) },
      { name: 'a non-empty reserved field', allowed: line('kestrel'), signature: reserved('x') },
    ];
    check(cases);
  });

  function reserved(value: string): string {
    const b = dearmour(sigK);
    // magic(6) version(4) key(4+51) namespace(4+20) reserved(4+0) …
    const at = 6 + 4 + 4 + 51 + 4 + NS.length;
    return armour(Buffer.concat([b.subarray(0, at), wireString(value), b.subarray(at + 4)]));
  }

  it('an ed25519 signature with S + L (not reduced) is refused by dotfleet; documented as stricter than ssh-keygen', () => {
    const b = dearmour(sigK);
    const sig = b.subarray(b.length - 64);
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const s = BigInt('0x' + Buffer.from(sig.subarray(32)).reverse().toString('hex')) + L;
    const sBytes = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse();
    if (sBytes.length !== 32 || (sBytes[31]! & 0xe0) !== 0) return; // S + L did not fit in 253 bits for this signature
    const altered = Buffer.concat([b.subarray(0, b.length - 32), sBytes]);
    check([{ name: 'ed25519 S + L', allowed: line('kestrel'), signature: armour(altered), stricter: 'RFC 8032 requires S < L; OpenSSH checks only the top three bits' }]);
    expect(theirs(line('kestrel'), 'kestrel', armour(altered))).toBe(true);
  });
});

describe('the keys dotfleet reads are the keys OpenSSH reads', () => {
  it('parses what ssh-keygen writes, of every type', () => {
    for (const t of ['ed25519', 'rsa', 'ecdsa', 'dsa']) {
      const k = newKey(dir, `parse-${t}`, t);
      const key = publicKeyFromBlob(Buffer.from(k.publicKey.split(' ')[1]!, 'base64'));
      expect(key.type).toBe(k.publicKey.split(' ')[0]);
    }
    expect(publicKeyFromBlob(ed25519Blob(Buffer.alloc(32, 9))).kind).toBe('ed25519');
  });
});

describe('signers lint: "ssh-keygen skips this line" is said of exactly the lines ssh-keygen skips', () => {
  it('against the errors of ssh-keygen -Y find-principals, which reads every line', () => {
    const rsa = newKey(dir, 'lint-rsa', 'rsa');
    const lines = [
      '# a comment',
      line('kestrel'),
      line('tern', 'bogus-option'),
      '',
      '   ',
      line('"unclosed'),
      'lonely',
      line('atlas', 'namespaces=unquoted'),
      line('heron', `namespaces="${NS}",`),
      line('osprey', 'valid-after="20250231Z"'),
      line('wren', 'valid-after="19691231Z"'),
      line('merlin', 'valid-after="20260101Z",valid-before="20250101Z"'),
      line('puffin', 'cert-authority'),
      `swift ssh-rsa ${KB}\n`.trimEnd(),
      `swift2 ${KT} ${KB}=`,
      `condor rsa-sha2-256 ${rsa.publicKey.split(' ')[1]}`,
      line('falcon', 'NAMESPACES="git"'),
      line('ibis', 'valid-before="20250101UTC"'),
      line('kite', 'valid-before="2025 1 1Z"'),
      `kestrel\r${K}`,
      line('gull', 'valid-after="20250101Z",valid-after="20250102Z"'),
    ].map((l) => l.replace(/\n$/, ''));
    const file = lines.join('\n') + '\n';
    const base = join(dir, 'lint');
    writeFileSync(`${base}.as`, file);
    // Signed by a key no line lists: find-principals reads every line to the end.
    writeFileSync(`${base}.sig`, signMessage(message, other.parsed!, NS));
    const r = spawnSync('ssh-keygen', ['-Y', 'find-principals', '-f', `${base}.as`, '-s', `${base}.sig`]);
    const theirs = [...new Set([...r.stderr.toString().matchAll(/lint\.as:(\d+): /g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
    const ours = parseAllowedSigners(file).problems.filter((p) => p.message.includes('ssh-keygen skips this line')).map((p) => p.line);
    expect(theirs.length).toBeGreaterThan(5);
    expect(ours).toEqual(theirs);
  });
});

describe('the corpus', () => {
  // Runs last in this file: every case above has been counted.
  it('holds at least 600 cases, and every one agrees but the documented stricter ones', () => {
    expect(tally.total).toBeGreaterThanOrEqual(600);
    expect(tally.agree + tally.stricter).toBe(tally.total);
  });
});

