import { defineScenario } from '../model.js';

/** Message passing with smp_wmb() on the writer only: the reader's loads may still pass each other (LKMM: Sometimes). */
export const mpWmbOnly = defineScenario({
  id: 'mp-wmb-only',
  expect: 'sometimes',
  memory: 'relaxed',
  purpose: 'a write barrier without a matching read barrier does not order message passing',
  init: { x: 0, y: 0 },
  threads: [(t) => [t.writeOnce('x', 1), t.wmb(), t.writeOnce('y', 1)], (t) => [t.readOnce('y', 'r0'), t.readOnce('x', 'r1')]],
  exists: (s) => s.r0 === 1 && s.r1 === 0,
  bounds: { maxStates: 10_000 },
});
