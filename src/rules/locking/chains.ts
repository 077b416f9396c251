/**
 * Lock facts the locking rules read off a tree model: order edges with the call chain that reaches
 * the inner acquire, lock flavours by class, and how to print a chain as evidence.
 */
import { annotationsOf } from '../../cmodel/summaries.js';
import { HELPER_NAME } from './exits.js';
import {
  allFunctions, classOfPath, fieldClassOf, findFunction, isUnknownClass, lockClass, resolveCall, summaryOf,
  type CallEvent, type FunctionModel, type LockEvent, type LockFlavor, type OpsBinding, type OrderEdge, type StoreEvent, type TreeModel,
} from '../../cmodel/index.js';

/** One step of a call chain: a function and the line in it (a call, or the acquire itself). */
export interface ChainStep {
  fn: string;
  file: string;
  line: number;
}

/** An order edge of one function, with where it lives. */
export interface EdgeAt extends OrderEdge {
  fn: FunctionModel;
}

/**
 * Trylock APIs, named. The model marks trylocks by "acquired when non-zero", which misses
 * `down_trylock()` (0 means acquired) and marks `atomic_dec_and_mutex_lock()` (which blocks) as one.
 */
export const TRYLOCK_API = /^(?:\w*_trylock\w*|guard\(mutex_try\)|scoped_guard\(mutex_try\))$/;

/** Flavour of each lock class, from the lock events of the whole model. */
const flavours = new WeakMap<TreeModel, Map<string, LockFlavor>>();
export function flavourOf(model: TreeModel, cls: string): LockFlavor | null {
  let m = flavours.get(model);
  if (!m) {
    m = new Map();
    for (const fn of allFunctions(model)) {
      for (const ev of fn.events) {
        if (ev.kind !== 'lock' || ev.op === 'assert_held') continue;
        const c = lockClass(model, fn, ev);
        if (!m.has(c)) m.set(c, ev.flavor);
      }
    }
    flavours.set(model, m);
  }
  return m.get(cls) ?? flavourOfField(model, cls);
}

/** The flavour a `struct.member` class has by its declared type, for locks the model never sees taken. */
function flavourOfField(model: TreeModel, cls: string): LockFlavor | null {
  const dot = cls.indexOf('.');
  if (dot < 0) return null;
  const type = model.env.structs.get(cls.slice(0, dot).replace(/^\*/, ''))?.get(cls.slice(dot + 1));
  if (!type) return null;
  if (/\braw_spinlock_t\b/.test(type)) return 'raw_spinlock';
  if (/\bspinlock_t\b/.test(type)) return 'spinlock';
  if (/\brwlock_t\b/.test(type)) return 'rwlock';
  if (/\bstruct mutex\b/.test(type)) return 'mutex';
  if (/\bstruct rw_semaphore\b/.test(type)) return 'rwsem';
  return null;
}

/** The function a chain name reaches from `from` (direct call first, then any definition). */
function calleeByName(model: TreeModel, name: string, from: FunctionModel): FunctionModel | null {
  return findFunction(model, name, from.file) ?? model.functions.get(name)?.[0] ?? null;
}

/**
 * The chain from `fn` (at `line`) through the callees in `via` down to the function that acquires
 * `cls`, with the acquire's line there, and the acquire event when found.
 */
export function acquireChain(model: TreeModel, fn: FunctionModel, line: number, via: string[], cls: string): { steps: ChainStep[]; event: LockEvent | null; fns: FunctionModel[] } {
  const steps: ChainStep[] = [{ fn: fn.name, file: fn.file, line }];
  const fns = [fn];
  let cur = fn;
  for (let i = 0; i < via.length; i++) {
    const next = calleeByName(model, via[i]!, cur);
    if (!next) break;
    const rest = via.slice(i + 1).join('>');
    const s = summaryOf(model, next);
    const take = s?.takes.find((t) => t.cls === cls && t.via.join('>') === rest)
      ?? s?.takes.find((t) => t.via.join('>') === rest && (isUnknownClass(t.cls) || t.cls.endsWith(cls.slice(cls.indexOf('.')))))
      ?? s?.takes.find((t) => t.cls === cls);
    steps.push({ fn: next.name, file: next.file, line: take?.line ?? next.line });
    fns.push(next);
    cur = next;
  }
  const last = steps[steps.length - 1]!;
  const event = cur.events.find((e): e is LockEvent => e.kind === 'lock' && e.op === 'acquire' && e.line === last.line) ?? null;
  return { steps, event, fns };
}

/** The struct tag an ops binding belongs to: its initialiser's type, or the assigned field's struct. */
function bindingTag(model: TreeModel, b: OpsBinding & { file: string }): string | null {
  if (b.structType) return b.structType;
  for (const fn of model.files.get(b.file)?.functions ?? []) {
    if (b.line < fn.line || b.line > fn.endLine) continue;
    const st = fn.events.find((e): e is StoreEvent => e.kind === 'store' && e.line === b.line && e.member === b.member && e.value === b.fn);
    const cls = st ? fieldClassOf(st.path, fn, model.env) : null;
    if (cls) return cls.slice(0, cls.lastIndexOf('.'));
  }
  return null;
}

/** The struct tag of the object an indirect call goes through (`driver->ops->release`: vfio_iommu_driver_ops). */
function callTag(model: TreeModel, from: FunctionModel, call: CallEvent): string | null {
  const ind = call.indirect;
  if (!ind?.path) return null;
  const c = classOfPath({ ...ind.path, steps: [...ind.path.steps, { op: '->', member: ind.member }] }, from, model.env);
  return c.known ? c.id.slice(0, c.id.lastIndexOf('.')) : null;
}

/**
 * Whether the call at `line` of `caller` can reach `callee`. Direct calls can; an ops call only
 * when the binding's struct matches the call's, or, when the call's type is unknown, when the member
 * is bound in one kind of struct only. (The model keeps `dev->release = f` assignments for every
 * `x->release()` call; a lock-order finding must not rest on such a guess.)
 */
export function hopPossible(model: TreeModel, caller: FunctionModel, line: number, callee: FunctionModel): boolean {
  const calls = caller.events.filter((e): e is CallEvent => e.kind === 'call' && e.line === line);
  if (calls.length === 0 || calls.some((c) => !c.indirect && c.callee === callee.name)) return true;
  return calls.some((c) => {
    if (!c.indirect) return false;
    const all = model.ops.get(c.indirect.member) ?? [];
    const mine = all.filter((b) => b.fn === callee.name);
    if (mine.length === 0) return false;
    const tag = callTag(model, caller, c);
    const tags = mine.map((b) => bindingTag(model, b));
    if (tag) return tags.includes(tag);
    const kinds = new Set(all.map((b) => bindingTag(model, b)));
    return kinds.size === 1 && !kinds.has(null);
  });
}

/** Whether every hop of a chain can happen. */
export function chainPossible(model: TreeModel, fns: FunctionModel[], steps: ChainStep[]): boolean {
  for (let i = 0; i + 1 < fns.length; i++) if (!hopPossible(model, fns[i]!, steps[i]!.line, fns[i + 1]!)) return false;
  return true;
}

/**
 * Whether an edge cannot wait: its inner acquire is a trylock (by the model's flag or the API's
 * name), or a read-side rwlock_t acquire (recursive for readers).
 */
export function isNonBlockingEdge(model: TreeModel, e: EdgeAt): boolean {
  if (e.trylock) return true;
  const { event } = acquireChain(model, e.fn, e.line, e.via, e.inner);
  if (!event) return false;
  return TRYLOCK_API.test(event.api) || (event.flavor === 'rwlock' && event.mode === 'shared');
}

/**
 * Whether the outer lock of an edge is held for a reason the rules trust: taken right there, or
 * returned held by a helper meant to (a lock-like name or `__acquires`). A lock that a callee
 * without such a contract leaves held is a leak or a model gap, reported by lock-imbalance; an
 * ordering resting on it would be a second, misleading finding.
 */
export function outerTrusted(model: TreeModel, e: EdgeAt): boolean {
  const events = e.fn.events.filter((ev) => ev.line === e.outerLine);
  if (events.some((ev) => ev.kind === 'lock' && ev.op === 'acquire')) return true;
  const calls = events.filter((ev): ev is CallEvent => ev.kind === 'call' && !ev.special);
  if (calls.length === 0) return true;
  return calls.some((c) => HELPER_NAME.test(c.callee) || resolveCall(model, c, e.fn).some((t) => annotationsOf(model, t).some((a) => a.kind === 'acquires')));
}

/** Whether an edge's call chain is possible (every ops hop type-checks). */
export function edgePossible(model: TreeModel, e: EdgeAt): boolean {
  if (e.via.length === 0) return true;
  const { steps, fns } = acquireChain(model, e.fn, e.line, e.via, e.inner);
  return chainPossible(model, fns, steps);
}

/** Classes an ordering finding can rest on: named, and real locks (not rcu/srcu read sides). */
export function orderable(model: TreeModel, cls: string): boolean {
  if (isUnknownClass(cls) || cls === 'rcu') return false;
  const f = flavourOf(model, cls);
  return f !== 'srcu' && f !== 'rcu';
}

/** Order edges of a model between named classes, by `outer>inner`, split by whether they can wait. */
export interface ModelEdges {
  /** Edges lockdep records: the inner acquire blocks. */
  blocking: Map<string, EdgeAt[]>;
  /** Trylock (and read-side rwlock_t) edges: lockdep ignores them, a trylock cannot wait. */
  nonBlocking: Map<string, EdgeAt[]>;
}

const edgeCache = new WeakMap<TreeModel, ModelEdges>();
export function modelEdges(model: TreeModel): ModelEdges {
  const hit = edgeCache.get(model);
  if (hit) return hit;
  const out: ModelEdges = { blocking: new Map(), nonBlocking: new Map() };
  for (const fn of allFunctions(model)) {
    const s = summaryOf(model, fn);
    for (const e of s?.orderEdges ?? []) {
      if (!orderable(model, e.outer) || !orderable(model, e.inner)) continue;
      const at: EdgeAt = { ...e, fn };
      if (!edgePossible(model, at) || !outerTrusted(model, at)) continue;
      const map = isNonBlockingEdge(model, at) ? out.nonBlocking : out.blocking;
      const k = `${e.outer}>${e.inner}`;
      const list = map.get(k) ?? [];
      list.push(at);
      map.set(k, list);
    }
  }
  edgeCache.set(model, out);
  return out;
}

/** Every blocking order edge of the model (see {@link modelEdges}). */
export function blockingEdges(model: TreeModel): Map<string, EdgeAt[]> {
  return modelEdges(model).blocking;
}

/** `f() file:line → g() file:line`, the way the evidence prints a chain. */
export function chainText(steps: ChainStep[]): string {
  return steps.map((s) => `${s.fn}() ${s.file}:${s.line}`).join(' → ');
}

/** A short spelling of a class for messages: `ap_matrix_dev.mdevs_lock` stays, `*x.y` loses the star. */
export function className(cls: string): string {
  return cls.replace(/^\*/, '');
}
