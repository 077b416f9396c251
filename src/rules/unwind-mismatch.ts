import { registrationUndo } from '../cmodel/apis.js';
import { findFunction, type Event, type FunctionModel, type TreeModel } from '../cmodel/index.js';
import {
  allStmts, beforeFunction, branchesOf, changedFunctions, edgeTruth, isErrorExpr, judge, mentions, producerOf, storesResultOf, typeOfName, unchangedLineMap,
  type Producer, type Verdict,
} from './flow/cflow.js';
import { ALLOC_FREES, CLEANUP, knownNames, NON_CONSUMING, PAIRS } from './flow/pairs.js';
import { defineRule, type RuleContext } from './types.js';

type CallEv = Event & { kind: 'call' };

interface Acq {
  call: CallEv;
  label: string;
  kind: 'register' | 'pair' | 'alloc' | 'helper';
  undo: Set<string>;
  /** The object's root variable, matched against the undo's arguments. */
  root: string | null;
  producer: Producer;
  /** The result is tested somewhere (stored, or called in a condition). */
  checked: boolean;
}

const rootOf = (arg: string | undefined): string | null => (arg ? /^\(?\s*&?\s*\(?\s*(?<r>[A-Za-z_]\w*)/.exec(arg.trim())?.groups?.r ?? null : null);

const deepCache = new WeakMap<FunctionModel, Set<string>>();
/** Callee names (and unregister APIs) of `fn` and the model functions it calls, two levels deep. */
function deepCallees(model: TreeModel, fn: FunctionModel, depth = 2): Set<string> {
  const hit = depth === 2 ? deepCache.get(fn) : undefined;
  if (hit) return hit;
  const out = new Set<string>();
  for (const ev of fn.events) {
    if (ev.kind === 'call') {
      out.add(ev.callee);
      const g = depth > 0 && !ev.indirect ? findFunction(model, ev.callee, fn.file) : null;
      if (g && g !== fn) for (const c of deepCallees(model, g, depth - 1)) out.add(c);
    }
  }
  if (depth === 2) deepCache.set(fn, out);
  return out;
}

/** The register events in `fn` and its callees (two levels). */
function registrationsDeep(model: TreeModel, fn: FunctionModel, depth = 2, seen = new Set<FunctionModel>()): (Event & { kind: 'register' })[] {
  if (seen.has(fn)) return [];
  seen.add(fn);
  const out: (Event & { kind: 'register' })[] = [];
  for (const ev of fn.events) {
    if (ev.kind === 'register') out.push(ev);
    else if (ev.kind === 'call' && !ev.special && !ev.indirect && depth > 0) {
      const g = findFunction(model, ev.callee, fn.file);
      if (g) out.push(...registrationsDeep(model, g, depth - 1, seen));
    }
  }
  return out;
}

/** What `fn` acquires that an error path must give back. */
function acquisitions(model: TreeModel, fn: FunctionModel): Acq[] {
  const known = knownNames(model);
  const b = branchesOf(fn);
  const inCond = new Set<Event>();
  for (const n of b.cfg.nodes) if (n.kind === 'branch') for (const e of n.events) inCond.add(e);
  const out: Acq[] = [];
  for (const ev of fn.events) {
    if (ev.kind !== 'call' || ev.indirect) continue;
    const pair = PAIRS[ev.callee];
    const producer = producerOf(model, fn, ev, pair?.kind ?? (ALLOC_FREES[ev.callee] ? 'pointer' : undefined));
    const base = { call: ev, producer, checked: producer.resultVar !== null || inCond.has(ev) };
    const reg = ev.special ? fn.events.find((e): e is Event & { kind: 'register' } => e.kind === 'register' && e.offset === ev.offset) : undefined;
    if (reg) {
      const undo = reg.undo.filter((u) => known.has(u));
      if (reg.api.startsWith('devm_') || undo.length === 0) continue;
      out.push({ ...base, label: `${reg.api}(${reg.args[0] ?? ''})`, kind: 'register', undo: new Set(undo), root: rootOf(reg.args[0]) });
    } else if (pair) {
      out.push({ ...base, label: `${ev.callee}()`, kind: 'pair', undo: new Set(pair.undo), root: producer.resultVar ?? rootOf(ev.args[0]) });
    } else if (ALLOC_FREES[ev.callee] && producer.resultVar && fn.locals.some((l) => l.name === producer.resultVar) && /\*/.test(typeOfName(model, fn, producer.resultVar) ?? '')) {
      out.push({ ...base, label: `${ev.callee}() into ${producer.resultVar}`, kind: 'alloc', undo: new Set(ALLOC_FREES[ev.callee]), root: producer.resultVar });
    } else if (!ev.special && !CLEANUP.test(ev.callee)) {
      // A helper that returns an error code and registers directly (`vfio_ccw_mdev_reg()`); one returning
      // an object owns what it registered for that object (`iommu_group_alloc()` and its sysfs files).
      const h = findFunction(model, ev.callee, fn.file);
      if (!h || h === fn || /\*/.test(h.returnType) || h.returnType.trim() === 'void') continue;
      const regs = registrationsDeep(model, h, 0).filter((r) => !r.api.startsWith('devm_') && r.undo.some((u) => known.has(u)));
      if (regs.length === 0) continue;
      const undo = new Set(regs.flatMap((r) => r.undo).filter((u) => known.has(u)));
      for (const u of registrationUndo(ev.callee) ?? []) if (known.has(u)) undo.add(u);
      // A helper that both sets up and tears down (`set_vector_signal(..., fd = -1)`) is no acquisition.
      if ([...deepCallees(model, h)].some((c) => undo.has(c))) continue;
      out.push({ ...base, label: `${ev.callee}() (${[...new Set(regs.map((r) => r.api))].join(', ')})`, kind: 'helper', undo, root: null });
    }
  }
  return out;
}

interface Held {
  a: number;
  st: 'pending' | 'confirmed' | 'unknown';
  /** The result variable still holds this acquisition's result (a later `ret = f()` ends that). */
  live: boolean;
}

interface State {
  node: number;
  held: Held[];
  vals: [string, 'err' | 'ok'][];
  /** x released while y (acquired after x) was still held: [x, y, line of x's release]. */
  early: [number, number, number][];
  viol: [number, number, number][];
  fail: number | null;
  /** The last `if` decided on the path: the failure point when no tested result says so. Witness only. */
  last: number | null;
}

/** A defect on one error path. */
export interface Defect {
  kind: 'missing' | 'order';
  acq: Acq;
  /** For `order`: the acquisition released too late. */
  other: Acq | null;
  failLines: Set<number>;
  exitLine: number;
  releaseLine: number | null;
}

/** Error paths of `fn` that keep an acquisition or give acquisitions back out of order. */
export function defectsOf(model: TreeModel, fn: FunctionModel): Defect[] {
  const acqs = acquisitions(model, fn);
  if (acqs.length === 0 || fn.returnType.trim() === 'void') return [];
  const b = branchesOf(fn);
  const byCall = new Map(acqs.map((a, i) => [a.call as Event, i]));
  const producers = new Map<string, Producer>();
  for (const ev of fn.events) if (ev.kind === 'call') {
    const p = producerOf(model, fn, ev);
    if (p.resultVar) producers.set(p.resultVar, p);
  }
  // Undo calls inside loops (unwinding every element) and inside ifs (conditional unwinding) cannot be
  // counted on a bounded walk: a path passing such a loop or if is not judged for those acquisitions.
  const stmts = allStmts(fn.body);
  const undoIn = (body: ReturnType<typeof allStmts>): CallEv[] => allStmts(body).flatMap((s) => ('events' in s ? s.events : []).filter((e): e is CallEv => e.kind === 'call'));
  const loopUndo = new Map<number, CallEv[]>();
  const ifUndo = new Map<number, CallEv[]>();
  for (const s of stmts) {
    if (s.kind === 'loop' && !s.once) loopUndo.set(s.line, undoIn(s.body));
    if (s.kind === 'if') ifUndo.set(s.line, [...undoIn(s.then), ...undoIn(s.else ?? [])]);
  }
  const undoes = (c: CallEv, a: Acq): 'args' | 'name' | null => {
    if (c === a.call) return null;
    const direct = a.undo.has(c.callee);
    const viaHelper = !direct && !c.indirect && (() => {
      const u = findFunction(model, c.callee, fn.file);
      return u !== null && u !== fn && [...deepCallees(model, u)].some((x) => a.undo.has(x));
    })();
    if (!direct && !viaHelper) return null;
    if (a.root === null || c.args.some((x) => rootOf(x) === a.root)) return 'args';
    return 'name';
  };
  // A handle kept in an object (`region->ioaddr = ioremap(...)`, a global) is the object's to release,
  // unless this function itself releases it somewhere (then its error paths should too).
  const owned = (a: Acq): boolean => {
    const v = a.producer.resultVar;
    const stored = fn.events.some((e) => (e.kind === 'assign' || e.kind === 'store') && storesResultOf(e, a.call));
    if (a.kind === 'register' || a.kind === 'helper' || (v === null && !stored) || (v !== null && fn.locals.some((l) => l.name === v))) return true;
    return fn.events.some((c) => c.kind === 'call' && undoes(c, a) !== null);
  };
  for (let i = 0; i < acqs.length; i++) if (!owned(acqs[i]!)) byCall.delete(acqs[i]!.call);
  const related = (x: Acq, y: Acq): boolean => (x.kind !== 'alloc' || y.kind !== 'alloc') && (x.kind === 'register' || y.kind === 'register' || (x.root !== null && x.root === y.root));
  const defects = new Map<string, Defect>();
  const seen = new Set<string>();
  const work: State[] = [{ node: b.cfg.entry, held: [], vals: [], early: [], viol: [], fail: null, last: null }];
  let budget = 20_000;
  while (work.length && budget-- > 0) {
    const s = work.pop()!;
    const key = JSON.stringify([s.node, s.held, s.vals, s.early, s.viol, s.fail]);
    if (seen.has(key)) continue;
    seen.add(key);
    const node = b.cfg.nodes[s.node]!;
    let held = [...s.held];
    const vals = new Map(s.vals);
    const early = [...s.early];
    const viol = [...s.viol];
    const release = (i: number, line: number, ordered: boolean): void => {
      const h = held[i]!;
      if (ordered && h.st === 'confirmed') {
        for (const e of early) if (e[1] === h.a) viol.push([e[0], e[1], e[2]]);
        for (const later of held.slice(i + 1)) if (later.st === 'confirmed' && related(acqs[h.a]!, acqs[later.a]!)) early.push([h.a, later.a, line]);
      }
      held.splice(i, 1);
    };
    for (const l of loopUndo.get(node.line) ?? []) if (node.kind === 'branch') held = held.filter((h) => !undoes(l, acqs[h.a]!));
    let returned: string | null | undefined;
    for (const ev of node.events) {
      if (ev.kind === 'call') {
        const i = byCall.get(ev);
        const undoing = held.some((h) => undoes(ev, acqs[h.a]!) !== null);
        if (i !== undefined && !undoing) {
          // Set up again on a failing path: a rollback of a teardown, not a step to unwind.
          if (!held.some((h) => h.a === i) && s.fail === null) held.push({ a: i, st: acqs[i]!.checked ? 'pending' : 'confirmed', live: true });
          continue;
        }
        // A direct undo gives back the most recent matching acquisition (by argument when the arguments
        // tell); a helper gives back everything it undoes, in an order we do not know.
        const matches = held.map((h, k) => ({ k, m: undoes(ev, acqs[h.a]!), direct: acqs[h.a]!.undo.has(ev.callee) })).filter((x) => x.m !== null);
        const direct = matches.filter((x) => x.direct);
        const pick = direct.filter((x) => x.m === 'args').pop() ?? direct.pop();
        if (pick) release(pick.k, ev.line, true);
        else if (matches.length) held = held.filter((_, k) => !matches.some((x) => x.k === k));
        // A cleanup-looking call the model cannot see into may undo anything; so may dropping a reference
        // (kobject_put(), put_device(): the release callback frees ids, files and references taken before).
        else if (!findFunction(model, ev.callee, fn.file) && CLEANUP.test(ev.callee) && !registrationUndo(ev.callee) && (!ev.special || /put/.test(ev.callee))) {
          held = held.map((h) => (acqs[h.a]!.kind === 'alloc' ? h : { ...h, st: 'unknown' }));
        }
        if (!NON_CONSUMING.test(ev.callee)) held = held.filter((h) => acqs[h.a]!.kind !== 'alloc' || !ev.args.some((x) => mentions(x, acqs[h.a]!.root!)) || acqs[h.a]!.undo.has(ev.callee));
      } else if (ev.kind === 'assign' || ev.kind === 'store') {
        const t = ev.target.replace(/\s+/g, '');
        held = held.map((h) => {
          const a = acqs[h.a]!;
          return h.live && !storesResultOf(ev, a.call) && a.producer.resultVar === t ? { ...h, live: false, st: h.st === 'pending' ? 'unknown' : h.st } : h;
        });
        if (ev.kind === 'store') {
          held = held.filter((h) => acqs[h.a]!.kind !== 'alloc' || !mentions(ev.value, acqs[h.a]!.root!));
          continue;
        }
        const err = isErrorExpr(ev.value) ? 'err' : /^0$/.test(ev.value.trim()) ? 'ok' : null;
        if (err) vals.set(t, err);
        else vals.delete(t);
        held = held.filter((h) => {
          const a = acqs[h.a]!;
          if (a.kind !== 'alloc' || storesResultOf(ev, a.call)) return true;
          return !mentions(ev.value, a.root!) && t !== a.root;
        });
      } else if (ev.kind === 'return') returned = ev.expr;
    }
    if (node.kind === 'return') {
      const expr = returned ?? node.returns;
      const e = expr?.trim() ?? null;
      const isErr = e !== null && (isErrorExpr(e) || (/^[A-Za-z_]\w*$/.test(e) && vals.get(e) === 'err'));
      if (!isErr) continue;
      const escaped = (h: Held): boolean => acqs[h.a]!.kind === 'alloc' && e !== null && mentions(e, acqs[h.a]!.root!);
      for (const h of held) {
        if (h.st !== 'confirmed' || escaped(h)) continue;
        const k = `missing|${h.a}`;
        const d = defects.get(k) ?? { kind: 'missing', acq: acqs[h.a]!, other: null, failLines: new Set(), exitLine: node.line, releaseLine: null };
        d.failLines.add(s.fail ?? s.last ?? node.line);
        defects.set(k, d);
      }
      for (const [x, y, line] of viol) {
        const k = `order|${x}|${y}`;
        const d = defects.get(k) ?? { kind: 'order', acq: acqs[x]!, other: acqs[y]!, failLines: new Set(), exitLine: node.line, releaseLine: line };
        d.failLines.add(s.fail ?? s.last ?? node.line);
        defects.set(k, d);
      }
      continue;
    }
    const info = b.ifs.get(s.node);
    for (const edge of node.succ) {
      const truth = edgeTruth(b, s.node, edge);
      let nh = held;
      let fail = s.fail;
      const nv = new Map(vals);
      if (info) {
        const verdict = (p: Producer): Verdict => (truth === null ? (judge(info.stmt.cond, true, p) === 'unrelated' ? 'unrelated' : 'unknown') : judge(info.stmt.cond, truth, p));
        nh = [];
        for (const h of held) {
          const v = h.live ? verdict(acqs[h.a]!.producer) : 'unrelated';
          if (v === 'fail') {
            fail = node.line;
            if (acqs[h.a]!.producer.resultVar) nv.set(acqs[h.a]!.producer.resultVar!, 'err');
            continue;
          }
          nh.push(v === 'ok' && h.st === 'pending' ? { ...h, st: 'confirmed' } : v === 'unknown' ? { ...h, st: 'unknown' } : h);
        }
        for (const [name, p] of producers) {
          if (verdict(p) === 'fail') {
            nv.set(name, 'err');
            fail = node.line;
          }
        }
        const cond = ifUndo.get(node.line) ?? [];
        if (cond.length) nh = nh.map((h) => (cond.some((c) => undoes(c, acqs[h.a]!)) ? { ...h, st: 'unknown' } : h));
      }
      work.push({ node: edge.to, held: nh, vals: [...nv].sort(), early, viol, fail, last: info ? node.line : s.last });
    }
  }
  // A walk cut short by its budget may have missed the undo on some path: say nothing.
  return budget > 0 ? [...defects.values()] : [];
}

function keyOf(d: Defect): string {
  return d.kind === 'missing' ? `missing|${d.acq.label}` : `order|${d.acq.label}|${d.other!.label}`;
}

export const unwindMismatch = defineRule({
  id: 'unwind-mismatch',
  meta: {
    severity: 'warning',
    category: 'refcount',
    confidence: 'moderate',
    description: 'An error path after a registration or paired acquisition does not undo it, or undoes in the wrong order',
    reviewers:
      'Reviewers read the goto ladder against the setup sequence: every step taken before a failure must be undone ' +
      'on that failure, in reverse order, so a callback cannot run against state already freed ("the error path ' +
      'leaks the registration", "unwind in the reverse order of setup").',
    falsePositives:
      'An undo performed by a helper or callback the model cannot see (another file, a devm action, the caller ' +
      'cleaning up on error by contract); conditional unwinding whose condition the walk cannot correlate is skipped.',
    messages: {
      missing: '{{acq}} (line {{line}}) {{verb}} not undone when {{fn}}() fails at line {{fail}}: the error path returns at line {{exit}} without {{undo}}()',
      order: '{{first}} is undone at line {{release}} before {{second}}, which was set up after it: the error path of {{fn}}() unwinds in the order of setup, not the reverse',
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
      for (const fn of changedFunctions(after, before, f)) {
        const found = defectsOf(after, fn);
        if (found.length === 0) continue;
        const bfn = beforeFunction(before, f, fn.name);
        const oldDefects = bfn && before ? defectsOf(before, bfn) : [];
        const old = new Set(oldDefects.map(keyOf));
        // The same failure branch already leaking the same kind of step (`iommu_attach_group()` renamed to
        // `iommu_attach_device()` by the patch) is not the patch's doing.
        const aText = ctx.after(f.path);
        const bText = ctx.before(f.oldPath ?? f.path);
        const lineMap = aText !== null && bText !== null ? unchangedLineMap(f, aText.split('\n').length, bText.split('\n').length) : new Map<number, number>();
        const stem = (a: Acq): string => `${a.kind}|${a.call.callee.replace(/_[a-z0-9]+$/, '')}`;
        const oldAt = new Set(oldDefects.filter((d) => d.kind === 'missing').flatMap((d) => [...d.failLines].map((l) => `${l}|${stem(d.acq)}`)));
        const wasThere = (d: Defect): boolean =>
          d.kind === 'missing' && [...d.failLines].every((l) => lineMap.has(l) && oldAt.has(`${lineMap.get(l)}|${stem(d.acq)}`));
        // Missing undos reported at the same failure point make one finding.
        const missing = new Map<number, { defects: Defect[]; fail: number }>();
        for (const d of found) {
          if (old.has(keyOf(d)) || wasThere(d)) continue;
          const fails = [...d.failLines].sort((x, y) => x - y);
          const addedFail = fails.find((l) => f.added.has(l));
          if (d.kind === 'missing') {
            const line = addedFail ?? (f.added.has(d.acq.call.line) ? d.acq.call.line : fails[0]!);
            const g = missing.get(line) ?? { defects: [], fail: addedFail ?? fails[0]! };
            g.defects.push(d);
            missing.set(line, g);
          } else {
            const line = [d.releaseLine!, ...fails].find((l) => f.added.has(l)) ?? d.releaseLine!;
            ctx.report({
              messageId: 'order',
              file: f.path,
              line,
              function: fn.name,
              data: { first: d.acq.label, release: d.releaseLine!, second: d.other!.label, fn: fn.name },
              evidence: [`line ${d.acq.call.line}: ${d.acq.label}`, `line ${d.other!.call.line}: ${d.other!.label}`, `line ${d.releaseLine}: ${d.acq.label} undone first`, ...fails.map((l) => `line ${l}: failure branch`)],
              suggestion: 'reorder the error labels so the last step set up is the first undone',
            });
          }
        }
        for (const [line, g] of missing) {
          const ds = g.defects.sort((x, y) => x.acq.call.line - y.acq.call.line);
          const undo = ds.map((d) => `${[...d.acq.undo].join('()/')}()`).join(' and ');
          ctx.report({
            messageId: 'missing',
            file: f.path,
            line,
            function: fn.name,
            data: {
              acq: ds.map((d) => d.acq.label).join(' and '),
              line: ds.map((d) => d.acq.call.line).join(', '),
              fn: fn.name,
              fail: g.fail,
              exit: ds[0]!.exitLine,
              undo: undo.replace(/\(\)$/, ''),
              verb: ds.length > 1 ? 'are' : 'is',
            },
            evidence: [
              ...ds.map((d) => `line ${d.acq.call.line}: ${d.acq.label} succeeds`),
              ...[...new Set(ds.flatMap((d) => [...d.failLines]))].sort((x, y) => x - y).map((l) => `line ${l}: failure branch taken with it still held`),
              `line ${ds[0]!.exitLine}: returns an error`,
            ],
            suggestion: `add ${undo} to the unwind ladder, in reverse order of setup`,
          });
        }
      }
    }
  },
});
