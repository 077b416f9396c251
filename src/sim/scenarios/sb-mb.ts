import { defineScenario } from '../model.js';

/** Store buffering with smp_mb() on both sides: forbidden (LKMM: Never). */
export const sbMb = defineScenario({
  id: 'sb-mb',
  expect: 'never',
  memory: 'relaxed',
  purpose: 'a full barrier between each store and load forbids the store-buffering outcome',
  init: { x: 0, y: 0 },
  threads: [(t) => [t.writeOnce('x', 1), t.mb(), t.readOnce('y', 'r0')], (t) => [t.writeOnce('y', 1), t.mb(), t.readOnce('x', 'r1')]],
  exists: (s) => s.r0 === 0 && s.r1 === 0,
  bounds: { maxStates: 10_000 },
});
