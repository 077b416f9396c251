/**
 * The tree model: file models for a set of files, the merged type environment, and the lookups
 * rules need (which function a call reaches, directly or through an ops structure; which lock
 * class an event names). Summaries are attached by `buildModel`.
 */
import type { Assumption } from './cfg.js';
import type { FileModel, OpsBinding } from './declarations.js';
import type { CallEvent, LockEvent } from './events.js';
import type { FunctionModel } from './functions.js';
import { classOfPath, lockClassOf, type TypeEnv } from './locks.js';
import type { HeldLock } from './paths.js';
import type { SummaryStats } from './summaries.js';

/** A lock named by class and as written, with its kind. */
export interface LockRef {
  cls: string;
  lock: string;
  flavor: LockEvent['flavor'];
  mode: LockEvent['mode'];
}

/** One distinct net lock effect of a function, and the conditions (on its parameters) under which it happens. */
export interface LockOutcome {
  assume: Assumption[];
  /** Held on return but not on entry. */
  acquire: LockRef[];
  /** Held on entry (the caller's) and released inside. */
  release: LockRef[];
  /** Whether this outcome returns an error code (`-E...`, `ERR_PTR`), when the model can tell. */
  error: boolean | null;
  /** Whether it returns zero (`0`, `false`, `NULL`) or non-zero (`1`, `true`, an error code), when known. */
  returns: 'zero' | 'nonzero' | null;
}

/** An acquisition somewhere in a function or below it, with the call chain that reaches it. */
export interface LockUse {
  cls: string;
  lock: string;
  flavor: LockEvent['flavor'];
  mode: LockEvent['mode'];
  line: number;
  /** Callees from this function down to the function that takes the lock; empty when taken here. */
  via: string[];
  trylock: boolean;
}

/** A lock-order dependency: `inner` taken while `outer` held. */
export interface OrderEdge {
  outer: string;
  inner: string;
  /** Line of the inner acquire (or of the call leading to it) in this function. */
  line: number;
  outerLine: number;
  via: string[];
  trylock: boolean;
}

/** What one function does, as far as callers and rules need to know. */
export interface FunctionSummary {
  key: string;
  name: string;
  file: string;
  line: number;
  outcomes: LockOutcome[];
  /** Union over outcomes: locks held on return that the function took. */
  acquires: LockRef[];
  /** Union over outcomes: the caller's locks released inside. */
  releases: LockRef[];
  takes: LockUse[];
  requires: { cls: string; lock: string; line: number; source: 'annotation' | 'assert' | 'callee'; via: string[] }[];
  orderEdges: OrderEdge[];
  callees: string[];
  indirect: { member: string; line: number; candidates: string[] }[];
  fieldsRead: string[];
  fieldsWritten: string[];
  accesses: { cls: string; kind: 'load' | 'store' | 'marked-load' | 'marked-store' | 'atomic'; line: number; held: string[] }[];
  sleeps: { api: string; line: number; via: string[] } | null;
  registrations: { api: string; line: number }[];
  /** The state walk hit a bound; effects may be incomplete. */
  truncated: boolean;
}

/** Files, functions, declarations and summaries of one tree (base or patched). */
export interface TreeModel {
  files: Map<string, FileModel>;
  /** Definitions by name; several when static functions in different files share one. */
  functions: Map<string, FunctionModel[]>;
  env: TypeEnv;
  /** Ops member name -> the functions bound to it in initialisers or by assignment. */
  ops: Map<string, (OpsBinding & { file: string })[]>;
  /** Summaries by {@link functionKey}. */
  summaries: Map<string, FunctionSummary>;
  /** The files asked for. */
  touched: string[];
  /** Files pulled in for context: headers and callee-defining siblings. */
  context: string[];
  /** How the summaries were made (computed or reused), set by `computeSummaries`. */
  stats?: SummaryStats;
}

/** The key of a function in {@link TreeModel.summaries}: `file:name`. */
export function functionKey(fn: Pick<FunctionModel, 'file' | 'name'>): string {
  return `${fn.file}:${fn.name}`;
}

/** The definition a direct call to `name` from `fromFile` reaches: same-file first, then a non-static one. */
export function findFunction(model: TreeModel, name: string, fromFile?: string): FunctionModel | null {
  const defs = model.functions.get(name);
  if (!defs?.length) return null;
  return defs.find((d) => d.file === fromFile) ?? defs.find((d) => !d.isStatic) ?? (defs.length === 1 ? defs[0]! : null);
}

/**
 * The functions a call may reach. Direct calls resolve by name; calls through a member
 * (`ap_drv->in_use(...)`) resolve to every function bound to that member, narrowed to bindings of
 * the base's struct type when both are known.
 */
export function resolveCall(model: TreeModel, call: CallEvent, from: FunctionModel): FunctionModel[] {
  // Summaries, rules and the simulator resolve the same calls of a model many times. Keyed by the
  // model's function table, which views of one model (`{ ...model, env }`) share; an event belongs
  // to one function. The answer is shared: callers must not change it.
  let memo = resolved.get(model.functions);
  if (!memo) {
    memo = new WeakMap();
    resolved.set(model.functions, memo);
  }
  let out = memo.get(call);
  if (!out) {
    out = resolveUncached(model, call, from);
    memo.set(call, out);
  }
  return out;
}
const resolved = new WeakMap<Map<string, FunctionModel[]>, WeakMap<CallEvent, FunctionModel[]>>();

function resolveUncached(model: TreeModel, call: CallEvent, from: FunctionModel): FunctionModel[] {
  if (!call.indirect) {
    const f = findFunction(model, call.callee, from.file);
    return f ? [f] : [];
  }
  const bindings = model.ops.get(call.indirect.member) ?? [];
  if (bindings.length === 0) return [];
  const baseCls = call.indirect.path ? classOfPath({ ...call.indirect.path, steps: [...call.indirect.path.steps, { op: '->', member: call.indirect.member }] }, from, model.env) : null;
  const baseTag = baseCls?.known ? baseCls.id.slice(0, baseCls.id.lastIndexOf('.')) : null;
  const narrowed = baseTag ? bindings.filter((b) => b.structType === null || b.structType === baseTag) : bindings;
  const out: FunctionModel[] = [];
  for (const b of narrowed.length ? narrowed : bindings) {
    const f = findFunction(model, b.fn, b.file);
    if (f && !out.includes(f)) out.push(f);
  }
  return out;
}

/** The lock class id of a lock event in `fn`. */
export function lockClass(model: TreeModel, fn: FunctionModel, ev: LockEvent): string {
  return lockClassOf(ev, fn, model.env).id;
}

/** A held lock as a {@link LockRef}. */
export function refOf(h: HeldLock | LockRef): LockRef {
  return { cls: h.cls, lock: h.lock, flavor: h.flavor, mode: h.mode };
}

/** The summary of a function, if the model has one. */
export function summaryOf(model: TreeModel, fn: Pick<FunctionModel, 'file' | 'name'>): FunctionSummary | undefined {
  return model.summaries.get(functionKey(fn));
}

/** All function definitions of the model. */
export function allFunctions(model: TreeModel): FunctionModel[] {
  // Every rule walks every function of a model: one list per file table (views of one model share
  // it; a table that grew is listed again). Callers must not change the list.
  const hit = functionLists.get(model.files);
  if (hit && hit.size === model.files.size) return hit.list;
  const list = [...model.files.values()].flatMap((f) => f.functions);
  functionLists.set(model.files, { size: model.files.size, list });
  return list;
}
const functionLists = new WeakMap<Map<string, unknown>, { size: number; list: FunctionModel[] }>();
