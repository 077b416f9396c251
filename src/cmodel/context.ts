/**
 * The walk context of a function inside a tree model: lock classes from the type environment and
 * the effects of calls from callee summaries, rewritten into the caller's terms. Parameters become
 * arguments, a returned local becomes the caller's result variable (`$ret`), and a lock passed by
 * pointer (`lock_param(&g->lock)`) becomes the caller's class.
 */
import { lockApi } from './apis.js';
import { callResultKey, normaliseCondition, type Assumption } from './cfg.js';
import type { CallEvent, Event, LockEvent } from './events.js';
import type { FunctionModel, Stmt } from './functions.js';
import { classOfPath, lockClassOf } from './locks.js';
import { functionKey, resolveCall, type LockRef, type TreeModel } from './model.js';
import { explore, walkPaths, type CallOutcome, type Exploration, type PathResult, type WalkContext, type WalkOptions } from './paths.js';
import { textPath } from './textpath.js';

/** Whether a class id says the model could not name the lock's type. */
export function isUnknownClass(cls: string): boolean {
  return /^\*?(?:\?|param:|local:)/.test(cls);
}

/** Identifiers in a condition, without member names and without the `$ret` placeholder. */
export function words(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?<pre>->|\.|\$)?(?<w>[A-Za-z_]\w*)/g)) if (!m.groups!.pre) out.push(m.groups!.w!);
  return out;
}

/** The placeholder for a function's return value in its outcomes' conditions. */
export const RET = '$ret';

/** Rename whole-word `name` (not a member) to `to` in a condition. */
export function renameVar(cond: string, name: string, to: string): string {
  return cond.replace(new RegExp(String.raw`(?<![\w>.$])${name}\b`, 'g'), to);
}

/** Classify a return expression: error (`-EBUSY`, `ERR_PTR(...)`), success (`0`, none) or unknown. */
export function isErrorReturn(expr: string | null): boolean | null {
  if (expr === null) return false;
  const e = expr.trim();
  if (/^-\s*E[A-Z0-9]+$|^ERR_PTR\s*\(|^\(\s*-E[A-Z0-9]+\s*\)$/.test(e)) return true;
  if (/^(?:0|true|NULL)$/.test(e)) return e === 'NULL' ? null : false;
  return null;
}

/** Whether a return expression is zero or non-zero, when it is a literal or an error code. */
export function returnClass(expr: string | null): 'zero' | 'nonzero' | null {
  if (expr === null) return null;
  if (isErrorReturn(expr)) return 'nonzero';
  const e = expr.trim();
  if (/^(?:0|false|NULL)$/.test(e)) return 'zero';
  if (/^(?:[1-9]\d*|true)$/.test(e)) return 'nonzero';
  return null;
}

/** Replace the callee's parameter names in `text` by the caller's argument texts. */
function substitute(text: string, params: string[], args: string[]): string {
  return text.replace(/[A-Za-z_]\w*/g, (w, offset: number, all: string) => {
    // Member names after `->`/`.` are not parameters, nor is the `$ret` placeholder.
    if (offset > 0 && (all[offset - 1] === '.' || all[offset - 1] === '$' || all.slice(offset - 2, offset) === '->')) return w;
    const i = params.indexOf(w);
    if (i < 0 || args[i] === undefined) return w;
    const a = args[i]!.trim();
    return /^[\w.>&-]+$/.test(a) ? a : `(${a})`;
  });
}

/** The variable a call's result is stored in (`ret = f(x)`), looked up just after the call. */
function resultVar(fn: FunctionModel, call: CallEvent): string | null {
  const i = fn.events.indexOf(call);
  if (i < 0) return null;
  for (let j = i + 1; j < Math.min(fn.events.length, i + 4); j++) {
    const e = fn.events[j]!;
    if (e.kind === 'assign' && e.fromCall === call.callee) return /^\w+$/.test(e.target) ? e.target : null;
    if (e.kind === 'call' && !e.special) return null;
  }
  return null;
}

/** Statements nested directly in `s` (branches, bodies, cases). */
function children(s: Stmt): Stmt[][] {
  switch (s.kind) {
    case 'if':
      return s.else ? [s.then, s.else] : [s.then];
    case 'switch':
      return s.cases.map((c) => c.body);
    case 'loop':
    case 'block':
    case 'scoped':
      return [s.body];
    default:
      return [];
  }
}

function stmtEvents(s: Stmt): Event[] {
  switch (s.kind) {
    case 'expr':
    case 'decl':
    case 'unparsed':
    case 'return':
      return s.events;
    case 'if':
    case 'switch':
      return s.condEvents;
    case 'loop':
      return [...s.init, ...s.condEvents, ...s.update];
    case 'scoped':
      return s.header;
    default:
      return [];
  }
}

/**
 * The if-conditions of `fn` worth tracking on paths: those tested more than once (or also named by a
 * callee outcome), and those whose branches take or release a lock (callers may need them to pair a
 * lock helper with its release helper).
 */
function trackedConditions(fn: FunctionModel, hasLockEffect: (e: Event) => boolean, outcomeConds: string[]): Set<string> {
  const counts = new Map<string, number>(outcomeConds.map((c) => [c, 1]));
  const guarding = new Set<string>();
  const effect = (stmts: Stmt[]): boolean => stmts.some((s) => stmtEvents(s).some(hasLockEffect) || children(s).some(effect));
  const visit = (stmts: Stmt[]): void => {
    for (const s of stmts) {
      if (s.kind === 'if' && s.cond) {
        const c = normaliseCondition(s.cond, true).cond;
        counts.set(c, (counts.get(c) ?? 0) + 1);
        if (effect(s.then) || (s.else && effect(s.else))) guarding.add(c);
      }
      for (const body of children(s)) visit(body);
    }
  };
  visit(fn.body);
  for (const [c, n] of counts) if (n > 1) guarding.add(c);
  return guarding;
}

/** The walk context of `fn` under the model's current summaries. */
export function walkContext(model: TreeModel, fn: FunctionModel): WalkContext {
  const classes = new Map<LockEvent, string>();
  let tracked: Set<string> | null = null;
  const outcomeCache = new Map<CallEvent, CallOutcome[] | null>();
  const outcomesAt = (call: CallEvent): CallOutcome[] | null => {
    if (call.indirect || lockApi(call.callee)) return null;
    const [callee] = resolveCall(model, call, fn);
    const sum = callee ? model.summaries.get(functionKey(callee)) : undefined;
    if (!callee || !sum || sum.outcomes.every((o) => o.acquire.length === 0 && o.release.length === 0)) return null;
    const params = callee.params.map((p) => p.name);
    const rv = resultVar(fn, call);
    const splitsOnError = new Set(sum.outcomes.map((o) => o.error)).size > 1;
    return sum.outcomes.map((o): CallOutcome => {
      // `$ret` becomes the caller's result variable, or the call itself when it is tested directly.
      const assume: Assumption[] = [];
      for (const a of o.assume) {
        if (a.cond.includes(RET)) {
          if (rv) assume.push({ cond: substitute(a.cond.split(RET).join(rv), params, call.args), truth: a.truth });
          else if (a.cond === RET) assume.push({ cond: callResultKey(call.offset), truth: a.truth });
          continue;
        }
        assume.push({ cond: substitute(a.cond, params, call.args), truth: a.truth });
      }
      // Outcomes that differ by error return correlate with the caller's test of the result.
      if (rv && splitsOnError && o.error !== null) {
        assume.push({ cond: `${rv} < 0`, truth: o.error });
        if (o.error || o.acquire.length + o.release.length > 0) assume.push({ cond: rv, truth: o.error });
      }
      const rebind = (r: LockRef): LockRef => (isUnknownClass(r.cls) ? rebindRef(model, fn, callee, r, call.args) : r);
      return {
        assume,
        acquire: o.acquire.map(rebind).map((r) => ({ ...r, line: call.line, api: callee.name, via: callee.name })),
        release: o.release.map(rebind),
      };
    });
  };
  const ctx: WalkContext = {
    classOf(ev) {
      let c = classes.get(ev);
      if (c === undefined) {
        c = lockClassOf(ev, fn, model.env).id;
        classes.set(ev, c);
      }
      return c;
    },
    callOutcomes(call) {
      if (!outcomeCache.has(call)) outcomeCache.set(call, outcomesAt(call));
      return outcomeCache.get(call)!;
    },
    tracks(cond) {
      if (!tracked) {
        const outcomeConds: string[] = [];
        for (const e of fn.events) {
          if (e.kind !== 'call') continue;
          for (const o of ctx.callOutcomes?.(e) ?? []) for (const a of o.assume) outcomeConds.push(normaliseCondition(a.cond, a.truth).cond);
        }
        const hasLockEffect = (e: Event): boolean => {
          if (e.kind === 'lock') return e.op !== 'assert_held';
          if (e.kind !== 'call') return false;
          return (ctx.callOutcomes?.(e) ?? []).some((o) => o.acquire.length > 0 || o.release.length > 0);
        };
        tracked = trackedConditions(fn, hasLockEffect, outcomeConds);
      }
      return tracked.has(cond);
    },
  };
  return ctx;
}

/** A lock the callee names through a parameter (`mutex_lock(lock)`), renamed into the caller's terms. */
export function rebindRef(model: TreeModel, caller: FunctionModel, callee: FunctionModel, r: LockRef, args: string[]): LockRef {
  const p = textPath(r.lock);
  if (!p || p.root.kind !== 'var') return r;
  const rootName = p.root.name;
  const index = callee.params.findIndex((x) => x.name === rootName);
  const arg = index >= 0 ? args[index] : undefined;
  if (arg === undefined) return r;
  const ap = textPath(arg);
  if (!ap) return r;
  const steps = [...p.steps];
  // `mutex_lock(lock)` names `*lock`; the caller passed `&x->l`: the deref and the address-of cancel.
  if (steps[0]?.op === '*' && arg.trim().startsWith('&')) steps.shift();
  const lock = substitute(r.lock, callee.params.map((x) => x.name), args).replace(/^\*\(?&\s*([^)]*)\)?$/, '$1');
  const cls = classOfPath({ root: ap.root, steps: [...ap.steps, ...steps] }, caller, model.env).id;
  return { ...r, cls, lock };
}


/** Enumerate bounded paths of `fn` with callee summaries applied at call sites (the rules' path walker). */
export function pathsOf(model: TreeModel, fn: FunctionModel, opts?: WalkOptions): Generator<PathResult> {
  return walkPaths(fn, walkContext(model, fn), opts);
}

/** Distinct lock states of `fn` (held-at-event sets, exits, issues) with callee summaries applied. */
export function exploreOf(model: TreeModel, fn: FunctionModel): Exploration {
  let byFn = explorations.get(model);
  if (!byFn) explorations.set(model, (byFn = new WeakMap()));
  let ex = byFn.get(fn);
  if (!ex) byFn.set(fn, (ex = explore(fn, walkContext(model, fn))));
  return ex;
}

/** Explorations by model and function: several rules walk the same changed functions (results are read, never changed). */
const explorations = new WeakMap<TreeModel, WeakMap<FunctionModel, Exploration>>();
