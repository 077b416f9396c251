import { defineScenario } from '../model.js';

/** Store buffering under sequential consistency: one store always comes first. */
export const sbSc = defineScenario({
  id: 'sb-sc',
  expect: 'never',
  memory: 'sc',
  purpose: 'under sequential consistency (the default model) store buffering cannot lose both stores',
  init: { x: 0, y: 0 },
  threads: [(t) => [t.writeOnce('x', 1), t.readOnce('y', 'r0')], (t) => [t.writeOnce('y', 1), t.readOnce('x', 'r1')]],
  exists: (s) => s.r0 === 0 && s.r1 === 0,
  bounds: { maxStates: 10_000 },
});
