import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeParsed, functionErrorStats, loadParser, parseC } from '../../src/cmodel/parse.js';
import { prefilter } from '../../src/cmodel/prefilter.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/c/${name}`, import.meta.url), 'utf8');

/** Same length and the same newlines: offsets and line numbers survive. */
function expectShapeKept(src: string, out: string): void {
  expect(out.length).toBe(src.length);
  for (let i = 0; i < src.length; i++) if (src[i] === '\n') expect(out[i]).toBe('\n');
}

describe('prefilter', () => {
  it('blanks attributes and records lock annotations with their arguments', () => {
    const src = 'static int __must_check f(struct x __user *p) __must_hold(&x->lock) __acquires(a)\n{\n\treturn 0;\n}\n';
    const r = prefilter(src);
    expectShapeKept(src, r.text);
    expect(r.text).not.toMatch(/__must_check|__user|__must_hold|__acquires/);
    expect(r.annotations.map((a) => [a.kind, a.arg])).toEqual([['must_hold', '&x->lock'], ['acquires', 'a']]);
    expect(src.slice(r.annotations[0]!.offset)).toMatch(/^__must_hold/);
  });

  it('blanks __attribute__((...)), __printf and EXPORT_SYMBOL lines', () => {
    const src = 'void __printf(2, 3) log(int a, const char *f, ...) __attribute__((cold));\nEXPORT_SYMBOL_GPL(log);\nMODULE_PARM_DESC(x, "a; b)");\nint y;\n';
    const r = prefilter(src);
    expectShapeKept(src, r.text);
    expect(r.text).toMatch(/^void {16}log\(int a, const char \*f, \.\.\.\) +;$/m);
    expect(r.text.split('\n')[1]!.trim()).toBe('');
    expect(r.text.split('\n')[2]!.trim()).toBe('');
    expect(r.text).toContain('int y;');
  });

  it('turns macro type arguments into identifiers but leaves casts alone', () => {
    const src = 'x = container_of(p, struct foo, node);\ny = min_t(unsigned long, a, b);\nz = offsetof(struct bar, m);\nw = (struct foo *)q;\nv = list_first_entry(h,\n\t\tstruct foo, node);\n';
    const r = prefilter(src);
    expectShapeKept(src, r.text);
    expect(r.text).toContain('container_of(p, struct_foo, node)');
    expect(r.text).toContain('min_t(unsigned_long, a, b)');
    expect(r.text).toContain('offsetof(struct_bar, m)');
    expect(r.text).toContain('(struct foo *)q');
    expect(r.text).toContain('\t\tstruct_foo, node)');
  });

  it('spells DECLARE_BITMAP as an array and records DEFINE_MUTEX globals', () => {
    const src = 'struct s {\n\tDECLARE_BITMAP(apm, AP_DEVICES);\n};\nstatic DEFINE_MUTEX(ap_perms_mutex);\n';
    const r = prefilter(src);
    expectShapeKept(src, r.text);
    expect(r.text).toContain('unsigned long apm[AP_DEVICES]');
    expect(r.macroGlobals).toEqual([{ name: 'ap_perms_mutex', type: 'struct mutex', offset: src.indexOf('DEFINE_MUTEX') }]);
  });

  it('blanks case ranges and rewrites loop macros into while statements', () => {
    const src = 'void f(void)\n{\n\tswitch (x) {\n\tcase 1 ... 5:\n\t\tbreak;\n\t}\n\tlist_for_each_entry(p, &h, node) {\n\t\tg(p);\n\t}\n\tfor_each_set_bit(b, m, 8)\n\t\tg(b);\n\titerate(a, b);\n}\n';
    const r = prefilter(src);
    expectShapeKept(src, r.text);
    expect(r.text).toContain('case 1      :');
    expect(r.text).toContain('while              (p, &h, node) {');
    expect(r.text).toContain('while           (b, m, 8)');
    // A call statement ending in `;` is a call, not a loop.
    expect(r.text).toContain('iterate(a, b);');
  });

  it('does not rewrite function pointer members, initialisers or file-scope macros', () => {
    const src = 'struct ops {\n\tssize_t (*show)(struct kobject *k,\n\t\tchar *buf);\n};\nstatic const struct dev_pm_ops pm = {\n\tSET_RUNTIME_PM_OPS(a, b, NULL)\n};\nTRACE_EVENT(foo,\n\tTP_PROTO(int a)\n)\n';
    const r = prefilter(src);
    expect(r.text).toBe(src);
  });
});

describe('parseC', () => {
  beforeAll(() => loadParser());

  it('parses every fixture without ERROR nodes after the pre-filter', () => {
    for (const name of ['cmodel-events.c', 'cmodel-locks-a.c', 'cmodel-locks-b.c', 'cmodel-helpers.c', 'cmodel-flow.c', 'cmodel-locks-h.c']) {
      const p = parseC(fixture(name), name);
      expect(p.failure).toBeNull();
      const stats = functionErrorStats(p);
      // cmodel-flow.c's `each(g, d) {` is left for the extractor's re-attachment: a MISSING `;`, not an ERROR.
      expect(stats.withError, name).toBe(0);
      expect(stats.withMissing, name).toBe(name === 'cmodel-flow.c' ? 1 : 0);
      disposeParsed(p);
      expect(p.tree).toBeNull();
    }
  });

  it('keeps going through macros it cannot parse', () => {
    const src = 'int ok1(void) { return 1; }\nint bad(void) { FOO BAR BAZ(; return 2; }\nint ok2(void) { return 3; }\n';
    const p = parseC(src, 'x.c');
    expect(p.failure).toBeNull();
    expect(functionErrorStats(p).functions).toBeGreaterThanOrEqual(2);
    disposeParsed(p);
  });
});
