/**
 * What a path knows about conditions: a map from normalised condition text to its truth value,
 * with the little reasoning that kernel lock helpers need. `a && b` true means both are true;
 * `a && b` false with `a` true means `b` is false; `m->kvm` tested (either way) means `m` is not
 * NULL, because evaluating it dereferenced `m`. Without these, `if (m && m->kvm) unlock` in a
 * release helper would not pair with `if (m->kvm) lock` in the matching get helper.
 */
import { normaliseCondition, type Assumption } from './cfg.js';
import type { Event } from './events.js';

/** Condition text -> assumed truth. */
export type Assumptions = ReadonlyMap<string, boolean>;

/** The truth of a constant condition (`false` after substituting an argument), or null. */
export function constantTruth(cond: string): boolean | null {
  if (/^(?:0|false|NULL)$/.test(cond)) return false;
  if (/^(?:[1-9]\d*|true)$/.test(cond)) return true;
  return null;
}

/** Top-level `&&` operands of a condition, or null when it is not a conjunction. */
export function conjuncts(cond: string): string[] | null {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < cond.length; i++) {
    const c = cond[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && cond[i + 1] === '|' && depth === 0) return null;
    else if (c === '&' && cond[i + 1] === '&' && depth === 0) {
      parts.push(cond.slice(start, i).trim());
      start = i + 2;
      i++;
    }
  }
  if (parts.length === 0) return null;
  parts.push(cond.slice(start).trim());
  return parts;
}

/** Pointers a condition dereferences: `a->b->c` dereferences `a` and `a->b`. */
export function derefs(cond: string): string[] {
  if (!/^[\w.>$@:-]+$/.test(cond)) return [];
  const out: string[] = [];
  let at = cond.indexOf('->');
  while (at > 0) {
    out.push(cond.slice(0, at));
    at = cond.indexOf('->', at + 2);
  }
  return out;
}

function knownTrue(assume: Assumptions, text: string): boolean {
  const n = normaliseCondition(text, true);
  return assume.get(n.cond) === n.truth;
}

/**
 * Add an assumption and what follows from it. Returns null when it contradicts what is already
 * assumed (the path is infeasible), or the new map.
 */
export function assume(current: Assumptions, a: Assumption): Assumptions | null {
  let out: Map<string, boolean> | null = null;
  const queue: Assumption[] = [a];
  for (let guard = 0; queue.length && guard < 64; guard++) {
    const x = queue.pop()!;
    const item = normaliseCondition(x.cond, x.truth);
    const map: Assumptions = out ?? current;
    const constant = constantTruth(item.cond);
    if (constant !== null) {
      if (constant !== item.truth) return null;
      continue;
    }
    const prev = map.get(item.cond);
    if (prev === item.truth) continue;
    if (prev !== undefined) return null;
    out ??= new Map(current);
    out.set(item.cond, item.truth);
    for (const p of derefs(item.cond)) queue.push({ cond: p, truth: true });
    const parts = conjuncts(item.cond);
    if (parts && item.truth) for (const p of parts) queue.push({ cond: p, truth: true });
    // Every stored false conjunction must keep one operand that may be false.
    const known: Assumptions = out;
    for (const [k, t] of known) {
      if (t) continue;
      const ps = conjuncts(k);
      if (!ps) continue;
      const open = ps.filter((p) => !knownTrue(known, p));
      if (open.length === 0) return null;
      if (open.length === 1 && known.get(normaliseCondition(open[0]!, false).cond) === undefined) queue.push({ cond: open[0]!, truth: false });
    }
  }
  return out ?? current;
}

/** Forget assumptions that mention a name the event writes. */
export function invalidate(current: Assumptions, ev: Event): Assumptions {
  if (current.size === 0 || (ev.kind !== 'assign' && ev.kind !== 'store')) return current;
  const target = ev.target.replace(/\s+/g, '');
  const word = /^[\w.>-]+$/.test(target) ? new RegExp(String.raw`(?:^|[^\w>.])${target.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}(?![\w])`) : null;
  let out: Map<string, boolean> | null = null;
  for (const k of current.keys()) {
    if (word ? word.test(k.replace(/\s+/g, '')) : k.includes(target)) {
      out ??= new Map(current);
      out.delete(k);
    }
  }
  return out ?? current;
}

/**
 * After `v = q->mdev`, what is assumed about `q->mdev` holds for `v` too: copy those assumptions
 * with the alias substituted (the caller has already forgotten the old facts about `v`).
 */
export function alias(current: Assumptions, target: string, value: string): Assumptions {
  if (current.size === 0) return current;
  const t = target.replace(/\s+/g, '');
  const v = value.replace(/\s+/g, '');
  if (!/^[A-Za-z_]\w*$/.test(t) || !/^[A-Za-z_][\w.>-]*$/.test(v) || t === v) return current;
  const re = new RegExp(String.raw`(?<![\w>.])${v.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}(?![\w])`, 'g');
  let out: Map<string, boolean> | null = null;
  for (const [k, truth] of current) {
    if (!re.test(k)) continue;
    re.lastIndex = 0;
    out ??= new Map(current);
    out.set(k.replace(re, t), truth);
  }
  return out ?? current;
}
