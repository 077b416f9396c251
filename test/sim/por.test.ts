import { describe, expect, it } from 'vitest';
import { check } from '../../src/sim/checker.js';
import { builder as t, type MemoryModel, type Op, type ThreadProgram } from '../../src/sim/model.js';

/**
 * Reduction must not change what is reachable: on random programs (locks, trylocks, cells,
 * barriers, unknown branches), the reduced search reaches the same final states as the full one,
 * and finds a violation exactly when the full one does.
 */
function generator(seed: number): (k: number) => number {
  let s = seed >>> 0;
  return (k) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % k;
  };
}

function randomThread(rnd: (k: number) => number, i: number): ThreadProgram {
  const ops: Op[] = [];
  const held: string[] = [];
  let lab = 0;
  const len = 3 + rnd(5);
  for (let k = 0; k < len; k++) {
    const c = rnd(10);
    const cell = `c${rnd(3)}`;
    if (c < 2 && held.length < 2) {
      const l = `L${rnd(2)}`;
      if (!held.includes(l)) {
        ops.push(t.lock(l));
        held.push(l);
      }
    } else if (c < 3 && held.length) ops.push(t.unlock(held.pop()!));
    else if (c < 5) ops.push(t.read(cell, `r${rnd(2)}`));
    else if (c < 7) ops.push(t.write(cell, rnd(2) ? `r${rnd(2)} + 1` : String(rnd(3))));
    else if (c < 8) {
      const l = `x${lab++}`;
      ops.push(t.either(l), t.write(cell, 5), t.label(l));
    } else if (c < 9) ops.push(rnd(2) ? t.mb() : t.wmb());
    else {
      const l = `L${rnd(2)}`;
      if (!held.includes(l)) {
        const lb = `y${lab++}`;
        ops.push(t.trylock(l, 'g'), t.branch('!g', lb), t.write(cell, 7), t.unlock(l), t.label(lb));
      }
    }
  }
  while (held.length) ops.push(t.unlock(held.pop()!));
  ops.push(t.ret('r0'));
  return { name: `T${i}`, ops };
}

describe.each(['sc', 'relaxed'] as MemoryModel[])('reduction is sound (%s)', (memory) => {
  it('same final states and the same violations as the full search on random programs', () => {
    const rnd = generator(memory === 'sc' ? 7 : 99);
    let compared = 0;
    let reducedStates = 0;
    let fullStates = 0;
    for (let iter = 0; iter < (memory === 'sc' ? 120 : 60); iter++) {
      const progs = Array.from({ length: 2 + rnd(2) }, (_, i) => randomThread(rnd, i));
      const [a, b] = [true, false].map((reduction) => {
        const finals = new Set<string>();
        const r = check(progs, { memory, reduction, bounds: { maxStates: 200_000 }, exists: (v) => finals.add(JSON.stringify(v)) === null });
        return { r, finals };
      }) as [{ r: ReturnType<typeof check>; finals: Set<string> }, { r: ReturnType<typeof check>; finals: Set<string> }];
      if (a.r.verdict === 'bound-reached' || b.r.verdict === 'bound-reached') continue;
      compared++;
      expect(a.r.verdict === 'safe', `program ${iter}`).toBe(b.r.verdict === 'safe');
      if (a.r.verdict !== 'safe') continue;
      expect([...a.finals].sort(), `program ${iter}`).toEqual([...b.finals].sort());
      reducedStates += a.r.stats.exhaustiveStates!;
      fullStates += b.r.stats.exhaustiveStates!;
    }
    expect(compared).toBeGreaterThan(memory === 'sc' ? 100 : 50);
    expect(reducedStates).toBeLessThan(fullStates);
    console.info(`[sim] random ${memory}: ${reducedStates} states reduced vs ${fullStates} full over ${compared} programs`);
  });
});
