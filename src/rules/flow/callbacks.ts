/**
 * What a registration or a file makes reachable: the callbacks an ops structure binds, the
 * functions those reach (direct calls, calls through ops members, functions and ops structures
 * passed as arguments), and the fields all of them use. Shared by publish-before-init and
 * fd-lifetime.
 */
import { classOfPath, fieldClassOf, findFunction, lockClass, resolveCall, textPath, type Event, type FunctionModel, type TreeModel } from '../../cmodel/index.js';

/** A function reached from a root, with how: `vfio_ccw_mdev_ops.create`, `calls x()`. */
export interface Reached {
  fn: FunctionModel;
  /** The chain from the root, outermost first: `vfio_ap_matrix_dev_ops.open_device`, `vfio_ap_mdev_open_device()`. */
  chain: string[];
  /** Calls since the last callback entry (an ops member or a function handed to the framework). */
  depth?: number;
}

/** The functions an initialised ops variable binds, by member: `vfio_ccw_mdev_ops` -> create, remove, ... */
export function opsBindings(model: TreeModel, variable: string): { member: string; fn: FunctionModel; structType: string | null }[] {
  const out: { member: string; fn: FunctionModel; structType: string | null }[] = [];
  for (const [member, list] of model.ops) {
    for (const b of list) {
      if (b.variable !== variable || notConcurrent(b.structType, member)) continue;
      const fn = findFunction(model, b.fn, b.file);
      if (fn && !out.some((o) => o.fn === fn && o.member === member)) out.push({ member, fn, structType: b.structType });
    }
  }
  return out;
}

/**
 * Ops members the core calls before the object is published or after its last reference is gone
 * (vfio_device_ops.init runs inside vfio_alloc_device(), .release at the final put): they cannot
 * race with the code around a registration.
 */
function notConcurrent(structType: string | null, member: string): boolean {
  if (member === 'init') return true;
  return member === 'release' && structType !== null && /^(?:vfio_device_ops|kobj_type|device_type|class)$/.test(structType);
}

/** A call argument as a bare name: `&vfio_ccw_mdev_ops` -> vfio_ccw_mdev_ops; null for expressions. */
export function bareName(arg: string): string | null {
  const m = /^\(?\s*&?\s*(?<n>[A-Za-z_]\w*)\s*\)?$/.exec(arg.trim());
  return m?.groups?.n ?? null;
}

/**
 * The callbacks one argument names: a function (`handler`), or an ops variable with bindings
 * (`&vfio_ccw_mdev_ops`). `label` prefixes the chain.
 */
export function callbacksOfArg(model: TreeModel, arg: string, fromFile: string): Reached[] {
  const name = bareName(arg);
  if (!name) return [];
  const out: Reached[] = [];
  const direct = findFunction(model, name, fromFile);
  if (direct && !arg.trim().startsWith('&')) out.push({ fn: direct, chain: [`${name}()`] });
  for (const b of opsBindings(model, name)) out.push({ fn: b.fn, chain: [`${name}.${b.member} = ${b.fn.name}()`] });
  return out;
}

/**
 * Everything reachable from `roots`, breadth first, bounded: direct and ops calls, functions and
 * ops structures passed as arguments (`INIT_WORK(&w, fn)`, `vfio_alloc_device(..., &ops)`).
 */
export function reachable(model: TreeModel, roots: Reached[], limit = 160, maxDepth = Infinity): Map<FunctionModel, Reached> {
  const seen = new Map<FunctionModel, Reached>();
  const queue: Reached[] = [];
  for (const r of roots) {
    if (seen.has(r.fn)) continue;
    seen.set(r.fn, r);
    queue.push(r);
  }
  while (queue.length && seen.size < limit) {
    const cur = queue.shift()!;
    for (const ev of cur.fn.events) {
      if (ev.kind !== 'call') continue;
      const next: Reached[] = [];
      const depth = (cur.depth ?? 0) + 1;
      if (depth <= maxDepth) {
        for (const t of resolveCall(model, ev, cur.fn)) {
          next.push({ fn: t, chain: [...cur.chain, ev.indirect ? `->${ev.indirect.member}() = ${t.name}()` : `${t.name}()`], depth });
        }
      }
      // Functions and ops handed to the framework are entry points of their own.
      for (const a of ev.args) for (const r of callbacksOfArg(model, a, cur.fn.file)) next.push({ fn: r.fn, chain: [...cur.chain, ...r.chain], depth: 0 });
      for (const n of next) {
        if (seen.has(n.fn) || seen.size >= limit) continue;
        seen.set(n.fn, n);
        queue.push(n);
      }
    }
  }
  return seen;
}

/** One use of a field class in a function. */
export interface FieldUse {
  line: number;
  how: 'reads' | 'writes' | 'locks' | 'uses';
}

/** The field class an event touches in `fn`, and how; null when it touches none we can name. */
export function fieldOfEvent(model: TreeModel, fn: FunctionModel, ev: Event): { cls: string; how: FieldUse['how'] } | null {
  switch (ev.kind) {
    case 'load': {
      const cls = fieldClassOf(ev.path, fn, model.env);
      return cls ? { cls, how: 'reads' } : null;
    }
    case 'store': {
      const cls = fieldClassOf(ev.path, fn, model.env);
      return cls ? { cls, how: 'writes' } : null;
    }
    case 'atomic':
    case 'marked':
    case 'init': {
      const cls = fieldClassOf(ev.path, fn, model.env);
      const write = ev.kind === 'init' || (ev.kind === 'marked' ? ev.access === 'store' : ev.op !== 'read');
      return cls ? { cls, how: write ? 'writes' : 'reads' } : null;
    }
    case 'lock': {
      if (ev.op === 'assert_held') return null;
      const cls = lockClass(model, fn, ev);
      return /^[\w@]+\.[\w.]+$/.test(cls) ? { cls, how: 'locks' } : null;
    }
    default:
      return null;
  }
}

/**
 * Field classes a function uses: loads, stores, atomics, locks, and `&x->f` handed to a call
 * (`queue_work(wq, &p->io_work)`, `wait_event(p->wq, ...)`).
 */
export function fieldUses(model: TreeModel, fn: FunctionModel): Map<string, FieldUse> {
  const out = new Map<string, FieldUse>();
  const add = (cls: string, use: FieldUse): void => {
    if (!out.has(cls)) out.set(cls, use);
  };
  for (const ev of fn.events) {
    const f = fieldOfEvent(model, fn, ev);
    if (f) add(f.cls, { line: ev.line, how: f.how });
    if (ev.kind === 'call' && !ev.special) {
      for (const a of ev.args) {
        if (!/^\s*&/.test(a)) continue;
        const p = textPath(a);
        if (!p || !p.steps.some((s) => s.op === '->' || s.op === '.')) continue;
        const c = classOfPath(p, fn, model.env);
        if (c.known) add(c.id, { line: ev.line, how: 'uses' });
      }
    }
  }
  return out;
}

/** The struct tag of a field class: `vfio_ccw_private.state` -> vfio_ccw_private. */
export function tagOf(cls: string): string {
  const i = cls.indexOf('.');
  return i < 0 ? cls : cls.slice(0, i);
}
