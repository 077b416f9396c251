import { exploreOf, lockClass, pathsOf, summaryOf, type FunctionModel, type LockEvent, type TreeModel } from '../cmodel/index.js';
import { className, modelEdges, TRYLOCK_API, type EdgeAt } from './locking/chains.js';
import { handlerKind } from './locking/handlers.js';
import { patchScope, type PatchScope } from './locking/scope.js';
import { defineRule } from './types.js';

const TRANSIENT = /-\s*(?<errno>EBUSY|EAGAIN|EINTR|EWOULDBLOCK|ERESTARTSYS|ERESTARTNOINTR)\b|(?<restart>restart_syscall)\s*\(/;

/** What a failed trylock leads to on some path: the errno returned, or a retry. Null when neither. */
function failureOutcome(model: TreeModel, fn: FunctionModel, ev: LockEvent): string | null {
  for (const p of pathsOf(model, fn, { maxPaths: 128 })) {
    const at = p.steps.findIndex((s) => s.event === ev && s.acquired === false);
    if (at < 0) continue;
    if (p.steps.slice(at + 1).some((s) => s.event === ev)) return 'a retry';
    const ret = p.exit.returns?.trim() ?? '';
    const direct = TRANSIENT.exec(ret);
    if (direct) return direct.groups!.errno ? `-${direct.groups!.errno}` : 'restart_syscall()';
    if (!/^[A-Za-z_]\w*$/.test(ret)) continue;
    // `ret = -EBUSY; goto out;` ... `return ret;` (or `ret = -EAGAIN;` set before the attempt)
    for (const s of [...p.steps].reverse()) {
      if (s.event.kind !== 'assign' || s.event.target !== ret) continue;
      const m = TRANSIENT.exec(s.event.value);
      if (m) return m.groups!.errno ? `-${m.groups!.errno}` : 'restart_syscall()';
      break;
    }
  }
  return null;
}

/**
 * The ordering a trylock of `cls` dodges: a lock held here that elsewhere is taken under `cls`, or a
 * lock taken under `cls` here that elsewhere (or before the patch) was held while taking `cls`.
 */
interface Dodged {
  other: string;
  where: EdgeAt;
  /** How the other path takes `cls` under `other`: blocking now, by trylock now, or blocking before the patch. */
  how: 'takes' | 'trylocks' | 'took (before this patch)';
}

function dodged(scope: PatchScope, fn: FunctionModel, ev: LockEvent, cls: string): Dodged | null {
  const after = modelEdges(scope.after);
  const held = exploreOf(scope.after, fn).heldAt.get(ev)?.may ?? [];
  for (const h of held) {
    const rev = after.blocking.get(`${cls}>${h.cls}`)?.[0];
    if (rev) return { other: h.cls, where: rev, how: 'takes' };
  }
  const before = scope.before ? modelEdges(scope.before).blocking : new Map<string, EdgeAt[]>();
  for (const e of summaryOf(scope.after, fn)?.orderEdges ?? []) {
    if (e.outer !== cls || e.trylock) continue;
    const now = after.nonBlocking.get(`${e.inner}>${cls}`)?.find((x) => x.fn !== fn);
    if (now) return { other: e.inner, where: now, how: 'trylocks' };
    const then = before.get(`${e.inner}>${cls}`)?.[0];
    if (then) return { other: e.inner, where: then, how: 'took (before this patch)' };
  }
  return null;
}

export const trylockEbusy = defineRule({
  id: 'trylock-ebusy',
  meta: {
    severity: 'warning',
    category: 'lock-order',
    confidence: 'moderate',
    description:
      'A patch adds a trylock in a sysfs store, ioctl handler or file operation whose failure returns -EBUSY/-EAGAIN/-EINTR (or retries): a lock-order problem turned into a spurious userspace error',
    reviewers:
      'The vfio_ap in-use callback (v12) "resolved" the ap_perms_mutex / matrix_dev->lock ABBA by switching to ' +
      'mutex_trylock() and -EBUSY; Halil Pasic showed the race was still there. Reviewers ask for a real lock order: ' +
      'a writer gets -EBUSY whenever another one holds the lock, and lockdep ignores trylock edges, so the ordering ' +
      'the trylock dodges is never reported again.',
    falsePositives:
      'A handler whose documented contract is to fail with -EBUSY/-EAGAIN while an operation is in progress (a reset or ' +
      'migration state machine), or a non-blocking (O_NONBLOCK) path that the model does not recognise as such.',
    messages: {
      ebusy:
        '{{api}}(&{{lock}}) in {{kind}} {{fn}}(): on failure {{failure}}, and lockdep ignores trylock edges, so the ' +
        'ordering it dodges is hidden rather than fixed{{abba}}',
    },
  },
  async check(ctx) {
    const scope = await patchScope(ctx);
    if (!scope) return;
    for (const file of scope.files.keys()) {
      const text = ctx.after(file);
      for (const fn of scope.after.files.get(file)?.functions ?? []) {
        const tries = fn.events.filter((e): e is LockEvent => e.kind === 'lock' && e.op === 'acquire' && TRYLOCK_API.test(e.api) && scope.added(file, e.line));
        if (tries.length === 0) continue;
        const kind = handlerKind(scope.after, fn, text);
        if (!kind) continue;
        // The O_NONBLOCK contract: -EAGAIN is what the caller asked for.
        if (text && /NONBLOCK|NOWAIT|nowait|nonblock/.test(text.slice(fn.offset, fn.endOffset))) continue;
        const b = scope.beforeOf(fn);
        for (const ev of tries) {
          const cls = lockClass(scope.after, fn, ev);
          const blocking = fn.events.some((e) => e.kind === 'lock' && e.op === 'acquire' && !TRYLOCK_API.test(e.api) && e.acquiredWhen !== 'nonzero' && lockClass(scope.after, fn, e) === cls);
          if (blocking) continue;
          if (b && scope.before && b.events.some((e) => e.kind === 'lock' && e.op === 'acquire' && TRYLOCK_API.test(e.api) && lockClass(scope.before!, b, e) === cls)) continue;
          const outcome = failureOutcome(scope.after, fn, ev);
          if (!outcome) continue;
          const d = dodged(scope, fn, ev, cls);
          const abba = d ? `; here it stands in for the order ${className(cls)} vs ${className(d.other)} (${d.where.fn.name}() ${d.how} ${className(d.where.inner)} while holding ${className(d.where.outer)})` : '';
          ctx.report({
            messageId: 'ebusy',
            file,
            line: ev.line,
            function: fn.name,
            data: { api: ev.api, lock: ev.lock, kind, fn: fn.name, failure: outcome === 'a retry' ? 'it spins in a retry loop' : `userspace gets ${outcome} for a transient conflict`, abba },
            evidence: [
              `${ev.api}(&${ev.lock}) at ${file}:${ev.line}; on failure ${fn.name}() ${outcome === 'a retry' ? 'retries' : `returns ${outcome}`}`,
              ...(d ? [`${d.where.fn.name}() ${d.how} ${className(d.where.inner)} while holding ${className(d.where.outer)} at ${d.where.fn.file}:${d.where.line}${d.where.via.length ? ` (via ${d.where.via.join(' → ')})` : ''}`] : []),
            ],
            suggestion: 'fix the lock order (take the outer lock first on every path) and use a blocking lock; keep -EBUSY for real state conflicts',
          });
        }
      }
    }
  },
});
