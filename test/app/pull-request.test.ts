import nock from 'nock';
import { dotfleetApp } from '../../src/app/index.js';
import { workerCompute } from '../../src/app/compute.js';
import { commit, exampleTree, git, gitRepo, text } from '../helpers/fleet.js';
import { expectCheckRun, expectWrites, mockPullRequest, newProbot, pullRequestPayload, changer, useStrictNock } from '../helpers/github.js';

const tree = exampleTree();
const repo = gitRepo(tree);
const base = git(repo, 'rev-parse', 'HEAD').trim();

const change = changer(repo, base);
useStrictNock();

const edit = (path: string, from: string, to: string) => ({ [path]: text(tree, path).replace(from, to) });

async function deliver(head: string, opts: { action?: 'opened' | 'synchronize'; id?: string; app?: ReturnType<typeof newProbot> } = {}) {
  const probot = opts.app ?? newProbot(dotfleetApp({ compute: workerCompute({ timeoutMs: 30_000, maxHeapMb: 512 }) }));
  await probot.receive({ id: opts.id ?? `delivery-${head}`, name: 'pull_request', payload: pullRequestPayload(opts.action ?? 'opened', base, head) } as any);
  return probot;
}

describe('the fleet-diff comment and check run', () => {
  it('one host changes: a comment with its diff and a successful check', async () => {
    const head = change(edit('fleet/hosts.toml', '[hosts.merlin.data.terminal]\n  font_size = 10', '[hosts.merlin.data.terminal]\n  font_size = 9'), 'merlin: smaller font');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    await deliver(head);
    expect(rec.comments).toHaveLength(1);
    const body = rec.comments[0]!;
    expect(body.startsWith('<!-- dotfleet:fleet-diff -->')).toBe(true);
    expect(body).toContain('**1 of 12 hosts changes · 1 group**');
    expect(body).toContain('| merlin | dell-xps-15 | 2 | · | · | 2 | · | · | changes |');
    expect(body).toContain('-size = 20\n+size = 18');
    expect(body).toMatchSnapshot();
    const run = rec.checkRuns[0];
    expect(run).toMatchObject({ name: 'dotfleet/fleet-diff', head_sha: head, status: 'completed', conclusion: 'success' });
    expect(run.output.title).toBe('1 of 12 hosts changes · 1 group');
    expect(run.output.text).toContain('+size = 18');
    expect({ summary: run.output.summary, text: run.output.text }).toMatchSnapshot('check run');
    // The default branch's head, two trees (the trust is the base here), the comment, the head now,
    // the comment written, the check run looked up and written.
    expect(rec.requests.filter((r) => !r.includes('access_tokens'))).toHaveLength(8);
  });

  it('no host changes and no earlier comment: no comment, a neutral check that says so', async () => {
    const head = change({ 'README.md': 'notes\n' }, 'docs only');
    const rec = mockPullRequest({ repo, base, head });
    expectCheckRun(rec);
    await deliver(head);
    expect(rec.comments).toEqual([]);
    expect(rec.checkRuns[0].conclusion).toBe('neutral');
    expect(rec.checkRuns[0].output.title).toBe('0 of 12 hosts change');
    expect(rec.checkRuns[0].output).toMatchSnapshot('check run');
  });

  it('no host changes, with an earlier comment: the comment is brought up to date', async () => {
    const head = change({ 'README.md': 'notes again\n' }, 'docs only');
    const rec = mockPullRequest({ repo, base, head, existingComments: [{ id: 99, user: { type: 'Bot' }, body: '<!-- dotfleet:fleet-diff -->\nan older run' }] });
    expectWrites(rec, { comment: 'update' });
    expectCheckRun(rec);
    await deliver(head);
    expect(rec.commentUpdates[0]).toContain('**0 of 12 hosts change**');
    expect(rec.commentUpdates[0]).toMatchSnapshot();
  });

  it('groups hosts whose change adds the same lines, naming them and whose patch is shown', async () => {
    const head = change(edit('home/dot_config/niri/config.kdl.hbs', '    Mod+Q { close-window; }\n', '    Mod+Q { close-window; }\n    Mod+F { maximize-column; }\n'), 'niri: Mod+F');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    await deliver(head);
    const body = rec.comments[0]!;
    expect(body).toContain('**3 of 12 hosts change · 1 group**');
    // tern's niri config has a trackpoint block: the same change lands at other line numbers,
    // and is still one change.
    expect(body).toContain('#### Group 1 · 3 hosts: `osprey`, `tern`, `wren`');
    expect(body).toContain("this is osprey's patch");
    expect(body).toMatchSnapshot();
  });

  it('a render error fails the check with an annotation at the template line', async () => {
    const head = change(edit('home/dot_tmux.conf.hbs', 'set -g mouse on', 'set -g mouse {{tmux.mouse}}'), 'tmux: broken');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    await deliver(head);
    expect(rec.comments[0]).toContain('12 hosts fail to render');
    expect(rec.comments[0]).toMatch(/- \*\*atlas, condor, falcon \+9\*\* `home\/dot_tmux\.conf\.hbs:5:16` — "tmux\.mouse" is not defined for this host/);
    const run = rec.checkRuns[0];
    expect(run.conclusion).toBe('failure');
    expect(run.output.annotations).toEqual([
      expect.objectContaining({ path: 'home/dot_tmux.conf.hbs', start_line: 5, end_line: 5, annotation_level: 'failure', title: 'template-missing-key on 12 hosts' }),
    ]);
    expect(rec.comments[0]).toMatchSnapshot();
    expect(run.output.summary).toMatchSnapshot('check run summary');
  });

  it('shows a new key in allowed_signers as a trust change against the default branch', async () => {
    const head = change({ 'fleet/allowed_signers': text(tree, 'fleet/allowed_signers') + 'intruder namespaces="dotfleet-attestation" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO0OIUHXeGbp6Qc49LwBpgh/BLSNcjnWSnAKbKmA3Ka3\n' }, 'trust: add a key');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    await deliver(head);
    const body = rec.comments[0]!;
    expect(body).toContain('#### ⚠️ Trust changes — need review');
    expect(body).toMatch(/- \*\*added\*\* `intruder`: ssh-ed25519 `SHA256:[^`]+` namespaces="dotfleet-attestation"/);
    expect(body).toContain('this key is also listed for "atlas" (line 5): one key under two principals');
    expect(body).toMatchSnapshot();
    // A trust change is never a success.
    expect(rec.checkRuns[0].conclusion).toBe('action_required');
    expect(rec.checkRuns[0].details_url).toBe('https://github.com/Codertocat/Hello-World/pull/2#issuecomment-99');
  });

  it('a secret change: keys and recipients, never values', async () => {
    const sops = text(tree, 'secrets/tags/server/restic.sops.env');
    const head = change({ 'secrets/tags/server/restic.sops.env': sops.replace(/^B2_ACCOUNT_KEY=.*$/m, 'B2_ACCOUNT_KEY=ENC[AES256_GCM,data:bmV3a2V5bmV3a2V5,iv:aXZpdml2aXZpdml2aXZpdml2aXZpdml2aXZpdml2aXY=,tag:dGFndGFndGFndGFndGFnZw==,type:str]') }, 'restic: new B2 key');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    await deliver(head);
    const body = rec.comments[0]!;
    expect(body).toContain('- secrets/tags/server/restic.sops.env (modified): changed B2_ACCOUNT_KEY');
    expect(body).toContain('**2 of 12 hosts change · 1 group · 1 secret file changed**');
    expect(body).not.toContain('bmV3a2V5bmV3a2V5');
    expect(body).toMatchSnapshot();
  });
});

describe('pull requests in the real world', () => {
  const fast = () => newProbot(dotfleetApp({ compute: workerCompute({ timeoutMs: 30_000, maxHeapMb: 512 }), retry: { retries: 3, backoffMs: 1, maxWaitMs: 50 } }));
  const simple = () => change(edit('home/dot_tmux.conf.hbs', 'set -g mouse on', 'set -g mouse off'), 'tmux: mouse off');

  it('a pull request from a fork is read through the base repository only', async () => {
    const head = change(edit('home/dot_zshrc.hbs', 'setopt share_history', 'setopt share_history extended_history'), 'zsh: timestamps');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    const payload = pullRequestPayload('opened', base, head);
    payload.pull_request.head.repo = { ...payload.pull_request.head.repo, full_name: 'mallory/Hello-World', name: 'Hello-World', owner: { ...payload.pull_request.head.repo.owner, login: 'mallory' }, fork: true };
    payload.pull_request.head.label = 'mallory:main';
    await fast().receive({ id: 'fork-1', name: 'pull_request', payload } as any);
    expect(rec.requests.some((r) => r.includes('mallory'))).toBe(false);
    expect(rec.comments[0]).toContain('**12 of 12 hosts change');
    expect(rec.comments[0]).toMatchSnapshot();
  });

  it('when the head moved while rendering, renders the head the pull request has now', async () => {
    const head = simple();
    const newer = change(edit('home/dot_tmux.conf.hbs', 'set -g mouse on', 'set -g mouse off # newer'), 'tmux: newer');
    // The first render (head) finds the pull request at newer; the second (newer) finds it still there.
    const rec = mockPullRequest({ repo, base, head, currentHead: newer, noCheckRun: true });
    const rec2 = mockPullRequest({ repo, base, head: newer, tokens: false, cached: [base] });
    expectWrites(rec2, { comment: 'create' });
    expectCheckRun(rec2);
    await deliver(head, { app: fast() });
    expect(rec.comments).toEqual([]);
    expect(rec2.checkRuns.map((r) => r.head_sha)).toEqual([newer]);
    expect(rec2.comments[0]).toContain(`→ \`${newer.slice(0, 7)}\``);
  });

  it('handles a redelivered webhook (same delivery id) once', async () => {
    const head = simple();
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    const app = fast();
    await deliver(head, { app, id: 'same-delivery' });
    await deliver(head, { app, id: 'same-delivery' });
    expect(rec.comments).toHaveLength(1);
    expect(rec.checkRuns).toHaveLength(1);
  });

  it('edits its comment in place, keeps a history of earlier runs, and does not write an unchanged body', async () => {
    const first = simple();
    const rec1 = mockPullRequest({ repo, base, head: first });
    expectWrites(rec1, { comment: 'create' });
    expectCheckRun(rec1);
    await deliver(first, { app: fast() });
    const body1 = rec1.comments[0]!;

    const second = change(edit('home/dot_tmux.conf.hbs', 'set -g mouse on', 'set -g mouse off\nset -g focus-events on'), 'tmux: focus events');
    const human = { id: 5, user: { type: 'User' }, body: body1 };
    const rec2 = mockPullRequest({ repo, base, head: second, existingComments: [human, { id: 99, user: { type: 'Bot' }, body: body1 }] });
    expectWrites(rec2, { comment: 'update' });
    expectCheckRun(rec2);
    await deliver(second, { app: fast(), action: 'synchronize' });
    const body2 = rec2.commentUpdates[0]!;
    expect(body2).toMatch(/<summary>Earlier runs \(1\)<\/summary>\n\n- `[0-9a-f]{7}` 12 of 12 hosts change/);

    const rec3 = mockPullRequest({ repo, base, head: second, existingComments: [{ id: 99, user: { type: 'Bot' }, body: body2 }] });
    expectCheckRun(rec3);
    await deliver(second, { app: fast(), action: 'synchronize', id: 'again' });
    expect(rec3.commentUpdates).toEqual([]);
  });

  it('retries a failed comment write (5xx) without posting it twice', async () => {
    const head = simple();
    const rec = mockPullRequest({ repo, base, head });
    const api = nock('https://api.github.com');
    api.post('/repos/Codertocat/Hello-World/issues/2/comments').reply(502, { message: 'Bad Gateway' });
    api.get('/repos/Codertocat/Hello-World/issues/2/comments').query({ per_page: 100, page: 1 }).reply(200, []);
    api.post('/repos/Codertocat/Hello-World/issues/2/comments').reply(201, (_u: string, b: any) => (rec.comments.push(b.body), { id: 99 }));
    expectCheckRun(rec);
    await deliver(head, { app: fast() });
    expect(rec.comments).toHaveLength(1);
  });

  it('after a 5xx whose write did land, edits that comment instead of posting another', async () => {
    const head = simple();
    const rec = mockPullRequest({ repo, base, head });
    const api = nock('https://api.github.com');
    let posted = '';
    api.post('/repos/Codertocat/Hello-World/issues/2/comments').reply(502, (_u: string, b: any) => ((posted = b.body), { message: 'Bad Gateway' }));
    api.get('/repos/Codertocat/Hello-World/issues/2/comments').query({ per_page: 100, page: 1 }).reply(200, () => [{ id: 99, user: { type: 'Bot' }, body: posted }]);
    // The same body landed: nothing more to write.
    api.post('/repos/Codertocat/Hello-World/check-runs').reply(403, { message: 'You have exceeded a secondary rate limit' }, { 'retry-after': '0' });
    api.get(`/repos/Codertocat/Hello-World/commits/${head}/check-runs`).query({ check_name: 'dotfleet/fleet-diff' }).reply(200, { check_runs: [] });
    expectCheckRun(rec);
    await deliver(head, { app: fast() });
    expect(rec.checkRuns).toHaveLength(1);
  });

  it('pages annotations beyond 50 per request', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`home/dot_config/broken/f${String(i).padStart(2, '0')}.hbs`] = `line\n{{missing.key${i}}}\n`;
    const head = change(files, '60 broken templates');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec, 1);
    await deliver(head, { app: fast() });
    expect(rec.checkRuns[0].output.annotations).toHaveLength(50);
    expect(rec.checkRunUpdates[0].output.annotations).toHaveLength(10);
    expect(rec.checkRunUpdates[0].output.annotations[9]).toMatchObject({ path: 'home/dot_config/broken/f59.hbs', start_line: 2 });
  });

  it('an invalid settings file fails the check with its name, and the handler does not crash', async () => {
    const head = change({ '.github/dotfleet.yml': 'inventory: 5\n' }, 'bad settings');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    await deliver(head, { app: fast() });
    expect(rec.comments[0]).toContain('**the fleet does not load at head**');
    expect(rec.comments[0]).toMatch(/`\.github\/dotfleet\.yml` — inventory: /);
    expect(rec.checkRuns[0]).toMatchObject({ conclusion: 'failure' });
    expect(rec.checkRuns[0].output.annotations[0]).toMatchObject({ path: '.github/dotfleet.yml', annotation_level: 'failure' });
  });

  it('a template built to explode is stopped by the time limit, and the bot stays up', async () => {
    const data = `xs = [${Array.from({ length: 60 }, (_, i) => i).join(', ')}]\n`;
    const bomb = '{{#each xs}}{{#each @root.xs}}{{#each @root.xs}}{{#each @root.xs}}{{#each @root.xs}}0123456789{{/each}}{{/each}}{{/each}}{{/each}}{{/each}}';
    const head = change({ 'home/.chezmoidata/bomb.toml': data, 'home/dot_bomb.hbs': bomb }, 'a bomb');
    const rec = mockPullRequest({ repo, base, head });
    expectWrites(rec, { comment: 'create' });
    expectCheckRun(rec);
    const app = newProbot(dotfleetApp({ compute: workerCompute({ timeoutMs: 1500, maxHeapMb: 256 }) }));
    await deliver(head, { app });
    expect(rec.comments[0]).toMatch(/\*\*the fleet could not be rendered\*\*[\s\S]*The bot stopped rendering this pull request: rendering (did not finish within 2 s|needed more than 256 MB) \(it was rendering home\/dot_bomb\.hbs for \w+\)/);
    expect(rec.checkRuns[0]).toMatchObject({ conclusion: 'failure', output: { title: 'the fleet could not be rendered' } });
    // The next event is served normally (the base tree is still cached: trees are kept by commit).
    const next = simple();
    const rec2 = mockPullRequest({ repo, base, head: next, tokens: false, cached: [base] });
    expectWrites(rec2, { comment: 'create' });
    expectCheckRun(rec2);
    await deliver(next, { app, action: 'synchronize' });
    expect(rec2.checkRuns[0].conclusion).toBe('success');
  });
});
