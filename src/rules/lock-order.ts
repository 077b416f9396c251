import { findFunction, summaryOf, type FunctionModel, type TreeModel } from '../cmodel/index.js';
import { acquireChain, blockingEdges, className, type ChainStep, type EdgeAt } from './locking/chains.js';
import { patchScope, type PatchScope } from './locking/scope.js';
import { defineRule } from './types.js';

/** Whether the before model already had this edge in the same function. */
function existedBefore(scope: PatchScope, before: Map<string, EdgeAt[]>, e: EdgeAt): boolean {
  const b = scope.beforeOf(e.fn);
  if (!b) return false;
  return (before.get(`${e.outer}>${e.inner}`) ?? []).some((x) => x.fn === b);
}

/** Where the outer lock of an edge is taken in its function: the acquire, or the helper call. */
function outerText(e: EdgeAt): string {
  const at = e.fn.events.find((ev) => ev.line === e.outerLine && ((ev.kind === 'lock' && ev.op === 'acquire') || (ev.kind === 'call' && !ev.special)));
  const how = at?.kind === 'call' ? ` via ${at.callee}()` : '';
  return `${e.fn.name}() takes ${className(e.outer)} at ${e.fn.file}:${e.outerLine}${how}`;
}

/** A callee as the chain reaches it: `demo_resource_in_use()`, or `->in_use() = demo_resource_in_use()` through ops. */
function hopName(caller: FunctionModel, line: number, callee: string): string {
  const ind = caller.events.find((ev) => ev.kind === 'call' && ev.line === line && ev.indirect !== null && ev.callee !== callee);
  return ind?.kind === 'call' && ind.indirect ? `->${ind.indirect.member}() = ${callee}()` : `${callee}()`;
}

function edgeText(model: TreeModel, e: EdgeAt): { steps: ChainStep[]; text: string } {
  const { steps, fns } = acquireChain(model, e.fn, e.line, e.via, e.inner);
  const last = steps[steps.length - 1]!;
  const tail = steps.length > 1
    ? `, then at line ${e.line} calls ${steps.slice(1).map((s, i) => (fns[i] ? hopName(fns[i]!, steps[i]!.line, s.fn) : `${s.fn}()`)).join(' → ')}, which takes ${className(e.inner)} at ${last.file}:${last.line}`
    : `, then ${className(e.inner)} at line ${e.line}`;
  return { steps, text: `${outerText(e)}${tail}` };
}

/**
 * The added line a new edge rests on, and its function: the inner acquire (or the call leading to
 * it), the outer acquire, or an acquire the patch added inside a helper on the chain; failing
 * those, the inner line of a function the patch touches.
 */
function locate(scope: PatchScope, e: EdgeAt, steps: ChainStep[]): { line: number; fn: string; file: string } | null {
  const { fn } = e;
  if (scope.added(fn.file, e.line)) return { line: e.line, fn: fn.name, file: fn.file };
  if (scope.added(fn.file, e.outerLine)) return { line: e.outerLine, fn: fn.name, file: fn.file };
  for (const s of steps.slice(1)) if (scope.added(s.file, s.line)) return { line: s.line, fn: s.fn, file: s.file };
  if (scope.touches(fn)) return { line: e.line, fn: fn.name, file: fn.file };
  // A helper the patch changed so that it now takes the inner lock: the caller's edge is new.
  for (const s of steps.slice(1)) {
    const callee = findFunction(scope.after, s.fn, s.file);
    if (callee && scope.inChangedFile(callee) && scope.touches(callee) && scope.inChangedFile(fn)) return { line: e.line, fn: fn.name, file: fn.file };
  }
  return null;
}

interface Cycle {
  e: EdgeAt;
  at: { line: number; fn: string; file: string };
  mine: string;
  reverse: EdgeAt;
  all: EdgeAt[];
}

/** Which cycle of a line leads the finding: the reverse path in a changed file, then the shortest. */
function rank(scope: PatchScope, c: Cycle): number {
  return (scope.inChangedFile(c.reverse.fn) ? 0 : 100) + c.reverse.via.length;
}

/** The reverse edge to show: in a changed file first, then the shortest chain. */
function pickReverse(scope: PatchScope, list: EdgeAt[]): EdgeAt {
  return [...list].sort((a, b) => Number(scope.inChangedFile(b.fn)) - Number(scope.inChangedFile(a.fn)) || a.via.length - b.via.length || a.line - b.line)[0]!;
}

export const lockOrder = defineRule({
  id: 'lock-order',
  meta: {
    severity: 'error',
    category: 'lock-order',
    confidence: 'moderate',
    description:
      'A patch makes a function take lock B while holding lock A (directly, through helpers or ops callbacks) where the tree takes A while holding B: a new ABBA deadlock',
    reviewers:
      'Halil Pasic on the vfio_ap in-use callback: "apmask_store() takes ap_perms_mutex, assign_adapter_store() takes ' +
      'matrix_dev->lock, ... BANG!". The kvm-vfio group_lock and SET_KVM threads were the same shape: a release path ' +
      'moved under kvm->lock reversed the order drivers use in open_device. Lockdep finds these only when both paths run.',
    falsePositives:
      'Two locks of one class that are different objects by design (parent/child, nested with a subclass); an ops ' +
      'callback bound to a member name the model cannot narrow to the right struct; a path that cannot run while ' +
      'the other one holds its lock for reasons outside the locks (refcounts, states), which lockdep would flag anyway.',
    messages: {
      abba:
        '{{fn}}() now takes {{inner}} while holding {{outer}}, but {{reverseFn}}() takes {{outer}} while holding {{inner}}: ' +
        'ABBA deadlock between {{outer}} and {{inner}}',
    },
  },
  async check(ctx) {
    const scope = await patchScope(ctx);
    if (!scope) return;
    const after = blockingEdges(scope.after);
    const before = scope.before ? blockingEdges(scope.before) : new Map<string, EdgeAt[]>();
    // One finding per added line: a helper taking three locks under a new outer one is one mistake.
    const found = new Map<string, Cycle[]>();
    for (const [key, list] of after) {
      const [outer, inner] = key.split('>') as [string, string];
      const reverse = after.get(`${inner}>${outer}`);
      if (!reverse) continue;
      // The cycle was already there: not this patch's doing (lockdep would have said so before).
      if (before.has(key) && before.has(`${inner}>${outer}`)) continue;
      for (const e of list) {
        if (!scope.inChangedFile(e.fn) || existedBefore(scope, before, e)) continue;
        const mine = edgeText(scope.after, e);
        const at = locate(scope, e, mine.steps);
        if (!at) continue;
        const k = `${at.file}:${at.line}`;
        const cycles = found.get(k) ?? [];
        if (!cycles.some((c) => c.e.outer === outer && c.e.inner === inner)) cycles.push({ e, at, mine: mine.text, reverse: pickReverse(scope, reverse), all: reverse });
        found.set(k, cycles);
      }
    }
    for (const cycles of found.values()) {
      cycles.sort((a, b) => rank(scope, a) - rank(scope, b) || a.e.outer.localeCompare(b.e.outer) || a.e.inner.localeCompare(b.e.inner));
      const [first, ...more] = cycles as [Cycle, ...Cycle[]];
      const { e, at, reverse: rev } = first;
      const outer = className(e.outer);
      const inner = className(e.inner);
      const others = new Set(first.all.map((r) => `${r.fn.name}()`));
      others.delete(`${rev.fn.name}()`);
      ctx.report({
        messageId: 'abba',
        file: at.file,
        line: at.line,
        function: at.fn,
        data: { fn: e.fn.name, outer, inner, reverseFn: rev.fn.name },
        evidence: [
          `new order ${outer} → ${inner}: ${first.mine}`,
          `existing order ${inner} → ${outer}: ${edgeText(scope.after, rev).text}`,
          ...(others.size ? [`also ${inner} → ${outer} in ${[...others].slice(0, 4).join(', ')}`] : []),
          ...more.map((c) => `same line, also ${className(c.e.outer)} → ${className(c.e.inner)} against ${className(c.e.inner)} → ${className(c.e.outer)} in ${c.reverse.fn.name}() ${c.reverse.fn.file}:${c.reverse.line}`),
          ...(summaryOf(scope.after, e.fn)?.truncated ? ['(the walk of this function hit its state bound; paths may be missing)'] : []),
        ],
        suggestion: `take ${outer} and ${inner} in one documented order everywhere (${inner} first here, or drop ${outer} before taking ${inner}); a trylock would only hide the cycle from lockdep`,
      });
    }
  },
});
