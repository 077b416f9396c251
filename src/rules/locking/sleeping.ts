/**
 * What may sleep and what is atomic, for the sleep-in-atomic rule: events that sleep (blocking
 * locks, reclaiming allocations, user copies, waits, callees whose summary sleeps) and the locks
 * under which sleeping is a bug (spinlocks, rwlocks, RCU read sides).
 */
import { lockClass, resolveCall, summaryOf, type Event, type FunctionModel, type HeldLock, type TreeModel } from '../../cmodel/index.js';
import { flavourOf, TRYLOCK_API } from './chains.js';

/** A sleeping operation at an event. */
export interface Sleeper {
  /** What the message calls it: `mutex_lock()`, `kzalloc(GFP_KERNEL)`, `helper()`. */
  what: string;
  /** Stable key for comparing with the pre-image: the API or the callee's name. */
  key: string;
  /** For a callee: the chain down to the sleeping call. */
  chain: string | null;
  /** The callee, when the sleep is inside one. */
  callee: FunctionModel | null;
}

const SLEEPING_GFP = /\b(?:GFP_KERNEL(?:_ACCOUNT)?|GFP_USER|GFP_NOIO|GFP_NOFS|GFP_HIGHUSER(?:_MOVABLE)?|__GFP_DIRECT_RECLAIM|__GFP_RECLAIM)\b/;
const SLEEPING_FLAVOURS = new Set(['mutex', 'rwsem', 'semaphore', 'device']);
/** Atomic contexts, and what the message calls each. */
const ATOMIC_FLAVOURS: Record<string, string> = { spinlock: 'a spinlock', raw_spinlock: 'a raw spinlock', rwlock: 'an rwlock', rcu: 'an RCU read-side section' };

/** Whether a summary's recorded sleep is one (the model files `down_trylock()` with blocking acquires). */
function realSleep(api: string): boolean {
  return !TRYLOCK_API.test(api);
}

/** The sleeping operation an event is, or null. */
export function sleeperOf(model: TreeModel, fn: FunctionModel, ev: Event): Sleeper | null {
  switch (ev.kind) {
    case 'lock':
      if (ev.op !== 'acquire' || !SLEEPING_FLAVOURS.has(ev.flavor) || ev.acquiredWhen === 'nonzero' || TRYLOCK_API.test(ev.api)) return null;
      return { what: `${ev.api}(&${ev.lock})`, key: ev.api, chain: null, callee: null };
    case 'alloc':
      if (ev.atomic || ev.gfp === null || !SLEEPING_GFP.test(ev.gfp)) return null;
      return { what: `${ev.api}(${ev.gfp})`, key: `${ev.api}|${ev.gfp}`, chain: null, callee: null };
    case 'user_copy':
    case 'sleep':
      return { what: `${ev.api}()`, key: ev.api, chain: null, callee: null };
    case 'call': {
      if (ev.special || ev.indirect) return null;
      for (const t of resolveCall(model, ev, fn)) {
        const s = summaryOf(model, t);
        if (!s?.sleeps || !realSleep(s.sleeps.api)) continue;
        const chain = [t.name, ...s.sleeps.via].map((n) => `${n}()`).join(' → ');
        return { what: `${t.name}()`, key: t.name, chain: `${chain} → ${s.sleeps.api}() (${t.file}:${s.sleeps.line})`, callee: t };
      }
      return null;
    }
    default:
      return null;
  }
}

/** The atomic locks among those held, with how the message names them. */
export function atomicHeld(held: readonly HeldLock[]): { lock: HeldLock; kind: string }[] {
  return held.filter((h) => h.flavor in ATOMIC_FLAVOURS).map((lock) => ({ lock, kind: ATOMIC_FLAVOURS[lock.flavor]! }));
}

/**
 * Atomic locks a function holds on entry by its own statement (`__must_hold`, `lockdep_assert_held`
 * of a spinlock class), with the line from which it no longer holds them (its first release of the
 * class, or past the end).
 */
export function atomicOnEntry(model: TreeModel, fn: FunctionModel): { lock: HeldLock; kind: string; until: number }[] {
  const out: { lock: HeldLock; kind: string; until: number }[] = [];
  for (const r of summaryOf(model, fn)?.requires ?? []) {
    if (r.source === 'callee') continue;
    const flavor = flavourOf(model, r.cls);
    if (!flavor || !(flavor in ATOMIC_FLAVOURS)) continue;
    const rel = fn.events.find((e) => e.kind === 'lock' && e.op === 'release' && lockClass(model, fn, e) === r.cls);
    out.push({
      lock: { cls: r.cls, lock: r.lock, flavor, mode: 'exclusive', line: r.line, api: r.source === 'annotation' ? '__must_hold' : 'lockdep_assert_held', via: null },
      kind: ATOMIC_FLAVOURS[flavor]!,
      until: rel?.line ?? fn.endLine + 1,
    });
  }
  return out;
}
