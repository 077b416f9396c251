/**
 * What the unwind rule pairs up: acquisitions beyond the model's registration table and their undo,
 * allocations tracked into locals, calls that use an allocation without taking it over, and the
 * names that may well undo something the model cannot see.
 */
import type { TreeModel } from '../../cmodel/index.js';
import type { ResultKind } from './cflow.js';

/** Acquire/release pairs beyond the model's registration table, with how their result says success. */
export const PAIRS: Record<string, { undo: string[]; kind: ResultKind }> = {
  vfio_alloc_device: { undo: ['vfio_put_device'], kind: 'pointer' },
  vfio_init_group_dev: { undo: ['vfio_uninit_group_dev'], kind: 'int' },
  pci_enable_device: { undo: ['pci_disable_device'], kind: 'int' },
  pci_enable_device_mem: { undo: ['pci_disable_device'], kind: 'int' },
  pci_request_regions: { undo: ['pci_release_regions'], kind: 'int' },
  pci_request_selected_regions: { undo: ['pci_release_selected_regions'], kind: 'int' },
  pci_iomap: { undo: ['pci_iounmap'], kind: 'pointer' },
  ioremap: { undo: ['iounmap'], kind: 'pointer' },
  iommu_group_get: { undo: ['iommu_group_put'], kind: 'pointer' },
  iommu_group_alloc: { undo: ['iommu_group_put'], kind: 'pointer' },
  iommu_domain_alloc: { undo: ['iommu_domain_free'], kind: 'pointer' },
  iommu_attach_device: { undo: ['iommu_detach_device'], kind: 'int' },
  iommu_attach_group: { undo: ['iommu_detach_group'], kind: 'int' },
  get_device: { undo: ['put_device'], kind: 'pointer' },
  kobject_get: { undo: ['kobject_put'], kind: 'pointer' },
  ida_alloc: { undo: ['ida_free'], kind: 'int' },
  ida_alloc_range: { undo: ['ida_free'], kind: 'int' },
  ida_alloc_max: { undo: ['ida_free'], kind: 'int' },
  ida_simple_get: { undo: ['ida_simple_remove'], kind: 'int' },
  alloc_chrdev_region: { undo: ['unregister_chrdev_region'], kind: 'int' },
  register_chrdev_region: { undo: ['unregister_chrdev_region'], kind: 'int' },
  class_create: { undo: ['class_destroy'], kind: 'pointer' },
  kset_create_and_add: { undo: ['kset_unregister'], kind: 'pointer' },
  alloc_workqueue: { undo: ['destroy_workqueue'], kind: 'pointer' },
  create_singlethread_workqueue: { undo: ['destroy_workqueue'], kind: 'pointer' },
  kmem_cache_create: { undo: ['kmem_cache_destroy'], kind: 'pointer' },
  kmem_cache_create_usercopy: { undo: ['kmem_cache_destroy'], kind: 'pointer' },
  eventfd_ctx_fdget: { undo: ['eventfd_ctx_put'], kind: 'pointer' },
  try_module_get: { undo: ['module_put'], kind: 'pointer' },
  kvm_get_kvm: { undo: ['kvm_put_kvm'], kind: 'int' },
};

/** Allocations tracked only into a local pointer, freed by one of these. */
export const ALLOC_FREES: Record<string, string[]> = Object.fromEntries([
  ...['kmalloc', 'kzalloc', 'kcalloc', 'kmalloc_array', 'kmemdup', 'kstrdup', 'kasprintf', 'kzalloc_node', 'kmalloc_node'].map((a) => [a, ['kfree', 'kfree_sensitive', 'kvfree']]),
  ...['kvmalloc', 'kvzalloc', 'kvcalloc', 'kvmalloc_array'].map((a) => [a, ['kvfree']]),
  ...['vmalloc', 'vzalloc'].map((a) => [a, ['vfree', 'kvfree']]),
]);

/** Calls that use an allocation without taking it over. */
export const NON_CONSUMING = /^(?:memset|memcpy|memmove|memcmp|copy_from_user|copy_to_user|__copy_from_user|__copy_to_user|copy_struct_from_user|strscpy|strlcpy|strncpy|strcpy|snprintf|scnprintf|sprintf|sizeof|IS_ERR|IS_ERR_OR_NULL|PTR_ERR|mutex_init|spin_lock_init|raw_spin_lock_init|init_waitqueue_head|init_completion|kref_init|refcount_set|atomic_set|INIT_\w+|(?:dev|pr|pci|netdev)_(?:err|warn|info|dbg|notice)\w*|WARN\w*|BUG_ON|le\d+_to_cpu|cpu_to_le\d+|min|max|min_t|max_t|array_size|struct_size)$/;

/** Names of unresolved functions that may well undo something the model cannot see. */
export const CLEANUP = /(?:^|_)(?:unregister|deregister|unreg|remove|del|destroy|cleanup|release|teardown|free|uninit|deinit|exit|put|unbind|detach|disable|fini|undo|unmap|unpin)(?:_|$)/;

/** Undo APIs of the kernel's registration calls (the model's table and common ones): always real functions. */
const KERNEL_UNDO = new Set([
  'mdev_unregister_parent', 'mdev_unregister_device', 'mdev_unregister_driver', 'vfio_unregister_group_dev', 'device_del',
  'device_unregister', 'cdev_del', 'cdev_device_del', 'misc_deregister', 'free_irq', 'blocking_notifier_chain_unregister',
  'atomic_notifier_chain_unregister', 'srcu_notifier_chain_unregister', 'raw_notifier_chain_unregister', 'sysfs_remove_group',
  'sysfs_remove_groups', 'sysfs_remove_file', 'sysfs_remove_files', 'sysfs_remove_link', 'sysfs_remove_bin_file',
  'device_remove_file', 'iommu_device_sysfs_remove', 'platform_driver_unregister', 'pci_unregister_driver', 'driver_unregister',
  'bus_unregister', 'class_unregister', 'iommu_device_unregister', 'bus_unregister_notifier', 'unregister_chrdev_region',
  'debug_unregister', 'unregister_syscore_ops', 'root_device_unregister', 'vfio_pci_core_unregister_device',
  'irq_bypass_unregister_producer', 'kvm_unregister_device_ops', 'mmu_notifier_unregister', 'unregister_reboot_notifier',
]);

const knownCache = new WeakMap<TreeModel, Set<string>>();
/**
 * Names the model knows as functions: definitions, prototypes, and callees anywhere. The model derives
 * undo names from `x_register_y` spelling (`vfio_pci_core_register_dev_region` -> `..._unregister_...`);
 * an undo nobody defines or calls is no undo, and the registration then has none to forget.
 */
export function knownNames(model: TreeModel): Set<string> {
  let out = knownCache.get(model);
  if (out) return out;
  out = new Set([...KERNEL_UNDO, ...model.functions.keys(), ...model.env.returns.keys()]);
  for (const fm of model.files.values()) for (const f of fm.functions) for (const e of f.events) if (e.kind === 'call') out.add(e.callee);
  knownCache.set(model, out);
  return out;
}

