import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelFile, type FileModel } from '../../src/cmodel/declarations.js';
import type { Event } from '../../src/cmodel/events.js';
import type { FunctionModel, Stmt } from '../../src/cmodel/functions.js';
import { loadParser } from '../../src/cmodel/parse.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/c/${name}`, import.meta.url), 'utf8');

/** The line carrying the fixture marker `@name`. */
function marker(src: string, name: string): number {
  const i = src.split('\n').findIndex((l) => new RegExp(String.raw`@${name}\b`).test(l));
  if (i < 0) throw new Error(`no marker @${name}`);
  return i + 1;
}

let events: FileModel;
let flow: FileModel;
const src = fixture('cmodel-events.c');
const flowSrc = fixture('cmodel-flow.c');

beforeAll(async () => {
  await loadParser();
  events = modelFile(src, 'drivers/fake/cmodel-events.c');
  flow = modelFile(flowSrc, 'drivers/fake/cmodel-flow.c');
});

function fn(file: FileModel, name: string): FunctionModel {
  const f = file.functions.find((x) => x.name === name);
  if (!f) throw new Error(`no function ${name}`);
  return f;
}

function at<K extends Event['kind']>(f: FunctionModel, kind: K, line: number): Extract<Event, { kind: K }>[] {
  return f.events.filter((e): e is Extract<Event, { kind: K }> => e.kind === kind && e.line === line);
}

describe('function signatures', () => {
  it('records name, lines, params with types, locals and annotations', () => {
    const f = fn(events, 'lock_calls');
    expect(f.line).toBe(marker(src, 'mutex_lock') - 5);
    expect(f.isStatic).toBe(true);
    expect(f.returnType).toBe('int');
    expect(f.params).toEqual([
      { name: 'w', type: 'struct widget *', line: f.line },
      { name: 'dev', type: 'struct device *', line: f.line },
    ]);
    expect(f.locals.map((l) => [l.name, l.type])).toEqual([['flags', 'unsigned long'], ['idx', 'int']]);
    expect(f.annotations.map((a) => [a.kind, a.arg])).toEqual([['must_hold', '&w->lock']]);
    expect(f.hasError).toBe(false);
  });

  it('collects structs (DECLARE_BITMAP as an array), globals from DEFINE_MUTEX and prototypes', () => {
    const widget = events.structs.find((s) => s.name === 'widget')!;
    expect(widget.fields.find((f) => f.name === 'bits')?.type).toBe('unsigned long []');
    expect(widget.fields.find((f) => f.name === 'next')?.type).toBe('struct widget *');
    expect(events.globals.find((g) => g.name === 'big_lock')).toMatchObject({ type: 'struct mutex', isStatic: true });
    expect(events.includes).toEqual([{ path: 'cmodel-events.h', system: false, line: 3 }]);
  });
});

describe('lock events', () => {
  it('classifies every lock API with flavor, mode and the lock object', () => {
    const f = fn(events, 'lock_calls');
    const locks = f.events.filter((e) => e.kind === 'lock');
    const summary = locks.map((e) => `${e.op}:${e.api}:${e.flavor}:${e.mode}:${e.lock}`);
    expect(summary).toEqual([
      'acquire:mutex_lock:mutex:exclusive:big_lock',
      'acquire:mutex_lock_nested:mutex:exclusive:w->lock',
      'acquire:spin_lock_irqsave:spinlock:exclusive:w->slock',
      'release:spin_unlock_irqrestore:spinlock:exclusive:w->slock',
      'acquire:spin_lock_bh:spinlock:exclusive:w->slock',
      'release:spin_unlock_bh:spinlock:exclusive:w->slock',
      'acquire:raw_spin_lock:raw_spinlock:exclusive:raw_global',
      'release:raw_spin_unlock:raw_spinlock:exclusive:raw_global',
      'acquire:read_lock:rwlock:shared:w->rwl',
      'release:read_unlock:rwlock:shared:w->rwl',
      'acquire:write_lock_irq:rwlock:exclusive:w->rwl',
      'release:write_unlock_irq:rwlock:exclusive:w->rwl',
      'acquire:down_read:rwsem:shared:w->sem',
      'release:up_read:rwsem:shared:w->sem',
      'acquire:down_write_nested:rwsem:exclusive:w->sem',
      'release:up_write:rwsem:exclusive:w->sem',
      'acquire:rcu_read_lock:rcu:shared:rcu',
      'release:rcu_read_unlock:rcu:shared:rcu',
      'acquire:srcu_read_lock:srcu:shared:w->srcu',
      'release:srcu_read_unlock:srcu:shared:w->srcu',
      'acquire:device_lock:device:exclusive:dev->mutex',
      'release:device_unlock:device:exclusive:dev->mutex',
      'assert_held:lockdep_assert_held:mutex:exclusive:w->lock',
      'assert_held:mutex_is_locked:mutex:exclusive:big_lock',
      'release:mutex_unlock:mutex:exclusive:w->lock',
      'release:mutex_unlock:mutex:exclusive:big_lock',
      'acquire:mutex_trylock:mutex:exclusive:w->lock',
      'release:mutex_unlock:mutex:exclusive:w->lock',
      'acquire:mutex_lock_interruptible:mutex:exclusive:w->lock',
      'release:mutex_unlock:mutex:exclusive:w->lock',
    ]);
    expect(at(f, 'lock', marker(src, 'trylock'))[0]?.acquiredWhen).toBe('nonzero');
    expect(at(f, 'lock', marker(src, 'interruptible'))[0]?.acquiredWhen).toBe('zero');
    expect(at(f, 'lock', marker(src, 'mutex_lock'))[0]?.acquiredWhen).toBeNull();
    // Every lock API call is also a call event, marked special.
    expect(at(f, 'call', marker(src, 'mutex_lock'))[0]).toMatchObject({ callee: 'mutex_lock', special: true });
  });

  it('decides trylock and interruptible acquires on the if condition polarity', () => {
    const f = fn(events, 'lock_calls');
    const ifs = f.body.filter((s): s is Extract<Stmt, { kind: 'if' }> => s.kind === 'if');
    expect(ifs.map((s) => [s.cond, s.condLocks.map((c) => c.acquiredIf)])).toEqual([
      ['!mutex_trylock(&w->lock)', [false]],
      ['mutex_lock_interruptible(&w->lock)', [false]],
    ]);
  });

  it('records the WARN_ON and its locked-assertion', () => {
    const f = fn(events, 'lock_calls');
    const line = marker(src, 'warn_locked');
    expect(at(f, 'bug', line)).toMatchObject([{ api: 'WARN_ON', fatal: false, cond: '!mutex_is_locked(&big_lock)' }]);
  });
});

describe('memory-model events', () => {
  it('classifies atomics, refcounts and krefs', () => {
    const f = fn(events, 'atomics');
    expect(f.events.filter((e) => e.kind === 'atomic').map((e) => `${e.api}:${e.op}:${e.target}`)).toEqual([
      'atomic_read:read:w->users', 'atomic_set:set:w->users', 'atomic_inc:rmw:w->users', 'atomic_dec_and_test:test:w->users',
      'atomic_cmpxchg:cmpxchg:w->users', 'refcount_inc:rmw:w->refs', 'kref_get:get:w->kref', 'kref_put:put:w->kref', 'set_bit:rmw:*w->bits',
    ]);
    expect(at(f, 'free', marker(src, 'kref_put'))).toMatchObject([{ api: 'kref_put' }]);
  });

  it('records READ_ONCE/WRITE_ONCE and acquire/release accessors without plain accesses', () => {
    const f = fn(events, 'ordering');
    expect(f.events.filter((e) => e.kind === 'marked').map((e) => `${e.api}:${e.access}:${e.ordering}:${e.target}`)).toEqual([
      'READ_ONCE:load:once:w->state', 'WRITE_ONCE:store:once:w->state', 'smp_store_release:store:release:w->state', 'smp_load_acquire:load:acquire:w->state',
    ]);
    expect(f.events.filter((e) => e.kind === 'barrier').map((e) => `${e.api}:${e.ordering}`)).toEqual([
      'smp_mb:full', 'smp_rmb:read', 'smp_wmb:write', 'smp_mb__before_atomic:before_atomic', 'smp_mb__after_atomic:after_atomic',
    ]);
    expect(f.events.some((e) => e.kind === 'load' || e.kind === 'store')).toBe(false);
  });

  it('records field stores and loads with base and member, not under & or sizeof', () => {
    const f = fn(events, 'fields');
    expect(at(f, 'store', marker(src, 'store_arrow'))).toMatchObject([{ base: 'w', member: 'state', value: '1', operator: '=' }]);
    expect(at(f, 'store', marker(src, 'store_dot'))).toMatchObject([{ base: 'copy', member: 'state', value: '2' }]);
    expect(at(f, 'load', marker(src, 'load'))).toMatchObject([{ base: 'w', member: 'state', target: 'w->state' }]);
    const compound = marker(src, 'compound');
    expect(f.events.filter((e) => e.line === compound).map((e) => `${e.kind}:${'target' in e ? e.target : ''}`)).toEqual([
      'load:w->next', 'load:w->next->state', 'store:w->next->state',
    ]);
    expect(at(f, 'load', marker(src, 'no_load_under_amp'))).toEqual([]);
    expect(f.events.filter((e) => e.kind === 'load' && e.line > marker(src, 'no_load_under_amp'))).toEqual([]);
  });
});

describe('resource events', () => {
  it('records allocations with gfp flags, user copies, frees, sleeps and BUG/WARN', () => {
    const f = fn(events, 'memory');
    expect(at(f, 'alloc', marker(src, 'alloc_kernel'))).toMatchObject([{ api: 'kzalloc', gfp: 'GFP_KERNEL', atomic: false }]);
    expect(at(f, 'alloc', marker(src, 'alloc_atomic'))).toMatchObject([{ api: 'kmalloc', gfp: 'GFP_ATOMIC', atomic: true }]);
    expect(f.events.filter((e) => e.kind === 'user_copy').map((e) => `${e.api}:${e.direction}`)).toEqual(['copy_from_user:from', 'get_user:from', 'copy_to_user:to', 'put_user:to']);
    expect(f.events.filter((e) => e.kind === 'free').map((e) => e.api)).toEqual(['kfree', 'kvfree', 'vfree', 'kfree_rcu', 'put_device', 'kobject_put']);
    expect(at(f, 'free', marker(src, 'kfree'))).toMatchObject([{ target: 'a' }]);
    expect(at(f, 'sleep', marker(src, 'msleep'))).toMatchObject([{ api: 'msleep' }]);
    expect(at(f, 'bug', marker(src, 'bug_on'))).toMatchObject([{ api: 'BUG_ON', fatal: true, cond: '!w' }]);
    expect(at(f, 'bug', marker(src, 'warn_once'))).toMatchObject([{ api: 'WARN_ON_ONCE', fatal: false }]);
  });

  it('pairs registrations with their undo and records returns with their expression', () => {
    const f = fn(events, 'registration');
    expect(at(f, 'init', marker(src, 'init_work'))).toMatchObject([{ api: 'INIT_WORK', target: 'w->work' }]);
    expect(at(f, 'register', marker(src, 'register'))).toMatchObject([{ api: 'mdev_register_parent', undo: ['mdev_unregister_parent'] }]);
    expect(at(f, 'register', marker(src, 'request_irq'))).toMatchObject([{ api: 'request_irq', undo: ['free_irq'] }]);
    expect(f.events.filter((e) => e.kind === 'register').map((e) => e.api)).toEqual(['mdev_register_parent', 'request_irq', 'sysfs_create_group']);
    expect(at(f, 'unregister', marker(src, 'free_irq'))[0]?.undoes).toContain('request_irq');
    expect(at(f, 'unregister', marker(src, 'unregister'))[0]?.undoes).toEqual(['mdev_register_parent']);
    expect(f.events.filter((e) => e.kind === 'return').map((e) => e.expr)).toEqual(['0', 'ret']);
  });

  it('records file descriptors handed to userspace', () => {
    const f = fn(events, 'fds');
    expect(f.events.filter((e) => e.kind === 'fd').map((e) => e.api)).toEqual(['anon_inode_getfd', 'anon_inode_getfile', 'fd_install', 'dma_buf_fd']);
  });

  it('records calls with arguments, and calls through ops members as indirect', () => {
    const f = fn(events, 'calls');
    expect(at(f, 'call', marker(src, 'call_helper'))).toMatchObject([{ callee: 'helper', args: ['w', 'w->state + 1'], indirect: null, special: false }]);
    expect(at(f, 'call', marker(src, 'indirect'))).toMatchObject([{ callee: 'in_use', indirect: { base: 'ops', member: 'in_use' } }]);
    expect(f.events.filter((e) => e.kind === 'call').map((e) => e.callee)).toEqual(['helper', 'in_use', 'probe']);
  });
});

describe('statements', () => {
  it('re-attaches list_for_each_entry bodies (pre-filter form) and detached macro blocks (fallback)', () => {
    const list = fn(flow, 'walk_list').body.find((s) => s.kind === 'loop')!;
    expect(list).toMatchObject({ kind: 'loop', loop: 'macro', macro: 'list_for_each_entry', cond: 'list_for_each_entry(g, &d->items, node)' });
    const inner = (list as Extract<Stmt, { kind: 'loop' }>).body.flatMap((s) => ('events' in s ? s.events : []));
    expect(inner.some((e) => e.kind === 'lock' && e.line === marker(flowSrc, 'in_list'))).toBe(true);
    const each = fn(flow, 'walk_short').body.find((s) => s.kind === 'loop')!;
    expect(each).toMatchObject({ kind: 'loop', loop: 'macro', macro: 'each', line: marker(flowSrc, 'in_each') - 1 });
    expect((each as Extract<Stmt, { kind: 'loop' }>).body).toHaveLength(1);
  });

  it('models scoped_guard as a scope with its lock and guard() as a scoped acquire', () => {
    const scoped = fn(flow, 'scoped').body[0]!;
    expect(scoped.kind).toBe('scoped');
    const header = (scoped as Extract<Stmt, { kind: 'scoped' }>).header.filter((e) => e.kind === 'lock');
    expect(header).toMatchObject([{ op: 'acquire', api: 'scoped_guard(mutex)', lock: 'g->lock', scope: 'scoped_guard' }]);
    const g = fn(flow, 'guarded').events.find((e) => e.kind === 'lock');
    expect(g).toMatchObject({ op: 'acquire', api: 'guard(mutex)', lock: 'g->lock', scope: 'guard' });
  });

  it('models switch cases (with ranges and fall-through), gotos, labels and loops', () => {
    const sw = fn(flow, 'switched').body.find((s) => s.kind === 'switch') as Extract<Stmt, { kind: 'switch' }>;
    expect(sw.cases.map((c) => [c.values, c.isDefault])).toEqual([[['1 ... 3'], false], [['4'], false], [['5'], false], [[], true]]);
    const unwind = fn(flow, 'unwind').body.map((s) => s.kind);
    expect(unwind).toEqual(['decl', 'expr', 'expr', 'if', 'expr', 'if', 'expr', 'return', 'label', 'expr', 'label', 'expr', 'return']);
    const once = fn(flow, 'once').body;
    expect(once.map((s) => (s.kind === 'loop' ? `${s.loop}:${s.once}:${s.infinite}` : s.kind))).toEqual(['do:true:false', 'for:false:true', 'expr']);
  });
});
