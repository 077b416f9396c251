import { defineScenario } from '../model.js';

/** The textbook AB-BA inversion: each thread holds one lock and wants the other. */
export const abba = defineScenario({
  id: 'abba',
  expect: 'deadlock',
  purpose: 'two paths take the same two locks in opposite orders: lockdep\'s AB-BA deadlock',
  names: ['writer', 'reader'],
  threads: [
    (t) => [t.lock('A', 'abba.c:10'), t.write('x', 1, 'abba.c:11'), t.lock('B', 'abba.c:12'), t.unlock('B', 'abba.c:13'), t.unlock('A', 'abba.c:14'), t.ret(0)],
    (t) => [t.lock('B', 'abba.c:20'), t.read('x', 'r0', 'abba.c:21'), t.lock('A', 'abba.c:22'), t.unlock('A', 'abba.c:23'), t.unlock('B', 'abba.c:24'), t.ret(0)],
  ],
  bounds: { maxStates: 10_000 },
});
