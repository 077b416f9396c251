import type { Event } from '../cmodel/events.js';
import type { FunctionModel } from '../cmodel/functions.js';
import { fieldClassOf } from '../cmodel/locks.js';
import { allFunctions, resolveCall, summaryOf, type TreeModel } from '../cmodel/model.js';
import {
  addedByPath, callerLocksOf, type CallerLocks, candidateFunctions, guardedBy, hasAddedLine, hasConcurrentEntry, isSetupOrTeardown, isAdded, placesOf,
} from './race/common.js';
import { freshLocals, isPerCallType, isReaderOnly, isStackObject, rootVar } from './race/fields.js';
import { defineRule } from './types.js';

/** Readers named for the end of an object's life: nobody can be publishing into it then. */
const TEARDOWN = /(?:^|_)(?:release|free|destroy|exit|cleanup|teardown|uninit|fini|shutdown|put|remove)(?:_|$)/;

/** A write that initialises a field of an object: a store, an atomic set, INIT_WORK and friends. */
interface InitWrite {
  event: Event;
  cls: string;
  /** The object's base expression (`private` of `private->avail`). */
  base: string;
}

/** A plain store that makes state visible, with what was written just before it. */
interface Publication {
  store: Event & { kind: 'store' };
  cls: string;
  base: string;
  inits: InitWrite[];
  /** The registration that made the object reachable, if the function does one before. */
  registration: { line: number; api: string } | null;
}

/** A lockless reader: tests `flag` and then uses one of the initialised fields. */
interface Reader {
  fn: FunctionModel;
  test: Event;
  use: Event;
  useCls: string;
}

/** Base expression of an access path: the text before the last member step (`p->x.y` -> `p->x`). */
function baseOf(ev: Event): string | null {
  const path = ev.kind === 'store' || ev.kind === 'load' || ev.kind === 'atomic' || ev.kind === 'marked' || ev.kind === 'init' ? ev.path : null;
  if (!path || path.root.kind !== 'var' || path.steps.length === 0) return null;
  let text = path.root.name;
  for (const st of path.steps.slice(0, -1)) text += st.op === '->' || st.op === '.' ? `${st.op}${st.member}` : st.op === '[]' ? '[]' : '';
  return text;
}

/** Whether an event orders or may order memory between two writes: barriers, release stores, locks, unknown calls. */
function ordersMemory(model: TreeModel, fn: FunctionModel, ev: Event): boolean {
  switch (ev.kind) {
    case 'barrier':
    case 'lock':
      return true;
    case 'marked':
      return ev.ordering !== 'once';
    case 'atomic':
      // Value-returning and cmpxchg atomics are fully ordered; set/read/plain rmw are not.
      return ev.op === 'test' || ev.op === 'cmpxchg';
    case 'call': {
      if (ev.special) return false;
      const target = ev.indirect ? null : resolveCall(model, ev, fn)[0];
      if (!target) return true;
      const s = summaryOf(model, target);
      return !s || s.takes.length > 0 || s.registrations.length > 0;
    }
    default:
      return false;
  }
}

/** Plain stores of `fn` on added lines that follow initialising writes to the same object, with no lock held. */
function publications(model: TreeModel, fn: FunctionModel, callers: CallerLocks, added: Map<string, Set<number>>): Publication[] {
  const out: Publication[] = [];
  const fresh = freshLocals(fn);
  const events = fn.events;
  const registered = (upTo: number): { line: number; api: string } | null => {
    for (let i = 0; i < upTo; i++) {
      const e = events[i]!;
      if (e.kind === 'register') return { line: e.line, api: e.api };
      if (e.kind === 'call' && !e.special && !e.indirect) {
        const t = resolveCall(model, e, fn)[0];
        const reg = t ? summaryOf(model, t)?.registrations[0] : undefined;
        if (reg) return { line: e.line, api: `${e.callee}() -> ${reg.api}` };
      }
    }
    return null;
  };
  for (let i = 0; i < events.length; i++) {
    const s = events[i]!;
    if (s.kind !== 'store' || s.operator !== '=' || !isAdded(added, fn.file, s.line)) continue;
    const cls = fieldClassOf(s.path, fn, model.env);
    const base = baseOf(s);
    const root = rootVar(s);
    if (!cls || !base || !root || isStackObject(fn, s) || isPerCallType(model, cls.slice(0, cls.indexOf('.')))) continue;
    if (callers.mustAt(fn, s).some((c) => !isReaderOnly(c))) continue;
    const registration = registered(i);
    // Reachable by others: registered above, or an object this function did not create, in a
    // function that itself runs concurrently with others (a callback, or reached from one).
    if (!registration && (fresh.has(root) || isSetupOrTeardown(model, fn) || !hasConcurrentEntry(model, callers, fn, []))) continue;
    const inits: InitWrite[] = [];
    for (let j = i - 1; j >= 0; j--) {
      const e = events[j]!;
      // Writes before the registration are published by it (it takes locks).
      if (ordersMemory(model, fn, e) || e.kind === 'register') break;
      if (e.kind === 'assign' && e.target.trim() === root) break;
      const isWrite = e.kind === 'store' || e.kind === 'init' || (e.kind === 'atomic' && (e.op === 'set' || e.op === 'init')) || (e.kind === 'marked' && e.access === 'store');
      if (!isWrite || baseOf(e) !== base) continue;
      const c = fieldClassOf((e as { path: Parameters<typeof fieldClassOf>[0] }).path, fn, model.env);
      if (c && c !== cls && !inits.some((x) => x.cls === c)) inits.unshift({ event: e, cls: c, base });
    }
    if (inits.length) out.push({ store: s, cls, base, inits, registration });
  }
  return out;
}

/** Functions other than `writer` that test `flag` without a lock or acquire and then use one of `inits`. */
function readers(model: TreeModel, callers: CallerLocks, writer: FunctionModel, flag: string, inits: Set<string>): Reader[] {
  const out: Reader[] = [];
  for (const fn of allFunctions(model)) {
    // The last-reference paths (kobject release, free, destroy) run when nobody else can write.
    if (fn === writer || TEARDOWN.test(fn.name)) continue;
    const places = placesOf(fn);
    for (let i = 0; i < fn.events.length; i++) {
      const t = fn.events[i]!;
      // A READ_ONCE or acquire test does not help a writer that orders nothing.
      if (t.kind !== 'load' && !(t.kind === 'marked' && t.access === 'load')) continue;
      const cond = places.get(t)?.inCondOf;
      if (cond?.kind !== 'if' || isStackObject(fn, t) || fieldClassOf(t.path, fn, model.env) !== flag) continue;
      const held = [...callers.mustAt(fn, t), ...callers.entryLocks(fn)].filter((c) => !isReaderOnly(c));
      if (held.length) continue;
      const root = rootVar(t);
      for (let j = i + 1; j < fn.events.length; j++) {
        const u = fn.events[j]!;
        // Reader-side ordering (smp_rmb, a fully ordered atomic) does not help a writer that orders
        // nothing; a lock taken before the use may be one the writer's caller holds: stop there.
        if (u.kind === 'lock') break;
        if (u.kind !== 'load' && u.kind !== 'atomic' && u.kind !== 'marked') continue;
        const c = fieldClassOf(u.path, fn, model.env);
        if (!c || !inits.has(c) || rootVar(u) !== root || !guardedBy(cond, u)) continue;
        out.push({ fn, test: t, use: u, useCls: c });
        break;
      }
    }
  }
  return out;
}

export const publicationOrder = defineRule({
  id: 'publication-order',
  meta: {
    severity: 'warning',
    category: 'init-order',
    confidence: 'moderate',
    description:
      'A plain store publishes state (a flag or state field other code tests) after initialising other fields, and a lockless reader tests it and then uses them, with no release/acquire pairing',
    reviewers:
      'Halil Pasic on vfio-ccw probe: "can atomic_set(&private->avail, 1) and private->state = VFIO_CCW_STATE_STANDBY be ' +
      'perceived as reordered by some other cpu?" - a create callback that tests state and then takes avail could see ' +
      'the new state with the old avail. Reviewers ask for smp_store_release()/smp_load_acquire(), a lock both sides ' +
      'take, or the initialisation moved before the registration.',
    falsePositives:
      'Both sides are ordered by something the model does not see (a lock taken by a caller or by the framework around ' +
      'the callback, a barrier inside an opaque helper), or the reader tolerates the stale value by design.',
    messages: {
      publish:
        '{{field}} is set with a plain store after {{inits}} (line {{initLine}}), and {{reader}}() tests {{field}} {{how}} ' +
        'and then uses {{used}}: another CPU may see the new {{field}} before {{used}}',
    },
  },
  async check(ctx) {
    const added = addedByPath(ctx.files);
    if (added.size === 0) return;
    const model = await ctx.model('after');
    if (!model) return;
    const callers = callerLocksOf(model);
    for (const { fn } of candidateFunctions(model, added)) {
      if (!hasAddedLine(fn, added)) continue;
      for (const p of publications(model, fn, callers, added)) {
        const initClasses = new Set(p.inits.map((x) => x.cls));
        // A reader others can run at any time (a callback, or reached from one).
        const r = readers(model, callers, fn, p.cls, initClasses).find((x) => hasConcurrentEntry(model, callers, x.fn, [], 'callback'));
        if (!r) continue;
        const init = p.inits.find((x) => x.cls === r.useCls)!;
        const how = r.test.kind === 'marked' && r.test.ordering === 'acquire'
          ? `with ${r.test.api}() (which pairs only with a release store)`
          : 'without a lock or acquire';
        const field = p.cls.replace('.', '->');
        const used = r.useCls.replace('.', '->');
        ctx.report({
          messageId: 'publish',
          file: fn.file,
          line: p.store.line,
          function: fn.name,
          data: { field, inits: p.inits.map((x) => x.cls.replace('.', '->')).join(', '), initLine: init.event.line, reader: r.fn.name, used, how },
          evidence: [
            ...(p.registration ? [`line ${p.registration.line}: ${p.registration.api} makes the object reachable`] : []),
            ...p.inits.map((x) => `line ${x.event.line}: ${x.cls.replace('.', '->')} initialised`),
            `line ${p.store.line}: ${p.store.target} = ${p.store.value} (plain store, no lock, no release)`,
            `${r.fn.file}:${r.test.line} ${r.fn.name}(): tests ${field} ${how}`,
            `${r.fn.file}:${r.use.line} ${r.fn.name}(): then uses ${used}`,
          ],
          suggestion: `smp_store_release(&${p.store.target.replace(/\s+/g, '')}, ${p.store.value}) here and smp_load_acquire() in ${r.fn.name}(), or initialise before the registration`,
        });
      }
    }
  },
});
