/**
 * Loop facts for the path walker: which events repeat, and which lock classes follow the
 * lock-every-element / unlock-every-element pattern that a bounded walk cannot count exactly.
 */
import type { Event } from './events.js';
import type { FunctionModel, Stmt } from './functions.js';
import type { HeldLock, WalkContext } from './paths.js';

const loopCache = new WeakMap<FunctionModel, Map<Event, Stmt>>();

/** Events executed inside a repeating loop of `fn` (body or condition), with their innermost loop. */
export function eventsInLoops(fn: FunctionModel): Map<Event, Stmt> {
  let map = loopCache.get(fn);
  if (map) return map;
  const out = new Map<Event, Stmt>();
  const visit = (stmts: Stmt[], loop: Stmt | null): void => {
    for (const st of stmts) {
      const inner = st.kind === 'loop' && !st.once ? st : loop;
      const own: Event[] =
        st.kind === 'expr' || st.kind === 'decl' || st.kind === 'unparsed' || st.kind === 'return' ? st.events
          : st.kind === 'if' || st.kind === 'switch' ? st.condEvents
            : st.kind === 'loop' ? [...st.condEvents, ...st.update]
              : st.kind === 'scoped' ? st.header : [];
      if (inner) for (const e of own) out.set(e, inner);
      if (st.kind === 'if') {
        visit(st.then, inner);
        if (st.else) visit(st.else, inner);
      } else if (st.kind === 'switch') for (const c of st.cases) visit(c.body, inner);
      else if (st.kind === 'loop' || st.kind === 'block' || st.kind === 'scoped') visit(st.body, inner);
    }
  };
  visit(fn.body, null);
  map = out;
  loopCache.set(fn, map);
  return map;
}

/**
 * Lock classes taken in one iterating loop of `fn` and released in another: the lock-every-element /
 * unlock-every-element pattern. The walker cannot match the iteration counts of two loops, so for
 * these it treats the class as one set: re-taking it in a loop is not a double acquire, releasing it
 * in a loop when not held is not an imbalance, and a loop-taken leftover at the exit is dropped.
 * Retry loops (`while (1)`, `for (;;)`) do not count: they re-take the same object.
 */
export function loopPaired(fn: FunctionModel, ctx: WalkContext): Set<string> {
  const taken = new Map<string, Set<Stmt>>();
  const released = new Map<string, Set<Stmt>>();
  const add = (m: Map<string, Set<Stmt>>, cls: string, loop: Stmt): void => {
    const set = m.get(cls) ?? new Set<Stmt>();
    set.add(loop);
    m.set(cls, set);
  };
  for (const [e, loop] of eventsInLoops(fn)) {
    if (loop.kind === 'loop' && loop.infinite) continue;
    if (e.kind === 'lock' && e.op !== 'assert_held') add(e.op === 'acquire' ? taken : released, ctx.classOf(e), loop);
    if (e.kind === 'call') {
      for (const o of ctx.callOutcomes?.(e) ?? []) {
        for (const a of o.acquire) add(taken, a.cls, loop);
        for (const r of o.release) add(released, r.cls, loop);
      }
    }
  }
  const out = new Set<string>();
  for (const [cls, loops] of taken) if ([...(released.get(cls) ?? [])].some((l) => !loops.has(l) || loops.size > 1)) out.add(cls);
  return out;
}

/** The per-function facts the walker's transfer function needs besides the context. */
export interface FnFacts {
  inLoop: Map<Event, Stmt>;
  paired: Set<string>;
}

export function factsOf(fn: FunctionModel, ctx: WalkContext): FnFacts {
  return { inLoop: eventsInLoops(fn), paired: loopPaired(fn, ctx) };
}

export function dropLoopLeftovers(held: readonly HeldLock[], facts: FnFacts): readonly HeldLock[] {
  return held.some((h) => h.inLoop && facts.paired.has(h.cls)) ? held.filter((h) => !(h.inLoop && facts.paired.has(h.cls))) : held;
}
