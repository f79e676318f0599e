/**
 * The negative corpus: every way a submission can be refused, each with its HTTP status and code,
 * and not one of them reaches the state branch (no commit request, no branch, no issue write).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nock from 'nock';
import { ATTESTATION_NAMESPACE, statement, subjectName } from '../../src/core/attestation/format.js';
import { armour, dearmour, signMessage } from '../../src/core/ssh/sshsig.js';
import { addCommit, envelope, intakeFleet, newHostKey, nextSequence, post, predicate, signed, signerLine, standIn, startApp, submit, type RunningApp, type Signed } from '../helpers/intake.js';
import { newKey, scratchDir, sshKeygen } from '../helpers/ssh.js';
import { OWNER, REPO } from '../helpers/github.js';

const expired = newHostKey();
const early = newHostKey();
const otherNs = newHostKey();
const ca = newHostKey();
const fleet = intakeFleet([
  signerLine('atlas', expired, `valid-before="20200101",namespaces="${ATTESTATION_NAMESPACE}"`),
  signerLine('atlas', early, `valid-after="20990101",namespaces="${ATTESTATION_NAMESPACE}"`),
  signerLine('heron', otherNs, 'namespaces="dotfleet-rollout"'),
  signerLine('osprey', ca, `cert-authority,namespaces="${ATTESTATION_NAMESPACE}"`),
]);

interface Case {
  name: string;
  status: number;
  code: string;
  send: (app: RunningApp) => ReturnType<typeof post>;
}

const cases: Case[] = [];
const add = (name: string, status: number, code: string, send: Case['send']) => cases.push({ name, status, code, send });
const body = (host: string, raw: string | Buffer, opts: Parameters<typeof post>[3] = {}) => (app: RunningApp) => post(app, host, raw, opts);
const sub = (host: string, s: Signed) => (app: RunningApp) => submit(app, host, s);
const withPayload = (host: string, payload: Buffer, key = fleet.keys.get(host)!): Signed => ({ payload, signature: signMessage(payload, key, ATTESTATION_NAMESPACE) });
const good = (host = 'kestrel') => signed(fleet, host);
const MAX = 64 * 1024;

// The envelope (400 malformed).
const g = good();
const b64 = g.payload.toString('base64');
for (const [name, raw] of [
  ['not JSON', '{'],
  ['a JSON array', '[]'],
  ['JSON null', 'null'],
  ['a number', '42'],
  ['a string', '"attestation"'],
  ['an empty object', '{}'],
  ['no signature', JSON.stringify({ attestation: b64 })],
  ['no attestation', JSON.stringify({ signature: g.signature })],
  ['attestation is a number', JSON.stringify({ attestation: 1, signature: g.signature })],
  ['signature is an object', JSON.stringify({ attestation: b64, signature: {} })],
  ['an extra field', JSON.stringify({ attestation: b64, signature: g.signature, host: 'kestrel' })],
  ['attestation not base64', JSON.stringify({ attestation: '%%%%', signature: g.signature })],
  ['attestation base64 without padding', JSON.stringify({ attestation: b64.replace(/=+$/, '') + (b64.endsWith('=') ? '' : 'A'), signature: g.signature })],
  ['attestation base64 with a newline', JSON.stringify({ attestation: b64.slice(0, 8) + '\n' + b64.slice(8), signature: g.signature })],
  ['empty attestation', JSON.stringify({ attestation: '', signature: g.signature })],
  ['empty signature', JSON.stringify({ attestation: b64, signature: '' })],
  ['the attestation as raw JSON, not base64', JSON.stringify({ attestation: g.payload.toString(), signature: g.signature })],
  ['a UTF-16 body', Buffer.from(envelope(g), 'utf16le')],
] as [string, string | Buffer][]) {
  add(`envelope: ${name}`, 400, 'malformed', body('kestrel', raw));
}

// Size (413).
add('a body one byte over the cap', 413, 'too-large', body('kestrel', 'x'.repeat(MAX + 1)));
add('a 1 MB body', 413, 'too-large', body('kestrel', 'x'.repeat(1024 * 1024)));
add('an attestation whose test output is over the cap', 413, 'too-large', sub('kestrel', signed(fleet, 'kestrel', { tests: [{ name: 'T1', status: 'pass', durationMs: 1, output: 'y'.repeat(MAX) }] })));

// The path.
add('path: a host name with a space', 400, 'malformed', body('bad%20host', envelope(good())));
add('path: a host name starting with "-"', 400, 'malformed', body('-kestrel', envelope(good())));
add('path: bad percent-encoding', 400, 'malformed', body('%E0%A4%A', envelope(good())));
add('path: no host', 404, 'not-found', body('', envelope(good()), { path: `/dotfleet/v1/attestations/${OWNER}/${REPO}` }));
add('path: an extra segment', 404, 'not-found', body('', envelope(good()), { path: `/dotfleet/v1/attestations/${OWNER}/${REPO}/kestrel/again` }));
add('path: GET instead of POST', 405, 'method-not-allowed', body('kestrel', '', { method: 'GET' }));
add('a repository the app is not installed on', 404, 'unknown-repository', body('kestrel', envelope(good()), { owner: 'someone', repo: 'else' }));
add('a host not in the inventory', 403, 'unknown-host', sub('ghost', signed(fleet, 'ghost', {}, { key: newHostKey() })));
add('a host of another fleet with a valid-looking name', 403, 'unknown-host', sub('kestrel2', signed(fleet, 'kestrel2', {}, { key: fleet.keys.get('kestrel')! })));

// The signature's frame and bytes.
const blob = dearmour(g.signature);
const setUint32 = (b: Buffer, at: number, v: number) => (b.writeUInt32BE(v, at), b);
add('signature: not armoured', 400, 'armour', sub('kestrel', { ...g, signature: blob.toString('base64') }));
add('signature: armour with garbage inside', 400, 'armour', sub('kestrel', { ...g, signature: '-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n' }));
add('signature: an SSH public key instead', 400, 'armour', sub('kestrel', { ...g, signature: signerLine('kestrel', fleet.keys.get('kestrel')!) }));
add('signature: a PGP signature', 400, 'armour', sub('kestrel', { ...g, signature: '-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n' }));
add('signature: cut in half', 400, 'truncated', sub('kestrel', { ...g, signature: armour(blob.subarray(0, Math.floor(blob.length / 2))) }));
add('signature: cut short by 10 bytes', 400, 'truncated', sub('kestrel', { ...g, signature: armour(blob.subarray(0, blob.length - 10)) }));
add('signature: trailing bytes', 400, 'trailing-bytes', sub('kestrel', { ...g, signature: armour(Buffer.concat([blob, Buffer.from([0, 0, 0, 0])])) }));
add('signature: bad magic', 400, 'malformed', sub('kestrel', { ...g, signature: armour(Buffer.concat([Buffer.from('SSHSIH'), blob.subarray(6)])) }));
add('signature: version 2', 400, 'version', sub('kestrel', { ...g, signature: armour(setUint32(Buffer.from(blob), 6, 2)) }));
for (let i = 0; i < 4; i++) {
  const t = Buffer.from(blob);
  const j = t.length - 1 - i * 9;
  t[j] = t[j]! ^ 0x40;
  add(`signature: signature byte ${i} flipped`, 401, 'signature', sub('kestrel', { ...g, signature: armour(t) }));
}
for (const at of [0, 17, 40, 120, 200, 300, 400, 500, 600, -2]) {
  const p = Buffer.from(g.payload);
  const i = at < 0 ? p.length + at : at;
  p[i] = p[i] === 0x61 ? 0x62 : 0x61;
  add(`payload: byte ${i} altered after signing`, 401, 'signature', sub('kestrel', { payload: p, signature: g.signature }));
}
add('signature over another attestation', 401, 'signature', sub('kestrel', { payload: good().payload, signature: good().signature }));

// Keys (401 and 403).
for (const host of ['kestrel', 'tern', 'merlin']) add(`a key nobody listed (${host})`, 401, 'unknown-key', sub(host, signed(fleet, host, {}, { key: newHostKey() })));
const prKey = newHostKey();
const gh0 = { prLines: `${fleet.allowedSigners}${signerLine('falcon', prKey)}\n` };
add('a key only present on a pull-request branch', 401, 'unknown-key', sub('falcon', signed(fleet, 'falcon', {}, { key: prKey })));
add('a key outside its validity window (expired)', 401, 'expired', sub('atlas', signed(fleet, 'atlas', {}, { key: expired })));
add('a key outside its validity window (not yet valid)', 401, 'not-yet-valid', sub('atlas', signed(fleet, 'atlas', {}, { key: early })));
add('a key listed only as a cert-authority', 401, 'cert-authority', sub('osprey', signed(fleet, 'osprey', {}, { key: ca })));
add('a key allowed only in another namespace', 403, 'namespace-not-allowed', sub('heron', signed(fleet, 'heron', {}, { key: otherNs })));
add('signed in namespace "file"', 403, 'namespace', sub('kestrel', signed(fleet, 'kestrel', {}, { namespace: 'file' })));
add('signed in namespace "git"', 403, 'namespace', sub('kestrel', signed(fleet, 'kestrel', {}, { namespace: 'git' })));
add('signed in the bot\'s namespace', 403, 'namespace', sub('kestrel', signed(fleet, 'kestrel', {}, { namespace: 'dotfleet-rollout' })));
for (const [signer, host] of [['kestrel', 'tern'], ['tern', 'atlas'], ['atlas', 'heron'], ['heron', 'osprey'], ['wren', 'merlin']] as const) {
  add(`${signer}'s key signing for ${host}`, 403, 'principal', sub(host, signed(fleet, host, {}, { key: fleet.keys.get(signer)! })));
}
for (const [claimed, path] of [['kestrel', 'tern'], ['tern', 'kestrel'], ['atlas', 'heron'], ['falcon', 'swift'], ['condor', 'puffin']] as const) {
  add(`${claimed}'s attestation sent to the path of ${path}`, 403, 'host-mismatch', sub(path, signed(fleet, claimed)));
}
for (const repository of [
  'git+https://github.com/other/fleet.git',
  'git@github.com:evil/Hello-World.git',
  'Other-Repo',
  `git+https://evil.example/${OWNER}/${REPO}`,
  `git+https://github.com.evil.example/${OWNER}/${REPO}`,
  REPO,
  `git+https://github.com/${OWNER}/${REPO}.git`,
  `git+https://github.com/${OWNER}/${REPO}/`,
  `git+https://github.com/${OWNER.toLowerCase()}/${REPO.toLowerCase()}`,
  `git+http://github.com/${OWNER}/${REPO}`,
  `https://github.com/${OWNER}/${REPO}`,
  ` git+https://github.com/${OWNER}/${REPO}`,
]) {
  add(`about another repository (${repository})`, 403, 'wrong-repository', sub('kestrel', signed(fleet, 'kestrel', {}, { repository })));
}

// The payload, validly signed (400 / 422).
const text = g.payload.toString();
add('payload: a byte-order mark', 400, 'payload-bom', sub('kestrel', withPayload('kestrel', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), g.payload]))));
add('payload: CRLF line endings', 400, 'payload-crlf', sub('kestrel', withPayload('kestrel', Buffer.from(text.replace(/\n/g, '\r\n')))));
add('payload: not UTF-8', 400, 'payload-encoding', sub('kestrel', withPayload('kestrel', Buffer.concat([g.payload, Buffer.from([0xff, 0xfe])]))));
add('payload: not JSON', 400, 'payload-json', sub('kestrel', withPayload('kestrel', Buffer.from('host=kestrel\n'))));
const mutate = (f: (st: any) => void) => {
  const st: any = statement(subjectName(OWNER, REPO), predicate(fleet, 'kestrel'));
  f(st);
  return withPayload('kestrel', Buffer.from(JSON.stringify(st, null, 2) + '\n'));
};
const schemaCases: [string, (st: any) => void][] = [
  ['_type', (st) => (st._type = 'https://in-toto.io/Statement/v0.1')],
  ['predicateType', (st) => (st.predicateType = 'https://slsa.dev/provenance/v1')],
  ['no subject', (st) => (st.subject = [])],
  ['two subjects', (st) => st.subject.push(st.subject[0])],
  ['subject digest not a commit', (st) => (st.subject[0].digest.gitCommit = 'abc')],
  ['host empty', (st) => (st.predicate.host = '')],
  ['appliedCommit short', (st) => (st.predicate.appliedCommit = st.predicate.appliedCommit.slice(0, 12))],
  ['rolloutTarget not a commit', (st) => (st.predicate.rolloutTarget = 'main')],
  ['renderHash without sha256:', (st) => (st.predicate.renderHash = st.predicate.renderHash.slice(7))],
  ['policyHash upper case', (st) => (st.predicate.policyHash = st.predicate.policyHash.toUpperCase())],
  ['tools not a list', (st) => (st.predicate.tools = {})],
  ['a tool whose ok is a string', (st) => (st.predicate.tools[0].ok = 'yes')],
  ['an unknown drift type', (st) => (st.predicate.drift = [{ path: 'x', type: 'weird' }])],
  ['a test status that does not exist', (st) => (st.predicate.tests[0].status = 'flaky')],
  ['a negative test duration', (st) => (st.predicate.tests[0].durationMs = -1)],
  ['status OK', (st) => (st.predicate.status = 'OK')],
  ['empty agentVersion', (st) => (st.predicate.agentVersion = '')],
  ['sequence 0', (st) => (st.predicate.sequence = 0)],
  ['sequence 1.5', (st) => (st.predicate.sequence = 1.5)],
  ['sequence a string', (st) => (st.predicate.sequence = '7')],
  ['issuedAt without Z', (st) => (st.predicate.issuedAt = st.predicate.issuedAt.replace('Z', '+00:00'))],
  ['issuedAt a number', (st) => (st.predicate.issuedAt = Date.now())],
  // Shaped like times, but not instants: each must be refused before any time check, whatever key signed it.
  ['issuedAt with a leap second', (st) => (st.predicate.issuedAt = st.predicate.issuedAt.replace(/T.*/, 'T23:59:60Z'))],
  ['issuedAt month 13, day 45, 25:61:61', (st) => (st.predicate.issuedAt = '2026-13-45T25:61:61Z')],
  ['issuedAt all nines', (st) => (st.predicate.issuedAt = '2099-99-99T99:99:99Z')],
  ['issuedAt 30 February', (st) => (st.predicate.issuedAt = '2026-02-30T10:00:00Z')],
  ['issuedAt 29 February of a common year', (st) => (st.predicate.issuedAt = '2025-02-29T10:00:00Z')],
  ['issuedAt 31 April', (st) => (st.predicate.issuedAt = '2026-04-31T10:00:00Z')],
  ['issuedAt day 00', (st) => (st.predicate.issuedAt = '2026-11-00T10:00:00Z')],
  ['issuedAt 24:00:00', (st) => (st.predicate.issuedAt = '2026-11-22T24:00:00Z')],
  ['issuedAt with milliseconds', (st) => (st.predicate.issuedAt = st.predicate.issuedAt.replace('Z', '.123Z'))],
  ['issuedAt before 1970', (st) => (st.predicate.issuedAt = '1969-12-31T23:59:59Z')],
  ['issuedAt with a lower-case t and z', (st) => (st.predicate.issuedAt = st.predicate.issuedAt.replace('T', 't').replace('Z', 'z'))],
  ['issuedAt with a space', (st) => (st.predicate.issuedAt = st.predicate.issuedAt.replace('T', ' '))],
  ['issuedAt with a five-digit year', (st) => (st.predicate.issuedAt = '+10000-01-01T00:00:00Z')],
  ['an extra predicate field', (st) => (st.predicate.admin = true)],
  ['an extra statement field', (st) => (st.extra = 1)],
  ['no predicate', (st) => delete st.predicate],
];
for (const [name, f] of schemaCases) add(`schema: ${name}`, 422, 'payload-schema', sub('kestrel', mutate(f)));
// An expired key (valid-before 2020) with an issued-at that is not a real instant: never accepted.
const mutateWith = (host: string, key: Parameters<typeof withPayload>[2], f: (st: any) => void) => {
  const st: any = statement(subjectName(OWNER, REPO), predicate(fleet, host));
  f(st);
  return withPayload(host, Buffer.from(JSON.stringify(st, null, 2) + '\n'), key);
};
for (const at of ['2099-99-99T99:99:99Z', '2019-12-31T23:59:60Z', '2026-13-45T25:61:61Z', '2019-02-29T12:00:00Z', '2019-06-01T12:00:00.5Z']) {
  add(`an expired key with issuedAt ${at}`, 422, 'payload-schema', sub('atlas', mutateWith('atlas', expired, (st) => (st.predicate.issuedAt = at))));
}
add('an expired key with a real issuedAt inside its window, but stale', 409, 'stale', sub('atlas', mutateWith('atlas', expired, (st) => (st.predicate.issuedAt = '2019-06-01T12:00:00Z'))));

// A status its own evidence contradicts (422).
add('SUCCESS with a failing host test', 422, 'contradiction', sub('kestrel', signed(fleet, 'kestrel', { tests: [{ name: 'T10-git.sh', status: 'fail', durationMs: 3 }] })));
add('SUCCESS with a tool below its requirement', 422, 'contradiction', sub('kestrel', signed(fleet, 'kestrel', { tools: [{ name: 'git', version: '2.20.1', requirement: '>=2.30', ok: false }] })));

const st = JSON.parse(text);
add('form: compact JSON', 422, 'payload-form', sub('kestrel', withPayload('kestrel', Buffer.from(JSON.stringify(st) + '\n'))));
add('form: four-space indent', 422, 'payload-form', sub('kestrel', withPayload('kestrel', Buffer.from(JSON.stringify(st, null, 4) + '\n'))));
add('form: no final newline', 422, 'payload-form', sub('kestrel', withPayload('kestrel', Buffer.from(JSON.stringify(st, null, 2)))));
add('form: keys in another order', 422, 'payload-form', sub('kestrel', withPayload('kestrel', Buffer.from(JSON.stringify({ predicateType: st.predicateType, _type: st._type, subject: st.subject, predicate: st.predicate }, null, 2) + '\n'))));
add('form: a duplicate key', 422, 'payload-form', sub('kestrel', withPayload('kestrel', Buffer.from(text.replace('"status": "SUCCESS",', '"status": "FAILED",\n    "status": "SUCCESS",')))));

// Freshness (409).
const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
for (const [name, s] of [['two hours old', 7200], ['a day old', 86400], ['a year old', 365 * 86400]] as const) add(`issued ${name}`, 409, 'stale', sub('tern', signed(fleet, 'tern', { issuedAt: ago(s) })));
for (const [name, s] of [['an hour ahead', -3600], ['a day ahead', -86400]] as const) add(`issued ${name}`, 409, 'future', sub('tern', signed(fleet, 'tern', { issuedAt: ago(s) })));

let accepted: Signed;
let condor: Signed;
const firstSequence = () => JSON.parse(accepted.payload.toString()).predicate.sequence as number;
// Replays of kestrel's accepted attestation (sequence not increasing).
add('replay: the accepted sequence, other content', 409, 'sequence', (app) => submit(app, 'kestrel', signed(fleet, 'kestrel', { sequence: firstSequence(), status: 'FAILED' })));
add('replay: an older sequence', 409, 'sequence', (app) => submit(app, 'kestrel', signed(fleet, 'kestrel', { sequence: firstSequence() - 1 })));
add('replay: sequence 1', 409, 'sequence', (app) => submit(app, 'kestrel', signed(fleet, 'kestrel', { sequence: 1 })));
// The host's own rate: condor has used 1 of 6; five replays use the rest, the next is refused.
for (let i = 1; i <= 5; i++) add(`condor replay ${i}`, 409, 'sequence', (app) => submit(app, 'condor', signed(fleet, 'condor', { sequence: JSON.parse(condor.payload.toString()).predicate.sequence - i })));
add('condor, over its rate', 429, 'rate-limited', (app) => submit(app, 'condor', signed(fleet, 'condor')));

const scratch = scratchDir();
const rsa = newKey(scratch, 'rsa-host', 'rsa');
add('signed with an RSA key nobody listed (by ssh-keygen)', 401, 'unknown-key', (app) => {
  const a = good('tern');
  const f = join(scratch, 'msg');
  writeFileSync(f, a.payload);
  const r = sshKeygen(['-Y', 'sign', '-q', '-f', rsa.path, '-n', ATTESTATION_NAMESPACE, f]);
  if (r.code !== 0) throw new Error(r.stderr);
  return submit(app, 'tern', { payload: a.payload, signature: readFileSync(`${f}.sig`, 'utf8') });
});

let app: RunningApp;
let gh: ReturnType<typeof standIn>;

beforeAll(async () => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  gh = standIn(fleet);
  addCommit(fleet, gh, { 'fleet/allowed_signers': gh0.prLines });
  app = await startApp({ maxBytes: MAX, perHost: { perMinute: 6, burst: 6 } });
  accepted = signed(fleet, 'kestrel', { sequence: nextSequence() + 1000 });
  condor = signed(fleet, 'condor', { sequence: nextSequence() + 1000 });
  const [a, b] = await Promise.all([submit(app, 'kestrel', accepted), submit(app, 'condor', condor)]);
  expect([a.status, b.status]).toEqual([201, 201]);
  await app.intake.settle();
});
afterAll(async () => {
  await app.close();
  nock.cleanAll();
});

describe('the negative corpus', () => {
  it(`has at least 100 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it('refuses each with its status and code, and never writes to GitHub', async () => {
    const writes = () => gh.requests.filter((r) => r === 'GRAPHQL createCommitOnBranch' || /^(POST|PATCH) \/repos\//.test(r));
    const before = writes().length;
    const head = gh.branches.get('dotfleet/state');
    const got: string[] = [];
    const want: string[] = [];
    for (const c of cases) {
      const res = await c.send(app);
      got.push(`${c.name}: ${res.status} ${res.body?.code}`);
      want.push(`${c.name}: ${c.status} ${c.code}`);
      expect(typeof res.body?.message).toBe('string');
    }
    expect(got).toEqual(want);
    await app.intake.settle();
    expect(writes().length).toBe(before);
    expect(gh.branches.get('dotfleet/state')).toBe(head);
    expect(gh.unhandled).toEqual([]);
  });

  it('limits requests per address before reading them', async () => {
    const limited = await startApp({ perAddress: { perMinute: 1, burst: 2 } }, { trustProxy: true });
    try {
      const from = { headers: { 'x-forwarded-for': '203.0.113.9' } };
      expect((await post(limited, 'kestrel', '{', from)).status).toBe(400);
      expect((await post(limited, 'kestrel', '{', from)).status).toBe(400);
      const third = await post(limited, 'kestrel', '{', from);
      expect(third.status).toBe(429);
      expect(third.body.code).toBe('rate-limited');
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      // Another address is not affected.
      expect((await post(limited, 'kestrel', '{', { headers: { 'x-forwarded-for': '203.0.113.10' } })).status).toBe(400);
    } finally {
      await limited.close();
    }
  });
});
