/**
 * One stateful depth-first search over a compiled scenario, in one of two modes:
 *
 * - `por`: every state once (64-bit hash set), with sleep sets and ample sets (por.ts). A state
 *   revisited with a sleep set that is not a superset of the stored one is re-explored for the
 *   transitions that were asleep before and are not now, and the stored set shrinks to the
 *   intersection (Godefroid's state caching with sleep sets).
 * - `icb`: iterative context bounding (CHESS): no reduction, the running thread is part of the
 *   state, and switching away from a thread that could still run costs one preemption; a state is
 *   re-explored when reached with fewer preemptions than before.
 */
import { NO_RETURN, type Compiled } from './compile.js';
import type { Invariant, View } from './model.js';
import { Reducer } from './por.js';
import { Machine, Visited } from './state.js';
import { DEAD, FAULT, Semantics, tid, type Fault } from './step.js';

/** Options of one search. */
export interface SearchOptions {
  mode: 'por' | 'icb';
  reduction: boolean;
  preemptionBound: number;
  maxStates: number;
  maxDepth: number;
  /** Absolute time (performance.now()) to stop at. */
  deadline: number;
  exists?: (v: View) => boolean;
  outcomes?: Record<string, (v: View) => boolean>;
  invariants?: Invariant[];
  /** Stop at the first fault of this kind only (refinement), or at the first `exists` witness. */
  goal?: { fault: Fault['kind'] } | { exists: true };
  /**
   * Which faults count: one it rejects ends its path like an infeasible one and the search goes on
   * (synthesised scenarios report only some kinds, and a rejected one must not hide the others).
   */
  accept?: (f: Fault) => boolean;
}

/** A reachable predicate's tally over final states. */
export interface Tally {
  sat: number;
  unsat: number;
  witness: number[] | null;
}

/** What one search found. */
export interface SearchResult {
  states: number;
  transitions: number;
  maxDepth: number;
  finals: number;
  fault: { fault: Fault; path: number[] } | null;
  truncated: 'states' | 'depth' | 'time' | null;
  exists: Tally;
  outcomes: Record<string, Tally>;
  ms: number;
  /** Milliseconds into the search when the first fault or `exists` witness was found. */
  firstMs: number | null;
}

interface Frame {
  mark: number;
  h1: number;
  h2: number;
  /** Transitions to take (`count` of them); a typed array reused per depth (resizing arrays is slow in V8). */
  trans: Int32Array;
  count: number;
  next: number;
  sleep: number;
  done: number;
  p: number;
  cur: number;
  curEnabled: boolean;
}

/** A predicate's view of a state (see {@link View}). */
export function viewOf(c: Compiled, s: Int32Array): View {
  const L = c.layout;
  const v: Record<string, number | undefined> = {};
  c.cells.forEach((name, i) => (v[name] = s[L.cell + i]));
  const count = new Map<string, number>();
  for (const th of c.threads) for (const r of th.regs) count.set(r, (count.get(r) ?? 0) + 1);
  c.threads.forEach((th, t) => {
    th.regs.forEach((r, i) => {
      v[`${t}:${r}`] = s[L.reg[t]! + i];
      if (count.get(r) === 1) v[r] = s[L.reg[t]! + i];
    });
    const ret = s[L.ret + t]!;
    v[`${t}:ret`] = ret === NO_RETURN ? undefined : ret;
  });
  c.locks.forEach((name, l) => (v[`held:${name}`] = s[L.lock + 2 * l]! - 1));
  for (const [k, id] of c.consts) v[`#${k}`] = id;
  return v;
}

/** Run one search. */
export function search(c: Compiled, o: SearchOptions): SearchResult {
  return new Search(c, o).run();
}

/**
 * The search state. A class with methods rather than closures: the hot loop allocates nothing per
 * state (frames and their transition arrays are pooled and reused by depth).
 */
class Search {
  private readonly t0 = performance.now();
  private readonly sem: Semantics;
  private readonly red: Reducer;
  private readonly m: Machine;
  private readonly vis = new Visited(1 << 16);
  private readonly n: number;
  private readonly icb: boolean;
  private readonly reduce: boolean;
  private readonly ch: Int32Array;
  private readonly flushes: number[] = [];
  private nFlush = 0;
  private readonly maxTrans: number;
  private readonly frames: Frame[] = [];
  private sp = 0;
  private stop = false;
  private readonly res: SearchResult;

  constructor(private readonly c: Compiled, private readonly o: SearchOptions) {
    this.sem = new Semantics(c);
    this.red = new Reducer(c, this.sem);
    this.m = new Machine(c.init);
    this.n = c.threads.length;
    this.icb = o.mode === 'icb';
    this.reduce = o.mode === 'por' && o.reduction;
    this.ch = new Int32Array(this.n);
    this.maxTrans = 2 * this.n + this.n * c.cells.length + 1;
    this.res = {
      states: 0, transitions: 0, maxDepth: 0, finals: 0, fault: null, truncated: null,
      exists: { sat: 0, unsat: 0, witness: null }, outcomes: {}, ms: 0, firstMs: null,
    };
    for (const k of Object.keys(o.outcomes ?? {})) this.res.outcomes[k] = { sat: 0, unsat: 0, witness: null };
  }

  private path(): number[] {
    const p: number[] = [];
    for (let i = 0; i < this.sp; i++) {
      const f = this.frames[i]!;
      p.push(f.trans[f.next - 1]!);
    }
    return p;
  }

  private found(f: Fault): void {
    const goal = this.o.goal;
    if (goal && 'fault' in goal && goal.fault !== f.kind) return;
    if (this.o.accept && !this.o.accept(f)) return;
    this.res.fault = { fault: f, path: this.path() };
    this.res.firstMs ??= performance.now() - this.t0;
    this.stop = true;
  }

  private final(s: Int32Array): void {
    const res = this.res;
    res.finals++;
    if (!this.o.exists && !this.o.outcomes) return;
    const v = viewOf(this.c, s);
    const tally = (t: Tally, ok: boolean): void => {
      if (ok) {
        t.sat++;
        t.witness ??= this.path();
      } else t.unsat++;
    };
    if (this.o.exists) {
      const ok = this.o.exists(v);
      tally(res.exists, ok);
      if (ok) {
        res.firstMs ??= performance.now() - this.t0;
        if (this.o.goal && 'exists' in this.o.goal) this.stop = true;
      }
    }
    for (const [k, pred] of Object.entries(this.o.outcomes ?? {})) tally(res.outcomes[k]!, pred(v));
  }

  /** The frame for depth `sp`, reused. */
  private frameAt(i: number): Frame {
    let f = this.frames[i];
    if (!f) {
      f = { mark: 0, h1: 0, h2: 0, trans: new Int32Array(this.maxTrans), count: 0, next: 0, sleep: 0, done: 0, p: 0, cur: -1, curEnabled: false };
      this.frames[i] = f;
    }
    return f;
  }

  private pushThread(f: Frame, t: number): void {
    if (this.icb && f.curEnabled && t !== f.cur && f.p + 1 > this.o.preemptionBound) return;
    for (let k = 0; k < this.ch[t]!; k++) f.trans[f.count++] = tid(t, k);
  }

  /** Expand the current state into frame `f`: false when terminal or faulty (recorded). */
  private expand(f: Frame, sleep: number, restrict: number, p: number): boolean {
    const { c, sem, ch, n, flushes } = this;
    const s = this.m.s;
    const L = c.layout;
    let any = false;
    for (let t = 0; t < n; t++) {
      ch[t] = sem.choices(s, t);
      if (ch[t]! > 0) any = true;
    }
    this.nFlush = 0;
    if (sem.relaxed) {
      flushes.length = 0;
      for (let t = 0; t < n; t++) {
        const before = flushes.length;
        sem.flushable(s, t, flushes);
        for (let i = before; i < flushes.length; i++) flushes[i] = tid(t, 2 + flushes[i]!);
      }
      this.nFlush = flushes.length;
    }
    if (!any && this.nFlush === 0) {
      let live = -1;
      for (let t = 0; t < n; t++) if (s[L.pc + t]! < c.threads[t]!.ops.length) live = t;
      if (live < 0) this.final(s);
      else this.found(deadlockFault(c, sem, s));
      return false;
    }
    for (let t = 0; t < n; t++) {
      if (ch[t] === 0 && sem.selfBlocked(s, t)) {
        const op = sem.opAt(s, t)!;
        this.found({ kind: 'self-deadlock', thread: t, pc: s[L.pc + t]!, message: `${c.threads[t]!.label} takes ${c.locks[op.lock]} which it already holds` });
        return false;
      }
    }
    if (this.o.invariants) {
      const v = viewOf(c, s);
      for (const inv of this.o.invariants) {
        if (!inv.holds(v)) {
          this.found({ kind: 'invariant', thread: -1, pc: -1, message: `invariant broken: ${inv.name}` });
          return false;
        }
      }
    }
    const cur = this.icb ? s[L.cur]! - 1 : -1;
    f.h1 = this.m.h1;
    f.h2 = this.m.h2;
    f.count = 0;
    f.next = 0;
    f.sleep = sleep;
    f.done = 0;
    f.p = p;
    f.cur = cur;
    f.curEnabled = cur >= 0 && ch[cur]! > 0;
    if (this.reduce) {
      // Ample: a local op first (never a backward jump), then a thread nothing else can interfere with.
      for (let t = 0; t < n && f.count === 0; t++) {
        if (ch[t] === 0 || (sleep & (1 << t)) !== 0) continue;
        const op = sem.opAt(s, t)!;
        if (op.local && !op.backward) this.pushThread(f, t);
      }
      for (let t = 0; t < n && f.count === 0; t++) {
        if (ch[t] === 0 || (sleep & (1 << t)) !== 0 || sem.opAt(s, t)!.local) continue;
        if (this.red.safe(s, t)) this.pushThread(f, t);
      }
    }
    if (f.count === 0) {
      // The running thread first: the search meets non-preempting schedules before others.
      if (cur >= 0 && ch[cur]! > 0) this.pushThread(f, cur);
      for (let t = 0; t < n; t++) if (t !== cur && ch[t]! > 0 && (!this.reduce || (sleep & (1 << t)) === 0)) this.pushThread(f, t);
      for (let i = 0; i < this.nFlush; i++) f.trans[f.count++] = flushes[i]!;
    }
    if (restrict !== -1) {
      let k = 0;
      for (let i = 0; i < f.count; i++) {
        const id = f.trans[i]!;
        if ((id >>> 5) < 2 && (restrict & (1 << (id & 31))) !== 0) f.trans[k++] = id;
      }
      f.count = k;
    }
    return true;
  }

  run(): SearchResult {
    const { c, o, m, vis, sem, red, n, res } = this;
    const L = c.layout;
    m.set(L.cur, 0);
    vis.insert(m.h1, m.h2, 0);
    if (this.expand(this.frameAt(0), 0, -1, 0)) {
      vis.stack[vis.find(m.h1, m.h2)] = 1;
      this.sp = 1;
    }
    let iter = 0;
    while (this.sp > 0 && !this.stop) {
      if ((++iter & 1023) === 0 && performance.now() > o.deadline) {
        res.truncated = 'time';
        break;
      }
      const f = this.frames[this.sp - 1]!;
      if (f.next >= f.count) {
        const slot = vis.find(f.h1, f.h2);
        if (slot >= 0) vis.stack[slot] = 0;
        this.sp--;
        m.rollback(f.mark);
        continue;
      }
      const tr = f.trans[f.next++]!;
      const t = tr & 31;
      const choice = tr >>> 5;
      let childSleep = 0;
      if (this.reduce) {
        const base = f.sleep | f.done;
        if (base !== 0) for (let u = 0; u < n; u++) if ((base & (1 << u)) !== 0 && u !== t && !red.dependent(m.s, u, tr)) childSleep |= 1 << u;
        if (choice < 2) f.done |= 1 << t;
      }
      const p = this.icb && choice < 2 && f.curEnabled && t !== f.cur ? f.p + 1 : f.p;
      const mark = m.mark();
      let r = 0;
      if (choice >= 2) sem.flush(m, t, choice - 2);
      else r = sem.apply(m, t, choice);
      res.transitions++;
      if (r === DEAD) {
        m.rollback(mark);
        continue;
      }
      if (r === FAULT) {
        // The path ends with `tr`: the frame's taken transition is it already.
        this.found(sem.fault!);
        if (this.stop) break;
        m.rollback(mark);
        continue;
      }
      if (this.icb && choice < 2) m.set(L.cur, t + 1);
      if (this.sp >= o.maxDepth) {
        res.truncated ??= 'depth';
        m.rollback(mark);
        continue;
      }
      let slot = vis.find(m.h1, m.h2);
      let restrict = -1;
      if (slot >= 0) {
        if (vis.stack[slot]) {
          m.rollback(mark);
          continue;
        }
        const stored = vis.meta[slot]!;
        if (this.icb ? stored <= p : (stored & ~childSleep) === 0) {
          m.rollback(mark);
          continue;
        }
        if (this.icb) vis.meta[slot] = p;
        else {
          restrict = stored & ~childSleep;
          vis.meta[slot] = stored & childSleep;
        }
      } else {
        if (vis.size >= o.maxStates) {
          res.truncated = 'states';
          break;
        }
        slot = vis.insert(m.h1, m.h2, this.icb ? p : childSleep);
      }
      const child = this.frameAt(this.sp);
      // A fault or final state found while expanding has the path up to and including `tr`.
      if (!this.expand(child, childSleep, restrict, p)) {
        if (this.stop) break;
        m.rollback(mark);
        continue;
      }
      child.mark = mark;
      vis.stack[slot] = 1;
      this.sp++;
      if (this.sp > res.maxDepth) res.maxDepth = this.sp;
    }
    res.states = vis.size;
    res.ms = performance.now() - this.t0;
    return res;
  }
}

/** Describe a global deadlock: who waits for whom, naming the cycle when there is one. */
function deadlockFault(c: Compiled, sem: Semantics, s: Int32Array): Fault {
  const L = c.layout;
  const n = c.threads.length;
  const waits: string[] = [];
  const on = new Int32Array(n).fill(-1);
  let first = -1;
  for (let t = 0; t < n; t++) {
    const op = sem.opAt(s, t);
    if (!op) continue;
    if (first < 0) first = t;
    const h = sem.waitsFor(s, t);
    if (h >= 0 && s[L.pc + h]! < c.threads[h]!.ops.length) on[t] = h;
    const lock = c.locks[op.lock] ?? '?';
    waits.push(h < 0 ? `${c.threads[t]!.label} waits for ${lock}` : s[L.pc + h]! >= c.threads[h]!.ops.length
      ? `${c.threads[t]!.label} waits for ${lock}, still held by ${c.threads[h]!.label} which has finished`
      : `${c.threads[t]!.label} waits for ${lock} held by ${c.threads[h]!.label}`);
  }
  // A cycle: following who-waits-for-whom from some thread comes back to it.
  let cycle = false;
  for (let t = 0; t < n && !cycle; t++) {
    let u = on[t]!;
    for (let k = 0; k < n && u >= 0 && !cycle; k++) {
      if (u === t) cycle = true;
      u = on[u]!;
    }
  }
  return { kind: 'deadlock', thread: first, pc: first >= 0 ? s[L.pc + first]! : -1, message: waits.join('; '), cycle };
}
