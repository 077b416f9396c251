import {
  exploreOf, findFunction, summaryOf, type Exploration, type ExitState, type FunctionModel, type HeldLock, type LockEvent, type PathIssue, type TreeModel,
} from '../cmodel/index.js';
import { className } from './locking/chains.js';
import { acquireHelper, exitKind, explainedByReturn, HELPER_NAME } from './locking/exits.js';
import { affectedFunctions, patchScope, type PatchScope } from './locking/scope.js';
import { defineRule } from './types.js';

/**
 * Classes the function holds on entry: `__must_hold`, `lockdep_assert_held`, or released on paths
 * where it never held them (a release helper; a drop-and-retake of the caller's lock). A release
 * that some paths reach holding the lock and others not is not the caller's: it is the bug.
 */
function callerOwned(model: TreeModel, fn: FunctionModel, ex: Exploration): Set<string> {
  const s = summaryOf(model, fn);
  const out = new Set(s?.requires.filter((r) => r.source !== 'callee').map((r) => r.cls) ?? []);
  for (const r of s?.releases ?? []) if (!ex.issues.some((i) => i.kind === 'release-unheld' && i.cls === r.cls && heldFromAbove(ex, i).length > 0)) out.add(r.cls);
  return out;
}

/**
 * The acquires, earlier in the function, that reach a release some path makes without holding the
 * lock. One that is only reached again through a loop's back edge (`up_write(); ...; down_write();`
 * per element) is the caller's lock dropped and retaken, not an unbalanced unlock.
 */
function heldFromAbove(ex: Exploration, issue: PathIssue): HeldLock[] {
  return ex.heldAt.get(issue.event)?.may.filter((h) => h.cls === issue.cls && h.line < issue.line) ?? [];
}

interface Old {
  heldAtExit: Set<string>;
  issues: Set<string>;
}

function oldFacts(scope: PatchScope, fn: FunctionModel): Old | null {
  const b = scope.beforeOf(fn);
  if (!b || !scope.before) return null;
  const ex = exploreOf(scope.before, b);
  // A lock the old function received from its caller and gave back held is balanced there: it says
  // nothing about a new version that takes the lock itself and leaves it held on one path.
  const owned = callerOwned(scope.before, b, ex);
  return {
    heldAtExit: new Set(ex.exits.flatMap((e) => e.held.map((h) => h.cls)).filter((c) => !owned.has(c))),
    issues: new Set(ex.issues.map((i) => `${i.kind}|${i.cls}`)),
  };
}

function takenText(h: HeldLock): string {
  return h.via ? `${h.via}() at line ${h.line}` : `${h.api}() at line ${h.line}`;
}

export const lockImbalance = defineRule({
  id: 'lock-imbalance',
  meta: {
    severity: 'warning',
    category: 'lock-order',
    confidence: 'moderate',
    description:
      'A path through a function the patch changes returns with a lock held that other paths release, unlocks a lock it does not hold, or takes one twice',
    reviewers:
      'On the vfio_ap SET_KVM rework the reviewers found "one path that returns with matrix_dev->lock still held"; ' +
      'error paths added late in a series are where kvm@ reviewers most often ask for a goto to the unlock label.',
    falsePositives:
      'A helper that returns with the lock held by design but has a name, annotation and callers that do not say so; ' +
      'conditions the model cannot correlate (a lock taken under one flag and released under another that implies it); ' +
      'locking through function pointers the model does not follow.',
    messages: {
      leak: '{{locks}} {{are}} still held when {{fn}}() returns at line {{line}}, while other paths release {{them}}',
      unheld: '{{fn}}() releases {{lock}} at line {{line}} on a path that did not take it',
      double: '{{fn}}() takes {{lock}} again at line {{line}} while already holding it (taken at line {{first}}): self-deadlock',
    },
  },
  async check(ctx) {
    const scope = await patchScope(ctx);
    if (!scope) return;
    for (const fn of affectedFunctions(scope)) {
      const ex = exploreOf(scope.after, fn);
      const owned = callerOwned(scope.after, fn, ex);
      let old: Old | null | undefined;
      const before = (): Old | null => (old === undefined ? (old = oldFacts(scope, fn)) : old);
      leaks(scope, fn, ex, owned, before, ctx.report);
      for (const issue of ex.issues) {
        if (owned.has(issue.cls) || before()?.issues.has(`${issue.kind}|${issue.cls}`)) continue;
        const at = ex.heldAt.get(issue.event);
        if (issue.kind === 'release-unheld') {
          // Only a release that some paths reach holding the lock and others not is a bug; one that
          // no path reaches holding it releases the caller's lock (a release helper).
          const above = heldFromAbove(ex, issue);
          if (above.length === 0) continue;
          ctx.report({
            messageId: 'unheld', file: fn.file, line: issue.line, function: fn.name,
            data: { fn: fn.name, lock: className(issue.cls), line: issue.line },
            evidence: [`${className(issue.cls)} is held at line ${issue.line} on some paths and not on others`, ...above.map((h) => `taken by ${takenText(h)}`)],
            suggestion: 'jump to an error label placed before the unlock, or unlock only on the paths that locked',
          });
          continue;
        }
        const ev = issue.event;
        if (ev.kind !== 'lock' || /_nested$|nest_lock/.test(ev.api)) continue;
        const first = at?.may.find((h) => h.cls === issue.cls && h.lock === (ev as LockEvent).lock && !h.inLoop && !h.via);
        if (!first) continue;
        ctx.report({
          messageId: 'double', file: fn.file, line: issue.line, function: fn.name,
          data: { fn: fn.name, lock: className(issue.cls), line: issue.line, first: first.line },
          evidence: [`${ev.api}(&${ev.lock}) at line ${issue.line}; ${first.api}() of the same object at line ${first.line} is not released in between on some path`],
          suggestion: 'release the lock before taking it again, or drop the inner acquire',
        });
      }
    }
  },
});

function leaks(scope: PatchScope, fn: FunctionModel, ex: Exploration, owned: Set<string>, before: () => Old | null, report: Parameters<typeof lockImbalance.check>[0]['report']): void {
  // One finding per exit: a path leaving three helper-taken locks behind is one missing unlock call.
  const byExit = new Map<number, { exit: ExitState; locks: HeldLock[]; released: number[] }>();
  const classes = new Set(ex.exits.flatMap((e) => e.held.map((h) => h.cls)));
  for (const cls of classes) {
    // A path that took the lock twice is reported as that; its leftover at the exit follows from it.
    if (owned.has(cls) || ex.issues.some((i) => i.kind === 'double-acquire' && i.cls === cls)) continue;
    const held = ex.exits.filter((e) => e.held.some((h) => h.cls === cls));
    const free = ex.exits.filter((e) => !e.held.some((h) => h.cls === cls));
    if (free.length === 0) continue;
    if (explainedByReturn(held.map((e) => exitKind(fn, e)), free.map((e) => exitKind(fn, e)))) continue;
    if (before()?.heldAtExit.has(cls) || acquireHelper(scope.after, fn, cls)) continue;
    for (const e of held) {
      const h = e.held.find((x) => x.cls === cls)!;
      // Held because a callee's summary says so: only trust helpers that say it in their name.
      if (h.via && !HELPER_NAME.test(h.via)) continue;
      if (unseenRelease(scope.after, fn, h)) continue;
      const at = byExit.get(e.line) ?? { exit: e, locks: [], released: [] };
      if (!at.locks.some((x) => x.cls === cls)) at.locks.push(h);
      at.released = [...new Set([...at.released, ...free.map((f) => f.line)])].sort((a, b) => a - b);
      byExit.set(e.line, at);
    }
  }
  for (const [line, { exit, locks, released }] of byExit) {
    const groups = new Map<string, string[]>();
    for (const h of locks) groups.set(takenText(h), [...(groups.get(takenText(h)) ?? []), className(h.cls)]);
    const text = [...groups].map(([taken, names]) => `${names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0]} (taken by ${taken})`).join(', ');
    report({
      messageId: 'leak', file: fn.file, line, function: fn.name,
      data: { locks: text, are: locks.length > 1 ? 'are' : 'is', them: locks.length > 1 ? 'them' : 'it', fn: fn.name, line },
      evidence: [
        ...locks.map((h) => `${className(h.cls)} (${h.lock}) taken by ${takenText(h)}`),
        `still held at ${exit.returns !== null ? `the return of ${exit.returns}` : line >= fn.endLine ? 'the end of the function' : 'the `return;`'} on line ${line}`,
        `released on the paths returning at line${released.length > 1 ? 's' : ''} ${released.slice(0, 4).join(', ')}`,
      ],
      suggestion: 'unlock before returning (goto the function\'s unlock label)',
    });
  }
}

/**
 * Whether a call after the acquire may release the lock out of the model's sight: a callee with
 * no definition in the model whose name says it unlocks or puts (`mlx5vf_state_mutex_unlock(mvdev)`
 * defined in a file the model did not load), or that is handed the lock itself.
 */
function unseenRelease(model: TreeModel, fn: FunctionModel, h: HeldLock): boolean {
  return fn.events.some((e) => {
    if (e.kind !== 'call' || e.special || e.line < h.line || e.indirect) return false;
    if (findFunction(model, e.callee, fn.file)) return false;
    if (/unlock|release|put|drop|leave|exit|end|done|finish/i.test(e.callee)) return true;
    return e.args.some((a) => a.trim() === h.lock || a.trim() === `&${h.lock}`);
  });
}
