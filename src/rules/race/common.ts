/**
 * What the concurrency rules (stale-after-relock, check-then-act, plain-access-race,
 * publication-order) share: which functions of a patch to look at, where an event sits in the
 * statement tree, who calls a function with which locks held, and the "new with this patch" test.
 * Not a rule: a helper directory, like ../uapi/.
 */
import type { Event } from '../../cmodel/events.js';
import type { FunctionModel, Stmt } from '../../cmodel/functions.js';
import { exploreOf } from '../../cmodel/context.js';
import { allFunctions, functionKey, resolveCall, summaryOf, type TreeModel } from '../../cmodel/model.js';
import type { ChangedFile, RuleContext } from '../types.js';

/** The added lines of each C file of the patch, by post-image path. */
export function addedByPath(files: readonly ChangedFile[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const f of files) if (f.status !== 'deleted' && /\.[ch]$/.test(f.path) && f.added.size > 0) out.set(f.path, f.added);
  return out;
}

/** Whether `fn` has an added line inside it. */
export function hasAddedLine(fn: FunctionModel, added: Map<string, Set<number>>): boolean {
  const set = added.get(fn.file);
  if (!set || set.size === 0) return false;
  for (const l of set) if (l >= fn.line && l <= fn.endLine) return true;
  return false;
}

/** Whether `line` of `file` is added by the patch. */
export function isAdded(added: Map<string, Set<number>>, file: string, line: number): boolean {
  return added.get(file)?.has(line) ?? false;
}

/**
 * Functions of the patched files worth analysing: those with an added line, and their direct
 * callers in the same files (a callee that now drops the caller's lock makes the caller's code
 * newly reachable by the problem).
 */
export function candidateFunctions(model: TreeModel, added: Map<string, Set<number>>): { fn: FunctionModel; changed: boolean }[] {
  const touched = new Set(model.touched);
  const fns = allFunctions(model).filter((f) => touched.has(f.file));
  const changed = new Set(fns.filter((f) => hasAddedLine(f, added)));
  const out: { fn: FunctionModel; changed: boolean }[] = [];
  for (const fn of fns) {
    if (changed.has(fn)) {
      out.push({ fn, changed: true });
      continue;
    }
    const callsChanged = fn.events.some((e) => e.kind === 'call' && !e.indirect && resolveCall(model, e, fn).some((t) => changed.has(t)));
    if (callsChanged) out.push({ fn, changed: false });
  }
  return out;
}

/** The function of the same name and file in the other model (the base), if any. */
export function counterpart(other: TreeModel | null, fn: FunctionModel, oldPath: string): FunctionModel | null {
  if (!other) return null;
  return other.functions.get(fn.name)?.find((f) => f.file === oldPath) ?? null;
}

/** One line of a source text, trimmed, with runs of blanks folded (a key that survives line shifts). */
export function lineKey(src: string | null, line: number): string {
  if (!src) return String(line);
  return (src.split('\n')[line - 1] ?? '').trim().replace(/\s+/g, ' ');
}

/** Lines of a file, split once per text. */
const splitCache = new WeakMap<object, string[]>();
export function linesOf(holder: { text: string }): string[] {
  let l = splitCache.get(holder);
  if (!l) splitCache.set(holder, (l = holder.text.split('\n')));
  return l;
}

/** A statement with where an event sits in it. */
export interface EventPlace {
  /** Innermost first: the statements that contain the event. */
  chain: Stmt[];
  /** The `if`/loop/switch whose condition holds the event, when it is in one. */
  inCondOf: Stmt | null;
}

const placeCache = new WeakMap<FunctionModel, Map<Event, EventPlace>>();

/** For each event of `fn`, the statements enclosing it (innermost first). */
export function placesOf(fn: FunctionModel): Map<Event, EventPlace> {
  let map = placeCache.get(fn);
  if (map) return map;
  const out = new Map<Event, EventPlace>();
  const visit = (stmts: Stmt[], chain: Stmt[]): void => {
    for (const s of stmts) {
      const here = [s, ...chain];
      const own = (events: Event[], inCond: boolean): void => {
        for (const e of events) out.set(e, { chain: here, inCondOf: inCond ? s : null });
      };
      switch (s.kind) {
        case 'expr':
        case 'decl':
        case 'unparsed':
        case 'return':
          own(s.events, false);
          break;
        case 'if':
          own(s.condEvents, true);
          visit(s.then, here);
          if (s.else) visit(s.else, here);
          break;
        case 'switch':
          own(s.condEvents, true);
          for (const c of s.cases) visit(c.body, here);
          break;
        case 'loop':
          own([...s.init, ...s.condEvents, ...s.update], true);
          visit(s.body, here);
          break;
        case 'scoped':
          own(s.header, false);
          visit(s.body, here);
          break;
        case 'block':
          visit(s.body, here);
          break;
        default:
          break;
      }
    }
  };
  visit(fn.body, []);
  map = out;
  placeCache.set(fn, map);
  return map;
}

/** All events of a statement list, nested ones included. */
export function eventsUnder(stmts: Stmt[]): Event[] {
  const out: Event[] = [];
  const visit = (list: Stmt[]): void => {
    for (const s of list) {
      switch (s.kind) {
        case 'expr':
        case 'decl':
        case 'unparsed':
        case 'return':
          out.push(...s.events);
          break;
        case 'if':
          out.push(...s.condEvents);
          visit(s.then);
          if (s.else) visit(s.else);
          break;
        case 'switch':
          out.push(...s.condEvents);
          for (const c of s.cases) visit(c.body);
          break;
        case 'loop':
          out.push(...s.init, ...s.condEvents);
          visit(s.body);
          out.push(...s.update);
          break;
        case 'scoped':
          out.push(...s.header);
          visit(s.body);
          break;
        case 'block':
          visit(s.body);
          break;
        default:
          break;
      }
    }
  };
  visit(stmts);
  return out;
}

/** Whether a statement list contains a statement of `kind` (at any depth). */
export function containsStmt(stmts: Stmt[], pred: (s: Stmt) => boolean): boolean {
  for (const s of stmts) {
    if (pred(s)) return true;
    const nested: Stmt[][] =
      s.kind === 'if' ? [s.then, ...(s.else ? [s.else] : [])]
        : s.kind === 'switch' ? s.cases.map((c) => c.body)
          : s.kind === 'loop' || s.kind === 'block' || s.kind === 'scoped' ? [s.body] : [];
    if (nested.some((b) => containsStmt(b, pred))) return true;
  }
  return false;
}

/** Whether a local or parameter of `fn` has a pointer type. */
export function isPointerVar(fn: FunctionModel, name: string): boolean {
  const v = [...fn.locals].reverse().find((l) => l.name === name) ?? fn.params.find((p) => p.name === name);
  return v !== undefined && v.type.includes('*');
}

/** Whether `name` is a local variable of `fn` (not a parameter or global). */
export function isLocal(fn: FunctionModel, name: string): boolean {
  return fn.locals.some((l) => l.name === name) && !fn.params.some((p) => p.name === name);
}

/** Whole-word test: `name` appears in `text` as a variable (not as a member after `->`/`.`). */
export function mentionsVar(text: string, name: string): boolean {
  return new RegExp(String.raw`(?<![\w>.$])${escapeRe(name)}(?!\w)`).test(text);
}

/** Whether `text` dereferences variable `name`: `name->x`, `*name`, `name[i]`. */
export function derefsVar(text: string, name: string): boolean {
  const n = escapeRe(name);
  return new RegExp(String.raw`(?<![\w>.$])${n}\s*(?:->|\[)|\*\s*\(?\s*${n}(?!\w)`).test(text);
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The base expression of a lock object: `iommu` for `iommu->lock`, `matrix_dev` for `matrix_dev->mdevs_lock`. */
export function lockBase(lock: string): string | null {
  const m = /^(?<base>[A-Za-z_]\w*)(?:->|\.)/.exec(lock.replace(/^\*/, '').replace(/\s+/g, ''));
  return m?.groups?.base ?? null;
}

/**
 * Function names of set-up and tear-down paths, where the object is not yet (or no longer)
 * reachable by other threads: probe/init/alloc/create and remove/release/free/destroy/exit.
 */
export const INIT_OR_TEARDOWN = /(?:^|_)(?:probe|init|setup|alloc|create|new|remove|release|free|destroy|exit|cleanup|teardown|uninit|fini|shutdown)(?:_|$)/;

/**
 * Ops members whose callbacks set up or tear down per-instance state while nothing else can use it:
 * the vfio core calls open_device on the first open and close_device after the last close (the
 * 6.1 vfio_pci_core_disable() says "Device closed, don't need mutex here").
 */
const SETUP_TEARDOWN_MEMBERS = new Set(['open_device', 'close_device', 'probe', 'remove', 'release', 'init', 'exit', 'shutdown']);

/**
 * Whether `fn` runs as a user of an open vfio device (bound in a `struct vfio_device_ops`, or reached
 * from such a callback): ordered after open_device and before close_device by the file's lifetime.
 */
export function isDeviceFdPath(model: TreeModel, callers: CallerLocks, fn: FunctionModel, depth = 0, seen = new Set<FunctionModel>()): boolean {
  if (seen.has(fn) || depth > 3) return false;
  seen.add(fn);
  if ([...model.ops.values()].some((list) => list.some((b) => b.fn === fn.name && b.structType === 'vfio_device_ops'))) return true;
  const sites = callers.callSites(fn);
  return sites.length > 0 && sites.every((s) => isDeviceFdPath(model, callers, s.caller, depth + 1, seen));
}

const setupCache = new WeakMap<TreeModel, Set<string>>();

/** Whether `fn` is a set-up or tear-down path: by name, or bound to such an ops member. */
export function isSetupOrTeardown(model: TreeModel, fn: FunctionModel): boolean {
  if (INIT_OR_TEARDOWN.test(fn.name)) return true;
  let bound = setupCache.get(model);
  if (!bound) {
    bound = new Set<string>();
    for (const [member, list] of model.ops) if (SETUP_TEARDOWN_MEMBERS.has(member)) for (const b of list) bound.add(b.fn);
    setupCache.set(model, bound);
  }
  return bound.has(fn.name);
}

/** Per function of a model: whether every call site in the model holds lock class `cls` (null: no known call site). */
/** One {@link CallerLocks} per model: several rules ask the same model, and its answers are memoised. */
const callerLocksByModel = new WeakMap<TreeModel, CallerLocks>();
export function callerLocksOf(model: TreeModel): CallerLocks {
  let c = callerLocksByModel.get(model);
  if (!c) {
    c = new CallerLocks(model);
    callerLocksByModel.set(model, c);
  }
  return c;
}

export class CallerLocks {
  private readonly sites = new Map<string, { caller: FunctionModel; event: Event }[]>();
  private readonly held = new Map<FunctionModel, Map<Event, { must: string[] }>>();

  constructor(private readonly model: TreeModel) {
    for (const fn of allFunctions(model)) {
      for (const ev of fn.events) {
        if (ev.kind !== 'call') continue;
        for (const t of resolveCall(model, ev, fn)) {
          const k = functionKey(t);
          const list = this.sites.get(k) ?? [];
          list.push({ caller: fn, event: ev });
          this.sites.set(k, list);
        }
      }
    }
  }

  /** Locks held at an event of `fn` on every path (from the model's exploration, cached). */
  mustAt(fn: FunctionModel, ev: Event): string[] {
    let m = this.held.get(fn);
    if (!m) {
      m = exploreOf(this.model, fn).heldAt;
      this.held.set(fn, m);
    }
    return m.get(ev)?.must ?? [];
  }

  /** Call sites of `fn` in the model. */
  callSites(fn: FunctionModel): { caller: FunctionModel; event: Event }[] {
    return this.sites.get(functionKey(fn)) ?? [];
  }

  /**
   * Lock classes held on entry to `fn` for sure: required by annotation or assertion, taken by the
   * framework before calling the ops member `fn` is bound to, or held at every known call site
   * (transitively, a few levels up). Call sites in set-up and tear-down paths do not count: the
   * object is private there, so they say nothing about the locking the shared object needs.
   */
  entryLocks(fn: FunctionModel): Set<string> {
    return this.entry(fn, 0) ?? new Set();
  }

  private readonly entryMemo = new Map<FunctionModel, Set<string> | null>();
  private readonly inProgress = new Set<FunctionModel>();

  /** null: reached only from set-up or tear-down code (or only through a cycle). */
  private entry(fn: FunctionModel, depth: number): Set<string> | null {
    if (this.entryMemo.has(fn)) return this.entryMemo.get(fn)!;
    if (this.inProgress.has(fn)) return null;
    const out = new Set<string>();
    const s = summaryOf(this.model, fn);
    for (const r of s?.requires ?? []) if (r.source !== 'callee') out.add(r.cls);
    for (const cls of frameworkLocks(this.model, fn)) out.add(cls);
    const sites = this.callSites(fn);
    if (sites.length === 0) return out;
    // Deep chains are not followed: such a caller says nothing (suppressing, never inventing, a finding).
    if (depth > 5) return null;
    this.inProgress.add(fn);
    let common: string[] | null = null;
    for (const site of sites) {
      if (INIT_OR_TEARDOWN.test(site.caller.name) || site.caller === fn) continue;
      const up = this.entry(site.caller, depth + 1);
      if (up === null) continue;
      const here = new Set<string>([...this.mustAt(site.caller, site.event), ...up]);
      common = common === null ? [...here] : common.filter((c) => here.has(c));
    }
    this.inProgress.delete(fn);
    const result = common === null ? (depth === 0 ? out : null) : new Set([...out, ...common]);
    if (depth === 0) this.entryMemo.set(fn, result);
    return result;
  }
}

/**
 * Locks a framework holds when it calls an ops member (facts of the 6.1 vfio core): open_device and
 * close_device run under the device set's lock (vfio_device_open / vfio_device_fops_release).
 */
const FRAMEWORK_ENTRY_LOCKS: Record<string, string[]> = {
  open_device: ['vfio_device_set.lock'],
  close_device: ['vfio_device_set.lock'],
};

/** The lock classes some framework holds around callbacks (a discipline by design, not a caller's accident). */
export const FRAMEWORK_CLASSES = new Set(Object.values(FRAMEWORK_ENTRY_LOCKS).flat());

function frameworkLocks(model: TreeModel, fn: FunctionModel): string[] {
  const out: string[] = [];
  for (const [member, locks] of Object.entries(FRAMEWORK_ENTRY_LOCKS)) {
    if (model.ops.get(member)?.some((b) => b.fn === fn.name)) out.push(...locks);
  }
  return out;
}

/**
 * Whether a lock class can only be taken by code of the subsystem: a member of a struct defined in
 * a .c file or an internal header (`struct vfio_group` in drivers/vfio/vfio.h), or a static global. Callers outside the model cannot hold it.
 */
function isPrivateLock(model: TreeModel, cls: string): boolean {
  const dot = cls.indexOf('.');
  if (dot < 0) return [...model.env.fileGlobals.values()].some((m) => m.has(cls));
  const tag = cls.slice(0, dot);
  // Defined in a .c file or a subsystem-internal header (drivers/vfio/vfio.h), not under include/.
  return [...model.files.values()].some((f) => !/(?:^|\/)include\//.test(f.path) && f.structs.some((s) => s.name === tag && s.fields.length > 0));
}

/**
 * Whether other threads can be running `fn` while the object is shared, and nobody outside the
 * model's view holds `lock` for it: an ops callback or a callback handed to an API, a function
 * reached from one, or an exported function when only the model's code can take the lock.
 */
export function hasConcurrentEntry(
  model: TreeModel, callers: CallerLocks, fn: FunctionModel, locks: string[],
  /** 'object': set-up/tear-down names mean the object accessed is private there (plain-access-race);
   *  'callback': any callback may run concurrently with the writer of another object (publication-order). */
  mode: 'object' | 'callback' = 'object', depth = 0, seen = new Set<FunctionModel>(),
): boolean {
  if (seen.has(fn) || depth > 3) return false;
  seen.add(fn);
  const bound = [...model.ops.values()].some((list) => list.some((b) => b.fn === fn.name));
  if (mode === 'callback' && bound) return true;
  if (isSetupOrTeardown(model, fn)) return false;
  // Bound in an ops structure or handed out as a callback: called by the framework, any time.
  if (bound) return true;
  const sites = callers.callSites(fn);
  if (sites.length === 0) {
    const passed = [...model.files.values()].some((f) => f.functions.some((g) => g.events.some((e) => e.kind === 'call' && e.args.some((a) => a.trim() === fn.name))));
    if (passed) return true;
    return !fn.isStatic && locks.length > 0 && locks.every((l) => isPrivateLock(model, l));
  }
  // Reached from somewhere that is not set-up or tear-down.
  return sites.some((s) => hasConcurrentEntry(model, callers, s.caller, locks, mode, depth + 1, seen));
}

/** Whether a statement list ends by leaving the function (return, goto to an unwind label). */
function exits(stmts: Stmt[] | null): boolean {
  const last = stmts?.[stmts.length - 1];
  if (!last) return false;
  if (last.kind === 'return' || last.kind === 'goto') return true;
  if (last.kind === 'block') return exits(last.body);
  return false;
}

const guardCache = new WeakMap<Stmt, { inside: Set<Event>; then: boolean; else: boolean }>();
function guardShape(s: Extract<Stmt, { kind: 'if' }>): { inside: Set<Event>; then: boolean; else: boolean } {
  let g = guardCache.get(s);
  if (!g) {
    g = { inside: new Set([...eventsUnder(s.then), ...eventsUnder(s.else ?? [])]), then: exits(s.then), else: exits(s.else) };
    guardCache.set(s, g);
  }
  return g;
}

/** Whether `ev`, reached after the if statement `s` on a path, depends on how `s` went. */
export function guardedBy(s: Extract<Stmt, { kind: 'if' }>, ev: Event): boolean {
  const g = guardShape(s);
  if (g.inside.has(ev)) return true;
  // After the if: only one way through it reaches here when the other branch leaves.
  return g.then || g.else;
}

/** Report helper type: everything but the context. */
export type ReportFn = RuleContext['report'];
