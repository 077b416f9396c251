import { defineScenario } from '../model.js';

/**
 * Seed 002 on the real tree. The reviewers' BANG was: apmask_store() holds ap_perms_mutex and
 * calls the driver's in_use() callback, which takes the matrix device lock, while
 * assign_adapter_store() holds the matrix device lock and takes ap_perms_mutex. The trylock fix
 * argued there did not survive: in 6.1 assign_adapter_store() takes ap_perms_mutex first
 * (vfio_ap_ops.c:970) and only then get_update_locks_for_mdev() (guests_lock, kvm->lock,
 * mdevs_lock), and vfio_ap_mdev_resource_in_use(), reached from apmask_store() through
 * apmask_commit() -> bus_for_each_drv(__verify_card_reservations) -> ap_drv->in_use, takes
 * guests_lock then mdevs_lock (vfio_ap_ops.c:1997-1998) under ap_perms_mutex (ap_bus.c:1406).
 * Both paths take ap_perms_mutex first: the order is consistent and there is no deadlock. The
 * expected verdict on the unmodified tree is therefore `never` (no violation); a patch taking
 * ap_perms_mutex after get_update_locks_for_mdev() reintroduces the AB-BA.
 */
export const vfioApApmaskVsAssign = defineScenario({
  id: 'vfio-ap-apmask-vs-assign',
  expect: 'never',
  purpose: '6.1 takes ap_perms_mutex before the matrix device locks on both paths (assign_adapter_store at vfio_ap_ops.c:970, apmask_store at ap_bus.c:1406 then in_use -> vfio_ap_mdev_resource_in_use): consistent order, no deadlock',
  tree: {
    files: ['drivers/s390/crypto/ap_bus.c', 'drivers/s390/crypto/vfio_ap_ops.c'],
    threads: [
      { entry: 'apmask_store', file: 'drivers/s390/crypto/ap_bus.c' },
      { entry: 'assign_adapter_store', file: 'drivers/s390/crypto/vfio_ap_ops.c' },
    ],
  },
  bounds: { maxStates: 200_000, timeMs: 10_000 },
});
