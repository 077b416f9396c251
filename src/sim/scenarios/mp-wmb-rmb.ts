import { defineScenario } from '../model.js';

/** Message passing with smp_wmb()/smp_rmb() paired: never reordered (LKMM: Never). */
export const mpWmbRmb = defineScenario({
  id: 'mp-wmb-rmb',
  expect: 'never',
  memory: 'relaxed',
  purpose: 'paired write and read barriers order message passing',
  init: { x: 0, y: 0 },
  threads: [(t) => [t.writeOnce('x', 1), t.wmb(), t.writeOnce('y', 1)], (t) => [t.readOnce('y', 'r0'), t.rmb(), t.readOnce('x', 'r1')]],
  exists: (s) => s.r0 === 1 && s.r1 === 0,
  bounds: { maxStates: 10_000 },
});
