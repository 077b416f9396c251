/**
 * Per-function summaries and their interprocedural fixpoint. A caller sees a callee through its
 * outcomes: net locks taken and released, under conditions on the callee's parameters rewritten
 * to the caller's arguments, so `get_update_locks_for_mdev(m)` and
 * `release_update_locks_for_mdev(m)` pair up even though both take `m->kvm->lock` only
 * `if (m && m->kvm)`. Summaries are recomputed for callers of changed callees until nothing
 * changes or a round bound is hit (recursion converges or is cut there).
 */
import { lockApi } from './apis.js';
import { assume, type Assumptions } from './assumptions.js';
import type { Assumption } from './cfg.js';
import { isErrorReturn, isUnknownClass, rebindRef, renameVar, RET, returnClass, walkContext, words } from './context.js';
import type { Prototype } from './declarations.js';
import type { Event } from './events.js';
import type { FunctionModel } from './functions.js';
import { classOfPath, fieldClassOf } from './locks.js';
import {
  allFunctions, functionKey, resolveCall, type FunctionSummary, type LockOutcome, type LockRef, type LockUse, type OrderEdge, type TreeModel,
} from './model.js';
import { explore, type WalkContext } from './paths.js';
import type { LockAnnotation } from './prefilter.js';
import { textPath } from './textpath.js';
import { distinctCallees, recordingEnv, reuse, store, targetKeys } from './incremental.js';

const MAX_OUTCOMES = 8;
const MAX_TAKES = 64;

function refKey(r: { cls: string }): string {
  return r.cls;
}

function outcomeKey(o: LockOutcome): string {
  return JSON.stringify([o.assume.map((a) => `${a.truth ? '' : '!'}${a.cond}`).sort(), o.acquire.map(refKey).sort(), o.release.map(refKey).sort(), o.error, o.returns]);
}

/** Compute the summary of one function under the model's current summaries. */
export function summarise(model: TreeModel, fn: FunctionModel): FunctionSummary {
  const ctx = walkContext(model, fn);
  const ex = explore(fn, ctx);
  const params = new Set(fn.params.map((p) => p.name));
  const locals = new Set(fn.locals.map((l) => l.name));
  const outcomes = new Map<string, LockOutcome>();
  for (const exit of ex.exits) {
    // A returned local stands for the caller's result: `return matrix_mdev` makes `matrix_mdev->kvm` `$ret->kvm`.
    const retVar = exit.returns !== null && /^[A-Za-z_]\w*$/.test(exit.returns.trim()) && locals.has(exit.returns.trim()) ? exit.returns.trim() : null;
    const renamed = retVar ? exit.assume.map((a) => ({ cond: renameVar(a.cond, retVar, RET), truth: a.truth })) : [...exit.assume];
    const rc = returnClass(exit.returns);
    if (rc) renamed.push({ cond: RET, truth: rc === 'nonzero' });
    // Only conditions on parameters, globals and the result mean something to a caller.
    const assume = essential(renamed.filter((a) => {
      const w = words(a.cond);
      return (a.cond.includes(RET) || w.some((x) => params.has(x))) && !w.some((x) => locals.has(x));
    }));
    const o: LockOutcome = {
      assume,
      acquire: exit.held.map((h) => ({ cls: h.cls, lock: h.lock, flavor: h.flavor, mode: h.mode })),
      release: exit.released.map((r) => ({ cls: r.cls, lock: r.lock, flavor: r.flavor, mode: r.mode })),
      error: isErrorReturn(exit.returns),
      returns: returnClass(exit.returns),
    };
    outcomes.set(outcomeKey(o), o);
  }
  let outs = mergeByEffect([...outcomes.values()]);
  if (outs.length > MAX_OUTCOMES) {
    // Too many to fork on: keep the distinct lock effects without their conditions.
    const merged = new Map<string, LockOutcome>();
    for (const o of outs) {
      const m = { ...o, assume: [], error: null, returns: null };
      merged.set(outcomeKey(m), m);
    }
    outs = [...merged.values()].slice(0, MAX_OUTCOMES);
  }
  addAnnotationEffects(model, fn, outs);
  const union = (pick: (o: LockOutcome) => LockRef[]): LockRef[] => {
    const m = new Map<string, LockRef>();
    for (const o of outs) for (const r of pick(o)) if (!m.has(r.cls)) m.set(r.cls, r);
    return [...m.values()];
  };
  const s: FunctionSummary = {
    key: functionKey(fn), name: fn.name, file: fn.file, line: fn.line, outcomes: outs,
    acquires: union((o) => o.acquire), releases: union((o) => o.release),
    takes: [], requires: [], orderEdges: [], callees: [], indirect: [], fieldsRead: [], fieldsWritten: [], accesses: [],
    sleeps: null, registrations: [], truncated: ex.truncated,
  };
  collectUses(model, fn, ctx, ex.heldAt, s);
  return s;
}

/** Drop assumptions implied by the others (`g` and `g->parent` follow from `g && g->parent->kvm`). */
function essential(list: Assumption[]): Assumption[] {
  let known: Assumptions = new Map();
  const out: Assumption[] = [];
  for (const a of [...list].sort((x, y) => y.cond.length - x.cond.length)) {
    if (known.get(a.cond) === a.truth) continue;
    const next = assume(known, a);
    if (!next) continue;
    known = next;
    out.push(a);
  }
  return out;
}

/**
 * Outcomes with the same lock effect need no condition to tell them apart: keep one, with only the
 * assumptions all of them share (`caller_ok` balances on both sides of `if (kvm)`: no condition).
 */
function mergeByEffect(outs: LockOutcome[]): LockOutcome[] {
  const groups = new Map<string, LockOutcome[]>();
  for (const o of outs) {
    // Facts about the result keep outcomes apart: the caller tests it (`if (!mdev)`).
    const k = outcomeKey({ ...o, assume: o.assume.filter((a) => a.cond.includes(RET)), error: null, returns: null });
    const g = groups.get(k) ?? [];
    g.push(o);
    groups.set(k, g);
  }
  return [...groups.values()].map((g) => {
    if (g.length === 1) return g[0]!;
    const shared = g[0]!.assume.filter((a) => g.every((o) => o.assume.some((b) => b.cond === a.cond && b.truth === a.truth)));
    const same = <T>(pick: (o: LockOutcome) => T): T | null => (g.every((o) => pick(o) === pick(g[0]!)) ? pick(g[0]!) : null);
    return { ...g[0]!, assume: shared, error: same((o) => o.error), returns: same((o) => o.returns) };
  });
}

const prototypeIndex = new WeakMap<TreeModel['files'], Map<string, Prototype[]>>();

/**
 * Lock annotations of a function: on its definition, and on prototypes of the same name (often the
 * only place they are written, in a header), with the prototype's parameter names renamed to the
 * definition's.
 */
export function annotationsOf(model: TreeModel, fn: FunctionModel): LockAnnotation[] {
  let index = prototypeIndex.get(model.files);
  if (!index) {
    index = new Map();
    for (const f of model.files.values()) {
      for (const p of f.prototypes) if (p.annotations.length) index.set(p.name, [...(index.get(p.name) ?? []), p]);
    }
    prototypeIndex.set(model.files, index);
  }
  const out = [...fn.annotations];
  for (const p of index.get(fn.name) ?? []) {
    for (const a of p.annotations) {
      let arg = a.arg;
      p.params.forEach((pp, i) => {
        const own = fn.params[i]?.name;
        if (own && own !== pp.name) arg = renameVar(arg, pp.name, own);
      });
      if (!out.some((x) => x.kind === a.kind && x.arg.replace(/\s+/g, '') === arg.replace(/\s+/g, ''))) out.push({ ...a, arg });
    }
  }
  return out;
}

/** `__acquires(x)`/`__releases(x)` on a function whose body the walk could not see through. */
function addAnnotationEffects(model: TreeModel, fn: FunctionModel, outs: LockOutcome[]): void {
  for (const a of annotationsOf(model, fn)) {
    if (a.kind === 'must_hold') continue;
    const p = textPath(a.arg);
    const cls = classOfPath(p, fn, model.env).id;
    const ref: LockRef = { cls, lock: a.arg.replace(/^&\s*/, ''), flavor: 'mutex', mode: 'exclusive' };
    const list = (o: LockOutcome): LockRef[] => (a.kind === 'acquires' ? o.acquire : o.release);
    if (outs.length === 0) outs.push({ assume: [], acquire: [], release: [], error: null, returns: null });
    for (const o of outs) if (!list(o).some((r) => r.cls === cls)) list(o).push(ref);
  }
}

function collectUses(model: TreeModel, fn: FunctionModel, ctx: WalkContext, heldAt: Map<Event, { must: string[]; may: { cls: string; line: number }[] }>, s: FunctionSummary): void {
  const takes = new Map<string, LockUse>();
  const addTake = (u: LockUse): void => {
    const k = `${u.cls}|${u.trylock}`;
    const old = takes.get(k);
    if (takes.size < MAX_TAKES && (!old || old.via.length > u.via.length)) takes.set(k, u);
  };
  const edges = new Map<string, OrderEdge>();
  const addEdge = (e: OrderEdge): void => {
    if (e.outer === e.inner || e.outer === 'rcu' || e.inner === 'rcu') return;
    const k = `${e.outer}>${e.inner}|${e.trylock}`;
    const old = edges.get(k);
    if (!old || old.via.length > e.via.length) edges.set(k, e);
  };
  const callees = new Set<string>();
  const read = new Set<string>();
  const written = new Set<string>();
  for (const a of annotationsOf(model, fn)) {
    if (a.kind === 'must_hold') s.requires.push({ cls: classOfPath(textPath(a.arg), fn, model.env).id, lock: a.arg.replace(/^&\s*/, ''), line: fn.line, source: 'annotation', via: [] });
  }
  const takenHere = new Set<string>();
  for (const ev of fn.events) if (ev.kind === 'lock' && ev.op === 'acquire') takenHere.add(ctx.classOf(ev));
  for (const ev of fn.events) {
    const at = heldAt.get(ev);
    switch (ev.kind) {
      case 'lock': {
        const cls = ctx.classOf(ev);
        if (ev.op === 'assert_held') {
          s.requires.push({ cls, lock: ev.lock, line: ev.line, source: 'assert', via: [] });
          break;
        }
        if (ev.op !== 'acquire') break;
        const trylock = ev.acquiredWhen === 'nonzero';
        addTake({ cls, lock: ev.lock, flavor: ev.flavor, mode: ev.mode, line: ev.line, via: [], trylock });
        for (const h of at?.may ?? []) addEdge({ outer: h.cls, inner: cls, line: ev.line, outerLine: h.line, via: [], trylock });
        if (!s.sleeps && !trylock && ['mutex', 'rwsem', 'semaphore', 'device'].includes(ev.flavor)) s.sleeps = { api: ev.api, line: ev.line, via: [] };
        break;
      }
      case 'call': {
        if (lockApi(ev.callee) || ev.callee === 'guard') break;
        const targets = resolveCall(model, ev, fn);
        if (!ev.indirect) callees.add(ev.callee);
        else s.indirect.push({ member: ev.indirect.member, line: ev.line, candidates: targets.map((t) => t.name) });
        for (const t of targets) {
          const cs = model.summaries.get(functionKey(t));
          if (!cs) continue;
          for (const taken of cs.takes) {
            // A lock the callee reaches through its parameters is renamed into this function's terms.
            const u = isUnknownClass(taken.cls) && !ev.indirect ? { ...taken, ...rebindRef(model, fn, t, taken, ev.args) } : taken;
            addTake({ ...u, line: ev.line, via: [t.name, ...u.via] });
            for (const h of at?.may ?? []) addEdge({ outer: h.cls, inner: u.cls, line: ev.line, outerLine: h.line, via: [t.name, ...u.via], trylock: u.trylock });
          }
          if (!ev.indirect) {
            for (const r of cs.requires) {
              if (!(at?.must ?? []).includes(r.cls) && !takenHere.has(r.cls) && !s.requires.some((x) => x.cls === r.cls)) {
                s.requires.push({ cls: r.cls, lock: r.lock, line: ev.line, source: 'callee', via: [t.name, ...r.via] });
              }
            }
            if (!s.sleeps && cs.sleeps) s.sleeps = { api: cs.sleeps.api, line: ev.line, via: [t.name, ...cs.sleeps.via] };
          }
        }
        break;
      }
      case 'load':
      case 'store': {
        const cls = fieldClassOf(ev.path, fn, model.env);
        if (!cls) break;
        (ev.kind === 'load' ? read : written).add(cls);
        s.accesses.push({ cls, kind: ev.kind, line: ev.line, held: at?.must ?? [] });
        break;
      }
      case 'marked':
      case 'atomic': {
        const cls = fieldClassOf(ev.path, fn, model.env);
        if (!cls) break;
        const isStore = ev.kind === 'marked' ? ev.access === 'store' : ev.op !== 'read';
        (isStore ? written : read).add(cls);
        const kind = ev.kind === 'atomic' ? 'atomic' : ev.access === 'store' ? 'marked-store' : 'marked-load';
        s.accesses.push({ cls, kind, line: ev.line, held: at?.must ?? [] });
        break;
      }
      case 'alloc':
        if (!s.sleeps && !ev.atomic && ev.gfp !== null && /^(?:GFP_|__GFP_)/.test(ev.gfp)) s.sleeps = { api: ev.api, line: ev.line, via: [] };
        break;
      case 'user_copy':
      case 'sleep':
        s.sleeps ??= { api: ev.api, line: ev.line, via: [] };
        break;
      case 'register':
        s.registrations.push({ api: ev.api, line: ev.line });
        break;
      default:
        break;
    }
  }
  s.takes = [...takes.values()];
  s.orderEdges = [...edges.values()];
  s.callees = [...callees];
  s.fieldsRead = [...read];
  s.fieldsWritten = [...written];
}

/** Caller views by summary (a summary is immutable once made, and shared by the models that reuse it). */
const views = new WeakMap<FunctionSummary, string>();

/**
 * What a caller reads of a summary (outcomes, takes, requirements, sleeping, with the parameter
 * names they are written in): when this is the same, a caller's summary is the same.
 */
function callerView(s: FunctionSummary, fn: FunctionModel): string {
  let v = views.get(s);
  if (v === undefined) {
    v = JSON.stringify([
      fn.params.map((p) => p.name),
      s.outcomes,
      s.takes.map((t) => [t.cls, t.lock, t.flavor, t.mode, t.trylock, t.via]),
      s.requires.map((r) => [r.cls, r.lock, r.via]),
      s.sleeps ? [s.sleeps.api, s.sleeps.via] : null,
    ]);
    views.set(s, v);
  }
  return v;
}

/** The definitions each call event of `fn` reaches (lock API calls and `guard` excluded), in event order. */
function callTargets(model: TreeModel, fn: FunctionModel): FunctionModel[][] {
  const out: FunctionModel[][] = [];
  for (const ev of fn.events) if (ev.kind === 'call' && !lockApi(ev.callee)) out.push(resolveCall(model, ev, fn));
  return out;
}

/** Strongly connected components of the call graph, callees before callers (Tarjan, iterative). */
function componentsBottomUp(nodes: FunctionModel[], edges: Map<FunctionModel, FunctionModel[]>): FunctionModel[][] {
  const index = new Map<FunctionModel, number>();
  const low = new Map<FunctionModel, number>();
  const onStack = new Set<FunctionModel>();
  const stack: FunctionModel[] = [];
  const out: FunctionModel[][] = [];
  let next = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { v: FunctionModel; i: number }[] = [{ v: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const top = work[work.length - 1]!;
      const succ = edges.get(top.v) ?? [];
      if (top.i < succ.length) {
        const w = succ[top.i++]!;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1]!.v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const comp: FunctionModel[] = [];
        let w: FunctionModel;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== top.v);
        out.push(comp.reverse());
      }
    }
  }
  return out;
}

/**
 * Compute summaries for every function of the model that a rule may ask about, callees before
 * callers. A function outside recursion is summarised once, or its summary is taken from an
 * earlier model when everything it depends on reads the same (incremental.ts; `reuse: false`
 * turns that off). Mutually recursive functions are iterated together to a fixpoint, at most
 * `maxRounds` rounds (default 6).
 */
export function computeSummaries(model: TreeModel, maxRounds = 6, opts: { reuse?: boolean } = {}): SummaryStats {
  const fns = allFunctions(model);
  // One summary per key: of `#ifdef` variants of one static function, the first.
  const first = new Map<string, FunctionModel>();
  for (const f of fns) if (!first.has(functionKey(f))) first.set(functionKey(f), f);
  const own = (f: FunctionModel): FunctionModel => first.get(functionKey(f))!;
  const targets = new Map<FunctionModel, FunctionModel[][]>();
  const callees = new Map<FunctionModel, FunctionModel[]>();
  const called = new Set<FunctionModel>();
  const callers = new Map<FunctionModel, FunctionModel[]>();
  for (const f of first.values()) {
    const ts = callTargets(model, f);
    targets.set(f, ts);
    const cs = [...new Set(distinctCallees(ts).map(own))];
    callees.set(f, cs);
    for (const c of cs) {
      called.add(c);
      callers.set(c, [...(callers.get(c) ?? []), f]);
    }
  }
  // Inline functions of context headers that nothing in the model calls cannot matter to a rule,
  // unless they call one that does (a rule may ask about any caller of a function it follows).
  const touched = new Set(model.touched);
  const wanted = new Set([...first.values()].filter((f) => touched.has(f.file) || !f.file.endsWith('.h') || called.has(f)));
  for (const f of wanted) for (const c of callers.get(f) ?? []) wanted.add(c);
  const relevant = [...first.values()].filter((f) => wanted.has(f));

  const reuseOn = opts.reuse !== false;
  const viewOf = (c: FunctionModel): string | null => {
    const s = model.summaries.get(functionKey(c));
    return s ? callerView(s, own(c)) : null;
  };
  const stats: SummaryStats = { computed: 0, reused: 0, converged: true };
  for (const comp of componentsBottomUp(relevant, callees)) {
    const f = comp[0]!;
    const recursive = comp.length > 1 || callees.get(f)!.includes(f);
    if (!recursive) {
      const key = functionKey(f);
      const probe = {
        env: model.env,
        calls: () => targets.get(f)!,
        view: viewOf,
        annotations: () => JSON.stringify(annotationsOf(model, f)),
      };
      const hit = reuseOn ? reuse(f, probe) : null;
      if (hit) {
        model.summaries.set(key, hit);
        stats.reused++;
        continue;
      }
      stats.computed++;
      const log = new Map<string, Parameters<typeof recordingEnv>[1] extends Map<string, infer R> ? R : never>();
      const s = summarise(reuseOn ? { ...model, env: recordingEnv(model.env, log) } : model, f);
      model.summaries.set(key, s);
      if (reuseOn) {
        const ts = targets.get(f)!;
        store(f, s, { env: [...log.values()], calls: targetKeys(ts), calleeViews: distinctCallees(ts).map(viewOf), annotations: probe.annotations() });
      }
      continue;
    }
    // Recursion: iterate the component from nothing until its caller views settle.
    const last = new Map<FunctionModel, string>();
    let stable = false;
    for (let round = 0; round < maxRounds && !stable; round++) {
      stable = round > 0;
      for (const g of comp) {
        stats.computed++;
        const s = summarise(model, g);
        model.summaries.set(functionKey(g), s);
        const v = callerView(s, g);
        if (last.get(g) !== v) stable = false;
        last.set(g, v);
      }
    }
    if (!stable) stats.converged = false;
  }
  model.stats = stats;
  return stats;
}

/** How a model's summaries came about. */
export interface SummaryStats {
  /** Summaries computed (a recursive function once per round). */
  computed: number;
  /** Summaries taken from an earlier model. */
  reused: number;
  /** Every recursion reached its fixpoint within the round bound. */
  converged: boolean;
}
