import { defineScenario } from '../model.js';

/**
 * AB-BA where one edge goes through an ops callback: the bus calls `ap_drv->in_use()` under its
 * lock and the driver's callback takes the driver lock, while the driver's sysfs store holds the
 * driver lock and calls back into the bus (seed 002 before the fix).
 */
export const abbaOpsCallback = defineScenario({
  id: 'abba-ops-callback',
  expect: 'deadlock',
  purpose: 'the bus lock -> driver lock edge hides behind ap_drv->in_use(); the driver takes them the other way round',
  names: ['apmask_store', 'assign_adapter_store'],
  threads: [
    (t) => [
      t.lock('ap_perms_mutex', 'ap_bus.c:1406'),
      t.note(t.set('rc', 0, 'ap_bus.c:1368'), 'ap_drv->in_use(newapm, aqm)'),
      // vfio_ap_mdev_resource_in_use(), inlined through the ops member
      t.lock('matrix_dev->lock', { file: 'vfio_ap_ops.c', line: 1998, fn: 'vfio_ap_mdev_resource_in_use' }),
      t.read('mdev_apm', 'r0', 'vfio_ap_ops.c:1999'),
      t.unlock('matrix_dev->lock', 'vfio_ap_ops.c:2000'),
      t.unlock('ap_perms_mutex', 'ap_bus.c:1418'),
      t.ret(0),
    ],
    (t) => [
      t.lock('matrix_dev->lock', 'vfio_ap_ops.c:971'),
      t.write('mdev_apm', 1, 'vfio_ap_ops.c:985'),
      // ap_apqn_in_matrix_owned_by_def_drv()
      t.lock('ap_perms_mutex', { file: 'ap_bus.c', line: 905, fn: 'ap_apqn_in_matrix_owned_by_def_drv' }),
      t.read('apm', 'r1', 'ap_bus.c:910'),
      t.unlock('ap_perms_mutex', 'ap_bus.c:920'),
      t.unlock('matrix_dev->lock', 'vfio_ap_ops.c:1002'),
      t.ret(0),
    ],
  ],
  bounds: { maxStates: 10_000 },
});
