import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSopsFile } from '../../src/core/secrets/sops-file.js';
import { parseSopsConfig, ruleFor } from '../../src/core/secrets/sops-config.js';
import { checkSecrets } from '../../src/core/secrets/scope.js';
import { diffSecrets } from '../../src/core/secrets/sops-diff.js';
import { secretsReport } from '../../src/core/secrets/report.js';
import { extractPath } from '../../src/core/secrets/marker.js';
import { loadFleet, getHost } from '../../src/core/fleet.js';
import { Renderer } from '../../src/core/render.js';
import { diffFleets } from '../../src/core/fleet-diff.js';
import { resolveSecrets } from '../../src/host/secrets.js';
import { DotfleetError } from '../../src/core/errors.js';
import { PROJECT_ROOT, exampleTree, miniFleet, treeOf } from '../helpers/fleet.js';
import { enc, sopsEnv, sopsYaml } from '../helpers/sops.js';
import { ageRecipientProblem } from '../../src/core/secrets/age.js';

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'sops');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));
const FP1 = 'FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4';
const FP2 = 'D7229043384BCC60326C6FB9D8720D957C3D3074';

describe('reading real SOPS files (getsops/sops fixtures)', () => {
  it('reads YAML metadata: recipients, MAC, version, lastmodified, rules', () => {
    const f = parseSopsFile('example.yaml', fixture('example.yaml'))!;
    expect(f).toMatchObject({ format: 'yaml', version: '3.10.2', lastModified: '2025-08-06T18:55:05Z', mac: true, rules: { unencrypted_suffix: '_unencrypted' } });
    expect(f.recipients).toEqual([{ kind: 'pgp', id: FP1, group: 0 }, { kind: 'pgp', id: FP2, group: 0 }]);
  });

  it('tells encrypted values from plain ones key by key, following the unencrypted suffix', () => {
    const f = parseSopsFile('example.yaml', fixture('example.yaml'))!;
    expect(f.values.get('app2.db.password')).toMatchObject({ encrypted: true, type: 'str', expectEncrypted: true });
    expect(f.values.get('number')).toMatchObject({ encrypted: true, type: 'float' });
    expect(f.values.get('somebooleans.1')).toMatchObject({ encrypted: true, type: 'bool' });
    expect(f.values.get('somelist_unencrypted.0')).toMatchObject({ encrypted: false, expectEncrypted: false });
    expect(f.values.get('nested_unencrypted.this.is.all')).toMatchObject({ encrypted: false, expectEncrypted: false });
    expect([...f.values.values()].every((v) => v.encrypted || !v.expectEncrypted)).toBe(true);
  });

  it.each([
    ['example.json', 'json', '3.5.0', 2],
    ['format.enc.json', 'json', '3.13.1', 1],
    ['format.enc.yaml', 'yaml', '3.13.1', 1],
    ['format.enc.env', 'dotenv', '3.13.1', 1],
    ['multiple_keys.yaml', 'yaml', '3.3.1', 2],
    ['comments.enc.yaml', 'yaml', '3.6.1', 1],
  ])('reads %s (%s)', (name, format, version, recipients) => {
    const f = parseSopsFile(name, fixture(name))!;
    expect(f).toMatchObject({ format, version, mac: true });
    expect(f.recipients.map((r) => r.id)).toEqual([FP1, FP2].slice(0, recipients));
    expect([...f.values.values()].every((v) => v.encrypted || !v.expectEncrypted)).toBe(true);
  });

  it('leaves an empty value alone, as sops does', () => {
    expect(parseSopsFile('example.json', fixture('example.json'))!.values.get('anEmptyValue')).toMatchObject({ encrypted: false, expectEncrypted: false });
  });

  it('sees a missing MAC, and a file that is not SOPS at all', () => {
    expect(parseSopsFile('no_mac.yaml', fixture('no_mac.yaml'))!.mac).toBe(false);
    expect(parseSopsFile('plainfile.yaml', fixture('plainfile.yaml'))).toBeNull();
  });

  it('reads INI files and flattened key groups of every recipient kind', () => {
    const ini = [
      '[database]', 'password = ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]', 'host_unencrypted = db.lan', '',
      '[sops]', 'key_groups__list_0__map_age__list_0__map_recipient = age1qqq', 'key_groups__list_0__map_kms__list_0__map_arn = arn:aws:kms:eu-west-1:1:key/k',
      'key_groups__list_1__map_gcp_kms__list_0__map_resource_id = projects/p/locations/global/keyRings/r/cryptoKeys/c',
      'key_groups__list_1__map_azure_kv__list_0__map_vault_url = https://v.vault.azure.net', 'key_groups__list_1__map_azure_kv__list_0__map_name = k',
      'key_groups__list_1__map_azure_kv__list_0__map_version = 1', 'key_groups__list_1__map_hc_vault__list_0__map_vault_address = https://vault:8200',
      'key_groups__list_1__map_hc_vault__list_0__map_engine_path = sops', 'key_groups__list_1__map_hc_vault__list_0__map_key_name = k1',
      'shamir_threshold = 2', 'mac = ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]', 'version = 3.9.4', 'unencrypted_suffix = _unencrypted', '',
    ].join('\n');
    const f = parseSopsFile('db.sops.ini', Buffer.from(ini))!;
    expect(f.format).toBe('ini');
    expect(f.keyGroups).toBe(2);
    expect(f.recipients.map((r) => `${r.group}:${r.kind}:${r.id}`)).toEqual([
      '0:age:age1qqq', '0:kms:arn:aws:kms:eu-west-1:1:key/k', '1:gcp_kms:projects/p/locations/global/keyRings/r/cryptoKeys/c',
      '1:azure_kv:https://v.vault.azure.net/keys/k/1', '1:hc_vault:https://vault:8200/v1/sops/keys/k1',
    ]);
    expect(f.values.get('database.password')).toMatchObject({ encrypted: true });
    expect(f.values.get('database.host_unencrypted')).toMatchObject({ encrypted: false, expectEncrypted: false });
  });

  it('follows .sops.yaml creation rules: the first matching path_regex, key groups too', () => {
    const rules = parseSopsConfig('creation_rules:\n  - path_regex: ^secrets/a/\n    age: age1x, age1y\n    pgp: ABC\n  - key_groups:\n      - age: [age1z]\n        kms: [{arn: "arn:k"}]\n');
    expect(ruleFor(rules, 'secrets/a/f.yaml')!.recipients.map((r) => r.id)).toEqual(['age1x', 'age1y', 'ABC']);
    expect(ruleFor(rules, 'secrets/b/f.yaml')!.recipients.map((r) => `${r.kind}:${r.id}`)).toEqual(['age:age1z', 'kms:arn:k']);
  });
});

// Real age recipients (bech32) for the scope cases.
const AGE = {
  alpha: 'age10e006te45fzg744v7afymdxga37zpwq05vrqjsnud68tttzm6gwqe9cheg',
  beta: 'age12ghhasa973y5f3h5qtpzdxc6sts09x6anxse73qp75ztr0s98p2sp95s2g',
  gamma: 'age1w6d2ucngu8pcqerl5um3l3xtr085heeyvyhfu7x3uysugr8aa9ls42f0af',
  admin: 'age1yz6vldm23flguc039q3augf6gn9vaen543dvzf05h9vwmdfn9gjqpt8r5e',
  gone: 'age1gey6dv8ve2afmj6hhlmdea9dlgykuegey5sehext9hel3nythf9q6a4yuv',
};
const HOSTS = [
  `[hosts.alpha]\nmachine = "laptop"\nplatform = "darwin"\nage_recipient = "${AGE.alpha}"\n`,
  `[hosts.beta]\nmachine = "server"\nplatform = "linux"\ntags = ["server"]\nage_recipient = "${AGE.beta}"\n`,
  `[hosts.gamma]\nmachine = "server"\nplatform = "linux"\ntags = ["server"]\nage_recipient = "${AGE.gamma}"\n`,
  `[hosts.delta]\nmachine = "server"\nplatform = "linux"\n`,
].join('\n');

function fleetWith(files: Record<string, string>, settings = `secrets:\n  admins: ["${AGE.admin}"]\n`) {
  const tree = miniFleet({ hosts: HOSTS });
  tree.set('.github/dotfleet.yml', Buffer.from(settings));
  for (const [p, c] of Object.entries(files)) tree.set(p, Buffer.from(c));
  return loadFleet(tree);
}
const codes = (fleet: ReturnType<typeof fleetWith>) => secretsReport(fleet).findings.map((f) => `${f.code}:${f.file}${f.host ? `:${f.host}` : ''}${f.key ? `:${f.key}` : ''}`);

describe('secret scope findings', () => {
  it('a clean fleet: each file for its hosts, every host able to decrypt what it uses', () => {
    const fleet = fleetWith({
      'secrets/hosts/alpha/wifi.sops.yaml': sopsYaml({ recipients: [AGE.alpha, AGE.admin], values: { psk: 'p4ssw0rd!' } }),
      'secrets/tags/server/backup.sops.env': sopsEnv({ recipients: [AGE.beta, AGE.gamma, AGE.admin], values: { KEY: 'k3y' } }),
      '.sops.yaml': `creation_rules:\n  - path_regex: ^secrets/hosts/alpha/\n    age: ${AGE.alpha},${AGE.admin}\n  - path_regex: ^secrets/tags/server/\n    age: ${AGE.beta},${AGE.gamma},${AGE.admin}\n`,
    });
    const report = secretsReport(fleet);
    expect(report.findings).toEqual([]);
    expect(Object.fromEntries(report.scopes)).toEqual({ 'secrets/hosts/alpha/wifi.sops.yaml': ['alpha'], 'secrets/tags/server/backup.sops.env': ['beta', 'gamma'] });
  });

  it('flags a host outside the scope that can read it, a host in scope that cannot, and a recipient of no host', () => {
    const fleet = fleetWith({ 'secrets/tags/server/backup.sops.yaml': sopsYaml({ recipients: [AGE.alpha, AGE.beta, AGE.gone, AGE.admin], values: { key: 'k3y' } }) });
    expect(codes(fleet)).toEqual([
      'outside-scope:secrets/tags/server/backup.sops.yaml:alpha',
      'cannot-decrypt:secrets/tags/server/backup.sops.yaml:gamma',
      'stale-recipient:secrets/tags/server/backup.sops.yaml',
    ]);
    const stale = secretsReport(fleet).findings.find((f) => f.code === 'stale-recipient')!;
    expect(stale).toMatchObject({ severity: 'warning', recipient: AGE.gone });
    expect(stale.hint).toMatch(/dotfleet secrets rotate/);
  });

  it('counts a host that uses a secret in a template as in scope, and a host without an age key cannot decrypt', () => {
    const fleet = fleetWith({
      'secrets/shared/api.sops.yaml': sopsYaml({ recipients: [AGE.alpha], values: { token: 't0ken' } }),
      'home/dot_api.hbs': 'token={{secret "secrets/shared/api.sops.yaml" "token"}}\n',
      'home/.chezmoiignore': '{{#if (eq host.name "gamma")}}\n.api\n{{/if}}\n',
    });
    expect(secretsReport(fleet).scopes.get('secrets/shared/api.sops.yaml')).toEqual(['alpha', 'beta', 'delta']);
    expect(codes(fleet)).toEqual(['cannot-decrypt:secrets/shared/api.sops.yaml:beta', 'cannot-decrypt:secrets/shared/api.sops.yaml:delta']);
    expect(secretsReport(fleet).findings[1]!.message).toMatch(/has no age_recipient/);
  });

  it('lets .github/dotfleet.yml set the scope explicitly, by hosts and tags', () => {
    const fleet = fleetWith(
      { 'secrets/office/vpn.sops.yaml': sopsYaml({ recipients: [AGE.alpha, AGE.beta, AGE.gamma], values: { key: 'v' } }) },
      `secrets:\n  scopes:\n    - path: "secrets/office/**"\n      hosts: [alpha]\n      tags: [server]\n`,
    );
    expect(codes(fleet)).toEqual([]);
  });

  it('flags plain values where encryption was expected, a missing MAC, an unencrypted *.sops.* file, and an unused secret', () => {
    const fleet = fleetWith({
      'secrets/hosts/alpha/a.sops.yaml': sopsYaml({ recipients: [AGE.alpha], values: { psk: 'x', note: { plain: 'oops-plaintext' }, user_unencrypted: { plain: 'robin' } }, mac: false }),
      'secrets/hosts/alpha/b.sops.yaml': 'password: hunter2\n',
      'secrets/orphan.sops.yaml': sopsYaml({ recipients: [AGE.admin], values: { k: 'v' } }),
    });
    expect(codes(fleet)).toEqual([
      'no-mac:secrets/hosts/alpha/a.sops.yaml',
      'plain-value:secrets/hosts/alpha/a.sops.yaml:note',
      'not-encrypted:secrets/hosts/alpha/b.sops.yaml',
      'unused:secrets/orphan.sops.yaml',
    ]);
  });

  it('compares recipients with the .sops.yaml rule for the file', () => {
    const fleet = fleetWith({
      'secrets/hosts/alpha/a.sops.yaml': sopsYaml({ recipients: [AGE.alpha], values: { psk: 'x' } }),
      '.sops.yaml': `creation_rules:\n  - path_regex: ^secrets/\n    age: ${AGE.alpha},${AGE.admin}\n`,
    });
    const [f] = secretsReport(fleet).findings;
    expect(f).toMatchObject({ code: 'rule-mismatch', severity: 'warning', hint: 'sops updatekeys secrets/hosts/alpha/a.sops.yaml' });
    expect(f!.message).toMatch(/missing: age1yz6vldm2…/);
  });
});

describe('the diff of a SOPS file', () => {
  it('says which keys changed, appeared or went, and which recipients, without values', () => {
    const before = sopsYaml({ recipients: [AGE.alpha, AGE.gone], values: { a: 'one', b: 'two', c: 'three' } });
    const lines = before.split('\n');
    const after = [lines[0], `b: ${lines[1]!.slice(3).replace(/data:[^,]+/, 'data:Q0hBTkdFRA==')}`, 'd: ENC[AES256_GCM,data:bmV3,iv:aXY=,tag:dGFn,type:str]', ...lines.slice(3)].join('\n').replace(AGE.gone, AGE.beta);
    const [c] = diffSecrets(treeOf({ 's/x.sops.yaml': before }), treeOf({ 's/x.sops.yaml': after }));
    expect(c).toEqual({ path: 's/x.sops.yaml', status: 'modified', keys: { added: ['d'], removed: ['c'], changed: ['b'] }, recipients: { added: [AGE.beta], removed: [AGE.gone] } });
  });

  it('reports added and removed files and a MAC that went', () => {
    const withMac = sopsYaml({ recipients: [AGE.alpha], values: { a: 'x' } });
    const noMac = withMac.replace(/ {4}mac: .*\n/, '');
    expect(diffSecrets(treeOf({}), treeOf({ 'n.sops.yaml': withMac }))[0]).toMatchObject({ status: 'added', keys: { added: ['a'] } });
    expect(diffSecrets(treeOf({ 'n.sops.yaml': withMac }), treeOf({ 'n.sops.yaml': noMac }))[0]).toMatchObject({ status: 'modified', mac: 'removed' });
  });
});

describe('{{secret}} in templates', () => {
  const file = 'secrets/hosts/alpha/wifi.sops.yaml';
  const base = () => ({
    [file]: sopsYaml({ recipients: [AGE.alpha], values: { psk: 'p4ss', plain_unencrypted: { plain: 'x' } } }),
    'home/dot_wifi.hbs': `psk={{secret "${file}" "psk"}}\n`,
  });
  const render = (files: Record<string, string>, host = 'alpha') => {
    const fleet = fleetWith(files);
    return new Renderer().renderHost(fleet, getHost(fleet, host));
  };

  it('renders a redacted marker that names the secret and changes with the ciphertext', () => {
    const a = render(base());
    const text = Buffer.from((a.tree.get('.wifi') as any).content).toString();
    expect(text).toMatch(/^psk=\[\[dotfleet-secret:secrets\/hosts\/alpha\/wifi\.sops\.yaml#psk@[0-9a-f]{12}\]\]\n$/);
    const b = render({ ...base() });
    expect(Buffer.from((b.tree.get('.wifi') as any).content).toString()).not.toBe(text);
  });

  it.each([
    ['a file that does not exist', { 'home/dot_wifi.hbs': '{{secret "secrets/nope.sops.yaml" "psk"}}' }, /secret: secrets\/nope\.sops\.yaml does not exist/],
    ['a file that is not SOPS', { 'home/dot_wifi.hbs': '{{secret "home/.chezmoidata.toml" "user"}}' }, /is not a SOPS file/],
    ['a key the file lacks', { 'home/dot_wifi.hbs': `{{secret "${file}" "pks"}}` }, /"pks" is not a key of .* \(keys: psk, plain_unencrypted\)/],
    ['a plain value', { 'home/dot_wifi.hbs': `{{secret "${file}" "plain_unencrypted"}}` }, /stored in plain text/],
    ['a computed path', { 'home/dot_wifi.hbs': `{{secret (concat "secrets/" host.name) "psk"}}` }, /secret takes a literal file path and key/],
  ])('fails with a located error for %s', (_n, files, message) => {
    const r = render({ ...base(), ...files });
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.message).toMatch(message);
    expect([r.errors[0]!.file, r.errors[0]!.line, r.errors[0]!.host]).toEqual(['home/dot_wifi.hbs', 1, 'alpha']);
  });

  it('re-renders the templates that use a secret when only the SOPS file changes (fast path = full render)', () => {
    const b = fleetWith(base());
    const h = fleetWith({ ...base(), [file]: sopsYaml({ recipients: [AGE.alpha], values: { psk: 'n3w-p4ss', plain_unencrypted: { plain: 'x' } } }) });
    const fast = diffFleets(b, h);
    const full = diffFleets(b, h, { full: true });
    expect(fast.hosts.map((x) => x.changes)).toEqual(full.hosts.map((x) => x.changes));
    expect(fast.hosts.find((x) => x.host === 'alpha')!.changes.map((c) => `${c.type} ${c.path}`)).toEqual(['modified .wifi']);
  });
});

describe('decrypting on the host', () => {
  const repo = join(PROJECT_ROOT, 'test', 'fixtures', 'sops');
  const marker = (digest: string) => `[[dotfleet-secret:example.yaml#app2.db.password@${digest}]]`;
  const digest = parseSopsFile('example.yaml', fixture('example.yaml'))!.values.get('app2.db.password')!.digest.slice(0, 12);

  it('asks sops for each marked value once, with --extract', () => {
    const calls: string[][] = [];
    const out = resolveSecrets(`a=${marker(digest)}\nb=${marker(digest)}\n`, repo, (args) => {
      calls.push(args);
      return { code: 0, stdout: 'decrypted', stderr: '' };
    });
    expect(out).toBe('a=decrypted\nb=decrypted\n');
    expect(calls).toEqual([['--decrypt', '--extract', '["app2"]["db"]["password"]', 'example.yaml']]);
    expect(extractPath('an_array.0')).toBe('["an_array"][0]');
  });

  it('says what to do when sops is missing or cannot decrypt, and refuses a secret that changed since render', () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as DotfleetError;
      }
      throw new Error('expected an error');
    };
    expect(err(() => resolveSecrets(marker(digest), repo, () => ({ code: null, stdout: '', stderr: '', missing: true }))).message).toMatch(/sops is not installed/);
    const failed = err(() => resolveSecrets(marker(digest), repo, () => ({ code: 128, stdout: '', stderr: 'Failed to get the data key required to decrypt the SOPS file.\nmore', missing: false })));
    expect(failed.message).toMatch(/sops could not decrypt example\.yaml#app2\.db\.password: Failed to get the data key/);
    expect(failed.hint).toMatch(/age key/);
    expect(err(() => resolveSecrets(marker('000000000000'), repo, () => ({ code: 0, stdout: 'x', stderr: '' }))).message).toMatch(/not the one the configuration was rendered with/);
    expect(err(() => resolveSecrets('[[dotfleet-secret:gone.sops.yaml#k@000000000000]]', repo)).message).toMatch(/gone\.sops\.yaml is not in the fleet checkout/);
  });
});

describe('no secret value ever appears in output', () => {
  /** Every leaf value and every ciphertext piece of every fixture. */
  function secretStrings(): string[] {
    const out = new Set<string>();
    for (const name of readdirSync(FIXTURES)) {
      const text = fixture(name).toString();
      for (const m of text.matchAll(/ENC\[AES256_GCM,data:([^,]*),iv:([^,]+),tag:([^,]+),/g)) for (const g of m.slice(1)) if (g.length >= 8) out.add(g);
      for (const m of text.matchAll(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/g)) {
        for (const line of m[0].split(/\\n|\n/)) if (line.trim().length >= 16 && !line.includes('PGP MESSAGE')) out.add(line.trim());
      }
      for (const m of text.matchAll(/:\s+(all elements of this list|remain in clear text|going to remain in clear text)/g)) out.add(m[1]!);
    }
    return [...out];
  }

  it('in parsing results, secret diffs, findings and reports', () => {
    const secrets = secretStrings();
    expect(secrets.length).toBeGreaterThan(50);
    const outputs: string[] = [];
    const files = readdirSync(FIXTURES).filter((n) => n !== 'README.md');
    for (const name of files) {
      const f = parseSopsFile(name, fixture(name));
      outputs.push(JSON.stringify(f, (_k, v) => (v instanceof Map ? [...v] : v)));
    }
    const tree = treeOf(Object.fromEntries(files.map((n) => [`secrets/${n}`, fixture(n)])));
    const changed = treeOf(Object.fromEntries(files.map((n) => [`secrets/${n}`, fixture(n).toString().replace(/data:[A-Za-z0-9+/]{4}/g, 'data:AAAA')])));
    outputs.push(JSON.stringify(diffSecrets(new Map(), tree)), JSON.stringify(diffSecrets(tree, changed)), JSON.stringify(diffSecrets(tree, new Map())));
    const fleet = loadFleet(new Map([...miniFleet({ hosts: HOSTS }), ...tree]));
    outputs.push(JSON.stringify(checkSecrets(fleet, new Map()).findings));
    const all = outputs.join('\n');
    for (const s of secrets) expect(all.includes(s) ? s : 'absent').toBe('absent');
  });
});

describe('secrets: what a hand-edited or unusual file means', () => {
  const tree = exampleTree();
  const kestrel = /\[hosts\.kestrel\][\s\S]*?age_recipient = "(\w+)"/.exec(Buffer.from(tree.get('fleet/hosts.toml')!).toString())![1]!;
  const tern = /\[hosts\.tern\][\s\S]*?age_recipient = "(\w+)"/.exec(Buffer.from(tree.get('fleet/hosts.toml')!).toString())![1]!;
  const body = sopsYaml({ recipients: [kestrel], values: { token: 'x' } });

  it('finds SOPS metadata written in flow style, quoted, or with a trailing comment', () => {
    const meta = body.slice(body.indexOf('sops:'));
    for (const variant of [
      body.replace('sops:', 'sops:   # written by sops'),
      body.replace('sops:', '"sops":'),
      body.replace('sops:', "'sops' :"),
      `token: ${enc(4)}\nsops: {version: 3.9.4, mac: "${enc(8)}", age: [{recipient: ${kestrel}, enc: x}]}\n`,
      `{token: "${enc(4)}", sops: {version: 3.9.4}}\n`,
    ]) {
      const f = parseSopsFile('x.sops.yaml', Buffer.from(variant));
      expect([variant.slice(0, 40), f?.values.get('token')?.encrypted]).toEqual([variant.slice(0, 40), true]);
    }
    expect(meta.length).toBeGreaterThan(0);
  });

  it('reads INI as sops does: [section] and key are two path components, keys outside sections are in DEFAULT', () => {
    const ini = (rules: string, plain: Record<string, Record<string, string>>) =>
      [...Object.entries(plain).flatMap(([sec, kv]) => [`[${sec}]`, ...Object.entries(kv).map(([k, v]) => `${k} = ${v}`)]), '[sops]', 'version = 3.9.4', `mac = ${enc(8)}`, rules, ''].join('\n');
    // encrypted_regex matches the key alone: a plain "password" in [db] is caught.
    const a = parseSopsFile('a.sops.ini', Buffer.from(ini('encrypted_regex = ^password$', { db: { password: 'hunter2', host: 'db.lan' } })))!;
    expect(a.values.get('db.password')).toMatchObject({ encrypted: false, expectEncrypted: true });
    expect(a.values.get('db.host')).toMatchObject({ expectEncrypted: false });
    // The unencrypted suffix on a section name leaves the whole section alone.
    const b = parseSopsFile('b.sops.ini', Buffer.from(ini('unencrypted_suffix = _unencrypted', { public_unencrypted: { url: 'https://x' }, db: { password: enc(4) } })))!;
    expect(b.values.get('public_unencrypted.url')).toMatchObject({ encrypted: false, expectEncrypted: false });
    expect(b.values.get('db.password')).toMatchObject({ encrypted: true, expectEncrypted: true });
    const c = parseSopsFile('c.sops.ini', Buffer.from(`token = ${enc(4)}\n[sops]\nversion = 3.9.4\n`))!;
    expect([...c.values.keys()]).toEqual(['DEFAULT.token']);
  });

  it('follows sops: list positions are not path components, numeric map keys are', () => {
    const f = parseSopsFile('n.sops.yaml', Buffer.from(`"2024": {password: plain}\nlist: [plain]\nsops:\n  encrypted_regex: ^(2024|list)$\n  version: 3.9.4\n`))!;
    expect(f.values.get('2024.password')).toMatchObject({ expectEncrypted: true, encrypted: false });
    expect(f.values.get('list.0')).toMatchObject({ expectEncrypted: true });
  });

  it('says when comment rules decide encryption, instead of guessing', () => {
    const fleet = loadFleet(new Map([...tree, ['secrets/hosts/kestrel/c.sops.yaml', Buffer.from(body.replace('    unencrypted_suffix: _unencrypted', '    encrypted_comment_regex: sops:enc'))]]));
    const r = checkSecrets(fleet, new Map());
    expect(r.findings.filter((x) => x.file.endsWith('c.sops.yaml') && x.code !== 'rule-mismatch').map((x) => x.code)).toEqual(['rules-unchecked']);
  });

  it('key groups: a host decrypts alone only with shares from shamir_threshold groups, and the report names the groups it lacks', () => {
    const groups = (threshold: number | undefined, g: string[][]) =>
      `token: ${enc(4)}\nsops:\n  key_groups:\n${g.map((ids) => `    - age:\n${ids.map((id) => `        - recipient: ${id}\n          enc: x\n`).join('')}`).join('')}${threshold ? `  shamir_threshold: ${threshold}\n` : ''}  mac: ${enc(8)}\n  version: 3.9.4\n`;
    const check = (text: string) => checkSecrets(loadFleet(new Map([...tree, ['secrets/hosts/kestrel/g.sops.yaml', Buffer.from(text)]])), new Map()).findings.filter((x) => x.file.endsWith('g.sops.yaml') && x.code !== 'rule-mismatch');
    // Two groups, no threshold: both shares needed. kestrel is in one: it cannot decrypt.
    const two = check(groups(undefined, [[kestrel], [tern]]));
    expect(two.map((x) => [x.code, x.host])).toEqual([['cannot-decrypt', 'kestrel'], ['partial-share', 'tern']]);
    expect(two[0]!.message).toContain('can decrypt only 1 of the 2 key-group shares needed (shamir_threshold 2 of 2 groups); it is in no key of groups #2');
    // Threshold 1: one share is enough; tern (outside the scope) can decrypt too.
    expect(check(groups(1, [[kestrel], [tern]])).map((x) => [x.code, x.host])).toEqual([['outside-scope', 'tern']]);
    // kestrel in both groups: fine alone.
    expect(check(groups(2, [[kestrel], [kestrel, tern]])).map((x) => [x.code, x.host])).toEqual([['partial-share', 'tern']]);
  });

  it('refuses every one-character typo of an age recipient (Bech32 checksum), naming the key and the line', () => {
    const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
    let typos = 0;
    for (let i = 4; i < kestrel.length; i++) {
      for (const c of CHARSET) {
        if (c === kestrel[i]) continue;
        typos++;
        expect(ageRecipientProblem(kestrel.slice(0, i) + c + kestrel.slice(i + 1))).toBeDefined();
      }
    }
    expect(typos).toBe(1798);
    expect(ageRecipientProblem(kestrel)).toBeUndefined();
    const typo = kestrel.slice(0, 10) + (kestrel[10] === 'q' ? 'p' : 'q') + kestrel.slice(11);
    // In the inventory: the host, the key and the line.
    const hosts = Buffer.from(tree.get('fleet/hosts.toml')!).toString().replace(kestrel, typo);
    const line = hosts.split('\n').findIndex((l) => l.includes(typo)) + 1;
    try {
      loadFleet(new Map([...tree, ['fleet/hosts.toml', Buffer.from(hosts)]]));
      throw new Error('expected a refusal');
    } catch (e) {
      expect(e).toBeInstanceOf(DotfleetError);
      expect((e as DotfleetError).describe()).toContain(`fleet/hosts.toml:${line}`);
      expect((e as DotfleetError).message).toContain(`"${typo}" is not an age public key: its checksum does not match`);
    }
    // In .sops.yaml and in a SOPS file.
    const config = `creation_rules:\n  - path_regex: secrets/hosts/kestrel/\n    age: ${typo}\n`;
    const fleet = loadFleet(new Map([...tree, ['.sops.yaml', Buffer.from(config)], ['secrets/hosts/kestrel/t.sops.yaml', Buffer.from(sopsYaml({ recipients: [typo], values: { a: 'b' } }))]]));
    const found = checkSecrets(fleet, new Map()).findings.filter((x) => x.code === 'bad-recipient');
    expect(found.map((x) => [x.file, x.message.slice(0, 8)])).toEqual([['.sops.yaml', 'line 3: '], ['secrets/hosts/kestrel/t.sops.yaml', 'line 4: ']]);
    expect(found[0]!.message).toContain(typo);
  });
});
