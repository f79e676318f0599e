/**
 * The review cannot be fooled: every trust change flagged (whatever file or setting carries it),
 * the trust read from the default branch's head by SHA, the newest head always checked whatever
 * order deliveries arrive in, failed writes recoverable and visible, one check run per head, and
 * overflow that lands somewhere real. The real app, real webhook payloads, strict nock.
 */
import nock from 'nock';
import { dotfleetApp } from '../../src/app/index.js';
import { RenderSlots, workerCompute } from '../../src/app/compute.js';
import { pullRequestReport } from '../../src/core/pull-request.js';
import { commit, exampleTree, git, gitRepo, text } from '../helpers/fleet.js';
import { API, CODELOAD, expectCheckRun, expectWrites, mockPullRequest, newProbot, OWNER, pullRequestPayload, record, REPO, tarball, type Recorded, changer, useStrictNock } from '../helpers/github.js';
import { newHostKey, signerLine } from '../helpers/intake.js';

const tree = exampleTree();
const repo = gitRepo(tree);
const base = git(repo, 'rev-parse', 'HEAD').trim();
const signers = text(tree, 'fleet/allowed_signers');

const change = changer(repo, base);
useStrictNock();

const app = () => newProbot(dotfleetApp({ compute: workerCompute({ timeoutMs: 30_000, maxHeapMb: 512 }), retry: { retries: 1, backoffMs: 1, maxWaitMs: 10 } }));
const deliver = (probot: ReturnType<typeof app>, head: string, opts: { id?: string; action?: 'opened' | 'synchronize'; from?: string } = {}) =>
  probot.receive({ id: opts.id ?? `d-${head}`, name: 'pull_request', payload: pullRequestPayload(opts.action ?? 'synchronize', opts.from ?? base, head) } as any);

describe('every trust change is flagged, whatever carries it', () => {
  it('pointing the settings at another allowed_signers file with an extra key for kestrel: shown, and never a success', async () => {
    const extra = newHostKey();
    const settings = text(tree, '.github/dotfleet.yml');
    const head = change({ '.github/dotfleet.yml': settings.replace('allowed_signers: fleet/allowed_signers', 'allowed_signers: fleet/other_signers'), 'fleet/other_signers': signers + signerLine('kestrel', extra) + '\n' }, 'trust: another file');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    await deliver(app(), head, { action: 'opened' });
    const body = rec.comments[0]!;
    expect(body).toContain('#### ⚠️ Trust changes — need review');
    expect(body).toMatch(/- \*\*kestrel\*\*: \*\*may now sign\*\*: ssh-ed25519 `SHA256:[^`]+`/);
    expect(body).toContain('the allowed_signers file (.github/dotfleet.yml `allowed_signers`): `fleet/allowed_signers` → `fleet/other_signers`');
    expect(body).toMatch(/\*\*0 of 12 hosts change · 2 trust changes\*\*/);
    expect(rec.checkRuns[0].conclusion).toBe('action_required');
  });

  it('a principal, a host added and removed, a pattern line, the policy and secrets.admins: each is a trust change', () => {
    const k = newHostKey();
    const hosts = text(tree, 'fleet/hosts.toml');
    const head = new Map(tree);
    const put = (p: string, t: string) => head.set(p, Buffer.from(t));
    put('fleet/hosts.toml', hosts.replace('[hosts.tern]\n', '[hosts.tern]\nprincipal = "tern.lan"\n').replace(/\[hosts\.wren\][\s\S]*?(?=\n\[hosts\.|$)/, '') + '\n[hosts.ibis]\nmachine = "thinkpad-x1"\nplatform = "linux"\nwave = 3\n');
    put('fleet/allowed_signers', signers + signerLine('*.lan', k) + '\n' + signerLine('ibis', newHostKey()) + '\n');
    put('fleet/policy.toml', '[tools]\ngit = ">=2.20"\n');
    put('.github/dotfleet.yml', text(tree, '.github/dotfleet.yml').replace('  admins:\n', '  admins:\n    - age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n'));
    const r = pullRequestReport({ base: tree, head, trust: tree, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40) });
    const c = r.comment;
    expect(c).toMatch(/- \*\*tern\*\*: signs as `tern\.lan` instead of `tern`; \*\*may now sign\*\*: ssh-ed25519 `SHA256:[^`]+` namespaces="dotfleet-attestation" \(via "\\\*\.lan"\); no longer: ssh-ed25519/);
    expect(c).not.toContain('secrets admin removed');
    expect(c).toMatch(/- \*\*ibis\*\*: a new host; \*\*may now sign\*\*/);
    expect(c).toMatch(/- \*\*wren\*\*: leaves the inventory: its keys can no longer attest; no longer: ssh-ed25519/);
    expect(c).toContain('the policy hosts are held to (`fleet/policy.toml`) is added');
    expect(c).toContain('secrets admin added (may read every secret): `age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq`');
    expect(r.check.conclusion).not.toBe('success');
  });
});

describe('who may sign for the whole fleet is trust too', () => {
  const put = (t: Map<string, Uint8Array>, p: string, body: string) => t.set(p, Buffer.from(body));
  const settings = text(tree, '.github/dotfleet.yml');
  const report = (base: Map<string, Uint8Array>, head: Map<string, Uint8Array>) => pullRequestReport({ base, head, trust: base, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40) });

  it('a second rollout key, or the rollout signer pointed at a host: every host would follow what it signs', () => {
    const rogue = newHostKey();
    const head = new Map(tree);
    put(head, 'fleet/allowed_signers', signers + signerLine('dotfleet-rollout', rogue, 'namespaces="dotfleet-rollout"') + '\n');
    const r = report(tree, head);
    expect(r.comment).toMatch(/- \*\*rollout manifests \(what every host follows\)\*\*: \*\*may now sign\*\*: ssh-ed25519 `SHA256:[^`]+` namespaces="dotfleet-rollout"\n/);
    // Not "no host of the inventory is affected": it speaks for all of them.
    expect(r.comment).not.toContain('no host of the inventory is affected');
    expect(r.comment).toMatch(/\*\*0 of 12 hosts change · 1 trust change\*\*/);
    expect(r.check.conclusion).toBe('action_required');

    const moved = new Map(tree);
    put(moved, '.github/dotfleet.yml', settings + 'rollout:\n  signer: kestrel\n');
    put(moved, 'fleet/allowed_signers', signers.replace(/^kestrel namespaces="dotfleet-attestation" /m, 'kestrel namespaces="dotfleet-attestation,dotfleet-rollout" '));
    const mr = report(tree, moved);
    expect(mr.check.conclusion).toBe('action_required');
    const m = mr.comment;
    expect(m).toMatch(/- \*\*rollout manifests \(what every host follows\)\*\*: signed as `kestrel` instead of `dotfleet-rollout` \(settings rollout\.signer\); \*\*may now sign\*\*: ssh-ed25519 `SHA256:[^`]+` namespaces="dotfleet-attestation,dotfleet-rollout"; no longer: ssh-ed25519/);
  });

  it('a host line that drops namespaces= may now sign target commits; turning require_signed_target off is called out', () => {
    const base = new Map(tree);
    put(base, '.github/dotfleet.yml', settings + 'require_signed_target: true\n');
    const head = new Map(base);
    put(head, '.github/dotfleet.yml', settings + 'require_signed_target: false\n');
    put(head, 'fleet/allowed_signers', signers.replace(/^tern namespaces="dotfleet-attestation" /m, 'tern '));
    const r = report(base, head);
    expect(r.comment).toMatch(/- \*\*target commits \(git verify-commit, require_signed_target\)\*\*: \*\*may now sign\*\*: ssh-ed25519 `SHA256:[^`]+` \(no options\) \(as "tern"\)/);
    expect(r.comment).toContain('signed targets (.github/dotfleet.yml `require_signed_target`): no longer required (an unsigned merge would roll out)');
    expect(r.comment).toMatch(/· 3 trust changes\*\*/);
    expect(r.check.conclusion).toBe('action_required');
    // The other way is a trust change too (and says so).
    expect(report(head, base).comment).toContain('`require_signed_target`): now required');
    // The setting alone, nothing else touched: still a trust change, never a success.
    const alone = new Map(base);
    put(alone, '.github/dotfleet.yml', settings);
    const a = report(base, alone);
    expect(a.comment).toMatch(/\*\*0 of 12 hosts change · 1 trust change\*\*/);
    expect(a.check.conclusion).toBe('action_required');
  });

  it('one "*" line with no namespaces= speaks for everything: rollout manifests, target commits and every host', () => {
    const rogue = newHostKey();
    const head = new Map(tree);
    put(head, 'fleet/allowed_signers', signers + signerLine('*', rogue, '') + '\n');
    const r = report(tree, head);
    expect(r.comment).toMatch(/- \*\*rollout manifests \(what every host follows\)\*\*: \*\*may now sign\*\*: ssh-ed25519 `SHA256:[^`]+` \(no options\) \(via "\\\*"\)/);
    expect(r.comment).toMatch(/- \*\*target commits \(git verify-commit, require_signed_target\)\*\*: \*\*may now sign\*\*: ssh-ed25519 `SHA256:[^`]+` \(no options\) \(as "\\\*"\)/);
    for (const host of ['atlas', 'kestrel', 'wren']) expect(r.comment).toMatch(new RegExp(`- \\*\\*${host}\\*\\*: \\*\\*may now sign\\*\\*`));
    expect(r.comment).toMatch(/· 14 trust changes\*\*/);
    expect(r.check.conclusion).toBe('action_required');
  });
});

describe('trust is the default branch head, by commit', () => {
  it('after main moved, a pull request is compared with main now, not with its old base', async () => {
    const k = newHostKey();
    const main2 = change({ 'fleet/allowed_signers': signers + signerLine('kestrel', k) + '\n' }, 'main: trust a new kestrel key');
    const head = change({ 'README.md': 'docs\n' }, 'docs', main2);
    // The payload's base is the old one; the default branch is at main2, which trusts the key already.
    const rec = mockPullRequest({ repo, base, head, defaultHead: main2 });
    expectCheckRun(rec);
    await deliver(app(), head, { action: 'opened' });
    expect(rec.requests.some((r) => r.includes(`tarball/${main2}`))).toBe(true);
    // Against main2 the key is no change: the pull request itself changes nothing but a README.
    const run = rec.checkRuns[0];
    expect(run.output.summary).not.toContain('Trust changes');
    expect(run.conclusion).not.toBe('action_required');
  });
});

/** GitHub for one pull request whose head is `current()`: reads persist, writes are recorded. */
function standIn(current: () => string, shas: string[], opts: { checkRunFailures?: number[]; existingCheckRun?: number } = {}): Recorded & { patches: any[] } {
  const rec: Recorded & { patches: any[] } = { comments: [], commentUpdates: [], checkRuns: [], checkRunUpdates: [], requests: [], patches: [] };
  const api = record(nock(API).persist(), rec);
  api.post('/app/installations/1/access_tokens').reply(200, { token: 't', permissions: {} });
  api.get(new RegExp(`^/repos/${OWNER}/${REPO}/git/ref/heads(%2F|/)master$`)).reply(200, { object: { sha: base } });
  api.get(`/repos/${OWNER}/${REPO}/pulls/2`).reply(200, () => ({ number: 2, head: { sha: current() }, base: { sha: base, ref: 'master' } }));
  let comment: { id: number; body: string } | undefined;
  api.get(`/repos/${OWNER}/${REPO}/issues/2/comments`).query(true).reply(200, () => (comment ? [{ id: comment.id, user: { type: 'Bot' }, body: comment.body }] : []));
  api.post(`/repos/${OWNER}/${REPO}/issues/2/comments`).reply(201, (_u: string, b: any) => {
    rec.comments.push(b.body);
    comment = { id: 99, body: b.body };
    return { id: 99 };
  });
  api.patch(`/repos/${OWNER}/${REPO}/issues/comments/99`).reply(200, (_u: string, b: any) => {
    rec.commentUpdates.push(b.body);
    comment = { id: 99, body: b.body };
    return { id: 99 };
  });
  const runs = new Map<string, number>();
  if (opts.existingCheckRun) runs.set(current(), opts.existingCheckRun);
  api.get(new RegExp(`^/repos/${OWNER}/${REPO}/commits/([0-9a-f]{40})/check-runs`)).reply(200, (uri: string) => {
    const sha = /commits\/([0-9a-f]{40})\//.exec(uri)![1]!;
    return { check_runs: runs.has(sha) ? [{ id: runs.get(sha) }] : [] };
  });
  const failures = [...(opts.checkRunFailures ?? [])];
  api.post(`/repos/${OWNER}/${REPO}/check-runs`).reply((_u: string, b: any) => {
    const f = failures.shift();
    if (f) return [f, { message: f === 422 ? 'Invalid request: head_sha is not a commit of this repository' : 'Forbidden' }];
    rec.checkRuns.push(b);
    runs.set(b.head_sha, 700 + rec.checkRuns.length);
    return [201, { id: 700 + rec.checkRuns.length }];
  });
  api.patch(/\/check-runs\/\d+$/).reply(200, (_u: string, b: any) => (rec.patches.push(b), { id: 1 }));
  for (const sha of shas) {
    api.get(`/repos/${OWNER}/${REPO}/tarball/${sha}`).reply(302, '', { location: `${CODELOAD}/${OWNER}/${REPO}/legacy.tar.gz/${sha}` });
    nock(CODELOAD).persist().get(`/${OWNER}/${REPO}/legacy.tar.gz/${sha}`).reply(200, tarball(repo, sha), { 'content-type': 'application/x-gzip' });
  }
  return rec;
}

const mouse = (v: string) => ({ 'home/dot_tmux.conf.hbs': text(tree, 'home/dot_tmux.conf.hbs').replace('set -g mouse on', `set -g mouse ${v}`) });

describe('the newest head is always the one checked and described', () => {
  it('an older synchronize arriving after the newest: the newest gets the check run, the comment describes it', async () => {
    const older = change(mouse('off # older'), 'older');
    const newest = change(mouse('off # newest'), 'newest');
    const rec = standIn(() => newest, [base, older, newest]);
    const probot = app();
    // The newest is delivered first, the older one after it (GitHub does not promise order).
    await Promise.all([deliver(probot, newest, { id: 'new' }), deliver(probot, older, { id: 'old' })]);
    expect(new Set(rec.checkRuns.map((r) => r.head_sha))).toEqual(new Set([newest]));
    const last = rec.commentUpdates.at(-1) ?? rec.comments.at(-1)!;
    expect(last).toContain(`→ \`${newest.slice(0, 7)}\``);
    nock.cleanAll();
  });
});

describe('failures are visible and recoverable', () => {
  it('a check run that cannot be written: the comment says so, the delivery fails (non-2xx), and its redelivery writes it', async () => {
    const head = change(mouse('off # 422'), 'check run fails once');
    const rec = standIn(() => head, [base, head], { checkRunFailures: [422] });
    const probot = app();
    await expect(deliver(probot, head, { id: 'fails-once' })).rejects.toThrow(/the check run could not be written: HTTP 422/);
    const said = rec.commentUpdates.at(-1) ?? rec.comments.at(-1)!;
    expect(said).toContain('⚠️ The **dotfleet/fleet-diff** check run for');
    expect(said).toContain('could not be written (HTTP 422');
    expect(rec.checkRuns).toHaveLength(0);
    // GitHub redelivers the same id: it runs again, and succeeds.
    await deliver(probot, head, { id: 'fails-once' });
    expect(rec.checkRuns.map((r) => r.head_sha)).toEqual([head]);
    expect(rec.commentUpdates.at(-1)).not.toContain('could not be written');
    // A redelivery of a delivery that succeeded does nothing.
    const before = rec.requests.length;
    await deliver(probot, head, { id: 'fails-once' });
    expect(rec.requests.length).toBe(before);
    nock.cleanAll();
  });

  it('the same head under a new delivery id updates its check run instead of making a second', async () => {
    const head = change(mouse('off # again'), 'again');
    const rec = standIn(() => head, [base, head], { existingCheckRun: 41 });
    await deliver(app(), head, { id: 'another-id' });
    expect(rec.checkRuns).toHaveLength(0);
    expect(rec.patches).toHaveLength(1);
    expect(rec.patches[0]).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(rec.requests).toContain('PATCH /repos/Codertocat/Hello-World/check-runs/41');
    nock.cleanAll();
  });
});

describe('overflow lands somewhere real', () => {
  const lines = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `line ${i} ${tag} ${'x'.repeat(40)}`).join('\n') + '\n';

  it('a 36,000-character patch: "in the check run" only because the check run holds it; a 90,000-character one: the exact command', () => {
    const head = new Map(tree);
    head.set('home/dot_big.txt', Buffer.from(lines(600, 'big')));
    head.set('home/dot_huge.txt', Buffer.from(lines(1500, 'huge')));
    const r = pullRequestReport({ base: tree, head, trust: tree, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40), repoHint: 'dotfleet diff --base aaaaaaaaaaaa --head bbbbbbbbbbbb' });
    const big = /A \.big\.txt\*\*\n\n_patch of ([\d,]+) characters: ([^_]+)_/.exec(r.comment)!;
    expect(Number(big[1]!.replace(/,/g, ''))).toBeGreaterThan(30_000);
    expect(big[2]).toBe('in the check run');
    expect(r.check.text).toContain('+line 599 big');
    const huge = /A \.huge\.txt\*\*\n\n_patch of ([\d,]+) characters: ([^_]+)_/.exec(r.comment)!;
    expect(huge[2]).toMatch(/^too large for this comment; run `dotfleet diff --base aaaaaaaaaaaa --head bbbbbbbbbbbb --host \w+`$/);
    expect(r.check.text).toMatch(/A \.huge\.txt\*\*\n\n_patch of [\d,]+ characters: too large for GitHub; run `dotfleet diff --base aaaaaaaaaaaa --head bbbbbbbbbbbb --host \w+`_/);
    expect(r.check.text).not.toContain('+line 1499 huge');
  });

  it('on a large fleet the unchanged hosts are folded away, so the changes come first', () => {
    const hosts = text(tree, 'fleet/hosts.toml') + Array.from({ length: 30 }, (_, i) => `\n[hosts.n${i}]\nmachine = "thinkpad-x1"\nplatform = "linux"\nwave = 3\n`).join('');
    const b = new Map(tree).set('fleet/hosts.toml', Buffer.from(hosts));
    const h = new Map(b).set('home/dot_tmux.conf.hbs', Buffer.from(text(tree, 'home/dot_tmux.conf.hbs').replace('set -g mouse on', '{{#if (eq host.name "kestrel")}}set -g mouse off{{else}}set -g mouse on{{/if}}')));
    const r = pullRequestReport({ base: b, head: h, trust: b, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40) });
    expect(r.comment).toMatch(/<details>\n<summary>Unchanged \(41\)<\/summary>/);
  });
});

describe('render slots', () => {
  it('runs at most its size at once, queues the rest, and says "queued" only after the wait passes its threshold', async () => {
    const slots = new RenderSlots(1);
    const release1 = await slots.take();
    let told = 0;
    const second = slots.take(() => void told++, 50);
    const third = slots.take(() => void told++, 10_000);
    expect(slots.queued).toBe(2);
    await new Promise((r) => setTimeout(r, 120));
    expect(told).toBe(1);
    release1();
    const release2 = await second;
    release2();
    (await third)();
    expect(told).toBe(1);
    expect(slots.queued).toBe(0);
  });
});
