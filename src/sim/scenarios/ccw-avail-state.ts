import { defineScenario } from '../model.js';

/**
 * Seed 000's question: can another CPU see `private->state = VFIO_CCW_STATE_STANDBY` before
 * `atomic_set(&private->avail, 1)`? atomic_set() is a plain store in LKMM and nothing orders the
 * two stores, so yes: vfio_ccw_mdev_create() can pass the state check and then fail
 * atomic_dec_if_positive() with -EPERM instead of -ENODEV (the fully ordered RMW does not help:
 * the stores are reordered on the probing CPU).
 */
export const ccwAvailState = defineScenario({
  id: 'ccw-avail-state',
  expect: 'sometimes',
  memory: 'relaxed',
  purpose: 'vfio_ccw_sch_probe() publishes state=STANDBY and avail=1 with unordered stores; create can see the state first and fail with -EPERM',
  init: { 'private->state': 'VFIO_CCW_STATE_NOT_OPER', 'private->avail': 0 },
  names: ['vfio_ccw_sch_probe', 'vfio_ccw_mdev_create'],
  threads: [
    (t) => [
      t.atomicSet('private->avail', 1, 'vfio_ccw_drv.c:153'),
      t.write('private->state', 'VFIO_CCW_STATE_STANDBY', 'vfio_ccw_drv.c:154'),
      t.ret(0),
    ],
    (t) => [
      t.read('private->state', 'st', 'vfio_ccw_ops.c:100'),
      t.branch('st == VFIO_CCW_STATE_NOT_OPER', 'nodev', 'vfio_ccw_ops.c:100'),
      t.rmw('private->avail', 'dec_if_positive', 'r', 0, 0, 'vfio_ccw_ops.c:103'),
      t.branch('r < 0', 'perm', 'vfio_ccw_ops.c:103'),
      t.ret(0),
      t.label('nodev'),
      t.ret('-ENODEV', 'vfio_ccw_ops.c:101'),
      t.label('perm'),
      t.ret('-EPERM', 'vfio_ccw_ops.c:104'),
    ],
  ],
  exists: (s) => s['1:ret'] === -1,
  outcomes: { '-ENODEV (state not yet STANDBY)': (s) => s['1:ret'] === -19, 'created': (s) => s['1:ret'] === 0 },
  bounds: { maxStates: 10_000 },
});
