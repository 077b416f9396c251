import { pathsOf } from '../cmodel/context.js';
import type { Event } from '../cmodel/events.js';
import type { FunctionModel, Stmt } from '../cmodel/functions.js';
import { resolveCall, summaryOf, type TreeModel } from '../cmodel/model.js';
import type { HeldLock, PathStep } from '../cmodel/paths.js';
import {
  addedByPath, candidateFunctions, containsStmt, counterpart, derefsVar, eventsUnder, hasAddedLine, isAdded, isPointerVar,
  lineKey, lockBase, mentionsVar,
} from './race/common.js';
import { defineRule } from './types.js';

/**
 * A finding before it is reported: enough to tell whether the base had the same one.
 * `key` survives line shifts (function, pointer, lock class, the use's text).
 */
interface Stale {
  key: string;
  fn: FunctionModel;
  ptr: string;
  lock: string;
  cls: string;
  origin: number;
  release: number;
  reacquire: number;
  via: string | null;
  use: number;
  loopHead: boolean;
}

/** Calls whose result is a counted reference: the object outlives the lock. */
const REFERENCE_RESULT = /(?:^|_)(?:get|tryget|try_get|grab|hold|ref)(?:_|$)|^kref_get|^get_/;
/** Calls taking a reference on their argument. */
const TAKES_REFERENCE = /(?:^|_)(?:get|tryget|try_get|grab|hold|pin|ref|inc)(?:_|$)|^kref_get|^refcount_inc|^atomic_inc/;
/** Calls that only test or convert a pointer value: passing the pointer is not a dereference. */
const VALUE_ONLY = /^(?:IS_ERR|IS_ERR_OR_NULL|PTR_ERR|PTR_ERR_OR_ZERO|ERR_CAST|WARN_ON|WARN_ON_ONCE|WARN|WARN_ONCE|BUG_ON|likely|unlikely|pr_\w+|dev_\w+|printk|trace_\w+|sizeof|typeof|__\w+)$/;
/** Allocations: a freshly allocated object is ours, not looked up. */
const ALLOC = /alloc|^kmemdup|^kstrdup|^kasprintf|^vmalloc|^vzalloc/;
/** Loop macros whose first argument is a cursor into a container. */
const ITERATOR = /for_each/;

interface Taint {
  /** The lock entries held at the lookup (identity is the acquisition). */
  origin: HeldLock[];
  /** Lock entries related to the pointer's container: the ones whose drop makes it stale. */
  related: HeldLock[];
  line: number;
  /** Index of the lookup on the path. */
  at: number;
}

/** The lock base expression of a held lock, or null for global and rcu locks. */
function baseOf(h: HeldLock): string | null {
  return h.flavor === 'rcu' || h.flavor === 'srcu' ? null : lockBase(h.lock);
}

/** A pointer-valued call argument naming `v` as a whole, `&v->m`, `v->m`, or `*v`. */
function usesInCall(ev: Extract<Event, { kind: 'call' }>, v: string): boolean {
  if (VALUE_ONLY.test(ev.callee)) return ev.args.some((a) => derefsVar(a, v));
  return ev.args.some((a) => derefsVar(a, v) || a.trim() === v || a.replace(/\s+/g, '') === `(void*)${v}`);
}

/** Whether event `ev` dereferences (or hands on for dereference) pointer `v`. */
function isUse(ev: Event, v: string): boolean {
  switch (ev.kind) {
    case 'load':
    case 'store':
      return ev.path?.root.kind === 'var' && ev.path.root.name === v && ev.path.steps[0]?.op === '->';
    case 'marked':
    case 'atomic':
      return ev.path?.root.kind === 'var' && ev.path.root.name === v;
    case 'call':
      return usesInCall(ev, v);
    default:
      return false;
  }
}

/** The locals a statement-level assignment or out-parameter makes fresh. */
function assignedBy(ev: Event): string[] {
  if (ev.kind === 'assign') return /^[A-Za-z_]\w*$/.test(ev.target.trim()) ? [ev.target.trim()] : [];
  if (ev.kind === 'call') return ev.args.map((a) => /^&\s*(?<v>[A-Za-z_]\w*)$/.exec(a.trim())?.groups?.v).filter((x): x is string => !!x);
  return [];
}

interface IterLoop {
  stmt: Extract<Stmt, { kind: 'loop' }>;
  cursors: string[];
  head: string;
  events: Set<Event>;
  /** A goto in the body: re-entry through a label cannot be told from the next iteration. */
  hasGoto: boolean;
}

function iteratorLoops(fn: FunctionModel): IterLoop[] {
  const out: IterLoop[] = [];
  const visit = (stmts: Stmt[]): void => {
    for (const s of stmts) {
      if (s.kind === 'loop' && s.macro && ITERATOR.test(s.macro) && !s.once) {
        const args = s.cond.slice(s.cond.indexOf('(') + 1, s.cond.lastIndexOf(')')).split(',').map((a) => a.trim());
        const cursors = [args[0] ?? ''];
        if (/_safe/.test(s.macro) && args[1]) cursors.push(args[1]);
        out.push({
          stmt: s,
          cursors: cursors.filter((c) => /^[A-Za-z_]\w*$/.test(c) && isPointerVar(fn, c)),
          head: args.slice(cursors.length).join(', '),
          events: new Set([...s.condEvents, ...eventsUnder(s.body)]),
          hasGoto: containsStmt(s.body, (x) => x.kind === 'goto'),
        });
      }
      const nested: Stmt[][] =
        s.kind === 'if' ? [s.then, ...(s.else ? [s.else] : [])]
          : s.kind === 'switch' ? s.cases.map((c) => c.body)
            : s.kind === 'loop' || s.kind === 'block' || s.kind === 'scoped' ? [s.body] : [];
      for (const b of nested) visit(b);
    }
  };
  visit(fn.body);
  return out.filter((l) => l.cursors.length > 0);
}

/** Held entries of `held` that are still the same acquisitions as in `origin`. */
function stillHeld(held: readonly HeldLock[], origin: HeldLock[]): boolean {
  return origin.some((o) => held.includes(o));
}

/**
 * Whether a lock held in `fn` can be dropped on some path, the precondition of every stale use: an
 * explicit release, a scope-based guard (released at the end of its block, retaken on the next
 * iteration), or a call to a function that releases a lock of its caller. Without one the path walk
 * cannot find anything, and is skipped.
 */
function mayDropLock(model: TreeModel, fn: FunctionModel): boolean {
  for (const e of fn.events) {
    if (e.kind === 'lock' && (e.op === 'release' || e.scope !== null)) return true;
    if (e.kind === 'call' && resolveCall(model, e, fn).some((t) => (summaryOf(model, t)?.releases.length ?? 0) > 0)) return true;
  }
  return false;
}

/** Stale uses of looked-up pointers in one function (all paths the walker enumerates). */
export function staleUses(model: TreeModel, fn: FunctionModel, src: string | null): Stale[] {
  if (!mayDropLock(model, fn)) return [];
  const out = new Map<string, Stale>();
  const loops = iteratorLoops(fn);
  const order = new Map(fn.events.map((e, i) => [e, i]));
  for (const path of pathsOf(model, fn, { maxPaths: 512 })) {
    const taint = new Map<string, Taint>();
    /** Out-parameters of the previous call (`f(iommu, &dma)`), seated once the call has returned. */
    const pendingFresh = new Map<string, string>();
    let prev: PathStep | null = null;
    const lastInLoop = new Map<IterLoop, number>();
    const report = (v: string, t: Taint, step: PathStep, loopHead: boolean): void => {
      // Stale only when every lock related to the container was dropped, one of them is held again,
      // and no lock held at the lookup stayed held throughout (it may be what keeps the object).
      if (stillHeld(step.held, t.origin)) return;
      // The same lock object again (same class and spelling): another object's lock of the class says nothing.
      const same = (a: HeldLock, b: HeldLock): boolean => a.cls === b.cls && a.lock.replace(/\s+/g, '') === b.lock.replace(/\s+/g, '');
      const again = step.held.find((h) => t.related.some((r) => same(h, r)));
      if (!again) return;
      const dropped = findDrop(path.steps, t, index);
      if (dropped === null) return;
      const line = step.event.line;
      const key = `${fn.name}|${v}|${again.cls}|${loopHead ? 'loop' : lineKey(src, line)}`;
      if (out.has(key)) return;
      out.set(key, {
        key, fn, ptr: v, lock: again.lock, cls: again.cls, origin: t.line, release: dropped, reacquire: again.line,
        via: again.via, use: line, loopHead,
      });
    };
    let index = -1;
    for (const step of path.steps) {
      index++;
      const ev = step.event;
      for (const [v, args] of pendingFresh) {
        const related = step.held.filter((h) => {
          const b = baseOf(h);
          return b !== null && mentionsVar(args, b);
        });
        if (related.length) taint.set(v, { origin: [...step.held], related, line: prev?.event.line ?? ev.line, at: index });
        else taint.delete(v);
      }
      pendingFresh.clear();
      // Entering an iteration of a list walk: the head dereferences the cursor, then re-seats it.
      for (const loop of loops) {
        if (!loop.events.has(ev)) continue;
        const last = lastInLoop.get(loop);
        const fromOutside = !prev || !loop.events.has(prev.event);
        // Events of one call share an offset: compare positions in the function's event order.
        const pos = order.get(ev) ?? -1;
        const nextIteration = !fromOutside && last !== undefined && pos <= last;
        lastInLoop.set(loop, pos);
        if (!fromOutside && !nextIteration) continue;
        for (const c of loop.cursors) {
          const t = taint.get(c);
          if (nextIteration && t && !loop.hasGoto) report(c, t, { ...step, event: { ...ev, line: loop.stmt.line } }, true);
          const related = step.held.filter((h) => {
            const b = baseOf(h);
            return b !== null && mentionsVar(loop.head, b);
          });
          if (related.length) taint.set(c, { origin: [...step.held], related, line: loop.stmt.line, at: index });
          else taint.delete(c);
        }
      }
      for (const [v, t] of taint) if (isUse(ev, v)) report(v, t, step, false);
      // Pointers (re)assigned here.
      if (ev.kind === 'assign') {
        const v = ev.target.trim();
        if (/^[A-Za-z_]\w*$/.test(v)) {
          const t = lookupTaint(fn, v, ev, step, taint, index);
          if (t) taint.set(v, t);
          else taint.delete(v);
        }
      } else if (ev.kind === 'call') {
        for (const v of assignedBy(ev)) if (isPointerVar(fn, v)) pendingFresh.set(v, ev.args.join(', '));
        // A reference taken on the object: it outlives the lock.
        if (TAKES_REFERENCE.test(ev.callee)) for (const v of [...taint.keys()]) if (usesInCall(ev, v)) taint.delete(v);
      } else if (ev.kind === 'atomic' && (ev.op === 'get' || ev.op === 'rmw' || ev.op === 'test')) {
        for (const v of [...taint.keys()]) if (ev.path?.root.kind === 'var' && ev.path.root.name === v) taint.delete(v);
      }
      prev = step;
    }
  }
  return [...out.values()];
}

/** The line that dropped the related lock after the lookup: the event of the last step still holding it. */
function findDrop(steps: PathStep[], t: Taint, end: number): number | null {
  let lastHeld = -1;
  for (let i = t.at; i < end; i++) if (t.related.some((r) => steps[i]!.held.includes(r))) lastHeld = i;
  return lastHeld < 0 ? null : steps[lastHeld]!.event.line;
}

/** The taint an assignment `v = value` gives: a lookup under a lock related to the container. */
function lookupTaint(fn: FunctionModel, v: string, ev: Extract<Event, { kind: 'assign' }>, step: PathStep, taint: Map<string, Taint>, at: number): Taint | null {
  if (!isPointerVar(fn, v)) return null;
  const value = ev.value.trim();
  if (ev.fromCall && (ALLOC.test(ev.fromCall) || REFERENCE_RESULT.test(ev.fromCall))) return null;
  if (/^(?:NULL|0)$/.test(value) || /^ERR_PTR\s*\(/.test(value)) return null;
  const held = step.held.filter((h) => h.flavor !== 'rcu' && h.flavor !== 'srcu');
  if (held.length === 0) return null;
  // Derived from another looked-up pointer: same locks.
  for (const [w, t] of taint) {
    if (w !== v && mentionsVar(value, w) && t.related.some((r) => step.held.includes(r))) return { origin: [...step.held], related: t.related, line: ev.line, at };
  }
  // A load through the lock's own object (`iommu->...` under `iommu->lock`) or a lookup call given it.
  const looksUp = /->|\.|\(/.test(value);
  if (!looksUp) return null;
  const related = held.filter((h) => {
    const b = baseOf(h);
    return b !== null && mentionsVar(value, b);
  });
  return related.length ? { origin: [...step.held], related, line: ev.line, at } : null;
}

export const staleAfterRelock = defineRule({
  id: 'stale-after-relock',
  meta: {
    severity: 'warning',
    category: 'lifetime-uaf',
    confidence: 'moderate',
    description:
      'A pointer looked up under a lock is used after that lock was dropped and retaken (here or inside a callee) without a fresh lookup',
    reviewers:
      'Alex Williamson on the type1 DMA_UNMAP notifier loop: "even our dma pointer is suspect once we re-acquire the lock, ' +
      'we don\'t technically know if another unmap could have removed that already". Dropping a lock to call out ' +
      '(notifiers, vfio_unpin_pages, schedule) invalidates everything found under it; the fix is a restart ' +
      '(`goto again`) or a new lookup after retaking the lock.',
    falsePositives:
      'The object is kept alive by something the model does not see: a reference taken by a helper with an unusual name, ' +
      'a lifetime tied to the caller (the object cannot be removed while this path runs), or a generation check the model ' +
      'does not recognise as revalidation.',
    messages: {
      stale:
        '{{ptr}} was looked up under {{lock}} (line {{origin}}), but {{lock}} is dropped and retaken {{where}} before this use: ' +
        'the object may have been removed or freed meanwhile',
      loop:
        'the walk continues with {{ptr}} after {{lock}} was dropped and retaken {{where}}: the list may have changed and ' +
        '{{ptr}} may be gone',
    },
  },
  async check(ctx) {
    const added = addedByPath(ctx.files);
    if (added.size === 0) return;
    const after = await ctx.model('after');
    if (!after) return;
    const before = await ctx.model('before');
    const oldPath = new Map(ctx.files.map((f) => [f.path, f.oldPath ?? f.path]));
    for (const { fn, changed } of candidateFunctions(after, added)) {
      const src = ctx.after(fn.file);
      const found = staleUses(after, fn, src);
      if (found.length === 0) continue;
      const base = before ? counterpart(before, fn, oldPath.get(fn.file) ?? fn.file) : null;
      const old = new Set(base ? staleUses(before!, base, ctx.before(oldPath.get(fn.file) ?? fn.file)).map((s) => s.key) : []);
      // One finding per drop-and-retake: its first stale use, the others as evidence.
      const groups = new Map<string, Stale[]>();
      for (const s of found) {
        if (old.has(s.key)) continue;
        const callees = s.via ? (after.functions.get(s.via) ?? []) : [];
        // New with the patch: absent from the base, and the function or the relocking callee changed
        // (removing a `goto again` adds no line on the evidence, yet makes the use stale).
        const touched = changed || [s.origin, s.release, s.reacquire, s.use].some((l) => isAdded(added, fn.file, l)) || callees.some((c) => hasAddedLine(c, added));
        if (!touched) continue;
        const k = `${s.release}|${s.reacquire}|${s.via ?? ''}`;
        groups.set(k, [...(groups.get(k) ?? []), s]);
      }
      for (const list of groups.values()) {
        list.sort((a, b) => a.use - b.use);
        const s = list[0]!;
        const where = s.via ? `by ${s.via}() (line ${s.reacquire})` : `(lines ${s.release}-${s.reacquire})`;
        ctx.report({
          messageId: s.loopHead ? 'loop' : 'stale',
          file: fn.file,
          line: s.use,
          function: fn.name,
          data: { ptr: s.ptr, lock: s.lock, origin: s.origin, where },
          evidence: [
            `line ${s.origin}: ${s.ptr} looked up with ${s.lock} held (class ${s.cls})`,
            s.via ? `line ${s.reacquire}: ${s.via}() releases and retakes ${s.lock}` : `lines ${s.release}-${s.reacquire}: ${s.lock} released and taken again`,
            ...list.map((u) => `line ${u.use}: ${u.ptr} ${u.loopHead ? 'advanced by the list walk' : 'used'} without a new lookup`),
          ],
          suggestion: 'after retaking the lock, look the object up again or restart the walk (goto again), as vfio_dma_do_unmap() does after vfio_notify_dma_unmap()',
        });
      }
    }
  },
});
