import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, createModelCache } from '../../src/cmodel/build.js';
import { findFunction, resolveCall, summaryOf, type FunctionSummary, type TreeModel } from '../../src/cmodel/model.js';
import { exploreOf, isErrorReturn, pathsOf } from '../../src/cmodel/context.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/c/${name}`, import.meta.url), 'utf8');
const src = fixture('cmodel-helpers.c');

function memoryTree(files: Record<string, string>): { readFile(p: string): string | null; list(d: string): string[] } {
  const map = new Map(Object.entries(files));
  return {
    readFile: (p) => map.get(p) ?? null,
    list: (d) => [...map.keys()].filter((p) => p.startsWith(`${d}/`) && !p.slice(d.length + 1).includes('/')).map((p) => p.slice(d.length + 1)),
  };
}

function marker(name: string): number {
  const i = src.split('\n').findIndex((l) => new RegExp(String.raw`@${name}\b`).test(l));
  if (i < 0) throw new Error(`no marker @${name}`);
  return i + 1;
}

let model: TreeModel;
const tree = { 'drivers/fake/cmodel-locks.h': fixture('cmodel-locks-h.c'), 'drivers/fake/cmodel-helpers.c': src };

beforeAll(async () => {
  model = await buildModel(memoryTree(tree), ['drivers/fake/cmodel-helpers.c']);
});

function summary(name: string): FunctionSummary {
  const s = summaryOf(model, findFunction(model, name)!);
  if (!s) throw new Error(`no summary for ${name}`);
  return s;
}

const classes = (refs: { cls: string }[]): string[] => refs.map((r) => r.cls).sort();

describe('lock helper summaries', () => {
  it('summarises a helper taking locks, with the condition of the conditional one', () => {
    const s = summary('get_locks');
    expect(s.outcomes).toHaveLength(2);
    const withKvm = s.outcomes.find((o) => o.assume.some((a) => a.truth))!;
    expect(withKvm.assume).toEqual([{ cond: 'g && g->parent->kvm', truth: true }]);
    expect(classes(withKvm.acquire)).toEqual(['gadget_dev.list_lock', 'gadget_dev.lock', 'kvm.lock']);
    expect(classes(s.outcomes.find((o) => o !== withKvm)!.acquire)).toEqual(['gadget_dev.list_lock', 'gadget_dev.lock']);
    expect(classes(s.acquires)).toEqual(['gadget_dev.list_lock', 'gadget_dev.lock', 'kvm.lock']);
    expect(s.orderEdges.map((e) => `${e.outer}>${e.inner}`).sort()).toEqual([
      'gadget_dev.list_lock>gadget_dev.lock', 'gadget_dev.list_lock>kvm.lock', 'kvm.lock>gadget_dev.lock',
    ]);
  });

  it('summarises the release helper as releasing the caller\'s locks', () => {
    const s = summary('put_locks');
    expect(classes(s.releases)).toEqual(['gadget_dev.list_lock', 'gadget_dev.lock', 'kvm.lock']);
    expect(s.outcomes.every((o) => o.acquire.length === 0)).toBe(true);
  });

  it('applies helper summaries at call sites: balanced caller, locks held at the call in between', () => {
    const fn = findFunction(model, 'caller_ok')!;
    for (const p of pathsOf(model, fn)) {
      expect(p.held).toEqual([]);
      expect(p.issues).toEqual([]);
    }
    const ex = exploreOf(model, fn);
    const call = fn.events.find((e) => e.kind === 'call' && e.line === marker('call_needs'))!;
    expect([...ex.heldAt.get(call)!.must].sort()).toEqual(['gadget_dev.list_lock', 'gadget_dev.lock']);
    const s = summary('caller_ok');
    expect(s.outcomes).toEqual([{ assume: [{ cond: '$ret', truth: false }], acquire: [], release: [], error: false, returns: 'zero' }]);
    expect(s.takes.map((t) => `${t.cls}<${t.via.join('>')}`).sort()).toEqual([
      'gadget_dev.list_lock<get_locks', 'gadget_dev.lock<get_locks', 'kvm.lock<get_locks',
    ]);
    expect(s.requires).toEqual([]);
  });

  it('records requirements from __must_hold and lockdep_assert_held, and propagates unmet ones to callers', () => {
    expect(summary('needs_locks').requires.map((r) => `${r.source}:${r.cls}`)).toEqual(['annotation:gadget_dev.lock', 'assert:gadget_dev.list_lock']);
    const missing = summary('caller_missing').requires;
    expect(missing.map((r) => `${r.source}:${r.cls}:${r.line}:${r.via.join('>')}`)).toEqual([
      `callee:gadget_dev.lock:${marker('call_needs_unlocked')}:needs_locks`,
      `callee:gadget_dev.list_lock:${marker('call_needs_unlocked')}:needs_locks`,
    ]);
  });

  it('takes __must_hold from a header prototype, renamed to the definition\'s parameters', () => {
    expect(summary('gadget_locked_op').requires).toMatchObject([{ cls: 'gadget.lock', lock: 'g->lock', source: 'annotation' }]);
  });

  it('substitutes the caller\'s argument for a lock passed by pointer', () => {
    const fn = findFunction(model, 'uses_param_helpers')!;
    const ps = [...pathsOf(model, fn)];
    expect(ps).toHaveLength(1);
    expect(ps[0]!.held).toEqual([]);
    expect(ps[0]!.issues).toEqual([]);
    const store = ps[0]!.steps.find((s) => s.event.line === marker('param_locked'))!;
    expect(store.held.map((h) => [h.cls, h.via])).toEqual([['gadget.lock', 'lock_param']]);
  });

  it('correlates a helper\'s error return with the caller\'s test of the result', () => {
    const fn = findFunction(model, 'use_lock_or_fail')!;
    const ps = [...pathsOf(model, fn)];
    expect(ps).toHaveLength(2);
    for (const p of ps) {
      expect(p.held).toEqual([]);
      expect(p.issues).toEqual([]);
    }
    expect(isErrorReturn('-ENODEV')).toBe(true);
    expect(isErrorReturn('0')).toBe(false);
    expect(isErrorReturn('ret')).toBeNull();
  });
});

describe('ops structures', () => {
  it('binds designated initialisers, with or without &', () => {
    expect(model.ops.get('in_use')).toMatchObject([{ structType: 'gadget_ops', variable: 'my_ops', fn: 'gadget_in_use' }]);
    expect(model.ops.get('remove')).toMatchObject([{ fn: 'gadget_remove' }]);
  });

  it('resolves ops->in_use() to the bound function and carries its locks into the caller\'s order edges', () => {
    const fn = findFunction(model, 'check_in_use')!;
    const call = fn.events.find((e) => e.kind === 'call' && e.line === marker('ops_call'))!;
    expect(call.kind === 'call' && resolveCall(model, call, fn).map((f) => f.name)).toEqual(['gadget_in_use']);
    const s = summary('check_in_use');
    expect(s.indirect).toEqual([{ member: 'in_use', line: marker('ops_call'), candidates: ['gadget_in_use'] }]);
    expect(s.orderEdges).toContainEqual({ outer: 'gadget_global_mutex', inner: 'gadget_dev.lock', line: marker('ops_call'), outerLine: marker('ops_call') - 1, via: ['gadget_in_use'], trylock: false });
  });
});

describe('summary facts', () => {
  it('records callees, fields, sleeping and accesses with the locks held', () => {
    const s = summary('gadget_in_use');
    expect(s.fieldsRead).toEqual(['gadget.state']);
    expect(s.sleeps).toMatchObject({ api: 'mutex_lock', via: [] });
    expect(s.accesses).toMatchObject([{ cls: 'gadget.state', kind: 'load', held: ['gadget_dev.lock'] }]);
    expect(summary('caller_ok').callees).toEqual(['get_locks', 'needs_locks', 'put_locks']);
    expect(summary('caller_ok').sleeps).toMatchObject({ api: 'mutex_lock', via: ['get_locks'] });
    expect(summary('needs_locks').fieldsWritten).toEqual(['gadget.state']);
  });
});

describe('buildModel', () => {
  it('pulls in sibling files that define callees or bind ops members, and reuses cached file models', async () => {
    const files = {
      ...tree,
      'drivers/fake/user.c': '#include "cmodel-locks.h"\nint user(struct gadget *g, const struct gadget_ops *ops)\n{\n\tmutex_lock(&g->lock);\n\tops->in_use(g);\n\tmutex_unlock(&g->lock);\n\treturn 0;\n}\n',
      'drivers/fake/unrelated.c': 'int unrelated(void)\n{\n\treturn 1;\n}\n',
    };
    const cache = createModelCache();
    const m = await buildModel(memoryTree(files), ['drivers/fake/user.c'], { cache });
    expect(m.context).toEqual(['drivers/fake/cmodel-locks.h', 'drivers/fake/cmodel-helpers.c']);
    const s = summaryOf(m, findFunction(m, 'user')!)!;
    expect(s.orderEdges.map((e) => `${e.outer}>${e.inner}`)).toEqual(['gadget.lock>gadget_dev.lock']);
    const size = cache.files.size;
    await buildModel(memoryTree(files), ['drivers/fake/user.c'], { cache });
    expect(cache.files.size).toBe(size);
  });

  it('tolerates missing files and builds an empty model', async () => {
    const m = await buildModel(memoryTree({}), ['drivers/fake/none.c']);
    expect(m.touched).toEqual([]);
    expect(m.summaries.size).toBe(0);
  });
});
