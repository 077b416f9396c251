/**
 * Programs compiled for the explorer: names interned to indices, labels resolved to pcs,
 * expressions to closures, the state vector laid out, and per (thread, pc) the set of shared
 * resources the thread may still touch (what the ample-set choice in checker.ts tests against).
 */
import { compileExpr, OBJ_BASE, type ExprFn, type ExprScope } from './expr.js';
import { killSets, usesAndDefs } from './liveness.js';
import type { Invariant, MemoryModel, Op, RmwKind, Src, ThreadProgram } from './model.js';

/** Op codes (a union of numbers: the hot loop switches on them). */
export const OP = {
  LOCK: 0, UNLOCK: 1, TRYLOCK: 2, READ: 3, WRITE: 4, RMW: 5, FENCE: 6, ALLOC: 7, FREE: 8, USE: 9,
  SET: 10, BRANCH: 11, GOTO: 12, ASSUME: 13, ASSERT: 14, RETURN: 15,
} as const;
export type OpCode = (typeof OP)[keyof typeof OP];

/** Access orders: plain, once, acquire/release. */
export const ORD = { PLAIN: 0, ONCE: 1, ACQREL: 2 } as const;
/** Fences. */
export const FENCE = { MB: 0, WMB: 1, RMB: 2 } as const;

/** One compiled op; every op has every field so the objects share one shape. */
export interface COp {
  code: OpCode;
  lock: number;
  shared: boolean;
  cell: number;
  reg: number;
  order: number;
  rmw: RmwKind;
  ordered: boolean;
  fence: number;
  /** Static object index, or -1 when the object is reached through register `objReg`. */
  obj: number;
  objReg: number;
  access: 'read' | 'write';
  target: number;
  e1: ExprFn | null;
  e2: ExprFn | null;
  /** Touches nothing shared: executed alone by the reduction. */
  local: boolean;
  /** A jump to an earlier pc (cycles in the state graph need one). */
  backward: boolean;
  /** Registers dead after falling through / after jumping (reset to 0: liveness.ts). */
  killNext: Int32Array;
  killJump: Int32Array;
  message: string;
  text: string;
  /** The text came from a note (a call into a callee, a C line), worth showing in traces. */
  noted: boolean;
  at: Src | undefined;
}

/** A compiled thread. */
export interface CThread {
  name: string;
  /** The name in messages: the name, or `name (CPUi)` when two threads share it. */
  label: string;
  ops: COp[];
  regs: string[];
}

/** Where each part of the state lives in the Int32Array. */
export interface Layout {
  size: number;
  pc: number;
  /** Two slots per lock: exclusive owner (thread + 1, 0 when free) and the mask of shared holders. */
  lock: number;
  cell: number;
  /** Per object: 1 live, 0 not allocated, -(t+1) freed by thread t. */
  obj: number;
  /** Per thread: register base; provenance base (see checker.ts); return value slot. */
  reg: number[];
  prov: number[];
  ret: number;
  /** Relaxed memory: per thread store buffer [len, epoch, (cell+1, value, flags) x cap], snapshot of all cells, observed-cells mask. */
  buf: number[];
  snap: number[];
  obs: number;
  /** The running thread (preemption-bounded search only; constant otherwise). */
  cur: number;
}

/** A scenario ready for the explorer. */
export interface Compiled {
  threads: CThread[];
  locks: string[];
  cells: string[];
  objects: string[];
  consts: Map<string, number>;
  memory: MemoryModel;
  layout: Layout;
  init: Int32Array;
  /** Store-buffer capacity per thread (relaxed). */
  bufCap: number;
  /** Resource bit universe and, per thread, (ops + 1) x words of future-resource bits. */
  words: number;
  future: Int32Array[];
  /** Per thread per pc: the static conflict mask of the op (words each). */
  conflict: Int32Array[];
  /** Bits of cells stated invariants read (writes to them are visible: no reduction across them). */
  visible: Int32Array | null;
  hasUse: boolean;
  bits: { lock: number; read: number; write: number; mod: number; use: number; anyMod: number; anyUse: number; total: number };
}

const NONE = new Int32Array(0);

/** Returned value slot sentinel for threads that have not returned (or returned no value). */
export const NO_RETURN = -0x7fffffff;

function registersOf(ops: Op[]): string[] {
  const regs = new Set<string>();
  for (const o of ops) {
    if ((o.kind === 'read' || o.kind === 'trylock' || o.kind === 'set') && o.reg) regs.add(o.reg);
    if (o.kind === 'rmw' && o.reg) regs.add(o.reg);
  }
  return [...regs];
}

/** Text of an op for traces: the note when given, else kernel-ish pseudo code. */
export function describe(o: Op): string {
  if (o.note) return o.note;
  switch (o.kind) {
    case 'lock': return o.mode === 'shared' ? `lock_shared(${o.lock})` : `lock(${o.lock})`;
    case 'unlock': return `unlock(${o.lock})`;
    case 'trylock': return `${o.reg} = trylock(${o.lock})`;
    case 'read': return o.order === 'plain' ? `${o.reg} = ${o.cell}` : o.order === 'once' ? `${o.reg} = READ_ONCE(${o.cell})` : `${o.reg} = smp_load_acquire(&${o.cell})`;
    case 'write': return o.order === 'plain' ? `${o.cell} = ${o.value}` : o.order === 'once' ? `WRITE_ONCE(${o.cell}, ${o.value})` : `smp_store_release(&${o.cell}, ${o.value})`;
    case 'rmw': return `${o.reg ? `${o.reg} = ` : ''}atomic_${o.rmw}(&${o.cell}${o.rmw === 'add' || o.rmw === 'add_return' || o.rmw === 'xchg' || o.rmw === 'cmpxchg' ? `, ${o.arg}` : ''}${o.rmw === 'cmpxchg' ? `, ${o.arg2}` : ''})`;
    case 'fence': return `smp_${o.fence}()`;
    case 'alloc': return `alloc(${o.target})`;
    case 'free': return `kfree(${o.target})`;
    case 'use': return `${o.access === 'write' ? 'write' : 'read'} *${o.target}`;
    case 'set': return `${o.reg} = ${o.value}`;
    case 'branch': return `if (${o.cond}) goto ${o.target}`;
    case 'goto': return `goto ${o.target}`;
    case 'label': return `${o.name}:`;
    case 'assume': return `assume(${o.cond})`;
    case 'assert': return `assert(${o.cond})`;
    case 'return': return o.value === null ? 'return' : `return ${o.value}`;
  }
}

/** Appends `name` to `list` unless there; its index. */
function intern(list: string[], name: string): number {
  let i = list.indexOf(name);
  if (i < 0) i = list.push(name) - 1;
  return i;
}

/**
 * The lock and memory-cell names of `programs`, in first-use order with the initialised cells
 * first (the indices the explorer and the Promela translation both number them by), and the
 * interner that extends such a list.
 */
export function programNames(programs: ThreadProgram[], init?: Record<string, unknown>): { locks: string[]; cells: string[]; intern: typeof intern } {
  const locks: string[] = [];
  const cells: string[] = [];
  for (const name of Object.keys(init ?? {})) intern(cells, name);
  for (const p of programs) {
    for (const o of p.ops) {
      if (o.kind === 'lock' || o.kind === 'unlock' || o.kind === 'trylock') intern(locks, o.lock);
      if (o.kind === 'read' || o.kind === 'write' || o.kind === 'rmw') intern(cells, o.cell);
    }
  }
  return { locks, cells, intern };
}

/** Compile thread programs for the explorer. */
export function compile(programs: ThreadProgram[], opts: { memory?: MemoryModel; init?: Record<string, number | string>; objects?: string[]; unallocated?: string[]; invariants?: Invariant[]; bufCap?: number } = {}): Compiled {
  if (programs.length === 0 || programs.length > 30) throw new Error(`a scenario needs 1..30 threads, got ${programs.length}`);
  const memory = opts.memory ?? 'sc';
  const { locks, cells, intern } = programNames(programs, opts.init);
  const objects = [...(opts.objects ?? [])];
  const consts = new Map<string, number>();
  if (memory === 'relaxed' && cells.length > 31) throw new Error('relaxed mode supports at most 31 cells');
  const bufCap = opts.bufCap ?? 4;
  const n = programs.length;
  // State layout.
  let at = 0;
  const take = (k: number): number => {
    const b = at;
    at += k;
    return b;
  };
  const pc = take(n);
  const lock = take(2 * locks.length);
  const cell = take(cells.length);
  const obj = take(objects.length);
  const regNames = programs.map((p) => registersOf(p.ops));
  const reg = regNames.map((r) => take(r.length));
  const prov = regNames.map((r) => take(r.length));
  const ret = take(n);
  const relaxed = memory === 'relaxed';
  const buf = programs.map(() => take(relaxed ? 2 + 3 * bufCap : 0));
  const snap = programs.map(() => take(relaxed ? cells.length : 0));
  const obs = take(relaxed ? n : 0);
  const cur = take(1);
  const layout: Layout = { size: at, pc, lock, cell, obj, reg, prov, ret, buf, snap, obs, cur };

  const threads: CThread[] = programs.map((p, t) => {
    const labels = new Map<string, number>();
    let count = 0;
    for (const o of p.ops) {
      if (o.kind === 'label') {
        if (labels.has(o.name)) throw new Error(`thread ${p.name}: duplicate label ${o.name}`);
        labels.set(o.name, count);
      } else count++;
    }
    const regs = regNames[t]!;
    const scope: ExprScope = { regs: new Map(regs.map((r, i) => [r, i])), objects: new Map(objects.map((o, i) => [o, i])), consts };
    const ops: COp[] = [];
    const flow: { uses: number[]; def: number; succ: number[] }[] = [];
    // Every thread ends in a return, so falling off the end and `goto` past the last op finish the same way.
    const last = p.ops.filter((o) => o.kind !== 'label').pop();
    const body: Op[] = last?.kind === 'return' && !p.ops.slice(p.ops.indexOf(last) + 1).some((o) => o.kind === 'label') ? p.ops : [...p.ops, { kind: 'return', value: null }];
    for (const o of body) {
      if (o.kind === 'label') continue;
      const c: COp = {
        code: OP.SET, lock: -1, shared: false, cell: -1, reg: -1, order: 0, rmw: 'add', ordered: false, fence: 0, obj: -1, objReg: -1,
        access: 'read', target: -1, e1: null, e2: null, local: false, backward: false, killNext: NONE, killJump: NONE, message: '', text: describe(o), noted: o.note !== undefined, at: o.at,
      };
      const here = ops.length;
      const jump = (name: string): number => {
        const to = labels.get(name);
        if (to === undefined) throw new Error(`thread ${p.name}: unknown label ${name}`);
        return to;
      };
      const target = (written: string): void => {
        // `&name` is always the object; otherwise a register of that name wins: the pointer a thread
        // holds is what it uses (and what goes stale).
        const name = written.replace(/^&/, '');
        if (!written.startsWith('&') && scope.regs.has(name)) {
          c.objReg = scope.regs.get(name)!;
          return;
        }
        c.obj = objects.indexOf(name);
        if (c.obj < 0) throw new Error(`thread ${p.name}: ${written} is neither an object nor a register`);
      };
      switch (o.kind) {
        case 'lock': Object.assign(c, { code: OP.LOCK, lock: locks.indexOf(o.lock), shared: o.mode === 'shared' }); break;
        case 'unlock': Object.assign(c, { code: OP.UNLOCK, lock: locks.indexOf(o.lock) }); break;
        case 'trylock': Object.assign(c, { code: OP.TRYLOCK, lock: locks.indexOf(o.lock), shared: o.mode === 'shared', reg: scope.regs.get(o.reg)! }); break;
        case 'read': Object.assign(c, { code: OP.READ, cell: cells.indexOf(o.cell), reg: scope.regs.get(o.reg)!, order: o.order === 'plain' ? ORD.PLAIN : o.order === 'once' ? ORD.ONCE : ORD.ACQREL }); break;
        case 'write': Object.assign(c, { code: OP.WRITE, cell: cells.indexOf(o.cell), e1: compileExpr(o.value, scope), order: o.order === 'plain' ? ORD.PLAIN : o.order === 'once' ? ORD.ONCE : ORD.ACQREL }); break;
        case 'rmw': Object.assign(c, { code: OP.RMW, cell: cells.indexOf(o.cell), rmw: o.rmw, ordered: o.ordered, reg: o.reg ? scope.regs.get(o.reg)! : -1, e1: compileExpr(o.arg, scope), e2: compileExpr(o.arg2, scope) }); break;
        case 'fence': Object.assign(c, { code: OP.FENCE, fence: o.fence === 'mb' ? FENCE.MB : o.fence === 'wmb' ? FENCE.WMB : FENCE.RMB, local: !relaxed }); break;
        case 'alloc': c.code = OP.ALLOC; target(o.target); break;
        case 'free': c.code = OP.FREE; target(o.target); break;
        case 'use': c.code = OP.USE; c.access = o.access; target(o.target); break;
        case 'set': {
          // A copy of one register (`p = q`, a pointer passed to a callee) keeps its provenance.
          const copy = /^\(*\s*(?<src>[A-Za-z_]\w*)\s*\)*$/.exec(String(o.value))?.groups?.src;
          Object.assign(c, { code: OP.SET, reg: scope.regs.get(o.reg)!, e1: compileExpr(o.value, scope), local: true, objReg: copy !== undefined && scope.regs.has(copy) ? scope.regs.get(copy)! : -1 });
          break;
        }
        case 'branch': Object.assign(c, { code: OP.BRANCH, e1: compileExpr(o.cond, scope), target: jump(o.target), local: true }); break;
        case 'goto': Object.assign(c, { code: OP.GOTO, target: jump(o.target), local: true }); break;
        case 'assume': Object.assign(c, { code: OP.ASSUME, e1: compileExpr(o.cond, scope), local: true }); break;
        case 'assert': Object.assign(c, { code: OP.ASSERT, e1: compileExpr(o.cond, scope), local: true, message: o.message }); break;
        case 'return': Object.assign(c, { code: OP.RETURN, e1: o.value === null ? null : compileExpr(o.value, scope), local: true }); break;
      }
      c.backward = c.target >= 0 && c.target <= here;
      ops.push(c);
      flow.push({ ...usesAndDefs(o, scope.regs), succ: c.code === OP.RETURN ? [-1] : c.code === OP.GOTO ? [c.target] : c.code === OP.BRANCH ? [here + 1, c.target] : [here + 1] });
    }
    // A return leaves for the end (pc = ops.length), where observable registers stay live.
    for (const f of flow) f.succ = f.succ.map((s) => (s === -1 ? ops.length : s));
    const observable = p.observable ? p.observable.flatMap((r) => (scope.regs.has(r) ? [scope.regs.get(r)!] : [])) : regs.map((_, i) => i);
    killSets(flow, regs.length, observable).forEach((k, pc) => {
      ops[pc]!.killNext = k.next;
      ops[pc]!.killJump = k.jump;
    });
    const label = programs.filter((q) => q.name === p.name).length > 1 ? `${p.name} (CPU${t})` : p.name;
    return { name: p.name, label, ops, regs };
  });
  const init = new Int32Array(layout.size);
  for (let o = 0; o < objects.length; o++) init[obj + o] = opts.unallocated?.includes(objects[o]!) ? 0 : 1;
  const constScope: ExprScope = { regs: new Map(), objects: new Map(objects.map((o, i) => [o, i])), consts };
  for (const [name, v] of Object.entries(opts.init ?? {})) init[cell + cells.indexOf(name)] = compileExpr(v, constScope)(init, 0);
  for (let t = 0; t < n; t++) init[ret + t] = NO_RETURN;
  if (relaxed) for (let t = 0; t < n; t++) for (let c = 0; c < cells.length; c++) init[snap[t]! + c] = init[cell + c]!;

  const res = resources(threads, locks.length, cells.length, objects.length, relaxed);
  let visible: Int32Array | null = null;
  for (const inv of opts.invariants ?? []) {
    visible ??= new Int32Array(res.words);
    // An invariant that does not say what it reads sees everything: every write is visible.
    const names = inv.cells ?? cells;
    for (const name of names) {
      const ci = cells.indexOf(name);
      if (ci >= 0) setBit(visible, res.bits.write + ci);
    }
    if (!inv.cells) for (let l = 0; l < locks.length; l++) setBit(visible, res.bits.lock + l);
  }
  const hasUse = threads.some((t) => t.ops.some((o) => o.code === OP.USE));
  return { threads, locks, cells, objects, consts, memory, layout, init, bufCap, ...res, visible, hasUse };
}

/** Set bit `i` of a word array. */
export function setBit(a: Int32Array, i: number, base = 0): void {
  a[base + (i >>> 5)]! |= 1 << (i & 31);
}

/** Test bit `i` of a word array. */
export function hasBit(a: Int32Array, i: number, base = 0): boolean {
  return (a[base + (i >>> 5)]! & (1 << (i & 31))) !== 0;
}

/**
 * Future resources: the bits a thread may still touch from each pc (a backward fixpoint over its
 * jumps), and each op's conflict mask: the bits whose presence in another thread's future makes
 * the op dependent on it.
 */
function resources(threads: CThread[], nl: number, nc: number, no: number, relaxed: boolean): Pick<Compiled, 'words' | 'future' | 'conflict' | 'bits'> {
  const bits = { lock: 0, read: nl, write: nl + nc, mod: nl + 2 * nc, use: nl + 2 * nc + no, anyMod: nl + 2 * nc + 2 * no, anyUse: nl + 2 * nc + 2 * no + 1, total: nl + 2 * nc + 2 * no + 2 };
  const words = Math.max(1, Math.ceil(bits.total / 32));
  const future: Int32Array[] = [];
  const conflict: Int32Array[] = [];
  for (const th of threads) {
    const len = th.ops.length;
    const own = new Int32Array((len + 1) * words);
    const conf = new Int32Array((len + 1) * words);
    th.ops.forEach((o, pc) => {
      const b = pc * words;
      const mine = (i: number): void => setBit(own, i, b);
      const dep = (i: number): void => setBit(conf, i, b);
      switch (o.code) {
        case OP.LOCK: case OP.UNLOCK: case OP.TRYLOCK:
          mine(bits.lock + o.lock);
          dep(bits.lock + o.lock);
          break;
        case OP.READ:
          mine(bits.read + o.cell);
          dep(bits.write + o.cell);
          break;
        case OP.WRITE: case OP.RMW:
          mine(bits.write + o.cell);
          if (o.code === OP.RMW) mine(bits.read + o.cell);
          dep(bits.write + o.cell);
          dep(bits.read + o.cell);
          break;
        case OP.ALLOC: case OP.FREE:
          if (o.obj >= 0) {
            mine(bits.mod + o.obj);
            dep(bits.mod + o.obj);
            dep(bits.use + o.obj);
          } else mine(bits.anyMod);
          dep(bits.anyMod);
          dep(bits.anyUse);
          break;
        case OP.USE:
          if (o.obj >= 0) {
            mine(bits.use + o.obj);
            dep(bits.mod + o.obj);
          } else mine(bits.anyUse);
          dep(bits.anyMod);
          break;
        default:
          break;
      }
      // Ops that refresh a relaxed thread's view of memory read every cell.
      if (relaxed && (o.code === OP.LOCK || o.code === OP.UNLOCK || o.code === OP.TRYLOCK || (o.code === OP.FENCE && o.fence !== FENCE.WMB) || (o.code === OP.READ && o.order === ORD.ACQREL) || (o.code === OP.RMW && o.ordered))) {
        for (let c = 0; c < nc; c++) dep(bits.write + c);
      }
    });
    // Backward fixpoint: future(pc) = own(pc) | future(successors).
    const fut = new Int32Array((len + 1) * words);
    for (let changed = true; changed;) {
      changed = false;
      for (let pc = len - 1; pc >= 0; pc--) {
        const o = th.ops[pc]!;
        const succ: number[] = o.code === OP.RETURN ? [] : o.code === OP.GOTO ? [o.target] : o.code === OP.BRANCH ? [pc + 1, o.target] : [pc + 1];
        for (let w = 0; w < words; w++) {
          let v = own[pc * words + w]!;
          for (const s of succ) v |= fut[s * words + w]!;
          if (v !== fut[pc * words + w]) {
            fut[pc * words + w] = v;
            changed = true;
          }
        }
      }
    }
    future.push(fut);
    conflict.push(conf);
  }
  return { words, future, conflict, bits };
}

/** The object a use/free/alloc op names at a state, or -1 when its register holds no object pointer. */
export function objectOf(o: COp, s: Int32Array, rb: number, nobj: number): number {
  if (o.obj >= 0) return o.obj;
  const v = s[rb + o.objReg]! - OBJ_BASE;
  return v >= 0 && v < nobj ? v : -1;
}
