import { pullRequestReport, COMMENT_MARKER } from '../../src/core/pull-request.js';
import { COMMENT_LIMIT, CHECK_LIMIT } from '../../src/core/report/budget.js';
import { generatedChange, rng } from '../helpers/generate.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Fences balanced (each opened fence closed by the same run of backticks), <details> balanced. */
function balanced(md: string): boolean {
  let open: string | undefined;
  for (const line of md.split('\n')) {
    const m = /^(`{3,})(.*)$/.exec(line);
    if (!m) continue;
    if (open === undefined) open = m[1];
    else if (m[1] === open && m[2] === '') open = undefined;
  }
  const opens = (md.match(/<details>/g) ?? []).length;
  const closes = (md.match(/<\/details>/g) ?? []).length;
  return open === undefined && opens === closes;
}

describe('the pull-request report stays inside GitHub\'s limits', () => {
  it('for generated fleets from 3 to 1,000 hosts, small and huge changes (property test, seeded)', () => {
    const pick = rng(20261122);
    const cases = [
      { hosts: 3, templates: 2, lines: 5, hostSpecific: false },
      { hosts: 40, templates: 3, lines: 400, hostSpecific: true },
      { hosts: 200, templates: 5, lines: 60, hostSpecific: true, brokenTemplates: 70 },
      { hosts: 1000, templates: 2, lines: 30, hostSpecific: true },
      ...Array.from({ length: 6 }, () => ({ hosts: 1 + pick(600), templates: 1 + pick(6), lines: 1 + pick(300), hostSpecific: pick(2) === 1, brokenTemplates: pick(3) === 0 ? pick(80) : 0 })),
    ];
    for (const [i, c] of cases.entries()) {
      const { base, head } = generatedChange({ ...c, seed: i });
      const r = pullRequestReport({ base, head, trust: base, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40), repoHint: 'dotfleet diff --base a --head b' });
      const label = JSON.stringify(c);
      expect({ label, ok: r.comment.length <= COMMENT_LIMIT }).toEqual({ label, ok: true });
      expect({ label, ok: bytes(r.check.summary) <= CHECK_LIMIT && bytes(r.check.text) <= CHECK_LIMIT }).toEqual({ label, ok: true });
      expect({ label, comment: balanced(r.comment), summary: balanced(r.check.summary), text: balanced(r.check.text) }).toEqual({ label, comment: true, summary: true, text: true });
      expect(r.comment.startsWith(COMMENT_MARKER)).toBe(true);
      // The summary table is never truncated: every host that changes is named in the comment.
      const missing = Array.from({ length: c.hosts }, (_, h) => `h${String(h).padStart(4, '0')}`).filter((h) => !r.comment.includes(h));
      expect({ label, missing: missing.slice(0, 5) }).toEqual({ label, missing: [] });
    }
  });

  it('says what it moved to the check run or left out (oversize fleet snapshot)', () => {
    const { base, head } = generatedChange({ hosts: 1000, templates: 2, lines: 30, hostSpecific: true, seed: 1 });
    const r = pullRequestReport({ base, head, trust: base, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40), repoHint: 'dotfleet diff --base aaaaaaaaaaaa --head bbbbbbbbbbbb' });
    // The count the comment gives is what the check run holds.
    const inCheck = (r.check.text.match(/^#### Group \d+/gm) ?? []).length;
    expect(inCheck).toBeGreaterThan(0);
    expect(r.comment).toMatch(/> GitHub limits a comment to 65,536 characters: \d+ groups left out, \d+ groups without patches; /);
    expect(r.comment).toContain(`groups 1–${inCheck} of 1000 are in the **dotfleet/fleet-diff** check run, the rest only with \`dotfleet diff --base aaaaaaaaaaaa --head bbbbbbbbbbbb\`.`);
    // A group left out of both names the command that prints it.
    expect(r.comment).not.toMatch(new RegExp(`Group ${inCheck + 1} · [^\\n]*\\n\\n_[^_]*details in the check run`));
    expect(r.comment).toContain('The table is compact');
    expect(r.check.text).toMatch(/> \d+ more groups did not fit GitHub's 65,535-byte limit; run `dotfleet diff/);
    expect(r.comment.length).toBeGreaterThan(40_000);
    expect(r.comment.slice(0, 1500)).toMatchSnapshot();
  });
});

describe('the report is safe for any file name a pull request brings', () => {
  const hostile = [
    'x\n## pwned\n- [ ] task.txt',
    'a`b``c```.txt',
    '<details>open.txt',
    '</summary></details>.txt',
    '@octocat please look.txt',
    '[click](https://evil.example).txt',
    '**bold** _em_ ~~s~~.txt',
    '| a | b |.txt',
    '#1 fixes.txt',
    '```diff.txt',
    '<img src=x onerror=alert(1)>.txt',
  ];

  it('keeps fences, <details> and <summary> balanced, and mentions, links and tags inert, in the comment, the check run and the CLI markdown', async () => {
    const { exampleTree } = await import('../helpers/fleet.js');
    const { loadFleet } = await import('../../src/core/fleet.js');
    const { diffFleets } = await import('../../src/core/fleet-diff.js');
    const { fleetDiffMarkdown } = await import('../../src/core/report/markdown.js');
    const base = exampleTree();
    const head = new Map(base);
    hostile.forEach((name, i) => head.set(`home/dot_hostile/${name}`, Buffer.from(`line ${i}\n${name}\n`)));
    // And one in a template whose render fails, so an error line quotes a hostile path.
    head.set('home/dot_hostile/@octocat `x` <b>.hbs', Buffer.from('{{no.such.key}}\n'));
    const r = pullRequestReport({ base, head, trust: base, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40), repoHint: 'dotfleet diff --base a --head b' });
    const cli = fleetDiffMarkdown(diffFleets(loadFleet(base), loadFleet(head)));
    for (const [where, md] of [['comment', r.comment], ['check summary', r.check.summary], ['check text', r.check.text], ['cli markdown', cli]] as const) {
      // Outside code (inside a fence, text is inert), nothing a name brings is live markdown or HTML.
      const prose = md.replace(/^(`{3,})[^\n]*\n[\s\S]*?^\1$/gm, '').replace(/`[^`\n]*`/g, '');
      expect([where, balanced(md)]).toEqual([where, true]);
      for (const tag of ['details', 'summary']) {
        expect([where, tag, (prose.match(new RegExp(`<${tag}>`, 'g')) ?? []).length]).toEqual([where, tag, (prose.match(new RegExp(`</${tag}>`, 'g')) ?? []).length]);
      }
      expect([where, /@octocat/.test(prose)]).toEqual([where, false]);
      expect([where, /\[click\]\(https:\/\/evil/.test(prose)]).toEqual([where, false]);
      expect([where, /<img|<details>open|<b>/.test(prose)]).toEqual([where, false]);
      expect([where, /^## pwned/m.test(prose)]).toEqual([where, false]);
      expect([where, /(^|[^#])#1 fixes/.test(prose)]).toEqual([where, false]);
    }
    expect(r.comment).toContain('pwned');
    // What people read is the name itself: the inserted zero-width space is one well-formed entity.
    for (const md of [r.comment, cli]) {
      expect(md).toContain('@&#8203;octocat please look');
      expect(md).toContain('#&#8203;1 fixes');
      expect(md).not.toMatch(/&#&|&amp;#8203;/);
    }
  });
});

describe('what the review checks', () => {
  it('an error already on the base, in a template the change cannot reach, does not fail the pull request (docs/app.md)', async () => {
    const { exampleTree } = await import('../helpers/fleet.js');
    const base = exampleTree();
    base.set('home/dot_broken.hbs', Buffer.from('{{nobody.defines.this}}\n'));
    const head = new Map(base);
    head.set('home/dot_zshrc.hbs', Buffer.from(Buffer.from(base.get('home/dot_zshrc.hbs')!).toString().replace('setopt share_history', 'setopt share_history extended_history')));
    const r = pullRequestReport({ base, head, trust: base, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40) });
    expect(r.check.conclusion).toBe('success');
    expect(r.comment).not.toContain('nobody.defines.this');
    // The same error in what the change touches fails it.
    const touched = new Map(head);
    touched.set('home/dot_broken.hbs', Buffer.from('{{nobody.defines.that}}\n'));
    expect(pullRequestReport({ base, head: touched, trust: base, baseSha: 'a'.repeat(40), headSha: 'c'.repeat(40) }).check.conclusion).toBe('failure');
  });
});
