import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/run.js';
import { scenarios } from '../../src/sim/scenarios/index.js';

/** The hand-written scenarios (tree scenarios have their own test, on the real 6.1 tree). */
const small = scenarios.filter((s) => !s.tree);

describe('scenario catalogue', () => {
  it('is sorted by id, ids are unique, and every scenario states its expectation and purpose', () => {
    const ids = scenarios.map((s) => s.id);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const s of scenarios) {
      expect(s.purpose.length, s.id).toBeGreaterThan(20);
      expect(['never', 'sometimes', 'always', 'deadlock', 'use-after-free', 'stale-pointer', 'invariant']).toContain(s.expect);
    }
  });
});

describe.each(small.map((s) => [s.id, s] as const))('%s', (_id, sc) => {
  it(`gives its expected verdict (${sc.expect}) with and without reduction; reduction visits fewer states`, async () => {
    const reduced = await runScenario(sc);
    const full = await runScenario(sc, { reduction: false });
    expect(reduced.pass, `${reduced.reason}\n${reduced.text}`).toBe(true);
    expect(full.pass, full.reason).toBe(true);
    const a = reduced.result.stats.exhaustiveStates;
    const b = full.result.stats.exhaustiveStates;
    // Scenarios with 4+ threads may be decided by the preemption-bounded phases alone.
    if (a !== null && b !== null) expect(a, `states with reduction ${a}, without ${b}`).toBeLessThan(b);
    console.info(`[sim] ${sc.id}: ${reduced.result.verdict}; states ${a ?? '-'} reduced vs ${b ?? '-'} full; first counterexample ${reduced.result.stats.firstMs?.toFixed(2) ?? '-'} ms`);
  });
});
