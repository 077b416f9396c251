/**
 * Walking a function's control-flow graph with the set of held locks. Two walkers share one
 * transfer function: `walkPaths` enumerates bounded paths with the event sequence (for rules that
 * need an order of events, like check-then-act), and `explore` visits each distinct
 * (node, locks, assumptions) state once (for summaries and "held at this event" questions, without
 * the path explosion of enumeration).
 *
 * Conditional locking is correlated through assumptions: after `if (kvm) mutex_lock(&kvm->lock)`
 * the path that took the lock also assumed `kvm` true, so a later `if (kvm)` can only go the same
 * way. An assignment to a name in the condition forgets the assumption.
 */
import { alias, assume, invalidate, type Assumptions } from './assumptions.js';
import { buildCfg, type Assumption, type Cfg, type CfgEdge } from './cfg.js';
import type { CallEvent, Event, LockEvent } from './events.js';
import type { FunctionModel } from './functions.js';
import { dropLoopLeftovers, factsOf, type FnFacts } from './loops.js';

/** A lock held at some point of a path. */
export interface HeldLock {
  cls: string;
  /** The lock object as written at the acquire. */
  lock: string;
  flavor: LockEvent['flavor'];
  mode: LockEvent['mode'];
  /** Line of the acquire (of the call, when a callee took it). */
  line: number;
  api: string;
  /** The callee that took it, when acquired through a helper. */
  via: string | null;
  /** Taken inside a loop body (per element of a list, typically). */
  inLoop?: boolean;
}

/** One way a call can affect the caller's locks, from the callee's summary. */
export interface CallOutcome {
  /** Conditions on the caller's expressions under which this outcome happens (already substituted). */
  assume: Assumption[];
  acquire: HeldLock[];
  release: Released[];
}

/** What the walker needs from the model: lock classes and the effects of calls. */
export interface WalkContext {
  classOf(ev: LockEvent): string;
  /** Outcomes of a call, or null for "no lock effect" (unknown or lock-neutral callee). */
  callOutcomes?(call: CallEvent): CallOutcome[] | null;
  /**
   * Whether an if-condition is worth remembering along a path. Remembering every condition makes
   * states that differ only by irrelevant facts and defeats merging; by default all are kept.
   */
  tracks?(cond: string): boolean;
}

/** Something odd on a path, for the imbalance rule and for summaries. */
export interface PathIssue {
  kind: 'release-unheld' | 'double-acquire';
  event: Event;
  cls: string;
  line: number;
}

/** One event on a path, with the locks held just before it. */
export interface PathStep {
  event: Event;
  held: readonly HeldLock[];
  /** For a trylock/interruptible acquire decided by a branch: whether this path got the lock. */
  acquired?: boolean;
}

/** One enumerated path from entry to a return or the closing brace. */
export interface PathResult {
  steps: PathStep[];
  exit: { line: number; returns: string | null; kind: 'return' | 'end' };
  /** Locks still held at the exit. */
  held: readonly HeldLock[];
  issues: PathIssue[];
  assumptions: Assumption[];
  /** Locks released on the path that it did not take (the caller's). */
  released: readonly Released[];
}

interface State {
  held: readonly HeldLock[];
  assume: ReadonlyMap<string, boolean>;
  /** Locks released without being taken on this path: held by the caller on entry. */
  released: readonly Released[];
  /**
   * Conditions on a call's result variable added by the call's outcome; the assignment of the result
   * that follows (`ret = f()`) must not forget them.
   */
  fresh?: { callee: string; keys: readonly string[] };
}

/** A lock released on a path that did not take it. */
export interface Released {
  cls: string;
  lock: string;
  flavor: LockEvent['flavor'];
  mode: LockEvent['mode'];
}

/** Bounds for {@link walkPaths}. */
export interface WalkOptions {
  /** Stop after this many paths (default 256). */
  maxPaths?: number;
  /** Times any node may repeat on one path: loops run zero, one or two times by default (3). */
  maxVisits?: number;
  /** Total node visits across all paths (default 200 000). */
  maxWork?: number;
}

const cfgCache = new WeakMap<FunctionModel, Cfg>();
/** The control-flow graph of `fn`, built once per function object. */
export function cfgOf(fn: FunctionModel): Cfg {
  let cfg = cfgCache.get(fn);
  if (!cfg) {
    cfg = buildCfg(fn);
    cfgCache.set(fn, cfg);
  }
  return cfg;
}

function heldFromEvent(ev: LockEvent, cls: string, via: string | null = null): HeldLock {
  return { cls, lock: ev.lock, flavor: ev.flavor, mode: ev.mode, line: ev.line, api: ev.api, via };
}

function release(held: readonly HeldLock[], cls: string, lock: string): readonly HeldLock[] | null {
  let idx = -1;
  for (let i = held.length - 1; i >= 0; i--) {
    if (held[i]!.cls !== cls) continue;
    if (idx < 0) idx = i;
    if (held[i]!.lock === lock) {
      idx = i;
      break;
    }
  }
  if (idx < 0) return null;
  return [...held.slice(0, idx), ...held.slice(idx + 1)];
}

function withAssumption(state: State, a: Assumption): State | null {
  const next = assume(state.assume, a);
  if (!next) return null;
  return next === state.assume ? state : { ...state, assume: next };
}

/** Apply one event; returns the successor states (a call with several outcomes forks). */
function transfer(ctx: WalkContext, facts: FnFacts, state: State, ev: Event, issues: PathIssue[]): State[] {
  if (ev.kind === 'lock') {
    if (ev.op === 'assert_held') return [state];
    const cls = ctx.classOf(ev);
    const looped = facts.inLoop.has(ev) && facts.paired.has(cls);
    if (ev.op === 'acquire') {
      const already = state.held.some((h) => h.cls === cls);
      if (looped && already) return [state];
      const exclusive = ev.mode === 'exclusive' && ev.flavor !== 'rcu' && ev.flavor !== 'srcu';
      if (exclusive && already && state.held.some((h) => h.cls === cls && h.mode === 'exclusive') && !cls.startsWith('?')) {
        issues.push({ kind: 'double-acquire', event: ev, cls, line: ev.line });
      }
      return [{ ...state, held: [...state.held, { ...heldFromEvent(ev, cls), inLoop: facts.inLoop.has(ev) }] }];
    }
    const next = release(state.held, cls, ev.lock);
    if (!next && looped) return [state];
    if (!next) {
      issues.push({ kind: 'release-unheld', event: ev, cls, line: ev.line });
      return [{ ...state, released: [...state.released, { cls, lock: ev.lock, flavor: ev.flavor, mode: ev.mode }] }];
    }
    return [{ ...state, held: next }];
  }
  if (ev.kind === 'call' && ctx.callOutcomes) {
    const outcomes = ctx.callOutcomes(ev);
    if (!outcomes || outcomes.length === 0) return [state];
    const out: State[] = [];
    for (const o of outcomes) {
      let s: State | null = state;
      for (const a of o.assume) {
        if (!s) break;
        // A call's result fact is new at each execution of the call (loops): overwrite, never contradict.
        if (a.cond.startsWith('@call:')) s = { ...s, assume: new Map(s.assume).set(a.cond, a.truth) };
        else s = withAssumption(s, a);
      }
      if (!s) continue;
      let held = s.held;
      let released = s.released;
      for (const r of o.release) {
        const next = release(held, r.cls, r.lock);
        if (next) held = next;
        else if (facts.inLoop.has(ev) && facts.paired.has(r.cls)) continue;
        else {
          issues.push({ kind: 'release-unheld', event: ev, cls: r.cls, line: ev.line });
          released = [...released, r];
        }
      }
      const looped = facts.inLoop.has(ev);
      for (const a of o.acquire) {
        const already = held.some((h) => h.cls === a.cls);
        if (looped && already && facts.paired.has(a.cls)) continue;
        if (already && a.mode === 'exclusive' && a.flavor !== 'rcu' && held.some((h) => h.cls === a.cls && h.mode === 'exclusive') && !a.cls.startsWith('?')) {
          issues.push({ kind: 'double-acquire', event: ev, cls: a.cls, line: ev.line });
        }
        held = [...held, { ...a, line: ev.line, inLoop: looped }];
      }
      // Everything this outcome made known about the result survives the `ret = f()` assignment.
      const fresh = [...s.assume.keys()].filter((k) => state.assume.get(k) !== s!.assume.get(k));
      out.push({ held, assume: s.assume, released, fresh: { callee: ev.callee, keys: fresh } });
    }
    // Outcomes contradicting what the caller already assumed are impossible; keep the state if none fit.
    return out.length ? out : [state];
  }
  if (ev.kind === 'assign') {
    const keys = state.fresh && ev.fromCall === state.fresh.callee ? state.fresh.keys : [];
    let next: Assumptions;
    if (keys.length) {
      const keep = [...state.assume].filter(([c]) => keys.includes(c));
      next = new Map([...invalidate(new Map([...state.assume].filter(([c]) => !keys.includes(c))), ev), ...keep]);
    } else next = invalidate(state.assume, ev);
    next = alias(next, ev.target, ev.value);
    return [next === state.assume && !state.fresh ? state : { ...state, assume: next, fresh: undefined }];
  }
  const next = invalidate(state.assume, ev);
  return [next === state.assume ? state : { ...state, assume: next }];
}

function takeEdge(ctx: WalkContext, facts: FnFacts, state: State, edge: CfgEdge): State | null {
  let s: State | null = state;
  if (edge.assume && (!ctx.tracks || ctx.tracks(edge.assume.cond))) s = withAssumption(s, edge.assume);
  for (const a of edge.also ?? []) {
    // Only meaningful when a call outcome stated the result; otherwise nothing to contradict.
    if (s && s.assume.has(a.cond)) s = withAssumption(s, a);
  }
  if (!s) return null;
  for (const l of edge.locks) {
    if (!l.acquired) continue;
    const cls = ctx.classOf(l.event);
    const inLoop = facts.inLoop.has(l.event);
    if (inLoop && facts.paired.has(cls) && s.held.some((h) => h.cls === cls)) continue;
    s = { ...s, held: [...s.held, { ...heldFromEvent(l.event, cls), inLoop }] };
  }
  return s;
}

function assumptionsOf(state: State): Assumption[] {
  return [...state.assume].map(([cond, truth]) => ({ cond, truth }));
}

/**
 * Enumerate paths through `fn` (depth first, bounded), yielding each path's events with the locks
 * held before each event, the exit, and imbalance issues seen on the way.
 */
export function* walkPaths(fn: FunctionModel, ctx: WalkContext, opts: WalkOptions = {}): Generator<PathResult> {
  const cfg = cfgOf(fn);
  const facts = factsOf(fn, ctx);
  const maxPaths = opts.maxPaths ?? 256;
  const maxVisits = opts.maxVisits ?? 3;
  let work = opts.maxWork ?? 200_000;
  let paths = 0;
  // Steps are a shared-tail list so branching paths do not copy their prefix.
  interface Steps { step: PathStep; prev: Steps | null }
  interface Frame { node: number; state: State; steps: Steps | null; visits: Map<number, number>; issues: PathIssue[] }
  const materialise = (l: Steps | null): PathStep[] => {
    const out: PathStep[] = [];
    for (let c = l; c; c = c.prev) out.push(c.step);
    return out.reverse();
  };
  const stack: Frame[] = [{ node: cfg.entry, state: { held: [], assume: new Map(), released: [] }, steps: null, visits: new Map(), issues: [] }];
  while (stack.length && paths < maxPaths && work-- > 0) {
    const f = stack.pop()!;
    const node = cfg.nodes[f.node]!;
    const count = (f.visits.get(f.node) ?? 0) + 1;
    if (count > maxVisits) continue;
    const visits = new Map(f.visits).set(f.node, count);
    // Events of one node may fork (call outcomes): expand them breadth-wise within the node.
    let frontier: { state: State; steps: Steps | null; issues: PathIssue[] }[] = [{ state: f.state, steps: f.steps, issues: f.issues }];
    for (const ev of node.events) {
      const next: typeof frontier = [];
      for (const fr of frontier) {
        const issues: PathIssue[] = [];
        const steps: Steps = { step: { event: ev, held: fr.state.held }, prev: fr.steps };
        for (const s of transfer(ctx, facts, fr.state, ev, issues)) next.push({ state: s, steps, issues: issues.length ? [...fr.issues, ...issues] : fr.issues });
      }
      frontier = next;
    }
    for (const fr of frontier) {
      if (node.id === cfg.exit) {
        paths++;
        const all = materialise(fr.steps);
        const ret = [...all].reverse().find((s) => s.event.kind === 'return');
        yield {
          steps: all,
          exit: { line: ret?.event.line ?? fn.endLine, returns: ret && ret.event.kind === 'return' ? ret.event.expr : null, kind: ret ? 'return' : 'end' },
          held: dropLoopLeftovers(fr.state.held, facts),
          issues: fr.issues,
          assumptions: assumptionsOf(fr.state),
          released: fr.state.released,
        };
        continue;
      }
      for (let i = node.succ.length - 1; i >= 0; i--) {
        const edge = node.succ[i]!;
        const s = takeEdge(ctx, facts, fr.state, edge);
        if (!s) continue;
        // A conditional acquire decided by this branch is a step of the path, taken or not.
        let steps = fr.steps;
        for (const l of edge.locks) steps = { step: { event: l.event, held: fr.state.held, acquired: l.acquired }, prev: steps };
        stack.push({ node: edge.to, state: s, steps, visits, issues: fr.issues });
      }
    }
  }
}

/** One distinct state reaching the function's exit. */
export interface ExitState {
  held: readonly HeldLock[];
  /** Locks released on the way that the function did not take (the caller's). */
  released: readonly Released[];
  assume: Assumption[];
  returns: string | null;
  line: number;
}

/** The result of {@link explore}. */
export interface Exploration {
  exits: ExitState[];
  issues: PathIssue[];
  /** Per event: classes held on every state reaching it (`must`) and on some (`may`). */
  heldAt: Map<Event, { must: string[]; may: HeldLock[] }>;
  /** True when a state bound was hit and some states were dropped. */
  truncated: boolean;
}

function record(result: Exploration, ev: Event, held: readonly HeldLock[]): void {
  const at = result.heldAt.get(ev);
  const classes = held.map((h) => h.cls);
  if (!at) result.heldAt.set(ev, { must: classes, may: [...held] });
  else {
    at.must = at.must.filter((c) => classes.includes(c));
    for (const h of held) if (!at.may.some((m) => m.cls === h.cls)) at.may.push(h);
  }
}

function stateKey(node: number, s: State): string {
  const held = s.held.map((h) => `${h.cls}/${h.mode}`).join(',') + '#' + s.released.map((r) => r.cls).join(',');
  const assume = [...s.assume].map(([c, t]) => `${t ? '' : '!'}${c}`).sort().join('&');
  return `${node}|${held}|${assume}`;
}

/**
 * Visit each distinct (node, held locks, assumptions) state of `fn` once. Bounded by
 * `maxStatesPerNode` (default 24) and `maxStates` (default 20 000); `truncated` says so.
 */
export function explore(fn: FunctionModel, ctx: WalkContext, opts: { maxStatesPerNode?: number; maxStates?: number } = {}): Exploration {
  const cfg = cfgOf(fn);
  const facts = factsOf(fn, ctx);
  const perNode = opts.maxStatesPerNode ?? 24;
  let budget = opts.maxStates ?? 20_000;
  const seen = new Set<string>();
  const counts = new Map<number, number>();
  const result: Exploration = { exits: [], issues: [], heldAt: new Map(), truncated: false };
  const issueKeys = new Set<string>();
  const work: { node: number; state: State }[] = [{ node: cfg.entry, state: { held: [], assume: new Map(), released: [] } }];
  while (work.length) {
    if (budget-- <= 0) {
      result.truncated = true;
      break;
    }
    const { node: id, state } = work.pop()!;
    const key = stateKey(id, state);
    if (seen.has(key)) continue;
    const n = (counts.get(id) ?? 0) + 1;
    if (n > perNode || state.held.length > 16) {
      result.truncated = true;
      continue;
    }
    seen.add(key);
    counts.set(id, n);
    const node = cfg.nodes[id]!;
    let states: State[] = [state];
    let lastReturn: string | null = null;
    for (const ev of node.events) {
      const next: State[] = [];
      for (const s of states) {
        record(result, ev, s.held);
        const issues: PathIssue[] = [];
        next.push(...transfer(ctx, facts, s, ev, issues));
        for (const i of issues) {
          const k = `${i.kind}|${i.line}|${i.cls}`;
          if (!issueKeys.has(k)) {
            issueKeys.add(k);
            result.issues.push(i);
          }
        }
      }
      if (ev.kind === 'return') lastReturn = ev.expr;
      states = next;
    }
    for (const s of states) {
      if (id === cfg.exit) {
        result.exits.push({ held: dropLoopLeftovers(s.held, facts), released: s.released, assume: assumptionsOf(s), returns: null, line: fn.endLine });
        continue;
      }
      if (node.kind === 'return') {
        result.exits.push({ held: dropLoopLeftovers(s.held, facts), released: s.released, assume: assumptionsOf(s), returns: lastReturn ?? node.returns, line: node.line });
        continue;
      }
      for (const e of node.succ) {
        const t = takeEdge(ctx, facts, s, e);
        if (!t) continue;
        // Conditional acquires decided on the edge are events too: record what was held before them.
        for (const l of e.locks) if (l.acquired) record(result, l.event, s.held);
        work.push({ node: e.to, state: t });
      }
    }
  }
  return result;
}
