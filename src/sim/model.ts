/**
 * Abstract programs for the concurrency simulator: threads as straight-line op lists with labels
 * and branches, the scenario that runs them, and the builder scenarios are written with.
 *
 * Everything here is plain data so a program derived from C (derive.ts) and one written by hand in
 * a test look the same to the explorer (checker.ts). Values are 32-bit integers; pointers to the
 * scenario's named objects are values too (`'&dma'`), so a register can hold one and a `use` can go
 * through it.
 */
import type { SourceReader } from '../cmodel/build.js';

/** Where an op comes from, shown in traces as `file:line`. */
export interface Src {
  file?: string;
  line?: number;
  /** The C function the op was derived from (inlined callees keep their own name). */
  fn?: string;
  /** For an op of an inlined callee: the call site in its caller (and so on up to the entry). */
  caller?: Src;
}

/**
 * A value or condition in a tiny expression language over the thread's registers: integers,
 * register names, `-EBUSY`-style errno constants, `&obj` pointers, `?` (unknown: both ways),
 * `== != < <= > >= + - && || !`, `@e` (1 when e is known) and parentheses. Identifiers that are neither registers nor errno
 * names are interned as distinct constants (enum values such as `VFIO_CCW_STATE_STANDBY`).
 */
export type Expr = number | string;

/** How a shared access is ordered, after LKMM: plain, READ_ONCE/WRITE_ONCE, acquire, release. */
export type ReadOrder = 'plain' | 'once' | 'acquire';
export type WriteOrder = 'plain' | 'once' | 'release';

/** Read-modify-write flavours; `reg` receives the value the kernel API returns. */
export type RmwKind = 'add' | 'add_return' | 'xchg' | 'cmpxchg' | 'dec_if_positive' | 'inc_not_zero' | 'dec_and_test';

/** One operation of a thread. `at` is shown in traces; `note` replaces the generated text there. */
export type Op = (
  | { kind: 'lock'; lock: string; mode: 'exclusive' | 'shared' }
  | { kind: 'unlock'; lock: string }
  /** `reg` = 1 when acquired, 0 when the lock was busy (branch on it for the -EBUSY path). */
  | { kind: 'trylock'; lock: string; reg: string; mode: 'exclusive' | 'shared' }
  | { kind: 'read'; cell: string; reg: string; order: ReadOrder }
  | { kind: 'write'; cell: string; value: Expr; order: WriteOrder }
  /** `ordered` for value-returning kernel atomics, which are fully ordered (atomic_t.txt). */
  | { kind: 'rmw'; cell: string; rmw: RmwKind; arg: Expr; arg2: Expr; reg: string | null; ordered: boolean }
  | { kind: 'fence'; fence: 'mb' | 'wmb' | 'rmb' }
  /** `target`: an object name, or a register holding a pointer. */
  | { kind: 'alloc'; target: string }
  | { kind: 'free'; target: string }
  | { kind: 'use'; target: string; access: 'read' | 'write' }
  | { kind: 'set'; reg: string; value: Expr }
  /** Jump to `target` when `cond` holds; `?` (or anything unknown) explores both ways. */
  | { kind: 'branch'; cond: Expr; target: string }
  | { kind: 'goto'; target: string }
  | { kind: 'label'; name: string }
  /** Paths where `cond` is false are infeasible and dropped (not reported). */
  | { kind: 'assume'; cond: Expr }
  | { kind: 'assert'; cond: Expr; message: string }
  | { kind: 'return'; value: Expr | null }
) & { at?: Src; note?: string };

/** The op kinds. */
export type OpKind = Op['kind'];

/** A program of one thread: the ops in order; `name` heads its CPU column. */
export interface ThreadProgram {
  name: string;
  ops: Op[];
  /**
   * Registers the scenario's predicates may read at the end (default: all). Others are reset once
   * dead, which merges states; derived programs observe none (their outcome is the return value).
   */
  observable?: string[];
}

/** What a predicate over a state sees: cells by name, registers as `r0` (unique) and `1:r0`, returns as `1:ret`. */
export type View = Readonly<Record<string, number | undefined>>;

/** A stated invariant, checked at every state. `cells` lists what it reads (enables reduction on the others). */
export interface Invariant {
  name: string;
  holds: (v: View) => boolean;
  cells?: string[];
}

/** Search bounds: exceeding one is the verdict `bound-reached`, never "safe". */
export interface Bounds {
  maxStates?: number;
  maxDepth?: number;
  timeMs?: number;
  /** Preemption bound for the first phases with 4+ threads (default 2). */
  preemptions?: number;
}

/**
 * The expected verdict: for `exists`, whether its outcome is reachable never/sometimes/always (and
 * nothing else goes wrong); otherwise which violation the scenario must find. `never` without an
 * `exists` means no violation at all.
 */
export type Expect = 'never' | 'sometimes' | 'always' | 'deadlock' | 'use-after-free' | 'stale-pointer' | 'invariant';

/** Memory model: sequentially consistent, or the relaxed model documented in docs/sim.md. */
export type MemoryModel = 'sc' | 'relaxed';

/** A thread of a tree-derived scenario: an entry function and what its parameters are bound to. */
export interface TreeThread {
  name?: string;
  entry: string;
  file: string;
  /** Parameter -> object name, so two threads given the same object share its fields and locks. */
  args?: Record<string, string>;
  /**
   * A registration API (`mdev_register_parent`) another thread must have called before this entry
   * can run at all (the sysfs attribute or callback it publishes): the thread starts with an
   * acquire load of the registration and paths before it are infeasible.
   */
  after?: string;
}

/** Where a tree-derived scenario's programs come from. */
export interface TreeSource {
  /** Files to model (touched files; headers and siblings are pulled in by buildModel). */
  files: string[];
  threads: TreeThread[];
  /** Inline depth (default 4) and loop unrolling (default 1). */
  inlineDepth?: number;
  unroll?: number;
  /**
   * Which function an ops member calls (`{ in_use: 'vfio_ap_mdev_resource_in_use' }`). A member
   * with several bindings in the model and none stated here is not inlined.
   */
  ops?: Record<string, string>;
  /**
   * Functions never inlined: only their summary's lock effects are kept. For callees whose inner
   * state cannot matter to the property (page accounting under the scenario's locks) and whose
   * branches would only multiply states, as spin users abstract local computation away.
   */
  opaque?: string[];
  /**
   * Containers the model abstracts to one slot (a cell holding the element pointer): calls to a
   * `lookup` function read it (the result is a pointer with the lock provenance of the read),
   * calls to an `unlink` function write NULL to it. For rb-trees and lists, whose walks the
   * derivation does not follow (`vfio_find_dma()` over `iommu->dma_list`). The cell is qualified
   * by the object the call's first argument is bound to, like a field.
   */
  containers?: Container[];
}

/**
 * A container abstracted to one slot (TreeSource.containers): `lookup` calls read the element
 * pointer, `unlink` calls write NULL, `destroy` calls unlink and free the element, `access` calls
 * dereference the element pointer passed as their first argument (`kmap_local_page(page)`).
 */
export interface Container {
  cell: string;
  lookup: string[];
  unlink: string[];
  destroy?: string[];
  access?: string[];
}

/** The scenario as written in src/sim/scenarios/<id>.ts. */
export interface ScenarioSpec {
  id: string;
  purpose: string;
  expect: Expect;
  memory?: MemoryModel;
  /** Initial cell values; a string value is an expression (`'&dma'`). Unlisted cells start at 0. */
  init?: Record<string, Expr>;
  /** Named objects, live at the start unless listed in `unallocated`. */
  objects?: string[];
  unallocated?: string[];
  /** Hand-written threads (builder functions), or `tree` for programs derived from C. */
  threads?: ((t: Builder) => Op[])[] | ThreadProgram[];
  tree?: TreeSource;
  exists?: (v: View) => boolean;
  /** Named outcomes reported alongside the verdict (e.g. `writer fails`), never judged. */
  outcomes?: Record<string, (v: View) => boolean>;
  invariants?: Invariant[];
  bounds?: Bounds;
  /** Names of the threads (CPU columns) when `threads` are builder functions. */
  names?: string[];
}

/** A scenario after {@link defineScenario}: the spec plus how to get its programs. */
export interface Scenario extends ScenarioSpec {
  /** Programs of the threads; tree scenarios need a reader over the tree. */
  programs(reader?: SourceReader): Promise<ThreadProgram[]>;
}

type SrcArg = Src | string | undefined;

/** `'file.c:12'` or `{ file, line }` as a {@link Src}. */
export function src(at: SrcArg): Src | undefined {
  if (at === undefined || typeof at === 'object') return at;
  const m = /^(?<file>.*?):(?<line>\d+)$/.exec(at);
  return m ? { file: m.groups!.file!, line: Number(m.groups!.line) } : { file: at };
}

function op<T extends Op>(o: T, at: SrcArg): T {
  const s = src(at);
  return s ? { ...o, at: s } : o;
}

/** The op builder handed to scenario thread functions; every method takes an optional source position. */
export const builder = {
  lock: (lock: string, at?: SrcArg): Op => op({ kind: 'lock', lock, mode: 'exclusive' }, at),
  lockShared: (lock: string, at?: SrcArg): Op => op({ kind: 'lock', lock, mode: 'shared' }, at),
  unlock: (lock: string, at?: SrcArg): Op => op({ kind: 'unlock', lock }, at),
  trylock: (lock: string, reg: string, at?: SrcArg): Op => op({ kind: 'trylock', lock, reg, mode: 'exclusive' }, at),
  read: (cell: string, reg: string, at?: SrcArg): Op => op({ kind: 'read', cell, reg, order: 'plain' }, at),
  write: (cell: string, value: Expr, at?: SrcArg): Op => op({ kind: 'write', cell, value, order: 'plain' }, at),
  readOnce: (cell: string, reg: string, at?: SrcArg): Op => op({ kind: 'read', cell, reg, order: 'once' }, at),
  writeOnce: (cell: string, value: Expr, at?: SrcArg): Op => op({ kind: 'write', cell, value, order: 'once' }, at),
  /** smp_load_acquire */
  acquire: (cell: string, reg: string, at?: SrcArg): Op => op({ kind: 'read', cell, reg, order: 'acquire' }, at),
  /** smp_store_release */
  release: (cell: string, value: Expr, at?: SrcArg): Op => op({ kind: 'write', cell, value, order: 'release' }, at),
  /** atomic_set: a plain store in LKMM. */
  atomicSet: (cell: string, value: Expr, at?: SrcArg): Op => op({ kind: 'write', cell, value, order: 'once' }, at),
  /** atomic_read: a plain (READ_ONCE) load. */
  atomicRead: (cell: string, reg: string, at?: SrcArg): Op => op({ kind: 'read', cell, reg, order: 'once' }, at),
  /** atomic_add/inc/dec: unordered read-modify-write. */
  atomicAdd: (cell: string, delta: Expr, at?: SrcArg): Op => op({ kind: 'rmw', cell, rmw: 'add', arg: delta, arg2: 0, reg: null, ordered: false }, at),
  /** A fully ordered value-returning atomic (atomic_dec_if_positive, atomic_xchg, ...). */
  rmw: (cell: string, rmw: RmwKind, reg: string | null, arg: Expr = 0, arg2: Expr = 0, at?: SrcArg): Op =>
    op({ kind: 'rmw', cell, rmw, arg, arg2, reg, ordered: rmw !== 'add' }, at),
  mb: (at?: SrcArg): Op => op({ kind: 'fence', fence: 'mb' }, at),
  wmb: (at?: SrcArg): Op => op({ kind: 'fence', fence: 'wmb' }, at),
  rmb: (at?: SrcArg): Op => op({ kind: 'fence', fence: 'rmb' }, at),
  alloc: (target: string, at?: SrcArg): Op => op({ kind: 'alloc', target }, at),
  free: (target: string, at?: SrcArg): Op => op({ kind: 'free', target }, at),
  use: (target: string, access: 'read' | 'write' = 'read', at?: SrcArg): Op => op({ kind: 'use', target, access }, at),
  set: (reg: string, value: Expr, at?: SrcArg): Op => op({ kind: 'set', reg, value }, at),
  branch: (cond: Expr, target: string, at?: SrcArg): Op => op({ kind: 'branch', cond, target }, at),
  /** Either way: a condition the model does not track. */
  either: (target: string, at?: SrcArg): Op => op({ kind: 'branch', cond: '?', target }, at),
  goto: (target: string, at?: SrcArg): Op => op({ kind: 'goto', target }, at),
  label: (name: string): Op => ({ kind: 'label', name }),
  assume: (cond: Expr, at?: SrcArg): Op => op({ kind: 'assume', cond }, at),
  assert: (cond: Expr, message: string, at?: SrcArg): Op => op({ kind: 'assert', cond, message }, at),
  ret: (value: Expr | null = null, at?: SrcArg): Op => op({ kind: 'return', value }, at),
  /** Attach a trace note to an op (what the C line says, e.g. `ap_drv->in_use()`). */
  note: (o: Op, note: string): Op => ({ ...o, note }),
};

/** The builder's type. */
export type Builder = typeof builder;

/**
 * Define a scenario. Hand-written threads are materialised once; tree scenarios derive their
 * programs from the C model when `programs(reader)` is called (derive.ts is loaded lazily, so the
 * litmus scenarios do not pull in tree-sitter).
 */
export function defineScenario(spec: ScenarioSpec): Scenario {
  const threads = spec.threads;
  return {
    ...spec,
    async programs(reader?: SourceReader): Promise<ThreadProgram[]> {
      if (threads) {
        return threads.map((t, i) => (typeof t === 'function' ? { name: spec.names?.[i] ?? `T${i}`, ops: t(builder) } : t));
      }
      if (!spec.tree) throw new Error(`scenario ${spec.id} has neither threads nor tree`);
      if (!reader) throw new Error(`scenario ${spec.id} needs a kernel tree (--tree DIR)`);
      const { deriveScenarioPrograms } = await import('./derive.js');
      return deriveScenarioPrograms(reader, spec.tree);
    },
  };
}
