/**
 * Telling a lock helper from a leak: how a function's exits differ when a lock is still held.
 * A helper returns the lock held on success and released (or never taken) on failure, or returns
 * a value that says which (trylock-style); a leak returns the same kind of value with and without
 * the lock, or leaves it held on an error path while another path releases it.
 */
import { annotationsOf } from '../../cmodel/summaries.js';
import { isErrorReturn, lockClass, resolveCall, summaryOf, type ExitState, type FunctionModel, type TreeModel } from '../../cmodel/index.js';

/** What an exit returns, coarsely. */
export type ExitKind = 'error' | 'zero' | 'nonzero' | 'void' | `value:${string}`;

export function exitKind(fn: FunctionModel, exit: ExitState): ExitKind {
  const expr = exit.returns?.trim() ?? null;
  if (expr === null || expr === '') return 'void';
  if (isErrorReturn(expr)) return 'error';
  if (/^(?:0|false|NULL)$/.test(expr)) return 'zero';
  if (/^(?:[1-9]\d*|true)$/.test(expr)) return 'nonzero';
  // `return ret` after `if (ret)`: the path knows whether the value is zero.
  if (/^[A-Za-z_]\w*$/.test(expr)) {
    const truth = exit.assume.find((a) => a.cond === expr || a.cond === `${expr} < 0`)?.truth;
    const intLike = /\b(?:int|long|ssize_t)\b/.test(fn.returnType) && !fn.returnType.includes('*');
    if (truth === true) return intLike ? 'error' : 'nonzero';
    if (truth === false && exit.assume.some((a) => a.cond === expr)) return 'zero';
  }
  return `value:${expr.replace(/\s+/g, ' ')}`;
}

/** Names that say "returns with a lock held" (get_update_locks_for_mdev, vfio_group_lock, ...). */
export const HELPER_NAME = /lock|(?:^|_)(?:acquire|begin|enter|grab|hold|start)(?:_|$)/i;

/**
 * Whether `fn` is meant to return with `cls` held: by name, by `__acquires`, or because a caller
 * releases `cls` after calling it.
 */
export function acquireHelper(model: TreeModel, fn: FunctionModel, cls: string): boolean {
  if (HELPER_NAME.test(fn.name)) return true;
  if (annotationsOf(model, fn).some((a) => a.kind === 'acquires')) return true;
  for (const defs of model.functions.values()) {
    for (const g of defs) {
      if (g === fn) continue;
      const calls = g.events.filter((e) => e.kind === 'call' && !e.special && resolveCall(model, e, g).includes(fn));
      if (calls.length === 0) continue;
      const first = Math.min(...calls.map((c) => c.offset));
      const releases = g.events.some((e) => {
        if (e.offset <= first) return false;
        if (e.kind === 'lock' && e.op === 'release') return lockClass(model, g, e) === cls;
        if (e.kind !== 'call' || e.special) return false;
        return resolveCall(model, e, g).some((t) => summaryOf(model, t)?.releases.some((r) => r.cls === cls));
      });
      if (releases) return true;
    }
  }
  return false;
}

/**
 * Whether the exits holding a lock are told apart from those that do not by their return value,
 * as a helper's are: none of them is an error return, and no kind of value is returned both ways.
 */
export function explainedByReturn(held: ExitKind[], free: ExitKind[]): boolean {
  if (held.includes('error')) return false;
  return !held.some((k) => free.includes(k));
}
