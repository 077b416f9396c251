/**
 * Cheap static facts about a derived program, used to decide which pairs of entry points are
 * worth exploring (synth.ts): the lock-order edges it may create, and the pointer cells whose
 * loaded values it frees or dereferences. Both are may-facts over the op graph (every branch both
 * ways): a pair they rule out cannot show the fault, a pair they admit still has to be explored.
 */
import type { Op, ThreadProgram } from './model.js';

/** What one program may do. */
export interface ProgramFacts {
  /** Lock classes it takes (blocking or trylock). */
  locks: Set<string>;
  /** `outer\ninner`: `inner` acquired (blocking) while `outer` may be held. */
  edges: Set<string>;
  /** Cells whose loaded pointer it frees. */
  freed: Set<string>;
  /** Cells whose loaded pointer it dereferences. */
  used: Set<string>;
}

/** Successor pcs of op `pc` (a branch on a constant still counts both ways: this is a may-analysis). */
function successors(ops: Op[], pc: number, labels: Map<string, number>): number[] {
  const o = ops[pc]!;
  if (o.kind === 'return') return [];
  if (o.kind === 'goto') return [labels.get(o.target) ?? ops.length];
  if (o.kind === 'branch') return [labels.get(o.target) ?? ops.length, pc + 1];
  return [pc + 1];
}

/** The facts of a program. */
export function programFacts(p: ThreadProgram): ProgramFacts {
  const ops = p.ops;
  const labels = new Map<string, number>();
  ops.forEach((o, i) => {
    if (o.kind === 'label') labels.set(o.name, i);
  });
  const locks = new Set<string>();
  const edges = new Set<string>();
  const held: (Set<string> | undefined)[] = new Array(ops.length);
  const work: number[] = [0];
  held[0] = new Set();
  const flow = (to: number, s: Set<string>): void => {
    if (to >= ops.length) return;
    const cur = held[to];
    if (!cur) {
      held[to] = new Set(s);
      work.push(to);
      return;
    }
    let grew = false;
    for (const x of s) if (!cur.has(x)) {
      cur.add(x);
      grew = true;
    }
    if (grew) work.push(to);
  };
  while (work.length) {
    const pc = work.pop()!;
    const o = ops[pc]!;
    let out = held[pc]!;
    if (o.kind === 'lock' || o.kind === 'trylock') {
      locks.add(o.lock);
      if (o.kind === 'lock') for (const a of out) if (a !== o.lock) edges.add(`${a}\n${o.lock}`);
      out = new Set(out).add(o.lock);
    } else if (o.kind === 'unlock') {
      out = new Set(out);
      out.delete(o.lock);
    }
    for (const s of successors(ops, pc, labels)) flow(s, out);
  }
  // Registers loaded from cells, for frees and uses through them.
  const loadedFrom = new Map<string, Set<string>>();
  for (const o of ops) {
    if (o.kind !== 'read') continue;
    const s = loadedFrom.get(o.reg) ?? new Set<string>();
    s.add(o.cell);
    loadedFrom.set(o.reg, s);
  }
  const freed = new Set<string>();
  const used = new Set<string>();
  for (const o of ops) {
    if ((o.kind !== 'free' && o.kind !== 'use') || o.target.startsWith('&')) continue;
    for (const c of loadedFrom.get(o.target) ?? []) (o.kind === 'free' ? freed : used).add(c);
  }
  return { locks, edges, freed, used };
}

/** Lock pairs `[a, b]` with `a -> b` in `x` and `b -> a` in `y`: the AB-BA candidates of the pair. */
export function inversions(x: ProgramFacts, y: ProgramFacts): [string, string][] {
  const out: [string, string][] = [];
  for (const e of x.edges) {
    const [a, b] = e.split('\n') as [string, string];
    if (y.edges.has(`${b}\n${a}`)) out.push([a, b]);
  }
  return out;
}

/** Cells one program frees a loaded pointer of while the other (or itself) dereferences one. */
export function lifetimeCells(x: ProgramFacts, y: ProgramFacts): string[] {
  const out = new Set<string>();
  for (const c of x.freed) if (y.used.has(c)) out.add(c);
  for (const c of y.freed) if (x.used.has(c)) out.add(c);
  return [...out].sort();
}
