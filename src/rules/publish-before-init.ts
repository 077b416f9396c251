import { eventsInLoops, findFunction, type Event, type FunctionModel, type TreeModel } from '../cmodel/index.js';
import { callbacksOfArg, fieldOfEvent, fieldUses, reachable, type Reached } from './flow/callbacks.js';
import { beforeFunction, branchesOf, edgeTruth, judge, producerOf, storesResultOf, touchedFunctions, type Producer } from './flow/cflow.js';
import { defineRule, type RuleContext } from './types.js';

type CallEv = Event & { kind: 'call' };

/** A call of the analysed function that publishes an object, directly or through a helper. */
interface Publication {
  call: CallEv;
  /** The registering API (`mdev_register_parent`), or the helper's name and the API inside. */
  label: string;
  producer: Producer;
  /** Field class -> who uses it, for everything the published callbacks reach. */
  uses: Map<string, { fn: FunctionModel; line: number; how: string; chain: string[] }>;
}

/** A field initialised after a publication, on a path where the publication succeeded. */
interface LateInit {
  pub: Publication;
  event: Event;
  /** The line in the analysed function (the call line when the init is inside a callee). */
  line: number;
  via: string | null;
  cls: string;
  what: string;
}

const UNPUBLISH = /(?:^|_)(?:unregister|deregister|del|remove|free_irq)(?:_|$)/;

/** Registrations whose callbacks cannot run while the registering code does: suspend/resume hooks. */
const NOT_CONCURRENT = /^(?:register_syscore_ops)$/;

/** Calls since the callback entry a use may be found at: deeper chains say little about the race. */
const USE_DEPTH = 3;

/** Register events inside `fn` and its direct helpers (two levels), each with the function it sits in. */
function registrationsIn(model: TreeModel, fn: FunctionModel, depth: number, seen = new Set<FunctionModel>()): { ev: Event & { kind: 'register' }; fn: FunctionModel }[] {
  if (seen.has(fn)) return [];
  seen.add(fn);
  const out: { ev: Event & { kind: 'register' }; fn: FunctionModel }[] = [];
  for (const ev of fn.events) {
    if (ev.kind === 'register' && !NOT_CONCURRENT.test(ev.api)) out.push({ ev, fn });
    else if (ev.kind === 'call' && !ev.special && !ev.indirect && depth > 0) {
      const g = findFunction(model, ev.callee, fn.file);
      if (g) out.push(...registrationsIn(model, g, depth - 1, seen));
    }
  }
  return out;
}

/**
 * The callbacks a register event publishes: functions and ops structures among its arguments, and
 * those bound to the registered object elsewhere in the registering function
 * (`vfio_alloc_device(..., &ops)` assigned to the object's root, `p->nb.notifier_call = fn`).
 */
function callbacksOf(model: TreeModel, fn: FunctionModel, reg: Event & { kind: 'register' }): Reached[] {
  const out: Reached[] = [];
  for (const a of reg.args) out.push(...callbacksOf1(model, a, fn, reg.api));
  const root = /^\(?&?\s*(?<r>[A-Za-z_]\w*)\s*(?:->|\.)/.exec(reg.args[0] ?? '')?.groups?.r;
  if (!root) return out;
  const rooted = new RegExp(String.raw`^\(?&?\s*${root}\s*(?:->|\.|$)`);
  for (let i = 0; i < fn.events.length; i++) {
    const ev = fn.events[i]!;
    // Ops bound to the object before it is registered (`vfio_alloc_device(..., &ops)`, `cdev_init(&c, &fops)`);
    // another registration of the same object (`iommu_device_register(&s->iommu, &ops)`) publishes its own.
    if (ev.offset >= reg.offset) break;
    if (ev.kind === 'call' && !ev.special) {
      const assigned = fn.events.slice(i + 1, i + 4).some((e) => e.kind === 'assign' && e.fromCall === ev.callee && e.target.trim() === root);
      if (assigned || ev.args.some((a) => rooted.test(a.trim()))) for (const a of ev.args) out.push(...callbacksOf1(model, a, fn, reg.api));
    } else if (ev.kind === 'store' && rooted.test(ev.target.trim())) out.push(...callbacksOf1(model, ev.value, fn, reg.api));
  }
  return out;
}

function callbacksOf1(model: TreeModel, arg: string, fn: FunctionModel, api: string): Reached[] {
  return callbacksOfArg(model, arg, fn.file).filter((r) => r.fn !== fn).map((r) => ({ fn: r.fn, chain: [`${api}()`, ...r.chain] }));
}

/** The publications of `fn` whose callbacks the model can see. */
function publications(model: TreeModel, fn: FunctionModel): Publication[] {
  const out: Publication[] = [];
  for (const ev of fn.events) {
    if (ev.kind !== 'call' || ev.indirect) continue;
    let regs: { ev: Event & { kind: 'register' }; fn: FunctionModel }[];
    let label: string;
    if (ev.special) {
      const reg = fn.events.find((e): e is Event & { kind: 'register' } => e.kind === 'register' && e.offset === ev.offset);
      if (!reg || NOT_CONCURRENT.test(reg.api)) continue;
      regs = [{ ev: reg, fn }];
      label = reg.api;
    } else {
      const helper = findFunction(model, ev.callee, fn.file);
      if (!helper || helper === fn) continue;
      regs = registrationsIn(model, helper, 1);
      if (regs.length === 0) continue;
      label = `${ev.callee}() -> ${[...new Set(regs.map((r) => r.ev.api))].join('/')}`;
    }
    const roots = regs.flatMap((r) => callbacksOf(model, r.fn, r.ev));
    if (roots.length === 0) continue;
    const uses = new Map<string, { fn: FunctionModel; line: number; how: string; chain: string[] }>();
    for (const [g, r] of reachable(model, roots, 160, USE_DEPTH)) {
      // The publishing function and its helpers are not callbacks, even when an ops table names them.
      if (g === fn || regs.some((x) => x.fn === g)) continue;
      for (const [cls, u] of fieldUses(model, g)) if (!uses.has(cls)) uses.set(cls, { fn: g, line: u.line, how: u.how, chain: r.chain });
    }
    if (uses.size) out.push({ call: ev, label, producer: producerOf(model, fn, ev), uses });
  }
  return out;
}

/** A field initialisation: INIT_WORK/mutex_init/..., atomic_set/refcount_set/kref_init, a store, WRITE_ONCE. */
function initOf(model: TreeModel, fn: FunctionModel, ev: Event): { cls: string; what: string } | null {
  const isInit = ev.kind === 'init' || ev.kind === 'store' || (ev.kind === 'atomic' && (ev.op === 'set' || ev.op === 'init')) || (ev.kind === 'marked' && ev.access === 'store');
  if (!isInit) return null;
  const f = fieldOfEvent(model, fn, ev);
  if (!f) return null;
  const ref = (t: string): string => (t.startsWith('*') ? t.slice(1) : `&${t}`);
  const what = ev.kind === 'store' ? `${ev.target} = ${ev.value}` : ev.kind === 'marked' ? `${ev.api}(${ev.target})` : ev.kind === 'init' || ev.kind === 'atomic' ? `${ev.api}(${ref(ev.target)})` : '';
  return { cls: f.cls, what: what.replace(/\s+/g, ' ') };
}

/** Result variables of calls in `fn`, for telling error branches (`if (ret) goto err;`) apart. */
function producersByVar(model: TreeModel, fn: FunctionModel): Map<string, Producer> {
  const out = new Map<string, Producer>();
  for (const ev of fn.events) {
    if (ev.kind !== 'call') continue;
    const p = producerOf(model, fn, ev);
    if (p.resultVar) out.set(p.resultVar, p);
  }
  return out;
}

/** Walks the states (node, published set) of `fn` and returns inits that follow a successful publication. */
function lateInits(model: TreeModel, fn: FunctionModel, pubs: Publication[]): LateInit[] {
  const b = branchesOf(fn);
  const loops = eventsInLoops(fn);
  const byCall = new Map(pubs.map((p, i) => [p.call, i]));
  const byVar = producersByVar(model, fn);
  const found = new Map<string, LateInit>();
  const carried = (p: Publication, ev: Event): boolean => {
    const loop = loops.get(p.call);
    return loop !== undefined && loops.get(ev) === loop && ev.line <= p.call.line;
  };
  // Where each field class is first stored, and where each local is assigned: a store that flips a field
  // already set before the publication is a deliberate state change (the "ready" flag idiom), and an
  // object assigned after the publication is a fresh one the publication cannot reach.
  const firstStore = new Map<string, number>();
  const assigned = new Map<string, number[]>();
  for (const e of fn.events) {
    if (e.kind === 'store') {
      const f = fieldOfEvent(model, fn, e);
      if (f && !firstStore.has(f.cls)) firstStore.set(f.cls, e.line);
    } else if (e.kind === 'assign') assigned.set(e.target.trim(), [...(assigned.get(e.target.trim()) ?? []), e.line]);
  }
  const rootOf = (ev: Event): string | null => ('path' in ev && ev.path?.root.kind === 'var' ? ev.path.root.name : null);
  const consider = (pub: number[], ev: Event, line: number, via: FunctionModel | null): void => {
    const init = initOf(model, via ?? fn, ev);
    if (!init) return;
    const root = rootOf(ev);
    // Inside a helper, only what it reaches through its parameters is the caller's object.
    if (via && (!root || !via.params.some((p) => p.name === root))) return;
    for (const i of pub) {
      const p = pubs[i]!;
      if (!p.uses.has(init.cls) || carried(p, ev)) continue;
      if (!via && root && fn.locals.some((l) => l.name === root) && (assigned.get(root) ?? []).some((l) => l > p.call.line && l <= line)) continue;
      if (!via && (ev.kind === 'store' || ev.kind === 'marked') && (firstStore.get(init.cls) ?? Infinity) < p.call.line) continue;
      const k = `${i}|${init.cls}|${line}`;
      if (!found.has(k)) found.set(k, { pub: p, event: ev, line, via: via?.name ?? null, cls: init.cls, what: init.what });
    }
  };
  const seen = new Set<string>();
  // A publication stays judged by its result variable until a later call overwrites it (`ret = f()`).
  type Pub = { i: number; live: boolean };
  const work: { node: number; pub: Pub[] }[] = [{ node: b.cfg.entry, pub: [] }];
  while (work.length) {
    const { node, pub: start } = work.pop()!;
    const key = `${node}|${start.map((p) => `${p.i}${p.live ? '' : '!'}`).join(',')}`;
    if (seen.has(key) || seen.size > 5000) continue;
    seen.add(key);
    const n = b.cfg.nodes[node]!;
    let pub = start;
    const ids = (): number[] => pub.map((p) => p.i);
    for (const ev of n.events) {
      if (ev.kind === 'call') {
        const i = byCall.get(ev);
        if (i !== undefined && !pub.some((p) => p.i === i)) pub = [...pub, { i, live: true }].sort((x, y) => x.i - y.i);
        else if (pub.length && UNPUBLISH.test(ev.callee)) pub = [];
        else if (pub.length && !ev.special && !ev.indirect) {
          // An init helper called after the publication (`vfio_ccw_init(private)`): its own inits count.
          const g = findFunction(model, ev.callee, fn.file);
          if (g && g !== fn && !pubs.some((p) => p.call === ev)) for (const e of g.events) consider(ids(), e, ev.line, g);
        }
      } else if (ev.kind === 'unregister' || ev.kind === 'free') pub = [];
      else {
        if (ev.kind === 'assign' || ev.kind === 'store') {
          const t = ev.target.replace(/\s+/g, '');
          pub = pub.map((p) => (p.live && pubs[p.i]!.producer.resultVar === t && !storesResultOf(ev, pubs[p.i]!.call) ? { ...p, live: false } : p));
        }
        // `p->handle = register_x(...)` stores the registration's own result: it cannot come first.
        if (pub.length && ev.kind !== 'assign' && !pubs.some((p) => storesResultOf(ev, p.call))) consider(ids(), ev, ev.line, null);
      }
    }
    for (const e of n.succ) {
      const truth = edgeTruth(b, node, e);
      const info = b.ifs.get(node);
      let next = pub;
      let failing = false;
      if (info) {
        const verdict = (p: Pub): string => (!p.live ? 'unrelated' : truth === null ? (judge(info.stmt.cond, true, pubs[p.i]!.producer) === 'unrelated' ? 'unrelated' : 'unknown') : judge(info.stmt.cond, truth, pubs[p.i]!.producer));
        next = pub.filter((p) => verdict(p) === 'ok' || verdict(p) === 'unrelated');
        // Any call's failure branch is an error path: what it stores is teardown, not initialisation.
        if (truth !== null) for (const p of byVar.values()) if (judge(info.stmt.cond, truth, p) === 'fail') failing = true;
      }
      if (failing) continue;
      work.push({ node: e.to, pub: next });
    }
  }
  return [...found.values()];
}

function describeUse(u: { fn: FunctionModel; line: number; how: string; chain: string[] }, cls: string): string {
  return `${u.chain.join(' -> ')}: ${u.fn.name}() ${u.how} ${cls} (${u.fn.file}:${u.line})`;
}

export const publishBeforeInit = defineRule({
  id: 'publish-before-init',
  meta: {
    severity: 'warning',
    category: 'init-order',
    confidence: 'moderate',
    description: 'A registration makes an object reachable before the fields its callbacks use are initialised',
    reviewers:
      'Reviewers ask for every field a callback can touch to be set up before mdev_register_*/vfio_register_*/' +
      'request_irq/device_add and friends make the object reachable, and for the registration to be the last ' +
      'step of probe (Halil Pasic on vfio_ccw_sch_probe: "create will attempt to decrement private->avail which ' +
      'is initialized below. I fail to understand how is this well synchronized").',
    falsePositives:
      'A state field deliberately flipped after registration as the "ready" signal, with every callback checking it ' +
      'first (the NOT_OPER -> STANDBY idiom): the ordering is then intended, though reviewers still ask for the ' +
      'barrier or lock that makes the flip visible. Two objects of the same struct type (the field classes match).',
    messages: {
      late: '{{what}} in {{fn}}() runs after {{reg}} (line {{regLine}}) has made the object reachable, and {{callback}}() {{how}} {{field}}',
    },
  },
  async check(ctx: RuleContext) {
    // Nothing changed in C: do not build the model for nothing.
    if (!ctx.files.some((f) => f.path.endsWith('.c') && (f.added.size > 0 || f.removed.size > 0))) return;
    const after = await ctx.model('after');
    if (!after) return;
    const before = await ctx.model('before');
    for (const f of ctx.files) {
      if (f.status === 'deleted' || !f.path.endsWith('.c')) continue;
      for (const fn of touchedFunctions(after, f)) {
        const pubs = publications(after, fn);
        if (pubs.length === 0) continue;
        const late = lateInits(after, fn, pubs);
        if (late.length === 0) continue;
        const bfn = beforeFunction(before, f, fn.name);
        const old = new Set<string>();
        if (bfn && before) for (const l of lateInits(before, bfn, publications(before, bfn))) old.add(`${l.pub.call.callee}|${l.cls}`);
        // One finding per publication, at the added line that made the ordering.
        const byPub = new Map<Publication, LateInit[]>();
        for (const l of late) {
          if (old.has(`${l.pub.call.callee}|${l.cls}`)) continue;
          if (!f.added.has(l.line) && !f.added.has(l.pub.call.line)) continue;
          byPub.set(l.pub, [...(byPub.get(l.pub) ?? []), l]);
        }
        for (const [pub, list] of byPub) {
          list.sort((x, y) => x.line - y.line);
          const first = f.added.has(pub.call.line) ? list[0]! : list.find((l) => f.added.has(l.line))!;
          const line = f.added.has(pub.call.line) ? pub.call.line : first.line;
          const use = pub.uses.get(first.cls)!;
          const fields = [...new Set(list.map((l) => l.cls))];
          ctx.report({
            messageId: 'late',
            file: f.path,
            line,
            function: fn.name,
            data: {
              what: first.via ? `${first.what} (in ${first.via}())` : first.what,
              fn: fn.name,
              reg: `${pub.label}()`,
              regLine: pub.call.line,
              callback: use.fn.name,
              how: use.how,
              field: first.cls,
            },
            evidence: [
              `line ${pub.call.line}: ${pub.label}() publishes the object; its callbacks become callable`,
              ...list.map((l) => `line ${l.line}: ${l.what}${l.via ? ` in ${l.via}()` : ''} initialises ${l.cls} afterwards`),
              ...fields.map((c) => describeUse(pub.uses.get(c)!, c)),
            ],
            suggestion: `initialise ${fields.join(', ')} before ${pub.call.callee}(), and make the registration the last step (undo it first on teardown)`,
          });
        }
      }
    }
  },
});
