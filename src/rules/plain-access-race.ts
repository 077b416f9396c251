import type { Event } from '../cmodel/events.js';
import type { FunctionModel } from '../cmodel/functions.js';
import type { TreeModel } from '../cmodel/model.js';
import { addedByPath, callerLocksOf, type CallerLocks, candidateFunctions, FRAMEWORK_CLASSES, hasConcurrentEntry, isDeviceFdPath, isSetupOrTeardown, isAdded } from './race/common.js';
import { FieldFacts, freshLocals, intersect, isPerCallType, isStackObject, rootVar, type FieldAccess } from './race/fields.js';
import { defineRule, type RuleContext } from './types.js';

function describeSites(list: FieldAccess[]): string {
  const fns = [...new Set(list.map((a) => `${a.fn.name}()`))];
  return fns.length > 3 ? `${fns.slice(0, 3).join(', ')} and ${fns.length - 3} more` : fns.join(', ');
}

/** Display name of a lock class (`vfio_iommu.lock` -> `vfio_iommu->lock`). */
function lockName(cls: string): string {
  return cls.includes('.') ? cls.replace('.', '->') : cls;
}

interface Verdict {
  messageId: 'read' | 'write' | 'readMarked' | 'writeMarked';
  lock: string;
  /** The lock classes the rest of the code holds for this field. */
  classes: string[];
  others: FieldAccess[];
}

/** Whether a plain access of class `cls` holding `held` breaks the discipline the rest of the model keeps. */
function judge(facts: FieldFacts, model: TreeModel, cls: string, isStore: boolean, held: Set<string>): Verdict | null {
  if (isPerCallType(model, cls.slice(0, cls.indexOf('.')))) return null;
  const all = facts.accesses(cls).filter((a) => !a.init);
  if (all.some((a) => a.kind === 'atomic')) return null;
  const writes = all.filter((a) => a.kind === 'store' || a.kind === 'marked-store');
  if (writes.length === 0) return null;
  // Serialised with every writer by some lock (its own or one a caller or the framework holds): no race.
  const serialising = intersect(writes.map((w) => w.held));
  if (serialising && [...serialising].some((c) => held.has(c))) return null;
  const marked = writes.filter((a) => a.kind === 'marked-store');
  const plainWrites = writes.filter((a) => a.kind === 'store');
  // Lock discipline: every write elsewhere holds a common lock, and this access holds none of them.
  const common = intersect(plainWrites.map((w) => w.ownHeld));
  if (plainWrites.length > 0 && marked.length === 0 && common && common.size > 0) {
    if ([...common].some((c) => held.has(c))) return null;
    // A plain access elsewhere without that lock is precedent: the code does not rely on it for this field.
    const unlocked = all.filter((a) => (a.kind === 'load' || a.kind === 'store') && ![...common].some((c) => a.held.has(c)));
    if (unlocked.length > 0) return null;
    // Readers must also take it somewhere (not a write-only statistic).
    if (!isStore && !all.some((a) => a.kind === 'load')) return null;
    return { messageId: isStore ? 'write' : 'read', lock: lockName([...common][0]!), classes: [...common], others: plainWrites };
  }
  // Marked discipline: writers use WRITE_ONCE/smp_store_release/rcu_assign_pointer, readers READ_ONCE or a lock.
  if (marked.length > 0 && plainWrites.every((w) => [...(intersect(marked.map((m) => m.ownHeld)) ?? [])].some((c) => w.held.has(c)))) {
    const writerLocks = intersect(marked.map((m) => m.ownHeld)) ?? new Set<string>();
    if ([...writerLocks].some((c) => held.has(c))) return null;
    const plainLockless = all.filter((a) => (a.kind === 'load' || a.kind === 'store') && ![...writerLocks].some((c) => a.held.has(c)));
    if (plainLockless.length > 0) return null;
    return { messageId: isStore ? 'writeMarked' : 'readMarked', lock: writerLocks.size ? lockName([...writerLocks][0]!) : '', classes: [...writerLocks], others: marked };
  }
  return null;
}

export const plainAccessRace = defineRule({
  id: 'plain-access-race',
  meta: {
    severity: 'warning',
    category: 'lockless-access',
    confidence: 'moderate',
    description:
      'A field that the rest of the code writes under a lock (or with WRITE_ONCE/smp_store_release) is read or written by the patch without that lock and without a marked access',
    reviewers:
      'kvm@/iommu@ reviewers ask how a new lockless access is serialised: "the KVM pointer must still be read under the mutex ' +
      'that writes it", "which lock protects this?", and that a deliberately racy read be spelled READ_ONCE() with a comment ' +
      '(Robin Murphy and Jason Gunthorpe on reading dev->driver of group siblings without their device lock).',
    falsePositives:
      'The caller holds the lock but the model cannot see the call site (called through a pointer the model does not resolve, ' +
      'or from a file outside the model), or the object is not yet published / already unpublished on a path whose name does ' +
      'not say so, or a benign racy read (statistics, a hint re-checked under the lock later).',
    messages: {
      read: '{{field}} is written under {{lock}} everywhere else ({{others}}), but {{fn}}() reads it without {{lock}}',
      write: '{{field}} is written under {{lock}} everywhere else ({{others}}), but {{fn}}() writes it without {{lock}}',
      readMarked: '{{field}} is written with marked accesses ({{others}}) for lockless readers, but {{fn}}() reads it with a plain load',
      writeMarked: '{{field}} is written with marked accesses elsewhere ({{others}}), but {{fn}}() writes it with a plain store',
    },
  },
  async check(ctx) {
    const added = addedByPath(ctx.files);
    if (added.size === 0) return;
    const model = await ctx.model('after');
    if (!model) return;
    const callers = callerLocksOf(model);
    const facts = new FieldFacts(model, callers, added);
    for (const { fn, changed } of candidateFunctions(model, added)) {
      if (!changed || isSetupOrTeardown(model, fn)) continue;
      const fresh = freshLocals(fn);
      // One finding per field and function: the first racy access, the others as evidence.
      const hits = new Map<string, { ev: Event; v: Verdict; more: number[] }>();
      for (const ev of fn.events) {
        if ((ev.kind !== 'load' && ev.kind !== 'store') || !isAdded(added, fn.file, ev.line)) continue;
        const root = rootVar(ev);
        if ((root !== null && fresh.has(root)) || isStackObject(fn, ev)) continue;
        const cls = facts.classOf(fn, ev);
        if (!cls) continue;
        const hit = hits.get(cls);
        if (hit) {
          if (ev.line !== hit.ev.line && !hit.more.includes(ev.line) && judge(facts, model, cls, ev.kind === 'store', facts.heldAt(fn, ev))) hit.more.push(ev.line);
          continue;
        }
        const v = judge(facts, model, cls, ev.kind === 'store', facts.heldAt(fn, ev));
        if (!v || !hasConcurrentEntry(model, callers, fn, v.classes)) continue;
        // Held only by the vfio core around open_device/close_device: users of the open device fd
        // are ordered after the one and before the other; only other callbacks (AER, sysfs) race.
        if (v.classes.every((c) => FRAMEWORK_CLASSES.has(c)) && isDeviceFdPath(model, callers, fn)) continue;
        hits.set(cls, { ev, v, more: [] });
      }
      for (const [cls, h] of hits) report(ctx.report, fn, h.ev, cls, h.v, h.more);
    }
  },
});

function report(rep: RuleContext['report'], fn: FunctionModel, ev: Event, cls: string, v: Verdict, more: number[]): void {
  const field = cls.replace('.', '->');
  const marked = v.messageId === 'readMarked' || v.messageId === 'writeMarked';
  rep({
    messageId: v.messageId,
    file: fn.file,
    line: ev.line,
    function: fn.name,
    data: { field, lock: v.lock, fn: fn.name, others: describeSites(v.others) },
    evidence: [
      ...v.others.slice(0, 4).map((o) => `${o.fn.file}:${o.event.line} ${o.fn.name}(): ${o.kind === 'marked-store' ? 'marked store' : 'store'} with ${[...o.held].join(', ') || 'no lock'} held`),
      `${fn.file}:${ev.line} ${fn.name}(): plain ${ev.kind} of ${field} with no such lock held`,
      ...more.map((l) => `${fn.file}:${l} ${fn.name}(): again without the lock`),
    ],
    suggestion: marked
      ? (ev.kind === 'load' ? 'use READ_ONCE() (or smp_load_acquire() if the value publishes other data)' : 'use WRITE_ONCE() like the other writers')
      : `take ${v.lock} around the access, or if the race is benign spell it ${ev.kind === 'load' ? 'READ_ONCE()' : 'WRITE_ONCE()'} and say why`,
  });
}
