/**
 * What each op does to the state, under sequential consistency or the relaxed model.
 *
 * Relaxed model (docs/sim.md): every thread has a store buffer; plain, once and release stores go
 * into it and reach memory by separate flush transitions, oldest-first per cell, in any order
 * across cells unless an smp_wmb() lies between them (store-store reordering, PSO-like) or the
 * entry is a release (which waits for every earlier entry). Loads read the thread's own newest
 * buffered store, else memory, or, for plain/once loads, the value the cell had at the thread's
 * last ordering point (its snapshot) as long as the thread has not seen a newer value of that
 * cell: that is load-load reordering. smp_rmb(), acquire loads, locks and fully ordered atomics
 * take a fresh snapshot; smp_mb(), locks, unlocks and fully ordered atomics also wait for an empty
 * store buffer. This is stronger than LKMM in places (a lock is a full barrier here), never weaker
 * for the shapes in the tests: MP and SB are allowed without barriers and forbidden with them.
 *
 * Provenance (for stale pointers): a value read while holding a lock remembers the cell and the
 * lock; releasing that lock marks it dropped. Using a dropped pointer whose cell no longer holds it
 * (the object was unlinked or replaced while the lock was not held) is a stale-pointer violation.
 */
import { FENCE, NO_RETURN, OP, ORD, objectOf, type Compiled, type COp } from './compile.js';
import { UNKNOWN } from './expr.js';
import type { Machine } from './state.js';

/** The violations the explorer reports. */
export type FaultKind = 'deadlock' | 'self-deadlock' | 'use-after-free' | 'stale-pointer' | 'double-free' | 'null-deref' | 'unlock-unheld' | 'assert' | 'invariant';

/** A violation found while applying a transition or at a state. */
export interface Fault {
  kind: FaultKind;
  thread: number;
  pc: number;
  message: string;
  /** Use after free and stale pointer: the thread that freed the object (absent: not freed, only unlinked). */
  freedBy?: number;
  /** Deadlock: whether live threads wait for each other in a cycle (not only for a lock a finished thread kept). */
  cycle?: boolean;
}

/** Apply results. */
export const OK = 0;
export const DEAD = 1;
export const FAULT = 2;

/** Transition ids: thread in the low 5 bits, choice above (0/1 for the op, 2 + cell for a flush). */
export function tid(thread: number, choice: number): number {
  return thread | (choice << 5);
}

const PROV_LOCKS = 512;

/** The semantics of one compiled scenario. */
export class Semantics {
  fault: Fault | null = null;
  readonly relaxed: boolean;
  private readonly nl: number;
  private readonly nc: number;
  private readonly no: number;

  constructor(readonly c: Compiled) {
    this.relaxed = c.memory === 'relaxed';
    this.nl = c.locks.length;
    this.nc = c.cells.length;
    this.no = c.objects.length;
    if (this.nl >= PROV_LOCKS - 1) throw new Error('too many locks');
  }

  /** The op thread `t` is at, or null when it has finished. */
  opAt(s: Int32Array, t: number): COp | null {
    return this.c.threads[t]!.ops[s[this.c.layout.pc + t]!] ?? null;
  }

  private bufLen(s: Int32Array, t: number): number {
    return this.relaxed ? s[this.c.layout.buf[t]!]! : 0;
  }

  /** How many ways thread `t` can step now: 0 when finished or blocked, else 1 or 2. */
  choices(s: Int32Array, t: number): number {
    const L = this.c.layout;
    const o = this.opAt(s, t);
    if (!o) return 0;
    switch (o.code) {
      case OP.LOCK: {
        const owner = s[L.lock + 2 * o.lock]!;
        if (owner !== 0 || (!o.shared && s[L.lock + 2 * o.lock + 1] !== 0)) return 0;
        return this.bufLen(s, t) === 0 ? 1 : 0;
      }
      case OP.UNLOCK: case OP.TRYLOCK:
        return this.bufLen(s, t) === 0 ? 1 : 0;
      case OP.WRITE:
        return !this.relaxed || this.bufLen(s, t) < this.c.bufCap ? 1 : 0;
      case OP.RMW:
        if (!this.relaxed) return 1;
        return (o.ordered ? this.bufLen(s, t) === 0 : this.pending(s, t, o.cell) < 0) ? 1 : 0;
      case OP.FENCE:
        return this.relaxed && o.fence === FENCE.MB && this.bufLen(s, t) !== 0 ? 0 : 1;
      case OP.READ:
        return this.relaxed && o.order !== ORD.ACQREL && this.snapshotDiffers(s, t, o.cell) ? 2 : 1;
      case OP.BRANCH:
        return o.e1!(s, L.reg[t]!) === UNKNOWN ? 2 : 1;
      default:
        return 1;
    }
  }

  /** Whether thread `t` waits for a lock it holds itself (lockdep's recursive locking). */
  selfBlocked(s: Int32Array, t: number): boolean {
    const o = this.opAt(s, t);
    if (!o || o.code !== OP.LOCK) return false;
    const L = this.c.layout;
    return s[L.lock + 2 * o.lock] === t + 1 || (!o.shared && (s[L.lock + 2 * o.lock + 1]! & (1 << t)) !== 0);
  }

  /** The holder of the lock thread `t` waits for (first holder for shared ones), or -1. */
  waitsFor(s: Int32Array, t: number): number {
    const o = this.opAt(s, t);
    if (!o || o.code !== OP.LOCK) return -1;
    const L = this.c.layout;
    const owner = s[L.lock + 2 * o.lock]!;
    if (owner) return owner - 1;
    const readers = s[L.lock + 2 * o.lock + 1]!;
    return readers ? 31 - Math.clz32(readers & -readers) : -1;
  }

  /** Index of the oldest buffered store of thread `t` to `cell`, or -1. */
  private pending(s: Int32Array, t: number, cell: number): number {
    const b = this.c.layout.buf[t]!;
    const len = s[b]!;
    for (let i = 0; i < len; i++) if (s[b + 2 + 3 * i] === cell + 1) return i;
    return -1;
  }

  private snapshotDiffers(s: Int32Array, t: number, cell: number): boolean {
    const L = this.c.layout;
    if ((s[L.obs + t]! & (1 << cell)) !== 0 || this.pending(s, t, cell) >= 0) return false;
    return s[L.snap[t]! + cell] !== s[L.cell + cell];
  }

  /** Cells whose oldest buffered store of thread `t` may reach memory now. */
  flushable(s: Int32Array, t: number, out: number[]): void {
    if (!this.relaxed) return;
    const b = this.c.layout.buf[t]!;
    const len = s[b]!;
    let minEpoch = Infinity;
    let seen = 0;
    for (let i = 0; i < len; i++) {
      const cell = s[b + 2 + 3 * i]! - 1;
      const flags = s[b + 4 + 3 * i]!;
      const epoch = flags & 0xffff;
      const bit = 1 << cell;
      const blockedByRelease = (flags & 0x10000) !== 0 && i > 0;
      if ((seen & bit) === 0 && epoch <= minEpoch && !blockedByRelease) out.push(cell);
      seen |= bit;
      if (epoch < minEpoch) minEpoch = epoch;
    }
  }

  /** Write the oldest buffered store of thread `t` to `cell` to memory. */
  flush(m: Machine, t: number, cell: number): void {
    const s = m.s;
    const b = this.c.layout.buf[t]!;
    const len = s[b]!;
    const i = this.pending(s, t, cell);
    m.set(this.c.layout.cell + cell, s[b + 3 + 3 * i]!);
    for (let j = i; j < len - 1; j++) {
      m.set(b + 2 + 3 * j, s[b + 5 + 3 * j]!);
      m.set(b + 3 + 3 * j, s[b + 6 + 3 * j]!);
      m.set(b + 4 + 3 * j, s[b + 7 + 3 * j]!);
    }
    const last = len - 1;
    m.set(b + 2 + 3 * last, 0);
    m.set(b + 3 + 3 * last, 0);
    m.set(b + 4 + 3 * last, 0);
    m.set(b, last);
    if (last === 0) m.set(b + 1, 0);
  }

  /**
   * Take thread `t`'s snapshot at an ordering point. Cells the thread will not read again get 0
   * instead (dead-variable reduction, as spin does for locals): their old values cannot matter, and
   * keeping them would split otherwise equal states.
   */
  private refresh(m: Machine, t: number, done = false): void {
    const L = this.c.layout;
    const fut = this.c.future[t]!;
    const w = this.c.words;
    const base = done ? this.c.threads[t]!.ops.length * w : (m.s[L.pc + t]! + 1) * w;
    const rb = this.c.bits.read;
    for (let c = 0; c < this.nc; c++) {
      const bit = rb + c;
      const live = (fut[base + (bit >>> 5)]! & (1 << (bit & 31))) !== 0;
      m.set(L.snap[t]! + c, live ? m.s[L.cell + c]! : 0);
    }
    m.set(L.obs + t, 0);
  }

  private observe(m: Machine, t: number, cell: number): void {
    if (this.relaxed) m.set(this.c.layout.obs + t, m.s[this.c.layout.obs + t]! | (1 << cell));
  }

  private heldLock(s: Int32Array, t: number): number {
    const L = this.c.layout;
    for (let l = 0; l < this.nl; l++) if (s[L.lock + 2 * l] === t + 1 || (s[L.lock + 2 * l + 1]! & (1 << t)) !== 0) return l;
    return -1;
  }

  private raise(kind: Fault['kind'], t: number, pc: number, message: string, freedBy?: number): number {
    this.fault = { kind, thread: t, pc, message, ...(freedBy !== undefined ? { freedBy } : {}) };
    return FAULT;
  }

  /** Apply thread `t`'s op with `choice` (see {@link choices}). */
  apply(m: Machine, t: number, choice: number): number {
    const s = m.s;
    const L = this.c.layout;
    const pcSlot = L.pc + t;
    const pc = s[pcSlot]!;
    const o = this.c.threads[t]!.ops[pc]!;
    const rb = L.reg[t]!;
    let next = pc + 1;
    switch (o.code) {
      case OP.LOCK:
        if (o.shared) m.set(L.lock + 2 * o.lock + 1, s[L.lock + 2 * o.lock + 1]! | (1 << t));
        else m.set(L.lock + 2 * o.lock, t + 1);
        if (this.relaxed) this.refresh(m, t);
        break;
      case OP.UNLOCK: {
        const ls = L.lock + 2 * o.lock;
        if (s[ls] === t + 1) m.set(ls, 0);
        else if ((s[ls + 1]! & (1 << t)) !== 0) m.set(ls + 1, s[ls + 1]! & ~(1 << t));
        else return this.raise('unlock-unheld', t, pc, `unlock of ${this.c.locks[o.lock]} which ${this.c.threads[t]!.label} does not hold`);
        const pb = L.prov[t]!;
        for (let r = 0; r < this.c.threads[t]!.regs.length; r++) {
          const p = s[pb + r]!;
          if (p !== 0 && ((p >> 1) % PROV_LOCKS) - 1 === o.lock) m.set(pb + r, p | 1);
        }
        break;
      }
      case OP.TRYLOCK: {
        const ls = L.lock + 2 * o.lock;
        const free = s[ls] === 0 && (o.shared || s[ls + 1] === 0);
        if (free) {
          if (o.shared) m.set(ls + 1, s[ls + 1]! | (1 << t));
          else m.set(ls, t + 1);
          if (this.relaxed) this.refresh(m, t);
        }
        m.set(rb + o.reg, free ? 1 : 0);
        m.set(L.prov[t]! + o.reg, 0);
        break;
      }
      case OP.READ: {
        let v: number;
        const pend = this.relaxed ? this.newestPending(s, t, o.cell) : -1;
        if (pend >= 0) v = s[L.buf[t]! + 3 + 3 * pend]!;
        else if (choice === 1) v = s[L.snap[t]! + o.cell]!;
        else {
          v = s[L.cell + o.cell]!;
          // Coherence: once a newer value than the snapshot's is seen, the older one is gone.
          if (this.relaxed && s[L.snap[t]! + o.cell] !== v) this.observe(m, t, o.cell);
        }
        m.set(rb + o.reg, v);
        const held = this.heldLock(s, t);
        m.set(L.prov[t]! + o.reg, held < 0 ? 0 : ((o.cell + 1) * PROV_LOCKS + held + 1) * 2);
        if (this.relaxed && o.order === ORD.ACQREL) this.refresh(m, t);
        break;
      }
      case OP.WRITE: {
        const v = o.e1!(s, rb);
        if (!this.relaxed) {
          m.set(L.cell + o.cell, v);
          break;
        }
        const b = L.buf[t]!;
        const len = s[b]!;
        const epoch = s[b + 1]!;
        m.set(b + 2 + 3 * len, o.cell + 1);
        m.set(b + 3 + 3 * len, v);
        m.set(b + 4 + 3 * len, epoch | (o.order === ORD.ACQREL ? 0x10000 : 0));
        m.set(b, len + 1);
        this.observe(m, t, o.cell);
        break;
      }
      case OP.RMW:
        this.rmw(m, t, o, rb);
        break;
      case OP.FENCE:
        if (!this.relaxed) break;
        if (o.fence === FENCE.WMB) {
          const b = L.buf[t]!;
          if (s[b]! > 0) m.set(b + 1, s[b + 1]! + 1);
        } else this.refresh(m, t);
        break;
      case OP.ALLOC: {
        const ob = objectOf(o, s, rb, this.no);
        if (ob >= 0) m.set(L.obj + ob, 1);
        break;
      }
      case OP.FREE: {
        const ob = objectOf(o, s, rb, this.no);
        if (ob < 0) break; // kfree(NULL), or a pointer the model does not track
        const st = s[L.obj + ob]!;
        if (st < 0) return this.raise('double-free', t, pc, `${this.c.objects[ob]} freed again (first by ${this.c.threads[-st - 1]!.label})`);
        m.set(L.obj + ob, -(t + 1));
        break;
      }
      case OP.USE: {
        const r = this.use(s, t, o, rb, pc);
        if (r !== OK) return r;
        break;
      }
      case OP.SET: {
        const prov = o.objReg >= 0 ? s[L.prov[t]! + o.objReg]! : 0;
        m.set(rb + o.reg, o.e1!(s, rb));
        m.set(L.prov[t]! + o.reg, prov);
        break;
      }
      case OP.BRANCH: {
        const v = o.e1!(s, rb);
        if (v === UNKNOWN ? choice === 0 : v !== 0) next = o.target;
        break;
      }
      case OP.GOTO:
        next = o.target;
        break;
      case OP.ASSUME:
        if (o.e1!(s, rb) === 0) return DEAD;
        break;
      case OP.ASSERT:
        if (o.e1!(s, rb) === 0) return this.raise('assert', t, pc, o.message);
        break;
      case OP.RETURN:
        m.set(L.ret + t, o.e1 ? o.e1(s, rb) : NO_RETURN);
        next = this.c.threads[t]!.ops.length;
        if (this.relaxed) this.refresh(m, t, true);
        break;
    }
    const kill = next === pc + 1 ? o.killNext : o.killJump;
    if (kill.length) {
      const pb = L.prov[t]!;
      for (let i = 0; i < kill.length; i++) {
        m.set(rb + kill[i]!, 0);
        m.set(pb + kill[i]!, 0);
      }
    }
    m.set(pcSlot, next);
    return OK;
  }

  private newestPending(s: Int32Array, t: number, cell: number): number {
    const b = this.c.layout.buf[t]!;
    for (let i = s[b]! - 1; i >= 0; i--) if (s[b + 2 + 3 * i] === cell + 1) return i;
    return -1;
  }

  private use(s: Int32Array, t: number, o: COp, rb: number, pc: number): number {
    const L = this.c.layout;
    const name = this.c.threads[t]!.label;
    const ob = objectOf(o, s, rb, this.no);
    if (ob < 0) {
      if (s[rb + o.objReg] === 0) return this.raise('null-deref', t, pc, `${name} dereferences NULL (${this.c.threads[t]!.regs[o.objReg]})`);
      return OK;
    }
    const st = s[L.obj + ob]!;
    const p = o.objReg >= 0 ? s[L.prov[t]! + o.objReg]! : 0;
    const dropped = (p & 1) !== 0;
    const cell = (p >> 1) / PROV_LOCKS - 1 | 0;
    const lock = ((p >> 1) % PROV_LOCKS) - 1;
    const how = dropped ? `, read from ${this.c.cells[cell]} under ${this.c.locks[lock]} which ${name} dropped since` : '';
    if (st < 0) {
      const by = this.c.threads[-st - 1]!.label;
      return this.raise(dropped ? 'stale-pointer' : 'use-after-free', t, pc, `${name} uses ${this.c.objects[ob]} freed by ${by}${how}`, -st - 1);
    }
    if (st === 0) return this.raise('use-after-free', t, pc, `${name} uses ${this.c.objects[ob]} before it is allocated`);
    if (dropped && s[L.cell + cell] !== s[rb + o.objReg]) {
      return this.raise('stale-pointer', t, pc, `${name} uses ${this.c.objects[ob]}${how}, and ${this.c.cells[cell]} no longer points to it`);
    }
    return OK;
  }

  private rmw(m: Machine, t: number, o: COp, rb: number): void {
    const s = m.s;
    const L = this.c.layout;
    const old = s[L.cell + o.cell]!;
    const a = o.e1!(s, rb);
    const b = o.e2!(s, rb);
    const unknown = old === UNKNOWN || a === UNKNOWN || b === UNKNOWN;
    let nv = old;
    let rv = 0;
    switch (o.rmw) {
      case 'add': nv = (old + a) | 0; break;
      case 'add_return': nv = (old + a) | 0; rv = nv; break;
      case 'xchg': nv = a; rv = old; break;
      case 'cmpxchg': nv = old === a ? b : old; rv = old; break;
      case 'dec_if_positive': rv = (old - 1) | 0; nv = rv >= 0 ? rv : old; break;
      case 'inc_not_zero': nv = old !== 0 ? (old + 1) | 0 : old; rv = old !== 0 ? 1 : 0; break;
      case 'dec_and_test': nv = (old - 1) | 0; rv = nv === 0 ? 1 : 0; break;
    }
    m.set(L.cell + o.cell, unknown ? UNKNOWN : nv);
    if (o.reg >= 0) {
      m.set(rb + o.reg, unknown ? UNKNOWN : rv);
      m.set(L.prov[t]! + o.reg, 0);
    }
    this.observe(m, t, o.cell);
    if (this.relaxed && o.ordered) this.refresh(m, t);
  }
}
