/**
 * The events the C model records per function, as plain data, in source (evaluation) order.
 * Every call yields a `call` event; calls with a known meaning (locks, atomics, frees, ...) are
 * followed by one more specific event on the same line, and their `call` is marked `special`.
 */

/** How an lvalue or lock expression is reached: a root and member/index/deref steps. */
export interface AccessPath {
  root: AccessRoot;
  steps: AccessStep[];
}

/** The start of an access path: a variable, a call's result, a cast, or something we do not follow. */
export type AccessRoot =
  | { kind: 'var'; name: string }
  | { kind: 'call'; callee: string; args: string[] }
  | { kind: 'cast'; type: string }
  | { kind: 'other'; text: string };

/** One step of an access path: `->m`, `.m`, `[i]` or a `*` dereference. */
export type AccessStep = { op: '->' | '.'; member: string } | { op: '[]' } | { op: '*' };

/** Lock families, as lockdep and the sleeping rules distinguish them. */
export type LockFlavor = 'mutex' | 'spinlock' | 'raw_spinlock' | 'rwlock' | 'rwsem' | 'rcu' | 'srcu' | 'device' | 'semaphore';

/** Where an event sits in the file. */
export interface Pos {
  /** 1-based line. */
  line: number;
  /** Offset in the file (UTF-16 units, as JavaScript strings count). */
  offset: number;
}

/** Lock acquire/release, or a statement that the lock must be held (lockdep_assert_held, WARN_ON(!mutex_is_locked)). */
export interface LockEvent extends Pos {
  kind: 'lock';
  op: 'acquire' | 'release' | 'assert_held';
  api: string;
  flavor: LockFlavor;
  mode: 'exclusive' | 'shared';
  /** The lock object as written, without a leading `&`: `matrix_dev->mdevs_lock`, `dev->mutex` for device_lock(dev). */
  lock: string;
  path: AccessPath | null;
  /**
   * For conditional acquires, which result means "acquired": trylocks succeed on non-zero,
   * `_interruptible`/`_killable` on zero. Null for unconditional ones.
   */
  acquiredWhen: 'nonzero' | 'zero' | null;
  /** `guard(...)` releases at the end of the enclosing block, `scoped_guard` at the end of its body. */
  scope: 'guard' | 'scoped_guard' | null;
}

/** A call; `special` when a more specific event follows for it. */
export interface CallEvent extends Pos {
  kind: 'call';
  callee: string;
  /** For calls through a pointer member, `ops->in_use(...)`: the base text and member name. */
  indirect: { base: string; member: string; path: AccessPath | null } | null;
  args: string[];
  special: boolean;
}

/** atomic_t/atomic64_t/refcount_t/kref operations. */
export interface AtomicEvent extends Pos {
  kind: 'atomic';
  api: string;
  op: 'read' | 'set' | 'rmw' | 'test' | 'cmpxchg' | 'get' | 'put' | 'init';
  target: string;
  path: AccessPath | null;
}

/** READ_ONCE/WRITE_ONCE and the acquire/release accessors. */
export interface MarkedAccessEvent extends Pos {
  kind: 'marked';
  api: string;
  access: 'load' | 'store';
  ordering: 'once' | 'acquire' | 'release';
  target: string;
  path: AccessPath | null;
}

/** smp_mb() and friends. */
export interface BarrierEvent extends Pos {
  kind: 'barrier';
  api: string;
  ordering: 'full' | 'read' | 'write' | 'before_atomic' | 'after_atomic' | 'compiler';
}

/** A store to a field (`a->b = x`, `a.b += x`, `a->b++`). */
export interface StoreEvent extends Pos {
  kind: 'store';
  target: string;
  base: string;
  member: string;
  path: AccessPath | null;
  value: string;
  operator: string;
}

/** A read of a field value (`a->b` used as a value, not under `&`). */
export interface LoadEvent extends Pos {
  kind: 'load';
  target: string;
  base: string;
  member: string;
  path: AccessPath | null;
}

/** An assignment to something that is not a field: a local, a global, `*p`, `a[i]`. */
export interface AssignEvent extends Pos {
  kind: 'assign';
  target: string;
  value: string;
  /** The callee when the value is a single call, `q = vfio_ap_find_queue(apqn)`. */
  fromCall: string | null;
}

/** kfree, put_device, kref_put, ... */
export interface FreeEvent extends Pos {
  kind: 'free';
  api: string;
  target: string;
}

/** A call that makes an object reachable from elsewhere (sysfs, a bus, an irq, a notifier chain). */
export interface RegisterEvent extends Pos {
  kind: 'register';
  api: string;
  target: string;
  args: string[];
  /** The APIs that undo it. */
  undo: string[];
}

/** The undo of a registration. */
export interface UnregisterEvent extends Pos {
  kind: 'unregister';
  api: string;
  target: string;
  args: string[];
  /** The registering APIs it undoes. */
  undoes: string[];
}

/** BUG/BUG_ON/WARN*. */
export interface BugEvent extends Pos {
  kind: 'bug';
  api: string;
  fatal: boolean;
  cond: string;
}

/** A return statement. */
export interface ReturnEvent extends Pos {
  kind: 'return';
  expr: string | null;
}

/** A memory allocation with its gfp flags. */
export interface AllocEvent extends Pos {
  kind: 'alloc';
  api: string;
  gfp: string | null;
  /** True for GFP_ATOMIC/GFP_NOWAIT and friends: allowed in atomic context. */
  atomic: boolean;
}

/** copy_from_user, copy_to_user, get_user, put_user. */
export interface UserCopyEvent extends Pos {
  kind: 'user_copy';
  api: string;
  direction: 'from' | 'to';
}

/** A file descriptor or file handed to userspace, or installed. */
export interface FdEvent extends Pos {
  kind: 'fd';
  api: string;
  args: string[];
}

/** A call that may sleep for a reason other than a lock, an allocation or a user copy. */
export interface SleepEvent extends Pos {
  kind: 'sleep';
  api: string;
}

/** Initialisation of an object's field: INIT_WORK, mutex_init, init_completion, ... */
export interface InitEvent extends Pos {
  kind: 'init';
  api: string;
  target: string;
  path: AccessPath | null;
}

/** Everything the model records, discriminated by `kind`. */
export type Event =
  | LockEvent
  | CallEvent
  | AtomicEvent
  | MarkedAccessEvent
  | BarrierEvent
  | StoreEvent
  | LoadEvent
  | AssignEvent
  | FreeEvent
  | RegisterEvent
  | UnregisterEvent
  | BugEvent
  | ReturnEvent
  | AllocEvent
  | UserCopyEvent
  | FdEvent
  | SleepEvent
  | InitEvent;

/** The `kind` values of {@link Event}. */
export type EventKind = Event['kind'];
