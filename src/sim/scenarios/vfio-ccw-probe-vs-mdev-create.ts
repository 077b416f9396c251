import { defineScenario } from '../model.js';

/**
 * Seed 000 on the real tree: can mdev create see the subchannel before vfio_ccw finished setting
 * it up? In 2018 vfio_ccw_sch_probe() registered the mdev parent first and only then set
 * `avail = 1` and `state = STANDBY`, and reviewers asked whether another CPU could see those
 * stores out of order. 6.1 follows Halil's suggestion: vfio_ccw_alloc_private() sets
 * `state = VFIO_CCW_STATE_STANDBY` (vfio_ccw_drv.c:154) before mdev_register_parent()
 * (vfio_ccw_drv.c:244) publishes the parent, and the `avail` counter is gone. Registration takes
 * a mutex (a release) and create can only reach vfio_ccw_mdev_probe() through it (an acquire), so
 * under the relaxed model too the probe never sees NOT_OPER: -ENODEV is never returned. Moving
 * the store after the registration (the 2018 order) makes it reachable.
 */
export const vfioCcwProbeVsMdevCreate = defineScenario({
  id: 'vfio-ccw-probe-vs-mdev-create',
  expect: 'never',
  memory: 'relaxed',
  purpose: '6.1 sets state = STANDBY (vfio_ccw_drv.c:154) before mdev_register_parent() publishes the parent (vfio_ccw_drv.c:244); create, reachable only after it, never sees NOT_OPER (-ENODEV)',
  init: { 'vfio_ccw_private.state': 'VFIO_CCW_STATE_NOT_OPER' },
  tree: {
    files: ['drivers/s390/cio/vfio_ccw_drv.c', 'drivers/s390/cio/vfio_ccw_ops.c'],
    threads: [
      { entry: 'vfio_ccw_sch_probe', file: 'drivers/s390/cio/vfio_ccw_drv.c' },
      { entry: 'vfio_ccw_mdev_probe', file: 'drivers/s390/cio/vfio_ccw_ops.c', after: 'mdev_register_parent' },
    ],
  },
  exists: (v) => v['1:ret'] === -19,
  outcomes: { 'create succeeds': (v) => v['1:ret'] === 0 || v['1:ret'] === undefined },
  bounds: { maxStates: 200_000, timeMs: 10_000 },
});
