import { defineScenario } from '../model.js';

/**
 * Seed 001's lifetime question on the real tree: a migration data FD handed to userspace, read
 * while the device is closed. 6.1 has it in mlx5 (drivers/vfio/pci/mlx5): the saving FD's
 * mlx5vf_save_read() takes migf->lock (main.c:155), fails with -ENODEV when `migf->disabled`
 * (164), and only then finds the page (178) and maps it (186), still under the lock.
 * mlx5vf_pci_close_device() -> mlx5vf_cmd_close_migratable() takes state_mutex (cmd.c:112) and
 * mlx5vf_disable_fd() frees the pages and sets `disabled` under the same migf->lock (main.c
 * 117-126); the migf itself lives until the FD is released (mlx5vf_release_file), so close does
 * not free it under the reader. Expected `never`: no use of the freed data, no deadlock.
 *
 * The page table is one slot (`containers`): mlx5vf_get_migration_page() reads it,
 * sg_free_append_table() empties and frees it, kmap_local_page() dereferences the page.
 */
export const mlx5MigrationFdVsClose = defineScenario({
  id: 'mlx5-migration-fd-vs-close',
  expect: 'never',
  purpose: 'real 6.1 tree: mlx5vf_save_read checks migf->disabled and copies the page under migf->lock, which mlx5vf_disable_fd (close_device) holds while freeing the pages: never a use of freed migration data',
  objects: ['mig_data'],
  init: { 'mlx5_vf_migration_file.table': '&mig_data' },
  tree: {
    files: ['drivers/vfio/pci/mlx5/main.c', 'drivers/vfio/pci/mlx5/cmd.c'],
    containers: [{ cell: 'mlx5_vf_migration_file.table', lookup: ['mlx5vf_get_migration_page'], unlink: [], destroy: ['sg_free_append_table'], access: ['kmap_local_page'] }],
    threads: [
      { name: 'read', entry: 'mlx5vf_save_read', file: 'drivers/vfio/pci/mlx5/main.c' },
      { name: 'close_device', entry: 'mlx5vf_pci_close_device', file: 'drivers/vfio/pci/mlx5/main.c' },
    ],
  },
  bounds: { maxStates: 500_000, timeMs: 15_000 },
});
