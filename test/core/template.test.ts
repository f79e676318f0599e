import { TemplateEngine } from '../../src/core/template/engine.js';
import { DotfleetError } from '../../src/core/errors.js';
import { HELPER_NAMES } from '../../src/core/template/helpers.js';
import { mayRead as mayReadFn, pathsOverlap as overlapFn } from '../../src/core/template/analyze.js';
import { exampleTree } from '../helpers/fleet.js';

const require_analyze = () => ({ mayRead: mayReadFn, pathsOverlap: overlapFn });

const engine = new TemplateEngine();
const render = (src: string, ctx: object, file = 'home/t.hbs') => engine.compile(src, file).render(ctx);
const failure = (src: string, ctx: object = {}): DotfleetError => {
  try {
    render(src, ctx);
  } catch (e) {
    if (e instanceof DotfleetError) return e;
    throw e;
  }
  throw new Error('expected a render error');
};

describe('strict templates', () => {
  it.each([
    ['a\n {{host.name.length}}', 2, 4, '"host.name.length": host.name is not a table, so it has no key "length"', /\{\{len host\.name\}\}/],
    ['x{{n.foo.bar}}', 1, 4, '"n.foo.bar": n is not a table, so it has no key "foo"', /len n/],
    ['{{json}}', 1, 1, 'json takes 1 to 2 argument(s), got 0; usage: {{json VALUE [INDENT]}}', /helper list/],
    ['z\n{{#each list}}{{#each ../list}}{{@root.big}}{{/each}}{{/each}}', 2, 1, 'the output is too large: more than 536,870,888 characters, the largest text JavaScript can hold', /this loop/],
  ])('%s fails at its line and column with a plain message', (src, line, column, message, hint) => {
    const ctx = { host: { name: 'alpha' }, n: 3, big: 'x'.repeat(1 << 20), list: Array.from({ length: 600 }, (_, i) => i) };
    const err = failure(src, ctx);
    expect([err.line, err.column, err.message]).toEqual([line, column, message]);
    expect(err.hint).toMatch(hint);
  });

  it('renders without HTML escaping (these are config files)', () => {
    expect(render('{{x}}', { x: '<a & "b">' })).toBe('<a & "b">');
  });

  it('names the missing key with file, line and 1-based column', () => {
    const err = failure('line one\n  {{user.emial}}\n', { user: { email: 'x' } });
    expect(err.code).toBe('template-missing-key');
    expect(err.message).toBe('"user.emial" is not defined for this host');
    expect([err.file, err.line, err.column]).toEqual(['home/t.hbs', 2, 5]);
    expect(err.hint).toMatch(/test it with \{\{#if user\.emial\}\}/);
  });

  it('is strict in helper arguments too', () => {
    const err = failure('a\n{{#if (eq hw.wn "niri")}}x{{/if}}', { hw: { wm: 'niri' } });
    expect(err.message).toBe('"hw.wn" is not defined for this host');
    expect(err.line).toBe(2);
  });

  it('lets {{#if}} and {{#unless}} test a key that may be missing, but not its parent', () => {
    expect(render('{{#if hw.features.tb}}T{{else}}F{{/if}}{{#unless hw.features.tb}}U{{/unless}}', { hw: { features: {} } })).toBe('FU');
    expect(failure('{{#if hw.featurs.tb}}T{{/if}}', { hw: { features: {} } }).message).toBe('"hw.featurs" is not defined for this host');
  });

  it('lets default supply a value for a missing key', () => {
    expect(render('{{default editor.cmd "vi"}}', { editor: {} })).toBe('vi');
    expect(render('{{default editor.cmd "vi"}}', { editor: { cmd: 'nvim' } })).toBe('nvim');
  });

  it('is strict inside each, with block parameters and @root', () => {
    expect(render('{{#each xs as |x|}}{{x.n}}{{@index}}{{/each}}{{@root.top}}', { xs: [{ n: 'a' }, { n: 'b' }], top: '!' })).toBe('a0b1!');
    expect(failure('{{#each xs}}{{name}}{{/each}}', { xs: [{ nom: 1 }] }).message).toBe('"name" is not defined for this host');
  });

  it('locates syntax errors', () => {
    const err = failure('ok\n{{#if x}}\nnever closed\n');
    expect(err.code).toBe('template-syntax');
    expect(err.message).toMatch(/not closed/);
    expect(err.line).toBe(4);
    const err2 = failure('{{#if a}}{{/each}}');
    expect(err2.message).toMatch(/if doesn't match each/);
    expect(err2.line).toBe(1);
  });

  it.each([
    ['{{#> layout}}x{{/layout}}', /a shared template is included as \{\{> NAME\}\}/],
    ['{{> (lookup . "x")}}', /a literal name/],
    ['{{#section}}x{{/section}}', /is not a block helper/],
    ['{{#each}}x{{/each}}', /needs a value/],
  ])('refuses %s', (src, msg) => {
    const err = failure(src, { section: [1] });
    expect(err.code).toBe('template-forbidden');
    expect(err.message).toMatch(msg);
    expect(err.line).toBe(1);
  });

  it('refuses helpers outside the fixed set, listing the set', () => {
    const err = failure('\n{{exec "rm -rf /"}}');
    expect(err.code).toBe('template-helper');
    expect(err.message).toBe('unknown helper "exec"');
    expect(err.line).toBe(2);
    expect(err.hint).toContain('eq, ne');
  });

  it('has no log helper and no prototype access', () => {
    expect(failure('{{log "x"}}').message).toBe('unknown helper "log"');
    expect(render('{{#with o}}{{#if __proto__}}P{{/if}}{{/with}}', { o: {} })).toBe('');
  });

  it('checks helper arguments and locates the call', () => {
    const err = failure('x\n  {{join hw.fonts ", "}}', { hw: { fonts: 'not a list' } });
    expect(err.code).toBe('template-helper');
    expect(err.message).toMatch(/^join: the first argument must be a list, got string "not a list"/);
    expect([err.line, err.column]).toEqual([2, 3]);
    expect(failure('{{eq 1}}').message).toMatch(/eq takes 2 argument\(s\), got 1/);
  });

  it('provides the documented helpers', () => {
    const ctx = { n: 11, s: 1.5, xs: ['a', 'b'], t: { k: 'v', n: 2 }, name: "it's" };
    expect(render('{{eq 1 1}} {{ne 1 2}} {{lt 1 2}} {{ge 2 2}} {{and true 1}} {{or false 0}} {{not false}}', ctx)).toBe('true true true true true false true');
    expect(render('{{join xs}}|{{join xs "-"}}|{{len xs}}|{{includes xs "b"}}|{{has t "k"}}', ctx)).toBe('a, b|a-b|2|true|true');
    expect(render('{{mul n s}} {{round (mul n s)}} {{round 1.26 1}} {{add 1 2}} {{sub 5 2}} {{div 9 3}}', ctx)).toBe('16.5 17 1.3 3 3 3');
    expect(render('{{upper "a"}}{{lower "B"}}{{trim " c "}}{{replace "a-b" "-" "+"}}{{concat "x" 1}}', ctx)).toBe('Abca+bx1');
    expect(render('{{quote name}}', ctx)).toBe(`'it'\\''s'`);
    expect(render('{{json t}}|{{json xs 0}}', ctx)).toBe('{"k":"v","n":2}|["a","b"]');
    expect(render('{{toml t}}', ctx)).toBe('k = "v"\nn = 2');
    expect(render('{{toml "a\\"b"}}', ctx)).toBe('"a\\"b"');
    expect(render('{{indent 2 "a\nb"}}', ctx)).toBe('  a\n  b');
    expect(render('{{#indent 4}}x: {{n}}\ny{{/indent}}', ctx)).toBe('    x: 11\n    y');
    expect(render('{{#each (split "a b" " ")}}[{{this}}]{{/each}}', ctx)).toBe('[a][b]');
    expect(render('{{lookup t "k"}}', ctx)).toBe('v');
    expect(failure('{{div 1 0}}').message).toBe('div: division by zero');
    expect(HELPER_NAMES).toEqual(expect.arrayContaining(['eq', 'default', 'join', 'indent', 'json', 'toml']));
  });
});

describe('static dependencies', () => {
  const deps = (src: string) => engine.compile(src, 'home/d.hbs').deps.map((d) => d.join('.')).sort();

  it('lists the context paths a template may read, in every branch', () => {
    expect(deps('{{a.b}} {{#if c}}{{d.e}}{{else}}{{f}}{{/if}} {{eq g.h "x"}}')).toEqual(['a.b', 'c', 'd.e', 'f', 'g.h']);
  });

  it('collapses reads inside each to the list, and resolves with, ../ and @root', () => {
    expect(deps('{{#each xs}}{{name}}{{../top}}{{@root.r.s}}{{@index}}{{/each}}')).toEqual(['r.s', 'top', 'xs']);
    expect(deps('{{#with t}}{{k}}{{/with}}')).toEqual(['t', 't.k']);
    expect(deps('{{#each xs as |x|}}{{x.n}}{{/each}}')).toEqual(['xs']);
  });

  it('adds nothing for reads of a list a helper computed: its arguments are the dependency', () => {
    expect(deps('{{#each (split list.csv ",")}}{{this}}{{../x}}{{/each}}')).toEqual(['list.csv', 'x']);
  });

  it('depends on everything when it reads the whole context', () => {
    expect(deps('{{json this}}')).toEqual(['']);
  });
});

describe('strict lookups at every depth', () => {
  it('names the first missing key of a deep path, with its location, in output and in arguments', () => {
    const deep = failure('x\n {{a.b.c.d}}', { a: {} });
    expect([deep.message, deep.line, deep.column]).toEqual(['"a.b" is not defined for this host', 2, 4]);
    const arg = failure('{{join a.b.c.d}}', { a: { b: {} } });
    expect(arg.message).toBe('"a.b.c" is not defined for this host');
    const parent = failure('{{#with x}}{{#if ../a.b.c}}y{{/if}}{{/with}}', { x: {}, a: {} });
    expect(parent.message).toBe('"../a.b" is not defined for this host');
  });

  it('still lets a tested last key be missing at any depth, and a block parameter be tested', () => {
    expect(render('{{#if a.b.c.d}}y{{else}}n{{/if}}', { a: { b: { c: {} } } })).toBe('n');
    expect(render('{{#each xs as |x|}}{{#if x}}[{{x}}]{{/if}}{{/each}}', { xs: ['p', ''] })).toBe('[p]');
    expect(render('{{#if @root.t.k}}y{{/if}}', { t: {} })).toBe('');
  });
});

describe('the text pre-filter for dependencies', () => {
  const { mayRead, pathsOverlap } = require_analyze();
  const corpus = [
    ...[...exampleTree()].filter(([p]) => p.endsWith('.hbs') || p.endsWith('.chezmoiignore')).map(([, b]) => Buffer.from(b).toString('utf8')),
    '{{json this}}', '{{.}}', '{{json .}}', '{{#each .}}{{@key}}{{/each}}', '{{lookup . "x"}}', '{{#with a}}{{json ..}}{{/with}}',
    '{{#with a}}{{../b}}{{/with}}', '{{@root.z}}', '{{json @root}}', '{{[my key].x}}', '{{#each xs as |x|}}{{x.y}}{{/each}}', '{{~.~}}',
    '{{#each xs}}{{this}}{{else}}{{json this}}{{/each}}', '{{#if c}}{{#each xs}}{{.}}{{/each}}{{json .}}{{/if}}', '{{#with a}}{{#with ..}}{{q}}{{/with}}{{/with}}',
    '{{#each xs}}{{this}}{{/each}}{{#unless u}}{{this}}{{/unless}}', '{{#with (lookup . "a")}}{{q}}{{/with}}', '{{#each xs}}{{json @root}}{{/each}}',
  ];
  const keys = [['hw'], ['hw', 'wm'], ['terminal', 'font_size'], ['a', 'q'], ['b'], ['z'], ['my key'], ['xs'], ['nothing'], ['host', 'name'], ['ssh', 'hosts'], ['shell']];

  it('never rules out a template whose dependencies overlap a changed key', () => {
    let checked = 0;
    for (const text of corpus) {
      const deps = engine.compile(text, 'home/c.hbs').deps;
      for (const k of keys) {
        if (deps.some((d) => pathsOverlap(d, k))) {
          expect({ text, key: k, mayRead: mayRead(text, [k]) }).toEqual({ text, key: k, mayRead: true });
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('rules out templates that cannot read the key', () => {
    expect(mayRead('{{hw.wm}} {{host.name}}', [['terminal', 'font_size']])).toBe(false);
    expect(mayRead('{{#each hw.fonts}}{{this}}{{/each}} {{#with hw}}{{.}}{{/with}}', [['terminal', 'font_size']])).toBe(false);
    expect(mayRead('{{#each hw.fonts}}{{this}}{{else}}{{this}}{{/each}}', [['terminal', 'font_size']])).toBe(true);
    expect(mayRead('{{terminal.font}}', [['terminal', 'font_size']])).toBe(true);
  });
});

describe('a Go template in an .hbs file', () => {
  it.each([
    ['{{ .x }}', 'template-syntax'],
    ['{{ if eq .os "darwin" }}mac{{ end }}', 'template-missing-key'],
    ['{{- name -}}', 'template-helper'],
    ['{{ range .hosts }}{{ . }}{{ end }}', 'template-missing-key'],
    ['{{ $x := 1 }}', 'template-helper'],
  ])('%s: the error says templates are Handlebars', (src, code) => {
    const err = failure(src, { name: 'x' });
    expect(err.code).toBe(code);
    expect(err.hint).toMatch(/^this looks like a Go template \(chezmoi's \.tmpl syntax\), but dotfleet templates are Handlebars/);
  });

  it('a Handlebars template with {{else}} and a real mistake gets the usual hint', () => {
    const err = failure('{{#if a}}x{{else}}{{missing}}{{/if}}', { a: false });
    expect(err.hint).not.toMatch(/Go template/);
  });
});
