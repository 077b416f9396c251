/**
 * The explorer's state: one Int32Array (layout in compile.ts) changed in place with an undo log,
 * and a 64-bit hash kept incrementally as two 32-bit Zobrist halves (XOR of a mix of position and
 * value), so a transition costs a few slot writes instead of a copy and a rehash. Visited states
 * are kept by that hash only (hash compaction, as spin's -DHC): two states colliding in 64 bits
 * would wrongly share a visit; at 10^6 states the odds are about 3 in 10^8.
 */

function mix1(i: number, v: number): number {
  let h = Math.imul(i + 0x632be5ab, 0x9e3779b1) ^ v;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca77);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae3d);
  return h ^ (h >>> 16);
}

function mix2(i: number, v: number): number {
  let h = Math.imul(i + 0x1b873593, 0xcc9e2d51) ^ Math.imul(v, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return h ^ (h >>> 16);
}

/** A mutable state with undo and incremental hashing. */
export class Machine {
  readonly s: Int32Array;
  h1 = 0;
  h2 = 0;
  private undo: Int32Array;
  private top = 0;

  constructor(init: Int32Array) {
    this.s = Int32Array.from(init);
    this.undo = new Int32Array(1024);
    for (let i = 0; i < init.length; i++) {
      this.h1 ^= mix1(i, init[i]!);
      this.h2 ^= mix2(i, init[i]!);
    }
  }

  /** Write slot `i`, logging the old value. */
  set(i: number, v: number): void {
    const old = this.s[i]!;
    if (old === v) return;
    if (this.top + 2 > this.undo.length) {
      const u = new Int32Array(this.undo.length * 2);
      u.set(this.undo);
      this.undo = u;
    }
    this.undo[this.top++] = i;
    this.undo[this.top++] = old;
    this.h1 ^= mix1(i, old) ^ mix1(i, v);
    this.h2 ^= mix2(i, old) ^ mix2(i, v);
    this.s[i] = v;
  }

  /** The undo position to roll back to. */
  mark(): number {
    return this.top;
  }

  /** Undo every write since `mark`. */
  rollback(mark: number): void {
    while (this.top > mark) {
      const old = this.undo[--this.top]!;
      const i = this.undo[--this.top]!;
      const v = this.s[i]!;
      this.h1 ^= mix1(i, v) ^ mix1(i, old);
      this.h2 ^= mix2(i, v) ^ mix2(i, old);
      this.s[i] = old;
    }
  }
}

/**
 * Visited states by 64-bit hash: open addressing with linear probing. Each entry carries a 32-bit
 * `meta` (the sleep set it was explored with, or the fewest preemptions it was reached with) and
 * an on-stack flag for the search.
 */
export class Visited {
  size = 0;
  private cap: number;
  private k1: Int32Array;
  private k2: Int32Array;
  private used: Uint8Array;
  meta: Int32Array;
  stack: Uint8Array;

  constructor(capacity = 1 << 14) {
    this.cap = capacity;
    this.k1 = new Int32Array(capacity);
    this.k2 = new Int32Array(capacity);
    this.used = new Uint8Array(capacity);
    this.meta = new Int32Array(capacity);
    this.stack = new Uint8Array(capacity);
  }

  /** The slot of (h1, h2), or -1. */
  find(h1: number, h2: number): number {
    const mask = this.cap - 1;
    for (let i = (h1 ^ Math.imul(h2, 0x9e3779b1)) & mask; ; i = (i + 1) & mask) {
      if (!this.used[i]) return -1;
      if (this.k1[i] === h1 && this.k2[i] === h2) return i;
    }
  }

  /** Insert (h1, h2) with `meta`; returns its slot. The caller checks {@link find} first. */
  insert(h1: number, h2: number, meta: number): number {
    if ((this.size + 1) * 2 > this.cap) this.grow();
    const mask = this.cap - 1;
    let i = (h1 ^ Math.imul(h2, 0x9e3779b1)) & mask;
    while (this.used[i]) i = (i + 1) & mask;
    this.used[i] = 1;
    this.k1[i] = h1;
    this.k2[i] = h2;
    this.meta[i] = meta;
    this.stack[i] = 0;
    this.size++;
    return i;
  }

  private grow(): void {
    const { k1, k2, used, meta, stack, cap } = this;
    this.cap = cap * 2;
    this.k1 = new Int32Array(this.cap);
    this.k2 = new Int32Array(this.cap);
    this.used = new Uint8Array(this.cap);
    this.meta = new Int32Array(this.cap);
    this.stack = new Uint8Array(this.cap);
    const mask = this.cap - 1;
    for (let j = 0; j < cap; j++) {
      if (!used[j]) continue;
      let i = (k1[j]! ^ Math.imul(k2[j]!, 0x9e3779b1)) & mask;
      while (this.used[i]) i = (i + 1) & mask;
      this.used[i] = 1;
      this.k1[i] = k1[j]!;
      this.k2[i] = k2[j]!;
      this.meta[i] = meta[j]!;
      this.stack[i] = stack[j]!;
    }
  }
}
