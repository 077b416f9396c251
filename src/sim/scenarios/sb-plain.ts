import { defineScenario } from '../model.js';

/** Store buffering: both loads can miss the other CPU's store (LKMM: Sometimes). */
export const sbPlain = defineScenario({
  id: 'sb-plain',
  expect: 'sometimes',
  memory: 'relaxed',
  purpose: 'each CPU\'s store can sit in its store buffer while its load reads the old value of the other cell',
  init: { x: 0, y: 0 },
  threads: [(t) => [t.writeOnce('x', 1), t.readOnce('y', 'r0')], (t) => [t.writeOnce('y', 1), t.readOnce('x', 'r1')]],
  exists: (s) => s.r0 === 0 && s.r1 === 0,
  bounds: { maxStates: 10_000 },
});
