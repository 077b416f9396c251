import { defineScenario } from '../model.js';

/**
 * The vfio_ap fix of seed 002 in miniature: the writer takes the second lock with trylock and
 * returns -EBUSY when it is busy, so the inversion cannot deadlock, but the writer can fail.
 */
export const abbaTrylock = defineScenario({
  id: 'abba-trylock',
  expect: 'sometimes',
  purpose: 'a trylock on the inner lock avoids the AB-BA deadlock; its -EBUSY path is reachable (the writer fails)',
  names: ['apmask_store', 'assign_adapter_store'],
  threads: [
    (t) => [
      t.lock('ap_perms_mutex', 'ap_bus.c:1406'),
      t.trylock('matrix_dev->lock', 'got', 'vfio_ap_ops.c:1998'),
      t.branch('!got', 'busy'),
      t.read('mdev_apm', 'r0', 'vfio_ap_ops.c:1999'),
      t.unlock('matrix_dev->lock', 'vfio_ap_ops.c:2000'),
      t.unlock('ap_perms_mutex', 'ap_bus.c:1418'),
      t.ret(0),
      t.label('busy'),
      t.unlock('ap_perms_mutex', 'ap_bus.c:1418'),
      t.ret('-EBUSY', 'ap_bus.c:1370'),
    ],
    (t) => [
      t.lock('matrix_dev->lock', 'vfio_ap_ops.c:971'),
      t.write('mdev_apm', 1, 'vfio_ap_ops.c:985'),
      t.trylock('ap_perms_mutex', 'got', 'ap_bus.c:909'),
      t.branch('!got', 'busy'),
      t.read('apm', 'r1', 'ap_bus.c:910'),
      t.unlock('ap_perms_mutex', 'ap_bus.c:920'),
      t.unlock('matrix_dev->lock', 'vfio_ap_ops.c:1002'),
      t.ret(0),
      t.label('busy'),
      t.unlock('matrix_dev->lock', 'vfio_ap_ops.c:1002'),
      t.ret('-EBUSY', 'vfio_ap_ops.c:990'),
    ],
  ],
  exists: (v) => v['0:ret'] === -16 || v['1:ret'] === -16,
  outcomes: {
    'writer fails': (v) => v['1:ret'] === -16,
    'apmask_store fails': (v) => v['0:ret'] === -16,
  },
  bounds: { maxStates: 10_000 },
});
