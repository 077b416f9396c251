/**
 * What kernel APIs mean to the model: the tables that turn a call into a specific event.
 * The tables are data so a reviewer can check them against the kernel headers line by line.
 */
import type { AccessPath, Event, LockEvent, LockFlavor } from './events.js';

/** A call argument as the classifier sees it. */
export interface Arg {
  text: string;
  path: AccessPath | null;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event without its position; the extractor adds line and offset. */
export type EventBody = DistributiveOmit<Event, 'line' | 'offset'>;

interface LockApi {
  op: 'acquire' | 'release' | 'assert_held';
  flavor: LockFlavor;
  mode: 'exclusive' | 'shared';
  acquiredWhen?: 'nonzero' | 'zero';
  /** Which argument names the lock (default 0). */
  arg?: number;
  /** The lock is this member of the argument: device_lock(dev) is `dev->mutex`, mmap_read_lock(mm) `mm->mmap_lock`. */
  member?: string;
}

const lockApis = new Map<string, LockApi>();
function locks(names: string[], api: LockApi): void {
  for (const n of names) lockApis.set(n, api);
}
const X = 'exclusive' as const;
const S = 'shared' as const;
for (const [prefix, flavor] of [['spin', 'spinlock'], ['raw_spin', 'raw_spinlock']] as const) {
  locks(['', '_irq', '_irqsave', '_bh', '_nested', '_irqsave_nested', '_nest_lock'].map((s) => `${prefix}_lock${s}`), { op: 'acquire', flavor, mode: X });
  locks(['', '_irq', '_irqrestore', '_bh'].map((s) => `${prefix}_unlock${s}`), { op: 'release', flavor, mode: X });
  locks(['', '_irq', '_irqsave', '_bh'].map((s) => `${prefix}_trylock${s}`), { op: 'acquire', flavor, mode: X, acquiredWhen: 'nonzero' });
}
locks(['mutex_lock', 'mutex_lock_nested', 'mutex_lock_io', 'mutex_lock_nest_lock'], { op: 'acquire', flavor: 'mutex', mode: X });
locks(['mutex_lock_interruptible', 'mutex_lock_killable', 'mutex_lock_interruptible_nested', 'mutex_lock_killable_nested'], { op: 'acquire', flavor: 'mutex', mode: X, acquiredWhen: 'zero' });
locks(['mutex_trylock'], { op: 'acquire', flavor: 'mutex', mode: X, acquiredWhen: 'nonzero' });
locks(['mutex_unlock'], { op: 'release', flavor: 'mutex', mode: X });
for (const [rw, mode] of [['read', S], ['write', X]] as const) {
  locks(['', '_irq', '_irqsave', '_bh'].map((s) => `${rw}_lock${s}`), { op: 'acquire', flavor: 'rwlock', mode });
  locks(['', '_irq', '_irqrestore', '_bh'].map((s) => `${rw}_unlock${s}`), { op: 'release', flavor: 'rwlock', mode });
  locks([`${rw}_trylock`], { op: 'acquire', flavor: 'rwlock', mode, acquiredWhen: 'nonzero' });
  locks([`down_${rw}`, `down_${rw}_nested`, `down_${rw}_non_owner`], { op: 'acquire', flavor: 'rwsem', mode });
  locks([`down_${rw}_killable`, `down_${rw}_interruptible`], { op: 'acquire', flavor: 'rwsem', mode, acquiredWhen: 'zero' });
  locks([`down_${rw}_trylock`], { op: 'acquire', flavor: 'rwsem', mode, acquiredWhen: 'nonzero' });
  locks([`up_${rw}`, `up_${rw}_non_owner`], { op: 'release', flavor: 'rwsem', mode });
  locks([`mmap_${rw}_lock`], { op: 'acquire', flavor: 'rwsem', mode, member: 'mmap_lock' });
  locks([`mmap_${rw}_unlock`], { op: 'release', flavor: 'rwsem', mode, member: 'mmap_lock' });
  locks([`mmap_${rw}_lock_killable`], { op: 'acquire', flavor: 'rwsem', mode, acquiredWhen: 'zero', member: 'mmap_lock' });
  locks([`mmap_${rw}_trylock`], { op: 'acquire', flavor: 'rwsem', mode, acquiredWhen: 'nonzero', member: 'mmap_lock' });
}
locks(['down'], { op: 'acquire', flavor: 'semaphore', mode: X });
locks(['down_interruptible', 'down_killable', 'down_trylock', 'down_timeout'], { op: 'acquire', flavor: 'semaphore', mode: X, acquiredWhen: 'zero' });
locks(['up'], { op: 'release', flavor: 'semaphore', mode: X });
locks(['rcu_read_lock', 'rcu_read_lock_bh', 'rcu_read_lock_sched'], { op: 'acquire', flavor: 'rcu', mode: S });
locks(['rcu_read_unlock', 'rcu_read_unlock_bh', 'rcu_read_unlock_sched'], { op: 'release', flavor: 'rcu', mode: S });
locks(['srcu_read_lock'], { op: 'acquire', flavor: 'srcu', mode: S });
locks(['srcu_read_unlock'], { op: 'release', flavor: 'srcu', mode: S });
locks(['device_lock'], { op: 'acquire', flavor: 'device', mode: X, member: 'mutex' });
locks(['device_lock_interruptible'], { op: 'acquire', flavor: 'device', mode: X, acquiredWhen: 'zero', member: 'mutex' });
locks(['device_trylock'], { op: 'acquire', flavor: 'device', mode: X, acquiredWhen: 'nonzero', member: 'mutex' });
locks(['device_unlock'], { op: 'release', flavor: 'device', mode: X, member: 'mutex' });
locks(['lockdep_assert_held', 'lockdep_assert_held_once', 'lockdep_assert_held_write', 'lockdep_assert_held_read'], { op: 'assert_held', flavor: 'mutex', mode: X });
locks(['device_lock_assert'], { op: 'assert_held', flavor: 'device', mode: X, member: 'mutex' });
locks(['mmap_assert_locked', 'mmap_assert_write_locked'], { op: 'assert_held', flavor: 'rwsem', mode: X, member: 'mmap_lock' });
locks(['refcount_dec_and_mutex_lock', 'atomic_dec_and_mutex_lock'], { op: 'acquire', flavor: 'mutex', mode: X, acquiredWhen: 'nonzero', arg: 1 });
locks(['refcount_dec_and_lock', 'refcount_dec_and_lock_irqsave', 'atomic_dec_and_lock', 'atomic_dec_and_lock_irqsave'], { op: 'acquire', flavor: 'spinlock', mode: X, acquiredWhen: 'nonzero', arg: 1 });

/** `guard(<name>)` / `scoped_guard(<name>, ...)` lock classes from include/linux/cleanup.h users. */
const GUARD_CLASSES: Record<string, { flavor: LockFlavor; mode: 'exclusive' | 'shared'; acquiredWhen?: 'zero' | 'nonzero' }> = {
  mutex: { flavor: 'mutex', mode: X },
  mutex_intr: { flavor: 'mutex', mode: X, acquiredWhen: 'zero' },
  mutex_try: { flavor: 'mutex', mode: X, acquiredWhen: 'nonzero' },
  spinlock: { flavor: 'spinlock', mode: X },
  spinlock_irq: { flavor: 'spinlock', mode: X },
  spinlock_irqsave: { flavor: 'spinlock', mode: X },
  spinlock_bh: { flavor: 'spinlock', mode: X },
  raw_spinlock: { flavor: 'raw_spinlock', mode: X },
  raw_spinlock_irq: { flavor: 'raw_spinlock', mode: X },
  raw_spinlock_irqsave: { flavor: 'raw_spinlock', mode: X },
  read_lock: { flavor: 'rwlock', mode: S },
  read_lock_irqsave: { flavor: 'rwlock', mode: S },
  write_lock: { flavor: 'rwlock', mode: X },
  write_lock_irqsave: { flavor: 'rwlock', mode: X },
  rwsem_read: { flavor: 'rwsem', mode: S },
  rwsem_write: { flavor: 'rwsem', mode: X },
  rcu: { flavor: 'rcu', mode: S },
  srcu: { flavor: 'srcu', mode: S },
  device: { flavor: 'device', mode: X },
};

/** The lock object named by a lock argument: `&x->l` is `x->l`; device_lock(dev) is `dev->mutex`. */
function lockObject(flavor: LockFlavor, arg: Arg | undefined, member?: string): { lock: string; path: AccessPath | null } {
  if (flavor === 'rcu') return { lock: 'rcu', path: null };
  if (!arg) return { lock: '?', path: null };
  const text = arg.text.trim();
  if (member) {
    const lock = text.startsWith('&') ? `${text.slice(1).trim()}.${member}` : `${text}->${member}`;
    const path = arg.path ? { root: arg.path.root, steps: [...arg.path.steps, { op: text.startsWith('&') ? '.' : '->', member } as const] } : null;
    return { lock, path };
  }
  if (text.startsWith('&')) return { lock: text.slice(1).trim(), path: arg.path };
  // A lock passed by pointer (`struct mutex *lock` parameter): the object is `*lock`.
  return { lock: `*${text}`, path: arg.path ? { root: arg.path.root, steps: [...arg.path.steps, { op: '*' }] } : null };
}

function lockEvent(api: string, spec: LockApi, args: Arg[]): EventBody {
  const { lock, path } = lockObject(spec.flavor, args[spec.arg ?? 0], spec.member);
  const ev: Omit<LockEvent, 'line' | 'offset'> = {
    kind: 'lock', op: spec.op, api, flavor: spec.flavor, mode: spec.mode, lock, path,
    acquiredWhen: spec.acquiredWhen ?? null, scope: null,
  };
  return ev;
}

/** Lock events for `guard(name)(args)` or `scoped_guard(name, args)`; null when `name` is not a lock guard. */
export function guardEvent(guardName: string, args: Arg[], scope: 'guard' | 'scoped_guard'): EventBody | null {
  const g = GUARD_CLASSES[guardName];
  if (!g) return null;
  const { lock, path } = lockObject(g.flavor, args[0], g.flavor === 'device' ? 'mutex' : undefined);
  return {
    kind: 'lock', op: 'acquire', api: `${scope}(${guardName})`, flavor: g.flavor, mode: g.mode, lock, path,
    acquiredWhen: g.acquiredWhen ?? null, scope,
  };
}

/** The lock event a call is, if any (exported for the summaries, which re-create releases). */
export function lockApi(callee: string): LockApi | undefined {
  return lockApis.get(callee);
}

const ATOMIC = /^(?:atomic|atomic64|atomic_long)_(?<op>\w+)$/;
const REFCOUNT = /^refcount_(?<op>\w+)$/;

function atomicOp(op: string): 'read' | 'set' | 'rmw' | 'test' | 'cmpxchg' | null {
  if (/^read(?:_acquire)?$/.test(op)) return 'read';
  if (/^set(?:_release)?$/.test(op)) return 'set';
  if (/cmpxchg|xchg/.test(op)) return 'cmpxchg';
  if (/_and_test$|_return|^fetch_|_not_zero$|_if_positive$|_unless$|_negative$|_not_one$|_if_one$|_and_lock/.test(op)) return 'test';
  if (/^(?:inc|dec|add|sub|and|or|xor|andnot)$/.test(op)) return 'rmw';
  return null;
}

const BARRIERS: Record<string, 'full' | 'read' | 'write' | 'before_atomic' | 'after_atomic' | 'compiler'> = {
  smp_mb: 'full', mb: 'full', smp_mb__after_spinlock: 'full', smp_rmb: 'read', rmb: 'read', dma_rmb: 'read',
  smp_wmb: 'write', wmb: 'write', dma_wmb: 'write', smp_mb__before_atomic: 'before_atomic',
  smp_mb__after_atomic: 'after_atomic', barrier: 'compiler',
};

const FREE_ARG1 = new Set(['kmem_cache_free', 'devm_kfree', 'mempool_free', 'dma_pool_free']);
const FREES = new Set([
  'kfree', 'kvfree', 'vfree', 'kfree_sensitive', 'kzfree', 'kfree_rcu', 'kvfree_rcu', 'kfree_const', 'put_device',
  'kobject_put', 'free_page', 'free_pages', '__free_page', '__free_pages', 'bitmap_free', 'kref_put', 'kref_put_mutex',
  'kref_put_lock', 'fput', 'mmput', 'kvm_put_kvm', 'put_task_struct', 'put_pid', 'kmem_cache_free', 'devm_kfree',
  'mempool_free', 'dma_pool_free', 'vfio_put_device', 'vfio_device_put_registration', 'iommu_group_put', 'pci_dev_put',
  'put_pid', 'put_page', 'put_cred', 'put_disk', 'put_net',
]);

/** Registration APIs and their undo; generic `x_register_y`/`x_unregister_y` pairs are derived below. */
const REGISTRATIONS: Record<string, string[]> = {
  mdev_register_parent: ['mdev_unregister_parent'],
  mdev_register_device: ['mdev_unregister_device'],
  mdev_register_driver: ['mdev_unregister_driver'],
  vfio_register_group_dev: ['vfio_unregister_group_dev'],
  vfio_register_emulated_iommu_dev: ['vfio_unregister_group_dev'],
  device_add: ['device_del', 'device_unregister'],
  device_register: ['device_unregister'],
  cdev_add: ['cdev_del'],
  cdev_device_add: ['cdev_device_del'],
  misc_register: ['misc_deregister'],
  request_irq: ['free_irq'],
  request_threaded_irq: ['free_irq'],
  devm_request_irq: ['devm_free_irq'],
  devm_request_threaded_irq: ['devm_free_irq'],
  blocking_notifier_chain_register: ['blocking_notifier_chain_unregister'],
  atomic_notifier_chain_register: ['atomic_notifier_chain_unregister'],
  srcu_notifier_chain_register: ['srcu_notifier_chain_unregister'],
  raw_notifier_chain_register: ['raw_notifier_chain_unregister'],
  sysfs_create_group: ['sysfs_remove_group'],
  sysfs_create_groups: ['sysfs_remove_groups'],
  sysfs_create_file: ['sysfs_remove_file'],
  sysfs_create_files: ['sysfs_remove_files'],
  sysfs_create_link: ['sysfs_remove_link'],
  sysfs_create_bin_file: ['sysfs_remove_bin_file'],
  device_create_file: ['device_remove_file'],
  iommu_device_sysfs_add: ['iommu_device_sysfs_remove'],
  platform_driver_register: ['platform_driver_unregister'],
  pci_register_driver: ['pci_unregister_driver'],
  driver_register: ['driver_unregister'],
  bus_register: ['bus_unregister'],
  class_register: ['class_unregister'],
};

const undoCache = new Map<string, string[] | null>();
const undoesCache = new Map<string, string[] | null>();
const UNDOES = new Map<string, string[]>();
for (const [reg, undo] of Object.entries(REGISTRATIONS)) for (const u of undo) UNDOES.set(u, [...(UNDOES.get(u) ?? []), reg]);

/** The undo APIs of a registering call, or null when it registers nothing. */
export function registrationUndo(callee: string): string[] | null {
  if (!undoCache.has(callee)) undoCache.set(callee, computeUndo(callee));
  return undoCache.get(callee)!;
}

function computeUndo(callee: string): string[] | null {
  const known = REGISTRATIONS[callee];
  if (known) return known;
  if (/(?:^|_)unregister(?:_|$)|deregister/.test(callee)) return null;
  if (/^register_\w+$/.test(callee)) return [`un${callee}`];
  if (/^\w+_register(?:_\w+)?$/.test(callee)) return [callee.replace(/_register/, '_unregister')];
  return null;
}

/** The registering APIs an unregistering call undoes, or null. */
export function unregistrationOf(callee: string): string[] | null {
  if (!undoesCache.has(callee)) undoesCache.set(callee, computeUndoes(callee));
  return undoesCache.get(callee)!;
}

function computeUndoes(callee: string): string[] | null {
  const found = UNDOES.get(callee);
  if (found) return found;
  if (/^unregister_\w+$/.test(callee)) return [callee.slice(2)];
  if (/^\w+_unregister(?:_\w+)?$/.test(callee)) return [callee.replace(/_unregister/, '_register')];
  return null;
}

const BUGS = new Set(['BUG', 'BUG_ON', 'VM_BUG_ON', 'WARN', 'WARN_ON', 'WARN_ON_ONCE', 'WARN_ONCE', 'WARN_RATELIMIT', 'dev_WARN', 'dev_WARN_ONCE']);

const ALLOCS = new Set([
  'kmalloc', 'kzalloc', 'kcalloc', 'kmalloc_array', 'krealloc', 'kvmalloc', 'kvzalloc', 'kvcalloc', 'kvmalloc_array',
  'kmem_cache_alloc', 'kmem_cache_zalloc', 'kstrdup', 'kstrndup', 'kmemdup', 'devm_kzalloc', 'devm_kmalloc',
  'devm_kcalloc', 'alloc_pages', 'alloc_page', '__get_free_pages', '__get_free_page', 'get_zeroed_page',
  'bitmap_zalloc', 'bitmap_alloc', 'xa_alloc', 'xa_store', 'xa_insert', 'idr_alloc', 'idr_alloc_cyclic', 'ida_alloc',
  'ida_alloc_range', 'ida_alloc_min', 'ida_alloc_max', 'ida_simple_get', 'mempool_alloc', 'dma_alloc_coherent',
  'kasprintf', 'kvasprintf', 'kmalloc_node', 'kzalloc_node', 'alloc_pages_node', 'iommu_map', 'vmalloc', 'vzalloc',
  'vmalloc_user', 'memdup_user', 'vmemdup_user', 'memdup_user_nul',
]);
const ALWAYS_SLEEPING_ALLOCS = new Set(['vmalloc', 'vzalloc', 'vmalloc_user', 'memdup_user', 'vmemdup_user', 'memdup_user_nul']);

const USER_COPY: Record<string, 'from' | 'to'> = {
  copy_from_user: 'from', __copy_from_user: 'from', get_user: 'from', __get_user: 'from', strncpy_from_user: 'from',
  copy_struct_from_user: 'from', memdup_user: 'from', vmemdup_user: 'from', memdup_user_nul: 'from',
  copy_to_user: 'to', __copy_to_user: 'to', put_user: 'to', __put_user: 'to', clear_user: 'to',
};

const FDS = new Set(['anon_inode_getfd', 'anon_inode_getfile', 'anon_inode_getfd_secure', 'fd_install', 'dma_buf_fd', 'get_unused_fd_flags', 'put_unused_fd']);

const SLEEPS = new Set([
  'might_sleep', 'msleep', 'msleep_interruptible', 'ssleep', 'usleep_range', 'schedule', 'schedule_timeout',
  'schedule_timeout_interruptible', 'schedule_timeout_uninterruptible', 'synchronize_rcu', 'synchronize_srcu',
  'synchronize_rcu_expedited', 'rcu_barrier', 'flush_work', 'flush_delayed_work', 'cancel_work_sync',
  'cancel_delayed_work_sync', 'flush_workqueue', 'drain_workqueue', 'destroy_workqueue', 'kthread_stop',
  'blocking_notifier_call_chain', 'srcu_notifier_call_chain', 'cond_resched', 'request_firmware', 'wait_for_completion',
]);

const INITS = new Set([
  'INIT_WORK', 'INIT_DELAYED_WORK', 'INIT_LIST_HEAD', 'INIT_HLIST_HEAD', 'mutex_init', 'spin_lock_init',
  'raw_spin_lock_init', 'rwlock_init', 'init_rwsem', 'init_waitqueue_head', 'init_completion', 'xa_init',
  'xa_init_flags', 'ida_init', 'idr_init', 'timer_setup', 'hrtimer_init', 'BLOCKING_INIT_NOTIFIER_HEAD',
  'ATOMIC_INIT_NOTIFIER_HEAD', 'init_srcu_struct', 'sema_init', 'device_initialize', 'cdev_init', 'kref_init',
  'refcount_set', 'atomic_set', 'INIT_RADIX_TREE', 'RB_CLEAR_NODE',
]);

function deref(arg: Arg | undefined): { target: string; path: AccessPath | null } {
  if (!arg) return { target: '?', path: null };
  const t = arg.text.trim();
  return t.startsWith('&') ? { target: t.slice(1).trim(), path: arg.path } : { target: `*${t}`, path: arg.path };
}

function gfpOf(args: Arg[]): string | null {
  const hit = args.find((a) => /\b(?:__)?GFP_\w+/.test(a.text));
  if (hit) return hit.text.trim();
  // The conventional last argument when passed through a variable (`gfp`, `flags`).
  const last = args[args.length - 1];
  return last && /gfp/i.test(last.text) ? last.text.trim() : null;
}

/**
 * The specific events a call stands for, beyond the plain `call` event: empty for an ordinary call.
 * `args` are the argument texts and access paths, in order.
 */
export function classifyCall(callee: string, args: Arg[]): EventBody[] {
  // Most calls mean nothing special, and that depends on the name alone (allocations aside).
  if (plainCallees.has(callee)) return [];
  const out = classify(callee, args);
  if (out.length === 0 && !/alloc/.test(callee)) plainCallees.add(callee);
  return out;
}

const plainCallees = new Set<string>();

function classify(callee: string, args: Arg[]): EventBody[] {
  const out: EventBody[] = [];
  const lock = lockApis.get(callee);
  if (lock) out.push(lockEvent(callee, lock, args));
  if (callee === 'downgrade_write') {
    out.push(lockEvent(callee, { op: 'release', flavor: 'rwsem', mode: X }, args));
    out.push(lockEvent(callee, { op: 'acquire', flavor: 'rwsem', mode: S }, args));
  }
  const atom = ATOMIC.exec(callee) ?? REFCOUNT.exec(callee);
  if (atom) {
    const op = atomicOp(atom.groups!.op!);
    if (op) out.push({ kind: 'atomic', api: callee, op, ...deref(args[0]) });
  } else if (/^kref_(?:init|get|get_unless_zero|put|put_mutex|put_lock|read)$/.test(callee)) {
    const op = callee === 'kref_init' ? 'init' : callee === 'kref_read' ? 'read' : callee.startsWith('kref_get') ? 'get' : 'put';
    out.push({ kind: 'atomic', api: callee, op, ...deref(args[0]) });
  } else if (/^(?:set_bit|clear_bit|change_bit|test_and_set_bit|test_and_clear_bit|test_and_change_bit|test_bit)$/.test(callee)) {
    const op = callee === 'test_bit' ? 'read' : callee.startsWith('test_') ? 'test' : 'rmw';
    out.push({ kind: 'atomic', api: callee, op, ...deref(args[1]) });
  }
  if (callee === 'READ_ONCE' || callee === 'WRITE_ONCE') {
    const a = args[0];
    out.push({ kind: 'marked', api: callee, access: callee === 'READ_ONCE' ? 'load' : 'store', ordering: 'once', target: a?.text.trim() ?? '?', path: a?.path ?? null });
  } else if (callee === 'smp_load_acquire' || callee === 'smp_store_release') {
    out.push({ kind: 'marked', api: callee, access: callee === 'smp_load_acquire' ? 'load' : 'store', ordering: callee === 'smp_load_acquire' ? 'acquire' : 'release', ...deref(args[0]) });
  } else if (callee === 'rcu_assign_pointer') {
    const a = args[0];
    out.push({ kind: 'marked', api: callee, access: 'store', ordering: 'release', target: a?.text.trim() ?? '?', path: a?.path ?? null });
  } else if (/^rcu_dereference(?:_protected|_check|_raw|_bh|_sched)?$/.test(callee) || callee === 'srcu_dereference') {
    const a = args[0];
    out.push({ kind: 'marked', api: callee, access: 'load', ordering: 'acquire', target: a?.text.trim() ?? '?', path: a?.path ?? null });
  }
  const barrier = BARRIERS[callee];
  if (barrier) out.push({ kind: 'barrier', api: callee, ordering: barrier });
  // `*_put` drops a reference (vfio_device_put, iommu_group_put); `put_*` is too loose (put_locks), so only named ones.
  if (FREES.has(callee) || /\w_put$/.test(callee)) {
    const a = args[FREE_ARG1.has(callee) ? 1 : 0];
    out.push({ kind: 'free', api: callee, target: a?.text.trim() ?? '' });
  }
  const undo = registrationUndo(callee);
  if (undo) out.push({ kind: 'register', api: callee, target: args[0]?.text.trim() ?? '', args: args.map((a) => a.text.trim()), undo });
  const undoes = unregistrationOf(callee);
  if (undoes) out.push({ kind: 'unregister', api: callee, target: args[0]?.text.trim() ?? '', args: args.map((a) => a.text.trim()), undoes });
  if (BUGS.has(callee)) out.push({ kind: 'bug', api: callee, fatal: callee.includes('BUG'), cond: args[0]?.text.trim() ?? '' });
  if (ALLOCS.has(callee) || (/alloc/.test(callee) && args.some((a) => /\bGFP_/.test(a.text)))) {
    const gfp = ALWAYS_SLEEPING_ALLOCS.has(callee) ? 'GFP_KERNEL' : gfpOf(args);
    out.push({ kind: 'alloc', api: callee, gfp, atomic: gfp !== null && /GFP_ATOMIC|GFP_NOWAIT|__GFP_HIGH\b/.test(gfp) });
  }
  const dir = USER_COPY[callee];
  if (dir) out.push({ kind: 'user_copy', api: callee, direction: dir });
  if (FDS.has(callee)) out.push({ kind: 'fd', api: callee, args: args.map((a) => a.text.trim()) });
  if (SLEEPS.has(callee) || /^wait_for_completion|^wait_event/.test(callee)) out.push({ kind: 'sleep', api: callee });
  if (INITS.has(callee) && callee !== 'atomic_set' && callee !== 'refcount_set' && callee !== 'kref_init') {
    out.push({ kind: 'init', api: callee, ...deref(args[0]) });
  }
  return out;
}

/** The lock argument of `WARN_ON(!mutex_is_locked(&x))`-style assertions, recognised in BUG/WARN conditions. */
export const IS_LOCKED_PREDICATES = new Set(['mutex_is_locked', 'spin_is_locked', 'rwsem_is_locked', 'lockdep_is_held', 'raw_spin_is_locked']);
