/**
 * A control-flow graph over a function's statement tree, for the path walker. Nodes carry the
 * events executed there; edges carry what taking them tells us: a condition's truth (so identical
 * conditions later on the path can be correlated) and the outcome of a conditional lock
 * (`if (!mutex_trylock(&l)) return -EBUSY;` acquires only on the fall-through edge).
 * `guard()` locks get synthetic release events wherever control leaves their block.
 */
import type { Event, LockEvent } from './events.js';
import type { FunctionModel, Stmt } from './functions.js';

/** A condition assumed by taking an edge: `kvm` is true, `matrix_mdev && matrix_mdev->kvm` is false. */
export interface Assumption {
  cond: string;
  truth: boolean;
}

/** An edge of the graph. */
export interface CfgEdge {
  to: number;
  assume: Assumption | null;
  /** Facts about call results the branch decides (`@call:<offset>` is true when the call returned non-zero). */
  also?: Assumption[];
  /** Conditional acquires decided on this edge. */
  locks: { event: LockEvent; acquired: boolean }[];
}

/** A graph node: the events run there, in order. */
export interface CfgNode {
  id: number;
  line: number;
  kind: 'entry' | 'exit' | 'step' | 'branch' | 'return' | 'label' | 'join';
  events: Event[];
  succ: CfgEdge[];
  /** For `return` nodes, the returned expression. */
  returns: string | null;
  /** For `branch` nodes of loops, marks the back-edge target so walkers can bound iterations. */
  loopHead: boolean;
}

/** The graph of one function; node 0 is the entry and node 1 the exit. */
export interface Cfg {
  nodes: CfgNode[];
  entry: number;
  exit: number;
}

interface Pending {
  from: number;
  assume: Assumption | null;
  also?: Assumption[];
  locks: { event: LockEvent; acquired: boolean }[];
}

interface Scope {
  guards: LockEvent[];
}

interface LoopCtx {
  breaks: Pending[];
  continues: Pending[];
  scopeDepth: number;
}

/** The assumption key for "the call at `offset` returned non-zero". */
export function callResultKey(offset: number): string {
  return `@call:${offset}`;
}

/** Negations folded into the truth value so `!kvm` and `kvm` correlate. */
export function normaliseCondition(cond: string, truth: boolean): Assumption {
  let c = cond.replace(/\s+/g, ' ').trim();
  let t = truth;
  for (let guard = 0; guard < 4; guard++) {
    const m = /^!\s*(?<rest>[\w.>-]+|\((?<inner>.*)\))$/.exec(c);
    if (!m) break;
    const inner = m.groups!.inner;
    if (inner !== undefined && !balanced(inner)) break;
    c = (inner ?? m.groups!.rest!).trim();
    t = !t;
  }
  return { cond: c, truth: t };
}

function balanced(s: string): boolean {
  let d = 0;
  for (const ch of s) {
    if (ch === '(') d++;
    else if (ch === ')' && --d < 0) return false;
  }
  return d === 0;
}

class CfgBuilder {
  readonly nodes: CfgNode[] = [];
  private readonly scopes: Scope[] = [];
  private readonly loops: LoopCtx[] = [];
  private readonly labels = new Map<string, number>();
  private readonly gotos: { label: string; pending: Pending }[] = [];

  constructor() {
    this.node('entry', 0);
    this.node('exit', 0);
  }

  node(kind: CfgNode['kind'], line: number, events: Event[] = [], returns: string | null = null): number {
    const id = this.nodes.length;
    this.nodes.push({ id, line, kind, events, succ: [], returns, loopHead: false });
    return id;
  }

  connect(pending: Pending[], to: number): void {
    for (const p of pending) this.nodes[p.from]!.succ.push({ to, assume: p.assume, locks: p.locks, ...(p.also ? { also: p.also } : {}) });
  }

  /** A node after `pending`, returning the new frontier. */
  step(pending: Pending[], kind: CfgNode['kind'], line: number, events: Event[]): Pending[] {
    if (pending.length === 0 && kind !== 'label') return [];
    const id = this.node(kind, line, events);
    this.connect(pending, id);
    return [{ from: id, assume: null, locks: [] }];
  }

  /** Release events for the guards of scopes deeper than `depth`, innermost first. */
  private guardReleases(depth: number, line: number): Event[] {
    const out: Event[] = [];
    for (let i = this.scopes.length - 1; i >= depth; i--) {
      for (const g of [...this.scopes[i]!.guards].reverse()) {
        out.push({ ...g, op: 'release', api: `${g.api}:exit`, acquiredWhen: null, line, offset: g.offset });
      }
    }
    return out;
  }

  block(stmts: Stmt[], pending: Pending[], endLine: number): Pending[] {
    this.scopes.push({ guards: [] });
    let cur = this.list(stmts, pending);
    const rel = this.guardReleases(this.scopes.length - 1, endLine);
    if (rel.length) cur = this.step(cur, 'step', endLine, rel);
    this.scopes.pop();
    return cur;
  }

  list(stmts: Stmt[], pending: Pending[]): Pending[] {
    let cur = pending;
    for (let i = 0; i < stmts.length; i++) {
      const s = stmts[i]!;
      const next = stmts[i + 1];
      // `ret = mutex_lock_interruptible(&l); if (ret) return ret;`: decide the acquire on the if's edges.
      const deferred = next?.kind === 'if' ? this.deferredAcquire(s, next.cond) : null;
      if (deferred) {
        const events = (s.kind === 'expr' || s.kind === 'decl' ? s.events : []).filter((e) => e !== deferred.event);
        cur = this.step(cur, 'step', s.line, events);
        cur = this.ifStmt(next as Extract<Stmt, { kind: 'if' }>, cur, [deferred]);
        i++;
        continue;
      }
      cur = this.stmt(s, cur);
    }
    return cur;
  }

  /** The conditional acquire whose result `s` stores in a variable that `cond` tests, with the test's polarity. */
  private deferredAcquire(s: Stmt, cond: string): { event: LockEvent; acquiredIf: boolean } | null {
    if (s.kind !== 'expr' && s.kind !== 'decl') return null;
    for (let i = 0; i < s.events.length; i++) {
      const e = s.events[i]!;
      if (e.kind !== 'lock' || e.op !== 'acquire' || !e.acquiredWhen) continue;
      const assign = s.events.slice(i + 1).find((a) => a.kind === 'assign' && a.fromCall === e.api);
      if (!assign || assign.kind !== 'assign') continue;
      const v = assign.target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const m = new RegExp(String.raw`^(?<neg>!\s*)?\(?\s*${v}\s*(?<cmp>==\s*0|!=\s*0|<\s*0)?\s*\)?$`).exec(cond.trim());
      if (!m) continue;
      // Truthy test of the result: `ret`, `ret != 0`, `ret < 0` are truthy on failure for zero-success APIs.
      let truthyMeansNonzero = true;
      if (m.groups!.neg) truthyMeansNonzero = !truthyMeansNonzero;
      if (m.groups!.cmp?.startsWith('==')) truthyMeansNonzero = !truthyMeansNonzero;
      const acquiredIf = e.acquiredWhen === 'nonzero' ? truthyMeansNonzero : !truthyMeansNonzero;
      return { event: e, acquiredIf };
    }
    return null;
  }

  private ifStmt(s: Extract<Stmt, { kind: 'if' }>, pending: Pending[], extra: { event: LockEvent; acquiredIf: boolean }[]): Pending[] {
    const condLocks = [...extra, ...s.condLocks.map((c) => ({ event: s.condEvents.find((e) => e.offset === c.offset && e.kind === 'lock') as LockEvent | undefined, acquiredIf: c.acquiredIf }))
      .filter((c): c is { event: LockEvent; acquiredIf: boolean } => c.event !== undefined)];
    const decided = new Set<Event>(condLocks.map((c) => c.event));
    const cur = this.step(pending, 'branch', s.line, s.condEvents.filter((e) => !decided.has(e)));
    if (cur.length === 0) return [];
    const from = cur[0]!.from;
    // Conditions with calls are not stable values: do not correlate them.
    const pure = !s.condEvents.some((e) => e.kind === 'call');
    const edge = (truth: boolean): Pending => ({
      from,
      assume: pure && s.cond ? normaliseCondition(s.cond, truth) : null,
      locks: condLocks.map((c) => ({ event: c.event, acquired: c.acquiredIf === truth })),
      ...(s.condCalls.length ? { also: s.condCalls.map((c) => ({ cond: callResultKey(c.offset), truth: c.truthyIf === truth })) } : {}),
    });
    const thenEnd = this.block(s.then, [edge(true)], s.endLine);
    const elseEnd = s.else ? this.block(s.else, [edge(false)], s.endLine) : [edge(false)];
    return [...thenEnd, ...elseEnd];
  }

  stmt(s: Stmt, pending: Pending[]): Pending[] {
    switch (s.kind) {
      case 'expr':
      case 'decl':
      case 'unparsed': {
        for (const e of s.events) if (e.kind === 'lock' && e.scope === 'guard' && e.op === 'acquire') this.scopes[this.scopes.length - 1]?.guards.push(e);
        return this.step(pending, 'step', s.line, s.events);
      }
      case 'block':
        return this.block(s.body, pending, s.endLine);
      case 'if':
        return this.ifStmt(s, pending, []);
      case 'return': {
        const rel = this.guardReleases(0, s.line);
        const id = this.node('return', s.line, [...s.events.filter((e) => e.kind !== 'return'), ...rel, ...s.events.filter((e) => e.kind === 'return')], s.expr);
        this.connect(pending, id);
        this.nodes[id]!.succ.push({ to: 1, assume: null, locks: [] });
        return [];
      }
      case 'goto': {
        // Guards are released when leaving their block; error labels sit at function level.
        const rel = this.guardReleases(1, s.line);
        const cur = rel.length ? this.step(pending, 'step', s.line, rel) : pending;
        for (const p of cur) this.gotos.push({ label: s.label, pending: p });
        return [];
      }
      case 'label': {
        const id = this.node('label', s.line);
        this.labels.set(s.label, id);
        this.connect(pending, id);
        return [{ from: id, assume: null, locks: [] }];
      }
      case 'break':
      case 'continue': {
        const loop = this.loops[this.loops.length - 1];
        if (!loop) return [];
        const rel = this.guardReleases(loop.scopeDepth, s.line);
        const cur = rel.length ? this.step(pending, 'step', s.line, rel) : pending;
        (s.kind === 'break' ? loop.breaks : loop.continues).push(...cur);
        return [];
      }
      case 'switch':
        return this.switchStmt(s, pending);
      case 'loop':
        return this.loop(s, pending);
      case 'scoped': {
        this.scopes.push({ guards: [] });
        let cur = this.step(pending, 'step', s.line, s.header);
        for (const e of s.header) if (e.kind === 'lock' && e.op === 'acquire' && e.scope === 'scoped_guard') this.scopes[this.scopes.length - 1]!.guards.push(e);
        // scoped_guard is a one-shot for loop: `break` leaves it, releasing the guard.
        const ctx: LoopCtx = { breaks: [], continues: [], scopeDepth: this.scopes.length - 1 };
        this.loops.push(ctx);
        cur = this.block(s.body, cur, s.endLine);
        this.loops.pop();
        const rel = this.guardReleases(this.scopes.length - 1, s.endLine);
        cur = rel.length ? this.step([...cur, ...ctx.continues], 'step', s.endLine, rel) : [...cur, ...ctx.continues];
        this.scopes.pop();
        return [...cur, ...ctx.breaks];
      }
    }
  }

  private switchStmt(s: Extract<Stmt, { kind: 'switch' }>, pending: Pending[]): Pending[] {
    const cur = this.step(pending, 'branch', s.line, s.condEvents);
    if (cur.length === 0) return [];
    const from = cur[0]!.from;
    const ctx: LoopCtx = { breaks: [], continues: [], scopeDepth: this.scopes.length };
    // `continue` inside a switch belongs to the enclosing loop.
    const outer = this.loops[this.loops.length - 1];
    this.loops.push(ctx);
    let fall: Pending[] = [];
    for (const c of s.cases) {
      const entry = c.values.length || c.isDefault ? [{ from, assume: null, locks: [] }] : [];
      fall = this.block(c.body, [...fall, ...entry], c.line);
    }
    this.loops.pop();
    if (outer) outer.continues.push(...ctx.continues);
    const noDefault = !s.cases.some((c) => c.isDefault) ? [{ from, assume: null, locks: [] }] : [];
    return [...fall, ...ctx.breaks, ...noDefault];
  }

  private loop(s: Extract<Stmt, { kind: 'loop' }>, pending: Pending[]): Pending[] {
    let cur = s.init.length ? this.step(pending, 'step', s.line, s.init) : pending;
    const ctx: LoopCtx = { breaks: [], continues: [], scopeDepth: this.scopes.length };
    this.loops.push(ctx);
    if (s.loop === 'do') {
      const head = this.node('join', s.line);
      this.nodes[head]!.loopHead = true;
      this.connect(cur, head);
      const bodyEnd = this.block(s.body, [{ from: head, assume: null, locks: [] }], s.endLine);
      const condNode = this.step([...bodyEnd, ...ctx.continues], 'branch', s.endLine, s.condEvents);
      this.loops.pop();
      if (condNode.length === 0) return ctx.breaks;
      if (!s.once) this.nodes[condNode[0]!.from]!.succ.push({ to: head, assume: null, locks: [] });
      return s.infinite ? ctx.breaks : [...condNode, ...ctx.breaks];
    }
    cur = this.step(cur, 'branch', s.line, s.condEvents);
    this.loops.pop();
    if (cur.length === 0) return [];
    const head = cur[0]!.from;
    this.nodes[head]!.loopHead = true;
    this.loops.push(ctx);
    let bodyEnd = this.block(s.body, [{ from: head, assume: null, locks: [] }], s.endLine);
    bodyEnd = [...bodyEnd, ...ctx.continues];
    if (s.update.length) bodyEnd = this.step(bodyEnd, 'step', s.endLine, s.update);
    this.loops.pop();
    // A one-shot macro block (not an iterator) runs its body exactly once: no back edge, no skip.
    if (s.once) return [...bodyEnd, ...ctx.breaks];
    this.connect(bodyEnd, head);
    const exit = s.infinite ? [] : [{ from: head, assume: null, locks: [] }];
    return [...exit, ...ctx.breaks];
  }

  resolveGotos(): void {
    for (const g of this.gotos) {
      const to = this.labels.get(g.label);
      if (to !== undefined) this.nodes[g.pending.from]!.succ.push({ to, assume: g.pending.assume, locks: g.pending.locks, ...(g.pending.also ? { also: g.pending.also } : {}) });
    }
  }
}

/** Build the control-flow graph of a function. */
export function buildCfg(fn: FunctionModel): Cfg {
  const b = new CfgBuilder();
  const end = b.block(fn.body, [{ from: 0, assume: null, locks: [] }], fn.endLine);
  b.connect(end, 1);
  b.resolveGotos();
  return { nodes: b.nodes, entry: 0, exit: 1 };
}
