/**
 * Partial-order reduction: which transitions are independent (sleep sets), and when one thread's
 * next op alone is a persistent (ample) set.
 *
 * Independence: ops of different threads commute unless they touch the same lock, the same cell
 * with at least one write, or the same object with at least one alloc/free; a use through a
 * pointer with lock provenance also reads the cell it came from (the stale-pointer check). A
 * store-buffer flush writes its cell.
 *
 * Ample sets (spin's reduction): a thread whose next op is local (registers, jumps, returns) is
 * taken alone, unless the op jumps backwards: every cycle of the state graph needs a backward jump,
 * so refusing to reduce there fully expands one state per cycle (the static form of the cycle
 * proviso). A thread whose next op conflicts with nothing any other thread may still do (its
 * future resources, computed in compile.ts, and pending buffered stores) and is invisible to the
 * stated invariants is taken alone too. Deadlocks, final states and the violations checked on a
 * transition (use after free, stale pointer) are preserved: they are properties of a state or of
 * dependent transitions, which every explored trace keeps in order.
 */
import { OP, type Compiled } from './compile.js';
import type { Semantics } from './step.js';

const PROV_LOCKS = 512;

/** Dependence and ample-set questions for one compiled scenario. */
export class Reducer {
  private readonly w: number;
  private readonly ownA: Int32Array;
  private readonly confA: Int32Array;
  private readonly ownB: Int32Array;
  private readonly confB: Int32Array;

  constructor(private readonly c: Compiled, private readonly sem: Semantics) {
    this.w = c.words;
    this.ownA = new Int32Array(this.w);
    this.confA = new Int32Array(this.w);
    this.ownB = new Int32Array(this.w);
    this.confB = new Int32Array(this.w);
  }

  private set(a: Int32Array, i: number): void {
    a[i >>> 5]! |= 1 << (i & 31);
  }

  /** What transition `id` touches (own) and what it conflicts with (conf), at state `s`. */
  private footprint(s: Int32Array, id: number, own: Int32Array, conf: Int32Array): void {
    own.fill(0);
    conf.fill(0);
    const t = id & 31;
    const choice = id >>> 5;
    const b = this.c.bits;
    if (choice >= 2) {
      const cell = choice - 2;
      this.set(own, b.write + cell);
      this.set(conf, b.write + cell);
      this.set(conf, b.read + cell);
      return;
    }
    const pc = s[this.c.layout.pc + t]!;
    const base = pc * this.w;
    const cf = this.c.conflict[t]!;
    const o = this.c.threads[t]!.ops[pc]!;
    for (let i = 0; i < this.w; i++) conf[i] = cf[base + i]!;
    switch (o.code) {
      case OP.LOCK: case OP.UNLOCK: case OP.TRYLOCK: this.set(own, b.lock + o.lock); break;
      case OP.READ: this.set(own, b.read + o.cell); break;
      case OP.WRITE: this.set(own, b.write + o.cell); break;
      case OP.RMW: this.set(own, b.write + o.cell); this.set(own, b.read + o.cell); break;
      case OP.ALLOC: case OP.FREE: case OP.USE: {
        const ob = this.object(s, t, o.obj, o.objReg);
        if (ob >= 0) {
          this.set(own, (o.code === OP.USE ? b.use : b.mod) + ob);
          this.set(conf, b.mod + ob);
          if (o.code !== OP.USE) this.set(conf, b.use + ob);
        }
        if (o.code === OP.USE && o.objReg >= 0) {
          const p = s[this.c.layout.prov[t]! + o.objReg]!;
          if (p !== 0) {
            const cell = ((p >> 1) / PROV_LOCKS | 0) - 1;
            this.set(own, b.read + cell);
            this.set(conf, b.write + cell);
          }
        }
        break;
      }
      default: break;
    }
  }

  private object(s: Int32Array, t: number, obj: number, objReg: number): number {
    if (obj >= 0) return obj;
    const v = s[this.c.layout.reg[t]! + objReg]! - 0x40000000;
    return v >= 0 && v < this.c.objects.length ? v : -1;
  }

  /** Whether transitions `a` and `b` (ids) may not commute at state `s`. */
  dependent(s: Int32Array, a: number, b: number): boolean {
    if ((a & 31) === (b & 31)) return true;
    this.footprint(s, a, this.ownA, this.confA);
    this.footprint(s, b, this.ownB, this.confB);
    for (let i = 0; i < this.w; i++) if ((this.ownA[i]! & this.confB[i]!) !== 0 || (this.ownB[i]! & this.confA[i]!) !== 0) return true;
    return false;
  }

  /**
   * Whether thread `t`'s next (enabled, non-local) op alone is an ample set at `s`: nothing any other
   * thread may still do conflicts with it, no buffered store conflicts with it, and it is invisible.
   */
  safe(s: Int32Array, t: number): boolean {
    const L = this.c.layout;
    // Transition id `t` is thread t's op (choice 0); its other choice has the same footprint.
    this.footprint(s, t, this.ownA, this.confA);
    if (this.c.visible) for (let i = 0; i < this.w; i++) if ((this.ownA[i]! & this.c.visible[i]!) !== 0) return false;
    const n = this.c.threads.length;
    for (let u = 0; u < n; u++) {
      if (u !== t) {
        const fu = this.c.future[u]!;
        const base = s[L.pc + u]! * this.w;
        for (let i = 0; i < this.w; i++) if ((fu[base + i]! & this.confA[i]!) !== 0) return false;
        if (this.c.hasUse && this.provConflict(s, u)) return false;
      }
      if (this.sem.relaxed) {
        const bb = L.buf[u]!;
        const len = s[bb]!;
        for (let k = 0; k < len; k++) {
          const cell = s[bb + 2 + 3 * k]! - 1;
          const bit = this.c.bits.write + cell;
          if ((this.confA[bit >>> 5]! & (1 << (bit & 31))) !== 0) return false;
        }
      }
    }
    return true;
  }

  /** Whether thread `u` holds a pointer with provenance on a cell the op in ownA writes. */
  private provConflict(s: Int32Array, u: number): boolean {
    const L = this.c.layout;
    const pb = L.prov[u]!;
    const nr = this.c.threads[u]!.regs.length;
    for (let r = 0; r < nr; r++) {
      const p = s[pb + r]!;
      if (p === 0) continue;
      const bit = this.c.bits.write + ((p >> 1) / PROV_LOCKS | 0) - 1;
      if ((this.ownA[bit >>> 5]! & (1 << (bit & 31))) !== 0) return true;
    }
    return false;
  }
}
