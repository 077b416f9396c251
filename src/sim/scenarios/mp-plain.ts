import { defineScenario } from '../model.js';

/** Message passing with plain accesses: the flag can be seen before the data (LKMM: Sometimes). */
export const mpPlain = defineScenario({
  id: 'mp-plain',
  expect: 'sometimes',
  memory: 'relaxed',
  purpose: 'without ordering, a reader can see the flag set and the data still unset',
  init: { x: 0, y: 0 },
  threads: [(t) => [t.write('x', 1), t.write('y', 1)], (t) => [t.read('y', 'r0'), t.read('x', 'r1')]],
  exists: (s) => s.r0 === 1 && s.r1 === 0,
  bounds: { maxStates: 10_000 },
});
