import { defineScenario } from '../model.js';

/** Message passing with smp_store_release()/smp_load_acquire(): never reordered (LKMM: Never). */
export const mpReleaseAcquire = defineScenario({
  id: 'mp-release-acquire',
  expect: 'never',
  memory: 'relaxed',
  purpose: 'release/acquire is enough to order the message-passing pattern',
  init: { x: 0, y: 0 },
  threads: [(t) => [t.write('x', 1), t.release('y', 1)], (t) => [t.acquire('y', 'r0'), t.read('x', 'r1')]],
  exists: (s) => s.r0 === 1 && s.r1 === 0,
  bounds: { maxStates: 10_000 },
});
