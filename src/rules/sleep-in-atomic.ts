import { exploreOf, summaryOf, type FunctionModel, type HeldLock } from '../cmodel/index.js';
import { className } from './locking/chains.js';
import { affectedFunctions, changedHelper, patchScope, type PatchScope } from './locking/scope.js';
import { atomicHeld, atomicOnEntry, sleeperOf, type Sleeper } from './locking/sleeping.js';
import { defineRule } from './types.js';

interface Hit {
  line: number;
  sleeper: Sleeper;
  lock: HeldLock;
  kind: string;
}

/** Sleeping operations of `fn` in atomic context, one per line and atomic class. */
function hits(model: PatchScope['after'], fn: FunctionModel): Hit[] {
  const ex = exploreOf(model, fn);
  const entry = atomicOnEntry(model, fn);
  const out: Hit[] = [];
  const seen = new Set<string>();
  for (const ev of fn.events) {
    const held = [...atomicHeld(ex.heldAt.get(ev)?.may ?? []), ...entry.filter((e) => ev.line < e.until)];
    if (held.length === 0) continue;
    const sleeper = sleeperOf(model, fn, ev);
    if (!sleeper) continue;
    for (const { lock, kind } of held) {
      // A callee that drops the caller's lock (unlock, wait, relock) sleeps outside it.
      if (sleeper.callee && summaryOf(model, sleeper.callee)?.releases.some((r) => r.cls === lock.cls)) continue;
      const k = `${ev.line}|${sleeper.key}|${lock.cls}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ line: ev.line, sleeper, lock, kind });
    }
  }
  return out;
}

export const sleepInAtomic = defineRule({
  id: 'sleep-in-atomic',
  meta: {
    severity: 'error',
    category: 'robustness',
    confidence: 'moderate',
    description:
      'A patch adds, or makes reachable, an operation that may sleep (mutex, GFP_KERNEL allocation, user copy, wait, blocking notifier, a sleeping callee) under a spinlock, rwlock or rcu_read_lock',
    reviewers:
      'Alex Williamson on the type1 DMA_UNMAP notifier: the blocking notifier calls back into vfio_unpin_pages(), which ' +
      'takes iommu->lock, so the lock has to be dropped around it. Under a spinlock or RCU the same call is a ' +
      '"BUG: sleeping function called from invalid context" that only shows with CONFIG_DEBUG_ATOMIC_SLEEP.',
    falsePositives:
      'A callee that sleeps only on a path the caller\'s arguments rule out (a gfp or "locked" parameter), a spinlock the ' +
      'model believes still held because it cannot pair an unlock done through a function pointer, GFP flags passed in ' +
      'a variable that the model reads as sleeping.',
    messages: {
      sleeps: '{{what}} may sleep, but {{fn}}() holds {{lock}} ({{kind}}, {{taken}}) here: sleeping in atomic context',
    },
  },
  async check(ctx) {
    const scope = await patchScope(ctx);
    if (!scope) return;
    for (const fn of affectedFunctions(scope)) {
      const found = hits(scope.after, fn);
      if (found.length === 0) continue;
      const b = scope.beforeOf(fn);
      const old = b && scope.before ? new Set(hits(scope.before, b).map((h) => `${h.sleeper.key}|${h.lock.cls}`)) : new Set<string>();
      // One finding per sleeping call: the atomic locks around it go into one report.
      const bySite = new Map<string, Hit[]>();
      for (const h of found) {
        if (old.has(`${h.sleeper.key}|${h.lock.cls}`)) continue;
        // New with the patch: the sleeping line, the atomic section, or the callee that now sleeps.
        const viaHelper = h.sleeper.callee !== null && changedHelper(scope, h.sleeper.callee);
        if (!scope.added(fn.file, h.line) && !scope.added(fn.file, h.lock.line) && !viaHelper) continue;
        const k = `${h.line}|${h.sleeper.key}`;
        bySite.set(k, [...(bySite.get(k) ?? []), h]);
      }
      for (const hs of bySite.values()) {
        const [h, ...more] = hs as [Hit, ...Hit[]];
        const lockText = (x: Hit): string =>
          x.lock.flavor === 'rcu' ? `${x.lock.api}() at ${fn.file}:${x.lock.line}` : `${className(x.lock.cls)} (${x.lock.lock}) taken by ${x.lock.via ?? x.lock.api}() at ${fn.file}:${x.lock.line}`;
        ctx.report({
          messageId: 'sleeps',
          file: fn.file,
          line: h.line,
          function: fn.name,
          data: {
            what: h.sleeper.what, fn: fn.name,
            taken: h.lock.api === '__must_hold' || h.lock.api === 'lockdep_assert_held' ? `held on entry per ${h.lock.api}()` : `taken at line ${h.lock.line}`,
            lock: h.lock.flavor === 'rcu' ? `${h.lock.api}()` : className(h.lock.cls),
            kind: /_irq/.test(h.lock.api) ? `${h.kind}, interrupts off` : h.kind,
          },
          evidence: [
            lockText(h),
            ...more.map((x) => `also held: ${lockText(x)}`),
            h.sleeper.chain ? `${h.sleeper.what} sleeps: ${h.sleeper.chain}` : `${h.sleeper.what} at ${fn.file}:${h.line}`,
          ],
          suggestion: /GFP_/.test(h.sleeper.what)
            ? 'allocate before taking the lock, or use GFP_ATOMIC if it must happen inside'
            : h.lock.flavor === 'rcu'
              ? 'take a reference inside the RCU section and do this after rcu_read_unlock()'
              : 'move the call out of the atomic section (drop the lock first), or make the outer lock a mutex if the section must sleep',
        });
      }
    }
  },
});
