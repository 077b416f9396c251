/**
 * C model events to simulator ops: locks by class, shared fields by class (or by the scenario
 * object their root is bound to), atomics after atomic_t.txt (atomic_set/atomic_read are plain
 * accesses; value-returning RMWs are fully ordered), READ_ONCE/acquire/release, barriers, frees
 * of bound objects, and calls inlined or summarised. A call's result lands in the register of the
 * local it is assigned to, so `rc = ap_drv->in_use(...); if (rc)` is decided by what the callee
 * returned.
 */
import type { AssignEvent, AtomicEvent, CallEvent, Event, FunctionModel, LockEvent, MarkedAccessEvent, StoreEvent } from '../cmodel/index.js';
import { findFunction, resolveCall, summaryOf, textPath } from '../cmodel/index.js';
import type { AccessPath } from '../cmodel/events.js';
import { conditionKey, PURE } from './derive-expr.js';
import type { Deriver, Frame } from './derive-fn.js';
import { containerCall } from './derive-containers.js';
import { builder as t, type Op, type RmwKind } from './model.js';

/** Translate a statement's events in order. */
export function emitEvents(d: Deriver, events: Event[], f: Frame): void {
  const used = new Set<string>();
  for (let i = 0; i < events.length; i++) {
    const ev = events[i]!;
    if (f.handled.has(ev)) continue;
    switch (ev.kind) {
      case 'lock': lockEvent(d, ev, f, events, i); break;
      case 'call': if (!ev.special) callEvent(d, ev, f, events, i); break;
      case 'atomic': atomicEvent(d, ev, f, events, i); break;
      case 'marked': markedEvent(d, ev, f, events, i); break;
      case 'barrier': {
        const at = d.at(f, ev.line);
        if (ev.ordering === 'read') d.emit(t.rmb(at));
        else if (ev.ordering === 'write') d.emit(t.wmb(at));
        else if (ev.ordering !== 'compiler') d.emit(t.mb(at));
        break;
      }
      case 'store': storeEvent(d, ev, f, used); break;
      case 'load': use(d, f, ev.path, 'read', used, ev.line); break;
      case 'assign': assignEvent(d, ev, f); break;
      case 'alloc': {
        // Allocations succeed (failure paths are not modelled): a valid, non-NULL, non-error pointer.
        const asg = resultOf(events, i, (fc) => fc === ev.api);
        if (asg) {
          const reg = resultReg(d, f, ev.offset, asg)!;
          d.emit(t.set(reg, 1, d.at(f, ev.line)));
          d.own.add(reg);
        }
        break;
      }
      case 'register': {
        // Publication is a release (registration takes a mutex): what was set up before is visible
        // to whoever finds the registration. A registration whose result is tested may fail
        // (-EINVAL stands for any error), and then publishes nothing.
        const at = d.at(f, ev.line);
        const asg = resultOf(events, i, (fc) => fc === ev.api);
        const reg = asg ? resultReg(d, f, ev.offset, asg) : null;
        const publish = t.note(t.release(registrationCell(ev.api), 1, at), `${ev.api}() publishes (release)`);
        if (!reg) {
          d.emit(publish);
          break;
        }
        const fail = d.fresh('Lg');
        const end = d.fresh('Lg');
        d.emit(t.either(fail, at));
        d.emit(publish);
        d.emit(t.set(reg, 0));
        d.emit(t.goto(end));
        d.emit(t.label(fail));
        d.emit(t.set(reg, '-EINVAL'));
        d.emit(t.label(end));
        break;
      }
      case 'unregister':
        for (const api of ev.undoes) d.emit(t.release(registrationCell(api), 0, d.at(f, ev.line)));
        break;
      case 'free': {
        // A reference drop (`*_put`, kref_put, fput) frees only when it is the last one, which the
        // model cannot tell; an RCU-deferred free waits for readers. Neither is a free here.
        if (!FREES.has(ev.api)) break;
        const name = ev.target.trim();
        const o = f.objects.get(name);
        // An object no other thread can reach yet: freeing it is this thread's business.
        const mine = f.vars.get(name);
        if (!o && mine && d.own.has(mine)) break;
        if (o) d.emit(t.free(`&${o}`, d.at(f, ev.line)));
        else if (isPointerVar(f, name) && d.loaded.has(f.vars.get(name) ?? '')) d.emit(t.free(f.vars.get(name)!, d.at(f, ev.line)));
        break;
      }
      default: break;
    }
  }
}

/** APIs that free their argument at once. */
const FREES = new Set([
  'kfree', 'kvfree', 'vfree', 'kfree_sensitive', 'kzfree', 'kfree_const', 'kmem_cache_free', 'devm_kfree', 'mempool_free', 'dma_pool_free', 'bitmap_free',
]);

/** The assignment consuming the result of the call/API at `i`, if the statement has one. */
function resultOf(events: Event[], i: number, pred: (fromCall: string) => boolean): AssignEvent | undefined {
  for (let j = i + 1; j < events.length; j++) {
    const e = events[j]!;
    if (e.kind === 'assign' && e.fromCall && pred(e.fromCall) && /^\w+$/.test(e.target.trim())) return e;
  }
  return undefined;
}

/** The register for a result: one the statement chose, else the assigned local's (consuming the assign). */
function resultReg(d: Deriver, f: Frame, offset: number, asg: AssignEvent | undefined): string | null {
  const chosen = f.callRegs.get(offset);
  if (asg) {
    f.handled.add(asg);
    const v = asg.target.trim();
    d.forget(f, v);
    const reg = d.bindVar(f, v);
    d.own.delete(reg);
    if (chosen) return chosen;
    return reg;
  }
  return chosen ?? null;
}

function lockEvent(d: Deriver, ev: LockEvent, f: Frame, events: Event[], i: number): void {
  if (ev.op === 'assert_held' || ev.flavor === 'rcu' || ev.flavor === 'srcu') return;
  const name = d.lockOf(f, ev);
  const at = d.at(f, ev.line);
  if (ev.op === 'release') {
    d.emit(t.unlock(name, at));
    return;
  }
  if (ev.scope) f.guards[f.guards.length - 1]?.push(ev);
  if (!ev.acquiredWhen) {
    d.emit(ev.mode === 'shared' ? t.lockShared(name, at) : t.lock(name, at));
    return;
  }
  const asg = resultOf(events, i, (fc) => fc === ev.api);
  const reg = resultReg(d, f, ev.offset, asg) ?? d.fresh(`${f.prefix}lk`);
  if (ev.acquiredWhen === 'nonzero') d.emit(t.trylock(name, reg, at));
  else {
    // Interruptible/killable: signals are not modelled, the acquire succeeds and returns 0.
    d.emit(t.lock(name, at));
    d.emit(t.set(reg, 0));
  }
}

function callEvent(d: Deriver, ev: CallEvent, f: Frame, events: Event[], i: number): void {
  const member = ev.indirect?.member;
  const asg = resultOf(events, i, (fc) => fc === ev.callee || (member !== undefined && (fc.endsWith(`->${member}`) || fc.endsWith(`.${member}`))));
  const reg = resultReg(d, f, ev.offset, asg);
  const pure = PURE[ev.callee];
  if (pure && !ev.indirect) {
    const v = d.value(f, ev.args[0] ?? '?', ev.line);
    if (reg) {
      d.emit(t.set(reg, v === '?' ? '?' : pure(v), d.at(f, ev.line)));
      // `dma = rb_entry(n, ...)`: the same pointer, checked like the one it came from.
      if (d.loaded.has(v)) d.loaded.add(reg);
      if (d.own.has(v)) d.own.add(reg);
    }
    return;
  }
  if (!ev.indirect && containerCall(d, ev, f, reg)) return;
  let targets = resolveCall(d.model, ev, f.fn);
  const bound = member !== undefined ? d.opts.ops?.[member] : undefined;
  if (bound) targets = targets.filter((fn) => fn.name === bound);
  // Several drivers bind this member and the scenario did not say which: do not guess.
  else if (member !== undefined && targets.length > 1) targets = [];
  let callback = false;
  if (targets.length === 0 && !ev.indirect && !findFunction(d.model, ev.callee, f.fn.file)) {
    // An API outside the model handed one of our functions (bus_for_each_drv(..., fn)): it calls it.
    for (const a of ev.args) {
      const fn = /^\w+$/.test(a.trim()) ? findFunction(d.model, a.trim(), f.fn.file) : null;
      if (fn) {
        targets = [fn];
        callback = true;
        break;
      }
    }
  }
  if (targets.length === 0) {
    publishArgs(d, f, ev.args, member ?? ev.callee);
    if (reg) d.emit(t.set(reg, '?', d.at(f, ev.line)));
    if (reg && ALLOC_CALL.test(member ?? ev.callee)) d.own.add(reg);
    return;
  }
  inline(d, targets[0]!, ev, f, reg, callback);
  if (reg && ALLOC_CALL.test(member ?? ev.callee)) d.own.add(reg);
}

/** Calls that return a new object by their name (`iommu_group_alloc`, `ops->domain_alloc`, `kzalloc`). */
const ALLOC_CALL = /(?:^|_)[kvz]*alloc(?:_[a-z]+)?$|^alloc_/;

/**
 * Pointers handed to code the model does not follow are published: the callee may keep them,
 * unless it is a teardown by its name (`iommu_dma_free_fq(cookie)`, `kfree`, `*_put`). A member's
 * address (`&dom->list`) publishes the object only to an API that links or stores it (`list_add`,
 * `xa_store`, `*_register`); a put or free of a member (`put_iova_domain(&c->iovad)`) does not.
 */
function publishArgs(d: Deriver, f: Frame, args: readonly string[], callee: string): void {
  if (d.own.size === 0 || TEARDOWN_CALL.test(callee)) return;
  const links = LINKING_CALL.test(callee);
  for (const a of args) {
    const bare = /^(?:\([^()]*\)\s*)?&?\s*([A-Za-z_]\w*)$/.exec(a.trim());
    if (bare) publish(d, f, bare[1]!);
    else if (links) publish(d, f, a);
  }
}
const TEARDOWN_CALL = /(?:^|_)(?:free|put|destroy|release|uninit|exit|fini|teardown|unmap|del|remove|clear|dec)(?:_|$)|^kv?free|free$/;
const LINKING_CALL = /(?:^|_)(?:add|insert|store|push|enqueue|register|set|link|attach|queue)(?:_|$)/;

/** The owned pointers a C value mentions are no longer this thread's alone. */
function publish(d: Deriver, f: Frame, text: string): void {
  if (d.own.size === 0) return;
  for (const m of text.matchAll(/[A-Za-z_]\w*/g)) {
    const r = f.vars.get(m[0]);
    if (r) d.own.delete(r);
  }
}

function inline(d: Deriver, target: FunctionModel, ev: CallEvent, f: Frame, reg: string | null, callback: boolean): void {
  const key = `${target.file}:${target.name}`;
  if (f.depth + 1 > d.opts.inlineDepth || f.stack.includes(key) || d.ops.length > d.opts.maxOps || d.opts.opaque?.has(target.name)) {
    publishArgs(d, f, ev.args, ev.indirect?.member ?? ev.callee);
    summarise(d, target, ev, f, reg);
    return;
  }
  const prefix = `${d.fresh(target.name.replace(/\W/g, '_').slice(0, 16))}_`;
  const retLabel = d.fresh('Lr');
  // An empty return register: the caller ignores the result.
  const child = d.frame(target, prefix, f.depth + 1, reg ?? '', retLabel, [...f.stack, key]);
  child.site = d.at(f, ev.line);
  if (!callback) {
    target.params.forEach((p, k) => {
      const a = ev.args[k]?.trim();
      if (a === undefined) return;
      const v = d.value(f, a, ev.line);
      if (v !== '?') d.emit(t.set(d.bindVar(child, p.name), v));
      // A loaded pointer passed on stays checked in the callee (its uses and frees).
      if (d.loaded.has(v)) d.loaded.add(d.bindVar(child, p.name));
      if (d.own.has(v)) d.own.add(d.bindVar(child, p.name));
      const o = f.objects.get(a.replace(/^&/, ''));
      if (o) child.objects.set(p.name, o);
      child.rename.set(p.name, conditionKey(a, (w) => d.canonical(f, w)));
    });
  }
  const via = ev.indirect ? `${ev.indirect.base}->${ev.indirect.member}()` : ev.callee !== target.name ? `${ev.callee}()` : '';
  const marker = d.ops.length;
  d.emit(t.note(t.set(`${prefix}call`, 0, d.at(f, ev.line)), via ? `${via} -> ${target.name}()` : `${target.name}()`));
  d.body(target.body, child);
  d.emit(t.label(retLabel));
  // A callee that touched nothing shared is not worth a line in a trace.
  const SHARED = new Set(['lock', 'unlock', 'trylock', 'read', 'write', 'rmw', 'fence', 'alloc', 'free', 'use']);
  if (!d.ops.slice(marker + 1).some((o) => SHARED.has(o.kind))) {
    const { note: _drop, ...plain } = d.ops[marker]!;
    d.ops[marker] = plain;
  }
}

/** Past the inline bound: the callee's summary, its inner acquisitions as lock/unlock pairs. */
function summarise(d: Deriver, target: FunctionModel, ev: CallEvent, f: Frame, reg: string | null): void {
  const s = summaryOf(d.model, target);
  const at = d.at(f, ev.line);
  const known = (cls: string): boolean => cls !== 'rcu' && !cls.startsWith('?') && !/^(?:local|param):/.test(cls);
  if (s) {
    const held = new Set(s.acquires.map((r) => r.cls));
    for (const u of s.takes) {
      if (u.trylock || held.has(u.cls) || !known(u.cls)) continue;
      const via = [target.name, ...u.via].join(' > ');
      d.emit(t.note(t.lock(u.cls, at), `lock(${u.cls}) in ${via}`));
      d.emit(t.note(t.unlock(u.cls, at), `unlock(${u.cls}) in ${via}`));
    }
    for (const r of s.releases) if (known(r.cls)) d.emit(t.note(t.unlock(r.cls, at), `unlock(${r.cls}) in ${target.name}`));
    for (const r of s.acquires) if (known(r.cls)) d.emit(t.note(t.lock(r.cls, at), `lock(${r.cls}) in ${target.name}`));
  }
  if (reg) d.emit(t.set(reg, '?', at));
}

function argsOf(events: Event[], i: number, api: string): string[] {
  for (let j = i - 1; j >= 0; j--) {
    const e = events[j]!;
    if (e.kind === 'call' && e.callee === api) return e.args;
  }
  return [];
}

function globalCell(d: Deriver, f: Frame, target: string): string | null {
  const name = target.trim().replace(/^&\s*/, '');
  if (!/^\w+$/.test(name) || f.fn.locals.some((l) => l.name === name) || f.fn.params.some((p) => p.name === name)) return null;
  return d.model.env.globals.has(name) || d.model.env.fileGlobals.get(f.fn.file)?.has(name) ? name : null;
}

function atomicEvent(d: Deriver, ev: AtomicEvent, f: Frame, events: Event[], i: number): void {
  const cell = d.cellOf(f, ev.path) ?? globalCell(d, f, ev.target);
  const at = d.at(f, ev.line);
  const args = argsOf(events, i, ev.api);
  const reg = resultReg(d, f, ev.offset, resultOf(events, i, (fc) => fc === ev.api));
  if (!cell) {
    if (reg) d.emit(t.set(reg, '?', at));
    return;
  }
  const api = ev.api;
  const rmw = (kind: RmwKind, r: string | null, arg: string, ordered: boolean, arg2: string | number = 0): Op =>
    ({ kind: 'rmw', cell, rmw: kind, arg, arg2, reg: r, ordered, at });
  const delta = (): string => (/inc/.test(api) ? '1' : /dec/.test(api) ? '-1' : /sub/.test(api) ? `-(${d.value(f, args[0] ?? '?', ev.line)})` : d.value(f, args[0] ?? '?', ev.line));
  if (/bit/.test(api)) {
    // Which bit is not tracked: a bit operation reads or makes the bitmap unknown.
    if (ev.op === 'read') d.emit(t.readOnce(cell, reg ?? d.fresh(`${f.prefix}b`), at));
    else d.emit(rmw('xchg', ev.op === 'test' ? reg ?? d.fresh(`${f.prefix}b`) : null, '?', ev.op === 'test'));
    return;
  }
  switch (ev.op) {
    case 'read':
      d.emit(/acquire/.test(api) ? t.acquire(cell, reg ?? d.fresh(`${f.prefix}a`), at) : t.atomicRead(cell, reg ?? d.fresh(`${f.prefix}a`), at));
      return;
    case 'set':
    case 'init': {
      const v = ev.op === 'init' ? '1' : d.value(f, args[1] ?? '?', ev.line);
      d.emit(/release/.test(api) ? t.release(cell, v, at) : t.atomicSet(cell, v, at));
      return;
    }
    case 'rmw':
      d.emit(rmw('add', null, delta(), false));
      return;
    case 'get':
      d.emit(rmw('add', null, '1', false));
      return;
    case 'put':
      d.emit(rmw('dec_and_test', reg ?? d.fresh(`${f.prefix}a`), '0', true));
      return;
    case 'test': {
      const ordered = !/_relaxed$/.test(api);
      const r = reg ?? d.fresh(`${f.prefix}a`);
      if (/dec_if_positive/.test(api)) d.emit(rmw('dec_if_positive', r, '0', ordered));
      else if (/inc_not_zero|unless_zero|add_unless/.test(api)) d.emit(rmw('inc_not_zero', r, '0', ordered));
      else if (/_and_test$/.test(api)) d.emit(rmw('dec_and_test', r, '0', ordered));
      else d.emit(rmw('add_return', r, delta(), ordered));
      return;
    }
    case 'cmpxchg': {
      const r = reg ?? d.fresh(`${f.prefix}a`);
      if (/cmpxchg/.test(api)) d.emit(rmw('cmpxchg', r, d.value(f, args[1] ?? '?', ev.line), true, d.value(f, args[2] ?? '?', ev.line)));
      else d.emit(rmw('xchg', r, d.value(f, args[1] ?? '?', ev.line), true));
      return;
    }
  }
}

function markedEvent(d: Deriver, ev: MarkedAccessEvent, f: Frame, events: Event[], i: number): void {
  const cell = d.cellOf(f, ev.path) ?? globalCell(d, f, ev.target);
  const at = d.at(f, ev.line);
  if (ev.access === 'load') {
    const reg = resultReg(d, f, ev.offset, resultOf(events, i, (fc) => fc === ev.api));
    if (!cell) {
      if (reg) d.emit(t.set(reg, '?', at));
      return;
    }
    const r = reg ?? d.fresh(`${f.prefix}m`);
    d.emit(ev.ordering === 'acquire' ? t.acquire(cell, r, at) : t.readOnce(cell, r, at));
    return;
  }
  if (!cell) return;
  const v = d.value(f, argsOf(events, i, ev.api)[1] ?? '?', ev.line);
  d.emit(ev.ordering === 'release' ? t.release(cell, v, at) : t.writeOnce(cell, v, at));
}

function storeEvent(d: Deriver, ev: StoreEvent, f: Frame, used: Set<string>): void {
  use(d, f, ev.path, 'write', used, ev.line);
  const cell = d.cellOf(f, ev.path);
  if (!cell) return;
  const at = d.at(f, ev.line);
  if (ev.operator === '=') {
    d.emit(t.write(cell, d.value(f, ev.value, ev.line), at));
    publish(d, f, ev.value);
    return;
  }
  const step = ev.operator === '++' ? '1' : ev.operator === '--' ? '-1' : ev.operator === '+=' ? d.value(f, ev.value, ev.line) : ev.operator === '-=' ? `-(${d.value(f, ev.value, ev.line)})` : '?';
  if (step.includes('?')) {
    d.emit(t.write(cell, '?', at));
    return;
  }
  // A read-modify-write in two plain steps, as the C does: racing increments can lose one.
  const tmp = d.fresh(`${f.prefix}s`);
  d.emit(t.read(cell, tmp, at));
  d.emit(t.write(cell, `${tmp} + (${step})`, at));
}

function assignEvent(d: Deriver, ev: AssignEvent, f: Frame): void {
  const target = ev.target.trim();
  if (!/^\w+$/.test(target)) return;
  const at = d.at(f, ev.line);
  const global = globalCell(d, f, target);
  if (global) {
    d.emit(t.write(global, d.value(f, ev.value, ev.line), at));
    publish(d, f, ev.value);
    return;
  }
  d.forget(f, target);
  const value = ev.value.trim();
  const reg = f.vars.get(target);
  if (reg) d.own.delete(reg);
  if (value === '++' || value === '--') {
    if (reg) d.emit(t.set(reg, `${reg} ${value === '++' ? '+' : '-'} 1`, at));
    return;
  }
  // `p = h->cur`: load straight into the local's register, so a pointer keeps the lock it was read under.
  const single = /^[A-Za-z_]\w*(?:\s*(?:->|\.)\s*[A-Za-z_]\w*)+$/.test(value) ? d.cellOf(f, textPath(value)) : null;
  if (single && (!d.opts.shared || d.opts.shared.has(single))) {
    const r = d.bindVar(f, target);
    d.emit(t.read(single, r, at));
    d.loaded.add(r);
    if (readsOwned(d, f, value)) d.own.add(r);
    return;
  }
  if (reg) d.loaded.delete(reg);
  const v = d.value(f, value, ev.line);
  if (v !== '?' || reg) d.emit(t.set(d.bindVar(f, target), v, at));
  // `n = first` copies a loaded pointer: the copy is checked too.
  if (d.loaded.has(v)) d.loaded.add(d.bindVar(f, target));
  if (d.own.has(v) || readsOwned(d, f, value)) d.own.add(d.bindVar(f, target));
  const o = f.objects.get(value);
  if (o) f.objects.set(target, o);
}

/** Whether a value is a member read out of an object this thread owns (`d->iova_cookie`): as private as the object. */
function readsOwned(d: Deriver, f: Frame, value: string): boolean {
  const m = /^([A-Za-z_]\w*)\s*(?:->|\.)/.exec(value);
  const root = m ? f.vars.get(m[1]!) : undefined;
  return root !== undefined && d.own.has(root);
}

/** Whether `name` is a pointer-typed local or parameter of the frame's function. */
function isPointerVar(f: Frame, name: string): boolean {
  const v = f.fn.locals.find((l) => l.name === name) ?? f.fn.params.find((p) => p.name === name);
  return v !== undefined && v.type.includes('*');
}

/** A dereference of a scenario object, or of a pointer the thread loaded into a register. */
function use(d: Deriver, f: Frame, path: AccessPath | null, access: 'read' | 'write', used: Set<string>, line: number): void {
  if (path?.root.kind !== 'var' || path.steps[0]?.op !== '->') return;
  const name = path.root.name;
  const o = f.objects.get(name);
  const reg = f.vars.get(name);
  const target = o ? `&${o}` : reg && isPointerVar(f, name) && d.loaded.has(reg) ? reg : null;
  // A pointer into an object this thread owns: no other thread can have freed what it points to.
  if (!target || used.has(target) || d.own.has(target)) return;
  used.add(target);
  if (target.startsWith('&')) {
    d.emit(t.use(target, access, d.at(f, line)));
    return;
  }
  // A NULL pointer is not dereferenced here: the C tests it first (`if (p && p->x)`), and the
  // condition's events come before its short-circuit in the program.
  const skip = d.fresh('Ln');
  d.emit(t.branch(`${target} == 0`, skip));
  d.emit(t.use(target, access, d.at(f, line)));
  d.emit(t.label(skip));
}

/** The cell saying a registration API has published its object. */
export function registrationCell(api: string): string {
  return `registered:${api}`;
}
