/**
 * How the code of a model treats one field class (`struct.member`): which locks its writers and
 * readers hold, and whether they use marked accesses. Built lazily per class, because a patch
 * touches a handful of fields and a model holds hundreds of functions.
 */
import type { Event } from '../../cmodel/events.js';
import type { FunctionModel } from '../../cmodel/functions.js';
import { fieldClassOf } from '../../cmodel/locks.js';
import { allFunctions, summaryOf, type TreeModel } from '../../cmodel/model.js';
import { CallerLocks, FRAMEWORK_CLASSES, INIT_OR_TEARDOWN, isAdded } from './common.js';

/** One access of a field class somewhere in the model. */
export interface FieldAccess {
  fn: FunctionModel;
  event: Event;
  kind: 'load' | 'store' | 'marked-load' | 'marked-store' | 'atomic';
  /** Lock classes held: in the function on every path, plus those held on entry. */
  held: Set<string>;
  /**
   * Lock classes the function itself takes around the access, or states it needs (lockdep_assert_held,
   * __must_hold): the evidence that the lock protects the field, not a lock a caller happens to hold.
   */
  ownHeld: Set<string>;
  /** Whether the function is a set-up or tear-down path (the object is private there). */
  init: boolean;
  /** For marked accesses, the ordering (`once`, `acquire`, `release`). */
  ordering: string | null;
}

/** Lock classes that do not exclude writers (rcu, srcu readers). */
export function isReaderOnly(cls: string): boolean {
  return cls === 'rcu' || cls.startsWith('srcu');
}

/** Locals of `fn` holding a freshly allocated object: nobody else can see it yet. */
export function freshLocals(fn: FunctionModel): Set<string> {
  const out = new Set<string>();
  for (const e of fn.events) {
    if (e.kind !== 'assign' || !/^[A-Za-z_]\w*$/.test(e.target.trim())) continue;
    if (/alloc|^kmemdup$|^vfio_alloc_device$|_alloc_/.test(e.fromCall ?? '') || /\b(?:k[zcm]alloc|kvzalloc|kvmalloc|vzalloc|vmalloc|kmemdup|kzalloc_node)\s*\(/.test(e.value)) out.add(e.target.trim());
  }
  return out;
}

/** The root variable of an access event's path, if it is a plain variable. */
export function rootVar(ev: Event): string | null {
  const path = ev.kind === 'load' || ev.kind === 'store' || ev.kind === 'marked' || ev.kind === 'atomic' || ev.kind === 'init' ? ev.path : null;
  return path?.root.kind === 'var' ? path.root.name : null;
}

/** Whether an access reaches a local struct by value (`struct foo f; f.x`): stack memory, never shared. */
export function isStackObject(fn: FunctionModel, ev: Event): boolean {
  const path = ev.kind === 'load' || ev.kind === 'store' || ev.kind === 'marked' || ev.kind === 'atomic' ? ev.path : null;
  if (!path || path.root.kind !== 'var' || path.steps[0]?.op !== '.') return false;
  const name = path.root.name;
  const v = [...fn.locals].reverse().find((l) => l.name === name);
  return v !== undefined && !v.type.includes('*');
}

/**
 * Whether `struct tag` is a per-call object: declared by value as a local somewhere and never a
 * member or global type (`struct vfio_batch`, `struct vfio_info_cap`). Its fields are not shared
 * whatever locks the code that fills them happens to hold.
 */
export function isPerCallType(model: TreeModel, tag: string): boolean {
  const re = new RegExp(String.raw`\bstruct ${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\b`);
  let onStack = false;
  for (const f of model.files.values()) {
    if (f.structs.some((s) => s.fields.some((fld) => re.test(fld.type)))) return false;
    if (f.globals.some((g) => re.test(g.type))) return false;
    if (!onStack) onStack = f.functions.some((fn) => fn.locals.some((l) => re.test(l.type) && !l.type.includes('*')));
  }
  return onStack;
}

/** Field facts over a model, computed per class on demand. */
export class FieldFacts {
  private readonly byClass = new Map<string, FieldAccess[]>();
  private index: Map<string, { fn: FunctionModel; event: Event }[]> | null = null;

  constructor(
    private readonly model: TreeModel,
    readonly callers: CallerLocks,
    /** Added lines of the patch: the patch's own accesses are not precedent. */
    private readonly added: Map<string, Set<number>>,
  ) {}

  private buildIndex(): Map<string, { fn: FunctionModel; event: Event }[]> {
    const idx = new Map<string, { fn: FunctionModel; event: Event }[]>();
    for (const fn of allFunctions(this.model)) {
      for (const ev of fn.events) {
        if (ev.kind !== 'load' && ev.kind !== 'store' && ev.kind !== 'marked' && ev.kind !== 'atomic') continue;
        const cls = fieldClassOf(ev.path, fn, this.model.env);
        if (!cls) continue;
        const list = idx.get(cls) ?? [];
        list.push({ fn, event: ev });
        idx.set(cls, list);
      }
    }
    return idx;
  }

  /** The class of an access event in `fn`, or null. */
  classOf(fn: FunctionModel, ev: Event): string | null {
    if (ev.kind !== 'load' && ev.kind !== 'store' && ev.kind !== 'marked' && ev.kind !== 'atomic') return null;
    return fieldClassOf(ev.path, fn, this.model.env);
  }

  /** Locks held at `ev` in `fn`: every path of the function, plus the function's entry locks. */
  heldAt(fn: FunctionModel, ev: Event): Set<string> {
    return new Set([...this.callers.mustAt(fn, ev), ...this.callers.entryLocks(fn)].filter((c) => !isReaderOnly(c)));
  }

  /** Locks `fn` takes around `ev` itself, or declares it needs. */
  ownHeldAt(fn: FunctionModel, ev: Event): Set<string> {
    const req = (summaryOf(this.model, fn)?.requires ?? []).filter((r) => r.source !== 'callee').map((r) => r.cls);
    const framework = [...this.callers.entryLocks(fn)].filter((c) => FRAMEWORK_CLASSES.has(c));
    return new Set([...this.callers.mustAt(fn, ev), ...req, ...framework].filter((c) => !isReaderOnly(c)));
  }

  /** Every access of `cls` outside the patch's added lines. */
  accesses(cls: string): FieldAccess[] {
    const hit = this.byClass.get(cls);
    if (hit) return hit;
    this.index ??= this.buildIndex();
    const out: FieldAccess[] = [];
    for (const { fn, event } of this.index.get(cls) ?? []) {
      if (isAdded(this.added, fn.file, event.line)) continue;
      const fresh = freshLocals(fn);
      const root = rootVar(event);
      const init = INIT_OR_TEARDOWN.test(fn.name) || (root !== null && fresh.has(root)) || isStackObject(fn, event);
      const kind: FieldAccess['kind'] =
        event.kind === 'marked' ? (event.access === 'store' ? 'marked-store' : 'marked-load')
          : event.kind === 'atomic' ? 'atomic' : event.kind === 'store' ? 'store' : 'load';
      out.push({ fn, event, kind, held: this.heldAt(fn, event), ownHeld: this.ownHeldAt(fn, event), init, ordering: event.kind === 'marked' ? event.ordering : null });
    }
    this.byClass.set(cls, out);
    return out;
  }
}

/** The lock classes in every set of `sets` (null for no sets). */
export function intersect(sets: Set<string>[]): Set<string> | null {
  if (sets.length === 0) return null;
  let acc = new Set(sets[0]);
  for (const s of sets.slice(1)) acc = new Set([...acc].filter((c) => s.has(c)));
  return acc;
}
