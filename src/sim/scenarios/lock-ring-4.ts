import { defineScenario } from '../model.js';

/**
 * Four paths each holding one lock of a ring and wanting the next (dining philosophers): the
 * 4-thread case, searched by increasing preemptions before going exhaustive.
 */
export const lockRing4 = defineScenario({
  id: 'lock-ring-4',
  expect: 'deadlock',
  purpose: 'a cycle of four lock-order edges deadlocks only when all four paths hold their first lock',
  names: ['cpu0', 'cpu1', 'cpu2', 'cpu3'],
  threads: [0, 1, 2, 3].map((i) => (t) => [
    t.lock(`L${i}`, `ring.c:${10 * i + 1}`),
    t.write(`c${i}`, 1, `ring.c:${10 * i + 2}`),
    t.lock(`L${(i + 1) % 4}`, `ring.c:${10 * i + 3}`),
    t.unlock(`L${(i + 1) % 4}`, `ring.c:${10 * i + 4}`),
    t.unlock(`L${i}`, `ring.c:${10 * i + 5}`),
    t.ret(0),
  ]),
  bounds: { maxStates: 100_000 },
});
