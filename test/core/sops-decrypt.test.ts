/**
 * In-process SOPS decryption against real sops files (getsops/sops fixtures): their data keys
 * opened with sops' published functional-test PGP key through the real gpg, then every value and
 * the MAC checked by dotfleet's own code; the age layer with the age reference implementation.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as age from 'age-encryption';
import YAML from 'yaml';
import { decryptSops, goFloat, sopsKeys } from '../../src/core/secrets/sops-decrypt.js';
import { ageDataKey } from '../../src/host/secrets.js';
import { PROJECT_ROOT } from '../helpers/fleet.js';

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'sops');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));
const GNUPGHOME = mkdtempSync(join(tmpdir(), 'dotfleet-gpg-'));
execFileSync('gpg', ['--batch', '--quiet', '--import', join(FIXTURES, 'sops_functional_tests_key.asc')], { env: { ...process.env, GNUPGHOME }, stdio: 'ignore' });

/** The data key, as sops gets it: the PGP message in the file's metadata, opened by gpg. */
function dataKey(name: string, bytes: Uint8Array = fixture(name)): Buffer {
  for (const p of sopsKeys(name, bytes).pgp) {
    try {
      return execFileSync('gpg', ['--batch', '--quiet', '--decrypt'], { input: p.enc, env: { ...process.env, GNUPGHOME }, stdio: ['pipe', 'pipe', 'ignore'] });
    } catch {
      // Another recipient's message.
    }
  }
  throw new Error(`no data key for ${name}`);
}

const FILES = ['example.yaml', 'example.json', 'format.enc.yaml', 'format.enc.json', 'format.enc.env', 'comments.enc.yaml', 'multiple_keys.yaml'];

describe('SOPS decryption, given the data key', () => {
  it.each(FILES)('decrypts %s and its MAC matches', (name) => {
    const values = decryptSops(name, fixture(name), dataKey(name));
    expect(values.size).toBeGreaterThan(0);
  });

  it('gives the values sops gives, typed as sops prints them', () => {
    const v = decryptSops('example.yaml', fixture('example.yaml'), dataKey('example.yaml'));
    expect(v.get('myapp1')).toBe('t00m4nys3cr3tzupdated');
    expect(v.get('app2.db.user')).toBe('eve');
    expect(v.get('app2.db.password')).toBe('c4r1b0u');
    expect(v.get('app2.key')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----\n$/);
    expect(v.get('number')).toBe('1234568000');
    expect(v.get('an_array.0')).toBe('secretuser1');
    expect(v.get('somelist_unencrypted.0')).toBeDefined();
    expect(decryptSops('format.enc.env', fixture('format.enc.env'), dataKey('format.enc.env')).get('foo')).toBe(' bar');
    expect(decryptSops('example.json', fixture('example.json'), dataKey('example.json')).get('address.city')).toBe('New York');
  });

  it('writes floats as Go does (no exponent)', () => {
    expect([1e21, 1.5e-7, 1234568000, 25.4, -0.5, 1e-7].map(goFloat)).toEqual(['1000000000000000000000', '0.00000015', '1234568000', '25.4', '-0.5', '0.0000001']);
  });

  // Every way of changing a file outside sops is refused, and no message holds a byte of any value.
  const plaintexts = [...decryptSops('example.yaml', fixture('example.yaml'), dataKey('example.yaml')).values()].filter((p) => p.length >= 3);
  const key = dataKey('example.yaml');
  const text = fixture('example.yaml').toString('utf8');
  const refuse = (changed: string) => {
    try {
      decryptSops('example.yaml', Buffer.from(changed), key);
    } catch (e) {
      const msg = `${(e as Error).message} ${(e as { hint?: string }).hint ?? ''}`;
      for (const p of plaintexts) expect(msg.includes(p)).toBe(false);
      return msg;
    }
    return 'accepted';
  };
  const doc = YAML.parse(text);
  it.each([
    ['two values swapped', () => text.replace(doc.app2.db.user, '@SWAP@').replace(doc.app2.db.password, doc.app2.db.user).replace('@SWAP@', doc.app2.db.password), /app2\.db\.(user|password): it does not authenticate/],
    ['a value moved to another key', () => text.replace(doc.myapp1, doc.app2.db.user), /myapp1: it does not authenticate/],
    ['a value removed', () => text.replace(/^myapp1: .*\n/m, ''), /the MAC does not match its values/],
    ['values reordered', () => text.replace(/^(myapp1: .*\n)([\s\S]*?)(^number: .*\n)/m, '$3$2$1'), /the MAC does not match its values/],
    ['a plain value added', () => text.replace(/^myapp1:/m, 'extra_unencrypted: hello\nmyapp1:'), /the MAC does not match its values/],
    ['lastmodified changed', () => text.replace(/lastmodified: .*/, 'lastmodified: "2030-01-01T00:00:00Z"'), /MAC: it does not authenticate/],
    ['the MAC removed', () => text.replace(/^ {4}mac: .*\n/m, ''), /has no MAC/],
  ])('refuses %s', (_n, change, message) => {
    expect(refuse(change())).toMatch(message);
  });

  it('refuses another file\'s data key', () => {
    expect(() => decryptSops('example.yaml', fixture('example.yaml'), dataKey('format.enc.yaml'))).toThrow(/does not authenticate under this file's data key/);
  });
});

describe('the age layer (age-encryption, the reference implementation)', () => {
  /** example.yaml's real values, with its data key wrapped for an age identity of ours as sops writes it. */
  async function ageFile(recipients: string[]) {
    const k = dataKey('example.yaml');
    const parsed = YAML.parseDocument(fixture('example.yaml').toString('utf8'));
    const stanzas = [];
    for (const r of recipients) {
      const e = new age.Encrypter();
      e.addRecipient(r);
      stanzas.push({ recipient: r, enc: age.armor.encode(await e.encrypt(k)) });
    }
    parsed.setIn(['sops', 'age'], stanzas);
    parsed.deleteIn(['sops', 'pgp']);
    return Buffer.from(parsed.toString());
  }

  it("opens the data key with this host's age key, from SOPS_AGE_KEY or a keys file", async () => {
    const id = await age.generateX25519Identity();
    const other = await age.identityToRecipient(await age.generateX25519Identity());
    const bytes = await ageFile([other, await age.identityToRecipient(id)]);
    const key = await ageDataKey('secrets/x.sops.yaml', bytes, { SOPS_AGE_KEY: `# created: now\n${id}\n` });
    expect(key.equals(dataKey('example.yaml'))).toBe(true);
    expect(decryptSops('secrets/x.sops.yaml', bytes, key).get('app2.db.password')).toBe('c4r1b0u');
  });

  it('says which recipients the file is for when no key of this host opens it, and shows no key', async () => {
    const mine = await age.generateX25519Identity();
    const theirs = await age.identityToRecipient(await age.generateX25519Identity());
    const bytes = await ageFile([theirs]);
    const err = await ageDataKey('secrets/x.sops.yaml', bytes, { SOPS_AGE_KEY: mine }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^none of this host's age keys \(1, from SOPS_AGE_KEY\) opens secrets\/x\.sops\.yaml, which is for age1\w+…\w+$/);
    expect((err as Error).message).not.toContain(mine);
    const none = await ageDataKey('secrets/x.sops.yaml', bytes, { SOPS_AGE_KEY_FILE: '/nonexistent' }).catch((e: Error) => e);
    expect((none as Error).message).toMatch(/no age key on this host/);
  });
});
