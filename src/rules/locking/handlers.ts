/**
 * Entry points userspace calls directly: sysfs stores, ioctl handlers, file operations. An errno
 * these return is what the writer sees, so a transient lock conflict must not surface there.
 */
import type { FunctionModel, TreeModel } from '../../cmodel/index.js';

const IOCTL_MEMBERS = new Set(['ioctl', 'unlocked_ioctl', 'compat_ioctl', 'device_feature']);
const FILE_MEMBERS = new Set(['read', 'write', 'read_iter', 'write_iter', 'mmap', 'open', 'open_device', 'poll', 'llseek', 'fsync', 'flush']);
/** Structures whose read/write/open/... members are reached from a file descriptor. */
const FILE_OPS = new Set(['file_operations', 'vfio_device_ops', 'vfio_iommu_driver_ops', 'mdev_parent_ops', 'proc_ops']);

/** `DEVICE_ATTR(name, mode, show, store)` and `__ATTR(...)`: the store function named as the fourth argument. */
const ATTR = /\b(?:DEVICE|DRIVER|BUS|CLASS|KOBJ)?_?_ATTR\s*\(\s*\w+\s*,[^,()]+,\s*\w+\s*,\s*(?<store>\w+)\s*\)/g;

/** What kind of userspace entry point `fn` is, or null. */
export function handlerKind(model: TreeModel, fn: FunctionModel, text: string | null): string | null {
  if (/_store$/.test(fn.name)) return 'sysfs store';
  for (const m of text?.matchAll(ATTR) ?? []) if (m.groups!.store === fn.name) return 'sysfs store';
  for (const bindings of model.ops.values()) {
    for (const b of bindings) {
      if (b.fn !== fn.name || b.file !== fn.file) continue;
      if (b.member === 'store') return 'sysfs store';
      if (IOCTL_MEMBERS.has(b.member)) return 'ioctl handler';
      if (FILE_MEMBERS.has(b.member) && (b.structType === null || FILE_OPS.has(b.structType))) return 'file operation';
    }
  }
  if (/ioctl/.test(fn.name)) return 'ioctl handler';
  return null;
}
