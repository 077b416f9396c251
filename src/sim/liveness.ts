/**
 * Dead-register reduction, as spin does for dead local variables: a register nobody will read
 * again is reset to 0 when its thread moves on, so states that differ only in dead values are one
 * state. Derived programs have hundreds of registers (inlined locals, call results, decided
 * conditions) that are each read once or twice; without this the state space multiplies by their
 * values for no reason.
 */
import { identifiers } from './expr.js';
import type { Op } from './model.js';

/** Registers an op reads and writes (indices in the thread's register file). */
export function usesAndDefs(o: Op, regs: ReadonlyMap<string, number>): { uses: number[]; def: number } {
  const exprs: (string | number)[] = [];
  let def = -1;
  const reg = (name: string | null | undefined): number => (name ? (regs.get(name) ?? -1) : -1);
  switch (o.kind) {
    case 'write': exprs.push(o.value); break;
    case 'rmw': exprs.push(o.arg, o.arg2); def = reg(o.reg); break;
    case 'set': exprs.push(o.value); def = reg(o.reg); break;
    case 'branch': case 'assume': case 'assert': exprs.push(o.cond); break;
    case 'return': if (o.value !== null) exprs.push(o.value); break;
    case 'read': case 'trylock': def = reg(o.reg); break;
    default: break;
  }
  const uses = new Set<number>();
  for (const e of exprs) for (const id of identifiers(e)) if (regs.has(id)) uses.add(regs.get(id)!);
  if ((o.kind === 'use' || o.kind === 'free' || o.kind === 'alloc') && !o.target.startsWith('&') && regs.has(o.target)) uses.add(regs.get(o.target)!);
  return { uses: [...uses], def };
}

/**
 * For each op (pc) and each way out of it, the registers to reset: live before the op or written
 * by it, and not live where control goes. `observable` registers are live at the end (the
 * scenario's predicates read them).
 */
export function killSets(
  ops: { uses: number[]; def: number; succ: number[] }[],
  nregs: number,
  observable: number[],
): { next: Int32Array; jump: Int32Array }[] {
  const n = ops.length;
  const w = Math.max(1, Math.ceil(nregs / 32));
  const live = new Int32Array((n + 1) * w);
  for (const r of observable) live[n * w + (r >>> 5)]! |= 1 << (r & 31);
  for (let changed = true; changed;) {
    changed = false;
    for (let pc = n - 1; pc >= 0; pc--) {
      const o = ops[pc]!;
      for (let k = 0; k < w; k++) {
        let out = 0;
        for (const s of o.succ) out |= live[s * w + k]!;
        if (o.def >= 0 && o.def >>> 5 === k) out &= ~(1 << (o.def & 31));
        for (const u of o.uses) if (u >>> 5 === k) out |= 1 << (u & 31);
        if (out !== live[pc * w + k]) {
          live[pc * w + k] = out;
          changed = true;
        }
      }
    }
  }
  const isLive = (pc: number, r: number): boolean => (live[pc * w + (r >>> 5)]! & (1 << (r & 31))) !== 0;
  return ops.map((o, pc) => {
    const kill = (to: number | undefined): Int32Array => {
      if (to === undefined) return new Int32Array(0);
      const out: number[] = [];
      for (let r = 0; r < nregs; r++) if ((isLive(pc, r) || r === o.def) && !isLive(to, r)) out.push(r);
      return Int32Array.from(out);
    };
    // succ[0] is the fall-through (pc + 1) when there is one; jumps list their target.
    const fall = o.succ.includes(pc + 1) ? pc + 1 : undefined;
    const jump = o.succ.find((s) => s !== pc + 1);
    return { next: kill(fall), jump: kill(jump ?? fall) };
  });
}
