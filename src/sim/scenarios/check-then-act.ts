import { defineScenario } from '../model.js';

/**
 * Check-then-act without a lock: two creators both see one available slot and both take it
 * (vfio_ccw's `avail` before atomic_dec_if_positive()).
 */
export const checkThenAct = defineScenario({
  id: 'check-then-act',
  expect: 'invariant',
  purpose: 'testing `avail > 0` and decrementing in two steps lets two creators take the last slot',
  init: { avail: 1 },
  names: ['create', 'create'],
  threads: [0, 1].map(() => (t) => [
    t.read('avail', 'a', 'create.c:10'),
    t.branch('a <= 0', 'fail', 'create.c:10'),
    t.write('avail', 'a - 1', 'create.c:12'),
    t.atomicAdd('created', 1, 'create.c:13'),
    t.ret(0),
    t.label('fail'),
    t.ret('-EPERM', 'create.c:11'),
  ]),
  invariants: [{ name: 'created <= 1 (the one slot is handed out once)', cells: ['created'], holds: (v) => (v.created ?? 0) <= 1 }],
  bounds: { maxStates: 10_000 },
});
