import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/cmodel/build.js';
import { findFunction, type TreeModel } from '../../src/cmodel/model.js';
import type { PathResult } from '../../src/cmodel/paths.js';
import { exploreOf, pathsOf } from '../../src/cmodel/context.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/c/${name}`, import.meta.url), 'utf8');
const flowSrc = fixture('cmodel-flow.c');
const helpersSrc = fixture('cmodel-helpers.c');

function memoryTree(names: string[]): { readFile(p: string): string | null } {
  // Fixtures are all .c files; the header one is served under its real name.
  const files = new Map(names.map((n) => [`drivers/fake/${n.replace(/-h\.c$/, '.h')}`, fixture(n)]));
  return { readFile: (p) => files.get(p) ?? null };
}

function marker(src: string, name: string): number {
  const i = src.split('\n').findIndex((l) => new RegExp(String.raw`@${name}\b`).test(l));
  if (i < 0) throw new Error(`no marker @${name}`);
  return i + 1;
}

let model: TreeModel;

beforeAll(async () => {
  model = await buildModel(memoryTree(['cmodel-locks-h.c', 'cmodel-flow.c', 'cmodel-helpers.c']), ['drivers/fake/cmodel-flow.c', 'drivers/fake/cmodel-helpers.c']);
});

function paths(name: string): PathResult[] {
  return [...pathsOf(model, findFunction(model, name)!)];
}

/** Classes held just before the first event on `line`, per path that reaches it. */
function heldAt(ps: PathResult[], line: number): string[][] {
  return ps.flatMap((p) => {
    const s = p.steps.find((x) => x.event.line === line);
    return s ? [s.held.map((h) => h.cls)] : [];
  });
}

function clean(ps: PathResult[]): void {
  expect(ps.length).toBeGreaterThan(0);
  for (const p of ps) {
    expect(p.held.map((h) => h.cls), `held at exit line ${p.exit.line}`).toEqual([]);
    expect(p.issues, `issues on path to line ${p.exit.line}`).toEqual([]);
  }
}

describe('scope-based locks', () => {
  it('releases guard() at every exit of its block, including early returns', () => {
    const ps = paths('guarded');
    clean(ps);
    expect(heldAt(ps, marker(flowSrc, 'guard_held'))).toEqual([['gadget.lock']]);
    const early = ps.find((p) => p.exit.line === marker(flowSrc, 'guard_return'))!;
    expect(early.exit.returns).toBe('-EBUSY');
    expect(early.steps.some((s) => s.event.kind === 'lock' && s.event.op === 'release')).toBe(true);
  });

  it('releases guard() at the end of an inner block', () => {
    const ps = paths('guarded_block');
    clean(ps);
    expect(heldAt(ps, marker(flowSrc, 'in_guard_block'))).toEqual([['gadget_dev.slock']]);
    expect(heldAt(ps, marker(flowSrc, 'after_guard_block'))).toEqual([[], []]);
  });

  it('holds scoped_guard() for its body only', () => {
    const ps = paths('scoped');
    clean(ps);
    expect(heldAt(ps, marker(flowSrc, 'in_scoped'))).toEqual([['gadget.lock']]);
    expect(heldAt(ps, marker(flowSrc, 'after_scoped'))).toEqual([[]]);
  });
});

describe('loops and unwinding', () => {
  it('walks list_for_each_entry bodies zero, one and two times under the outer lock', () => {
    const ps = paths('walk_list');
    clean(ps);
    expect(ps).toHaveLength(3);
    expect(heldAt(ps, marker(flowSrc, 'in_list'))).toEqual([['gadget_dev.list_lock'], ['gadget_dev.list_lock']]);
    // The re-attached `each(g, d) {` block is an iterator too.
    expect(paths('walk_short')).toHaveLength(3);
  });

  it('follows goto error unwinding to the labels in order', () => {
    const ps = paths('unwind');
    clean(ps);
    expect(ps.map((p) => p.exit.returns).sort()).toEqual(['0', 'ret', 'ret']);
    const undo = ps.find((p) => p.steps.some((s) => s.event.line === marker(flowSrc, 'undo')))!;
    expect(undo.steps.filter((s) => s.event.kind === 'call').map((s) => (s.event.kind === 'call' ? s.event.callee : ''))).toEqual([
      'mutex_lock', 'step_one', 'step_two', 'undo_one', 'mutex_unlock',
    ]);
  });

  it('reports the early return that keeps the lock', () => {
    const ps = paths('leaky');
    const leak = ps.find((p) => p.exit.line === marker(flowSrc, 'leak'))!;
    expect(leak.held.map((h) => h.cls)).toEqual(['gadget.lock']);
    expect(leak.exit.returns).toBe('-EINVAL');
    const ok = ps.filter((p) => p !== leak);
    expect(ok.every((p) => p.held.length === 0)).toBe(true);
  });

  it('walks switch cases with fall-through and a default that returns', () => {
    const ps = paths('switched');
    clean(ps);
    expect(ps.map((p) => p.exit.returns).sort()).toEqual(['-ENOTTY', 'ret', 'ret', 'ret']);
    // case 4 falls into case 5.
    expect(heldAt(ps, marker(flowSrc, 'case5'))).toHaveLength(2);
  });

  it('runs do-while(0) once and leaves for(;;) only by break', () => {
    const ps = paths('once');
    expect(ps.every((p) => p.steps.filter((s) => s.event.line === marker(flowSrc, 'do_once') && s.event.kind === 'store').length === 1)).toBe(true);
    expect(ps.every((p) => p.steps.some((s) => s.event.line === marker(flowSrc, 'after_forever')))).toBe(true);
  });

  it('reports a lock taken twice', () => {
    const issues = paths('double_take').flatMap((p) => p.issues);
    expect(issues).toMatchObject([{ kind: 'double-acquire', cls: 'gadget.lock', line: marker(flowSrc, 'double') }]);
  });
});

describe('conditional acquires', () => {
  it('holds a trylock only on its success edge', () => {
    const ps = paths('try_busy');
    clean(ps);
    expect(ps.find((p) => p.exit.line === marker(flowSrc, 'busy'))!.exit.returns).toBe('-EBUSY');
    expect(heldAt(ps, marker(flowSrc, 'try_held'))).toEqual([['gadget.lock']]);
    // The trylock is a step of both paths, with its outcome.
    const tries = ps.map((p) => p.steps.find((s) => s.event.kind === 'lock' && s.event.api === 'mutex_trylock')?.acquired);
    expect(tries.sort()).toEqual([false, true]);
  });

  it('decides `ret = mutex_lock_interruptible(); if (ret)` on the test of ret', () => {
    const ps = paths('intr_ret');
    clean(ps);
    expect(heldAt(ps, marker(flowSrc, 'intr_held'))).toEqual([['gadget.lock']]);
  });

  it('correlates identical conditions: `if (kvm) lock ... if (kvm) unlock` has two feasible paths', () => {
    const ps = paths('cond_lock');
    clean(ps);
    expect(ps).toHaveLength(2);
    clean(paths('cond_lock_negated'));
  });

  it('forgets the correlation when the condition variable is reassigned', () => {
    const ps = paths('cond_lock_reassigned');
    expect(ps).toHaveLength(4);
    expect(ps.some((p) => p.issues.some((i) => i.kind === 'release-unheld' && i.line === marker(helpersSrc, 'reassigned_unlock')))).toBe(true);
    expect(ps.some((p) => p.held.some((h) => h.cls === 'kvm.lock'))).toBe(true);
  });
});

describe('explore', () => {
  it('gives the locks held on every state at an event, and the same exits as the paths', () => {
    const fn = findFunction(model, 'walk_list')!;
    const ex = exploreOf(model, fn);
    const line = marker(flowSrc, 'in_list');
    const acquire = fn.events.find((e) => e.kind === 'lock' && e.line === line)!;
    expect(ex.heldAt.get(acquire)?.must).toEqual(['gadget_dev.list_lock']);
    expect(ex.exits.every((e) => e.held.length === 0)).toBe(true);
    expect(ex.truncated).toBe(false);
  });
});
