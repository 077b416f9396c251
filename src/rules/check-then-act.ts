import { pathsOf } from '../cmodel/context.js';
import type { Event } from '../cmodel/events.js';
import type { FunctionModel, Stmt } from '../cmodel/functions.js';
import { fieldClassOf } from '../cmodel/locks.js';
import { resolveCall, summaryOf, type TreeModel } from '../cmodel/model.js';
import type { HeldLock } from '../cmodel/paths.js';
import {
  addedByPath, callerLocksOf, candidateFunctions, counterpart, guardedBy, isSetupOrTeardown, isAdded, lineKey, mentionsVar, placesOf,
} from './race/common.js';
import { FieldFacts, isPerCallType, rootVar } from './race/fields.js';
import { defineRule } from './types.js';

/** A decision taken under a lock: a condition, or a local that a later condition tests. */
interface Decision {
  /** The lock entry held when deciding (its identity is the acquisition). */
  lock: HeldLock;
  /** Every lock entry held when deciding. */
  heldThen: readonly HeldLock[];
  line: number;
  /** Field classes the decision read (directly, or inside the called predicate). */
  classes: Set<string>;
  /** Root variables of the objects read (`p` of `p->busy`), or the call's arguments. */
  roots: Set<string>;
  /** The predicate called, when the decision is a call result. */
  callee: string | null;
  /** The if statement deciding, or the local holding the decision. */
  stmt: Extract<Stmt, { kind: 'if' }> | null;
  local: string | null;
}

interface Found {
  key: string;
  decision: Decision;
  release: number;
  action: Event & { kind: 'store' };
  cls: string;
  guard: number;
}

/** Lock entries a path still holds that were held at the decision (they may be what serialises). */
function stillHeldOther(held: readonly HeldLock[], d: Decision): boolean {
  return d.heldThen.some((h) => h !== d.lock && held.includes(h));
}

/** The decisions an event makes, with the locks held at it. */
function decisionsAt(model: TreeModel, fn: FunctionModel, ev: Event, held: readonly HeldLock[], stmtEvents: Event[]): Decision[] {
  const locks = held.filter((h) => h.flavor !== 'rcu' && h.flavor !== 'srcu');
  if (locks.length === 0) return [];
  const place = placesOf(fn).get(ev);
  const ifStmt = place?.inCondOf?.kind === 'if' ? place.inCondOf : null;
  const make = (classes: Set<string>, roots: Set<string>, callee: string | null, local: string | null): Decision[] =>
    locks.map((lock) => ({ lock, heldThen: held, line: ev.line, classes, roots, callee, stmt: local ? null : ifStmt, local }));
  if (ifStmt) {
    if (ev.kind === 'load') {
      const cls = fieldClassOf(ev.path, fn, model.env);
      const root = rootVar(ev);
      if (cls && root) return make(new Set([cls]), new Set([root]), null, null);
    }
    if (ev.kind === 'call' && !ev.special && !ev.indirect) {
      const callee = resolveCall(model, ev, fn)[0];
      const read = callee ? summaryOf(model, callee)?.fieldsRead ?? [] : [];
      const roots = new Set(ev.args.map((a) => a.trim().replace(/^&/, '')).filter((a) => /^[A-Za-z_]\w*$/.test(a)));
      if (read.length && roots.size) return make(new Set(read), roots, ev.callee, null);
    }
    return [];
  }
  // `busy = p->in_use;` / `ret = predicate(p);` under the lock: the local carries the decision.
  if (ev.kind === 'assign' && /^[A-Za-z_]\w*$/.test(ev.target.trim()) && fn.locals.some((l) => l.name === ev.target.trim() && !l.type.includes('*'))) {
    const before = stmtEvents.slice(0, stmtEvents.indexOf(ev));
    const loads = before.filter((e): e is Event & { kind: 'load' } => e.kind === 'load');
    const classes = new Set<string>();
    const roots = new Set<string>();
    for (const l of loads) {
      const cls = fieldClassOf(l.path, fn, model.env);
      const root = rootVar(l);
      if (cls && root) {
        classes.add(cls);
        roots.add(root);
      }
    }
    let callee: string | null = null;
    if (ev.fromCall) {
      const call = [...before].reverse().find((e): e is Event & { kind: 'call' } => e.kind === 'call' && e.callee === ev.fromCall);
      const target = call && !call.indirect ? resolveCall(model, call, fn)[0] : undefined;
      const read = target ? summaryOf(model, target)?.fieldsRead ?? [] : [];
      if (call && read.length) {
        callee = call.callee;
        for (const c of read) classes.add(c);
        for (const a of call.args) if (/^&?[A-Za-z_]\w*$/.test(a.trim())) roots.add(a.trim().replace(/^&/, ''));
      }
    }
    if (classes.size) return make(classes, roots, callee, ev.target.trim());
  }
  return [];
}

/** Check-then-act sequences of one function, over the paths the walker enumerates. */
export function findCheckThenAct(model: TreeModel, fn: FunctionModel, facts: FieldFacts, src: string | null): Found[] {
  const out = new Map<string, Found>();
  const places = placesOf(fn);
  const stmtEventsOf = (ev: Event): Event[] => {
    const s = places.get(ev)?.chain[0];
    return s && (s.kind === 'expr' || s.kind === 'decl') ? s.events : [];
  };
  for (const path of pathsOf(model, fn, { maxPaths: 384 })) {
    let decisions: Decision[] = [];
    for (const step of path.steps) {
      const ev = step.event;
      if (ev.kind === 'store') {
        const cls = fieldClassOf(ev.path, fn, model.env);
        const root = rootVar(ev);
        if (cls && root) {
          for (const d of decisions) {
            // The lock must be dropped, and not taken again, since the decision.
            if (step.held.includes(d.lock) || step.held.some((h) => h.cls === d.lock.cls)) continue;
            if (stillHeldOther(step.held, d)) continue;
            if (!d.roots.has(root)) continue;
            if (!sameState(facts, d, cls)) continue;
            const guard = d.stmt ?? localGuard(fn, d, ev);
            if (!guard || !guardedBy(guard, ev)) continue;
            const release = releaseLine(path.steps, d, step);
            if (release === null) continue;
            const key = `${fn.name}|${cls}|${lineKey(src, ev.line)}|${lineKey(src, d.line)}`;
            if (!out.has(key)) out.set(key, { key, decision: d, release, action: ev, cls, guard: guard.line });
          }
        }
      }
      decisions = [...decisions, ...decisionsAt(model, fn, ev, step.held, stmtEventsOf(ev))];
      // A local reassigned: its old decision no longer speaks for it.
      if (ev.kind === 'assign') decisions = decisions.filter((d) => !(d.local === ev.target.trim() && d.line !== ev.line));
    }
  }
  return [...out.values()];
}

/**
 * The if statement testing a decision kept in a local, between the decision and the action in
 * source order (`if (busy) return -EBUSY;`): conditions without calls or loads leave no event on
 * a path, so this is read from the statement tree.
 */
function localGuard(fn: FunctionModel, d: Decision, action: Event): Extract<Stmt, { kind: 'if' }> | null {
  let found: Extract<Stmt, { kind: 'if' }> | null = null;
  const visit = (stmts: Stmt[]): void => {
    for (const s of stmts) {
      if (found) return;
      if (s.kind === 'if' && s.line > d.line && s.line <= action.line && mentionsVar(s.cond, d.local!) && guardedBy(s, action)) {
        found = s;
        return;
      }
      const nested: Stmt[][] =
        s.kind === 'if' ? [s.then, ...(s.else ? [s.else] : [])]
          : s.kind === 'switch' ? s.cases.map((c) => c.body)
            : s.kind === 'loop' || s.kind === 'block' || s.kind === 'scoped' ? [s.body] : [];
      for (const b of nested) visit(b);
    }
  };
  if (d.local) visit(fn.body);
  return found;
}

/** The action's field is the checked state, or state of the same struct that the lock guards elsewhere. */
function sameState(facts: FieldFacts, d: Decision, cls: string): boolean {
  if (d.classes.has(cls)) return true;
  if (d.callee) return false;
  const tag = cls.slice(0, cls.indexOf('.'));
  if (![...d.classes].some((c) => c.startsWith(`${tag}.`))) return false;
  return facts.accesses(cls).some((a) => (a.kind === 'store' || a.kind === 'marked-store') && a.ownHeld.has(d.lock.cls));
}

/** The line of the event that dropped the decision's lock (the last step holding it). */
function releaseLine(steps: { event: Event; held: readonly HeldLock[] }[], d: Decision, at: { event: Event }): number | null {
  let line: number | null = null;
  for (const s of steps) {
    if (s.event === at.event) break;
    if (s.held.includes(d.lock)) line = s.event.line;
  }
  return line;
}

export const checkThenAct = defineRule({
  id: 'check-then-act',
  meta: {
    severity: 'warning',
    category: 'race-toctou',
    confidence: 'moderate',
    description:
      'A decision is taken under a lock (a field test, or a predicate\'s result kept in a local), the lock is dropped, and the object is then changed relying on that decision',
    reviewers:
      'Halil Pasic on the vfio_ap in-use callback: the check "releases matrix_dev->lock and returns 0", an assignment ' +
      '"takes matrix_dev->lock, does the assign and releases" in between, and the queues get "stolen" while in use. ' +
      'Reviewers ask for the test and the update under one critical section, or for a re-check after retaking the lock.',
    falsePositives:
      'Something else serialises the two (a lock every caller holds that the model cannot see, a single-threaded context ' +
      'such as probe), or the change is idempotent and safe whatever the state became.',
    messages: {
      act:
        '{{field}} is changed here relying on a decision taken under {{lock}} at line {{decided}}, but {{lock}} was ' +
        'released at line {{release}}: the state may have changed in between',
    },
  },
  async check(ctx) {
    const added = addedByPath(ctx.files);
    if (added.size === 0) return;
    const after = await ctx.model('after');
    if (!after) return;
    const before = await ctx.model('before');
    const oldPath = new Map(ctx.files.map((f) => [f.path, f.oldPath ?? f.path]));
    const callers = callerLocksOf(after);
    const facts = new FieldFacts(after, callers, new Map());
    const baseFacts = before ? new FieldFacts(before, callerLocksOf(before), new Map()) : null;
    for (const { fn, changed } of candidateFunctions(after, added)) {
      if (!changed || isSetupOrTeardown(after, fn)) continue;
      // A lock every caller holds may serialise the whole sequence.
      if ([...callers.entryLocks(fn)].some((c) => c !== 'rcu')) continue;
      const found = findCheckThenAct(after, fn, facts, ctx.after(fn.file));
      if (found.length === 0) continue;
      const old = oldPath.get(fn.file) ?? fn.file;
      const base = counterpart(before, fn, old);
      const oldKeys = new Set(base && baseFacts ? findCheckThenAct(before!, base, baseFacts, ctx.before(old)).map((f) => f.key) : []);
      // One finding per decision and release: the first action, the others as evidence.
      const groups = new Map<string, Found[]>();
      for (const f of found) {
        if (oldKeys.has(f.key) || isPerCallType(after, f.cls.slice(0, f.cls.indexOf('.')))) continue;
        const k = String(f.release);
        groups.set(k, [...(groups.get(k) ?? []), f]);
      }
      for (const all of groups.values()) {
        // The decision that read the very field written, else the last one taken before the unlock.
        const best = all.find((x) => x.decision.classes.has(x.cls)) ?? [...all].sort((a, b) => b.decision.line - a.decision.line)[0]!;
        const list = all.filter((x) => x.decision.line === best.decision.line).sort((a, b) => a.action.line - b.action.line);
        const f = list[0]!;
        const lock = f.decision.lock.lock;
        ctx.report({
          messageId: 'act',
          file: fn.file,
          line: f.action.line,
          function: fn.name,
          data: { field: f.cls.replace('.', '->'), lock, decided: f.decision.line, release: f.release },
          evidence: [
            `line ${f.decision.line}: ${f.decision.callee ? `${f.decision.callee}() decides` : `${[...f.decision.classes].map((c) => c.replace('.', '->')).join(', ')} read`} with ${lock} held${f.decision.local ? ` (kept in ${f.decision.local})` : ''}`,
            `line ${f.release}: ${lock} released`,
            `line ${f.guard}: the branch taken depends on that decision`,
            ...[...new Map(list.map((a) => [a.action.line, a])).values()].map((a) => `line ${a.action.line}: ${a.action.target} written without ${lock}${isAdded(added, fn.file, a.action.line) ? '' : ' (made reachable by this patch)'}`),
          ],
          suggestion: `keep ${lock} held from the check to the update, or re-check under the lock before acting`,
        });
      }
    }
  },
});
