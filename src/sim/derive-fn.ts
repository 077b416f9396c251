/**
 * One thread's program from one entry function of the C model: the statement tree walked in
 * order, calls inlined to a bounded depth (callee summaries beyond it), loops unrolled, every op
 * carrying its file:line. The event-level translation lives in derive-events.ts.
 *
 * Conditions are kept when they test what the program tracks: locals holding constants, lock
 * results and inlined callees' return values, and shared fields (loaded from their cells).
 * Other conditions become a nondeterministic choice stored in a register, so the same untracked
 * condition tested twice (`if (m && m->kvm) lock` ... `if (m && m->kvm) unlock`) goes the same
 * way both times, as the summaries' assumptions do; assigning a variable it mentions forgets it.
 */
import type { Event, FunctionModel, LockEvent, Stmt, TreeModel } from '../cmodel/index.js';
import { fieldClassOf, lockClass, textPath } from '../cmodel/index.js';
import type { AccessPath } from '../cmodel/events.js';
import { conditionKey, rewritePure, translate } from './derive-expr.js';
import { emitEvents, registrationCell } from './derive-events.js';
import { builder as t, type Container, type Op, type Src } from './model.js';

/** Bounds of the derivation. */
export interface DeriveOptions {
  /** Calls are inlined this deep (default 4); deeper calls contribute their summary's locks. */
  inlineDepth: number;
  /** Loop bodies run at most this many times (default 1). */
  unroll: number;
  /** Past this many ops, calls are summarised rather than inlined (default 3000). */
  maxOps: number;
  /** Ops member -> the function the scenario says it calls. */
  ops?: Readonly<Record<string, string>>;
  /** Functions summarised rather than inlined (TreeSource.opaque). */
  opaque?: ReadonlySet<string>;
  /** Abstracted containers (TreeSource.containers). */
  containers?: readonly Container[];
  /**
   * Cells that can interact (written by one thread, touched by another), from a first pass; reads
   * of other cells are unknown values. Undefined in the first pass: every cell counts.
   */
  shared?: ReadonlySet<string>;
}

/** One function activation being inlined. */
export interface Frame {
  fn: FunctionModel;
  prefix: string;
  depth: number;
  retReg: string | null;
  retLabel: string | null;
  /** Tracked locals and parameters -> register. */
  vars: Map<string, string>;
  /** Parameters -> the caller's argument text, canonical (for condition keys). */
  rename: Map<string, string>;
  /** Variables bound to scenario objects. */
  objects: Map<string, string>;
  /** Guard locks per open block (index 0: the function body). */
  guards: LockEvent[][];
  loops: { brk: string; cont: string; guardDepth: number }[];
  /** Inline chain, for recursion. */
  stack: string[];
  /** Events already translated (assigns consumed by a call or lock result). */
  handled: Set<Event>;
  /** Call offsets whose result goes to a register chosen by the statement (conditions, returns). */
  callRegs: Map<number, string>;
  /** Where the caller called this activation (absent for the entry function). */
  site?: Src;
}

/** Builds the ops of one thread. */
export class Deriver {
  readonly ops: Op[] = [];
  private counter = 0;
  /** Untracked conditions already decided, by canonical text -> register. */
  private readonly conds = new Map<string, string>();
  /**
   * Registers that may hold an unknown value somewhere in the program. Conditions over them are
   * decided once (correlated) rather than evaluated, which would go both ways at every test.
   */
  private readonly unknown = new Set<string>();
  /**
   * Registers holding a pointer loaded from a shared cell (`o = h->cur`): the only register pointers
   * whose dereferences are checked, since other pointer values (results of untracked calls, NULL on
   * paths the model cannot rule out) would give false alarms.
   */
  readonly loaded = new Set<string>();
  /**
   * Registers holding a pointer to an object this thread allocated and has not published yet, or
   * read out of such an object (`d = ops->domain_alloc()`, then `c = d->iova_cookie`). The model's
   * cells are per struct member, not per object, so without this a thread freeing what it just
   * allocated (an allocation's own failure path) would free "the" object every other thread uses.
   * Storing the pointer anywhere, or handing it to a call the model does not follow, publishes it.
   */
  readonly own = new Set<string>();
  /** Registers standing for a call or accessor inside a condition's text (`v3` for `READ_ONCE(x)`). */
  private readonly temps = new Set<string>();

  constructor(readonly model: TreeModel, readonly opts: DeriveOptions) {}

  fresh(prefix: string): string {
    return `${prefix}${this.counter++}`;
  }

  at(f: Frame, line: number): Src {
    return { file: f.fn.file, line, fn: f.fn.name, ...(f.site ? { caller: f.site } : {}) };
  }

  emit(op: Op): void {
    this.ops.push(op);
    const mark = (reg: string | null, value: string | number): void => {
      if (!reg) return;
      if (typeof value === 'string' && (value.includes('?') || value.split(/[^\w]+/).some((w) => this.unknown.has(w)))) this.unknown.add(reg);
    };
    if (op.kind === 'set') mark(op.reg, op.value);
    else if ((op.kind === 'read' || op.kind === 'rmw') && this.opts.shared && !this.opts.shared.has(op.cell)) mark(op.reg, '?');
    else if (op.kind === 'rmw') mark(op.reg, String(op.arg));
  }

  /** The program of `fn` with parameters bound to scenario objects. */
  thread(fn: FunctionModel, args: Record<string, string>, after?: string): Op[] {
    const f = this.frame(fn, '', 0, null, null, [`${fn.file}:${fn.name}`]);
    for (const [p, o] of Object.entries(args)) f.objects.set(p, o);
    if (after) {
      // Not callable before the registration that publishes it: earlier paths are infeasible.
      this.emit(t.note(t.acquire(registrationCell(after), 'published', this.at(f, fn.line)), `(${after}() has published ${fn.name})`));
      this.emit(t.assume('published == 1'));
    }
    this.body(fn.body, f);
    this.emit(t.ret('?', this.at(f, fn.endLine)));
    return this.ops;
  }

  frame(fn: FunctionModel, prefix: string, depth: number, retReg: string | null, retLabel: string | null, stack: string[]): Frame {
    return { fn, prefix, depth, retReg, retLabel, vars: new Map(), rename: new Map(), objects: new Map(), guards: [], loops: [], stack, handled: new Set(), callRegs: new Map() };
  }

  /** A function body (or an inlined callee's). */
  body(stmts: Stmt[], f: Frame): void {
    this.block(stmts, f, f.fn.endLine);
  }

  /** The register tracking local `v` (created on first use). */
  bindVar(f: Frame, v: string): string {
    let r = f.vars.get(v);
    if (!r) f.vars.set(v, (r = `${f.prefix}${v.replace(/\W/g, '_')}`));
    return r;
  }

  /** Forget decided conditions that mention `v` (it was assigned). */
  forget(f: Frame, v: string): void {
    const name = this.canonical(f, v);
    const re = new RegExp(String.raw`(?<![\w>.])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?!\w)`);
    for (const k of [...this.conds.keys()]) if (re.test(k)) this.conds.delete(k);
  }

  /** A variable's name in the entry function's terms (parameters renamed to their arguments). */
  canonical(f: Frame, v: string): string {
    const r = f.rename.get(v);
    if (r) return r;
    if (f.depth === 0) return v;
    const local = f.fn.locals.some((l) => l.name === v) || f.fn.params.some((p) => p.name === v);
    return local ? `${f.prefix}${v}` : v;
  }

  /** Cell name of a field access: its class, qualified by the scenario object its root is bound to. */
  cellOf(f: Frame, path: AccessPath | null): string | null {
    const cls = fieldClassOf(path, f.fn, this.model.env);
    if (!cls) return null;
    const root = path?.root.kind === 'var' ? f.objects.get(path.root.name) : undefined;
    return root ? `${root}:${cls}` : cls;
  }

  /** Lock name of a lock event: its class, qualified like {@link cellOf}. */
  lockOf(f: Frame, ev: LockEvent): string {
    const cls = lockClass(this.model, f.fn, ev);
    const root = ev.path?.root.kind === 'var' ? f.objects.get(ev.path.root.name) : undefined;
    return root ? `${root}:${cls}` : cls;
  }

  /**
   * A C value as an expression: translated when it only involves tracked things (fields are
   * loaded first), else `?`.
   */
  value(f: Frame, text: string, line: number, known = false): string {
    const reg = (v: string): string | null => {
      // A variable bound to a scenario object is that object's (non-NULL) address.
      const o = f.objects.get(v);
      if (o && !f.vars.has(v)) return `&${o}`;
      const r = f.vars.get(v) ?? (this.temps.has(v) ? v : null);
      return r && known && this.unknown.has(r) ? null : r;
    };
    const tr = translate(rewritePure(text), reg, () => this.fresh(`${f.prefix}ld`));
    if (!tr) return '?';
    for (const fld of tr.fields) {
      const cell = this.cellOf(f, textPath(fld.text));
      if (!cell || (this.opts.shared && !this.opts.shared.has(cell))) return '?';
      this.emit(t.read(cell, fld.placeholder, this.at(f, line)));
    }
    return tr.expr;
  }

  /**
   * A condition as an expression. Evaluated when every input is known; decided once into a
   * register (both ways) when the model cannot follow it, the same canonical text reusing that
   * decision until a variable in it is assigned; and when it can follow it but an input may be
   * unknown at run time, evaluated if known and the decision used otherwise.
   */
  condition(f: Frame, text: string, line: number, correlate = true, keyText = text): string {
    const strict = this.value(f, text, line, true);
    if (strict !== '?') return strict;
    const loose = this.value(f, text, line);
    if (!correlate) return loose;
    const decided = this.decided(f, keyText, line);
    if (loose === '?') return decided;
    const cv = this.fresh('cv');
    const known = this.fresh('Lk');
    this.emit(t.set(cv, loose, this.at(f, line)));
    this.emit(t.branch(`@${cv}`, known));
    this.emit(t.set(cv, decided));
    this.emit(t.label(known));
    return cv;
  }

  /** The register deciding an untracked condition, materialised (both ways) on first use. */
  private decided(f: Frame, text: string, line: number): string {
    const key = conditionKey(text, (w) => this.canonical(f, w));
    const known = this.conds.get(key);
    if (known) return known;
    const reg = this.fresh('c');
    const yes = this.fresh('Lc');
    const join = this.fresh('Lj');
    this.emit(t.either(yes, this.at(f, line)));
    this.emit(t.set(reg, 0));
    this.emit(t.goto(join));
    this.emit(t.label(yes));
    this.emit(t.set(reg, 1));
    this.emit(t.label(join));
    this.conds.set(key, reg);
    return reg;
  }

  private label(f: Frame, name: string): string {
    return `${f.prefix}${name}`;
  }

  /** Unlock the guards of blocks at index >= `from`, innermost first. */
  private releaseGuards(f: Frame, from: number, line: number): void {
    for (let i = f.guards.length - 1; i >= from; i--) {
      for (const g of [...f.guards[i]!].reverse()) this.emit(t.unlock(this.lockOf(f, g), this.at(f, line)));
    }
  }

  block(stmts: Stmt[], f: Frame, endLine: number): void {
    f.guards.push([]);
    for (const s of stmts) this.stmt(s, f);
    this.releaseGuards(f, f.guards.length - 1, endLine);
    f.guards.pop();
  }

  private stmt(s: Stmt, f: Frame): void {
    switch (s.kind) {
      case 'expr': case 'decl': case 'unparsed':
        emitEvents(this, s.events, f);
        return;
      case 'block':
        this.block(s.body, f, s.endLine);
        return;
      case 'if':
        this.ifStmt(s, f);
        return;
      case 'switch':
        this.switchStmt(s, f);
        return;
      case 'loop':
        this.loop(s, f);
        return;
      case 'scoped': {
        f.guards.push([]);
        const rel = this.fresh(`${f.prefix}Ls`);
        emitEvents(this, s.header, f);
        f.loops.push({ brk: rel, cont: rel, guardDepth: f.guards.length });
        for (const x of s.body) this.stmt(x, f);
        f.loops.pop();
        this.emit(t.label(rel));
        this.releaseGuards(f, f.guards.length - 1, s.endLine);
        f.guards.pop();
        return;
      }
      case 'return':
        this.ret(s, f);
        return;
      case 'goto': {
        this.releaseGuards(f, 1, s.line);
        const target = this.label(f, s.label);
        if (this.ops.some((o) => o.kind === 'label' && o.name === target)) {
          // A backward goto is a loop (`goto again`): bounded like loops, by dropping the paths
          // that take it more than `unroll` times (a retry counter would otherwise grow forever).
          const n = `${f.prefix}gt_${s.label}`;
          this.emit(t.set(n, `${n} + 1`, this.at(f, s.line)));
          this.emit(t.assume(`${n} <= ${this.opts.unroll}`));
        }
        this.emit(t.goto(target, this.at(f, s.line)));
        return;
      }
      case 'label':
        this.emit(t.label(this.label(f, s.label)));
        return;
      case 'break': case 'continue': {
        const loop = f.loops[f.loops.length - 1];
        if (!loop) return;
        this.releaseGuards(f, loop.guardDepth, s.line);
        this.emit(t.goto(s.kind === 'break' ? loop.brk : loop.cont, this.at(f, s.line)));
        return;
      }
    }
  }

  private ifStmt(s: Extract<Stmt, { kind: 'if' }>, f: Frame): void {
    const locks = s.condLocks
      .map((c) => ({ ev: s.condEvents.find((e): e is LockEvent => e.kind === 'lock' && e.offset === c.offset), acquiredIf: c.acquiredIf }))
      .filter((c): c is { ev: LockEvent; acquiredIf: boolean } => c.ev !== undefined);
    for (const l of locks) f.handled.add(l.ev);
    // Calls and value-returning accessors in the condition (`helper(x)`, `READ_ONCE(x)`,
    // `atomic_dec_if_positive(&a) < 0`) leave their results in registers that stand for them in
    // the condition text.
    let cond = s.cond;
    for (const e of s.condEvents) {
      const valued = (e.kind === 'call' && !e.special && !e.indirect) || (e.kind === 'marked' && e.access === 'load') || (e.kind === 'atomic' && e.op !== 'set' && e.op !== 'rmw' && e.op !== 'init' && e.op !== 'get');
      if (!valued || locks.length) continue;
      const reg = this.fresh(`${f.prefix}v`);
      const replaced = replaceCall(cond, e.kind === 'call' ? e.callee : e.api, reg);
      if (replaced === cond) continue;
      cond = replaced;
      this.temps.add(reg);
      f.callRegs.set(e.offset, reg);
    }
    emitEvents(this, s.condEvents, f);
    const other = this.fresh(`${f.prefix}Le`);
    const end = this.fresh(`${f.prefix}Lf`);
    const at = this.at(f, s.line);
    if (locks.length) {
      let first = '';
      for (const l of locks) {
        const reg = this.fresh(`${f.prefix}lk`);
        first ||= `${l.acquiredIf ? '!' : ''}${reg}`;
        const name = this.lockOf(f, l.ev);
        if (l.ev.acquiredWhen === 'nonzero') this.emit(t.trylock(name, reg, this.at(f, l.ev.line)));
        else {
          // Interruptible and killable acquires: signals are not modelled, so they succeed.
          this.emit(t.lock(name, this.at(f, l.ev.line)));
          this.emit(t.set(reg, 1));
        }
      }
      this.emit(t.branch(first, other, at));
    } else {
      const c = this.condition(f, cond, s.line, true, s.cond);
      this.emit(c === '?' ? t.either(other, at) : t.branch(`!(${c})`, other, at));
    }
    this.block(s.then, f, s.endLine);
    this.emit(t.goto(end));
    this.emit(t.label(other));
    if (s.else) this.block(s.else, f, s.endLine);
    this.emit(t.label(end));
  }

  private switchStmt(s: Extract<Stmt, { kind: 'switch' }>, f: Frame): void {
    emitEvents(this, s.condEvents, f);
    const end = this.fresh(`${f.prefix}Lw`);
    const v = this.value(f, s.cond, s.line);
    const labels = s.cases.map(() => this.fresh(`${f.prefix}Lk`));
    let dflt = end;
    s.cases.forEach((c, i) => {
      if (c.isDefault) dflt = labels[i]!;
      for (const val of c.values) {
        const cv = v === '?' ? '?' : this.value(f, val, c.line);
        this.emit(cv === '?' ? t.either(labels[i]!, this.at(f, c.line)) : t.branch(`${v} == ${cv}`, labels[i]!, this.at(f, c.line)));
      }
    });
    this.emit(t.goto(dflt));
    const outer = f.loops[f.loops.length - 1];
    f.loops.push({ brk: end, cont: outer?.cont ?? end, guardDepth: f.guards.length });
    s.cases.forEach((c, i) => {
      this.emit(t.label(labels[i]!));
      this.block(c.body, f, c.line);
    });
    f.loops.pop();
    this.emit(t.label(end));
  }

  private loop(s: Extract<Stmt, { kind: 'loop' }>, f: Frame): void {
    emitEvents(this, s.init, f);
    const end = this.fresh(`${f.prefix}Lx`);
    const rounds = s.once ? 1 : this.opts.unroll;
    const test = (): void => {
      if (s.infinite) return;
      emitEvents(this, s.condEvents, f);
      // Each round decides afresh: iterations are not the same condition twice.
      const c = this.condition(f, s.cond, s.line, false);
      this.emit(c === '?' ? t.either(end, this.at(f, s.line)) : t.branch(`!(${c})`, end, this.at(f, s.line)));
    };
    for (let k = 0; k < rounds; k++) {
      if (s.loop !== 'do' && !s.once) test();
      const cont = this.fresh(`${f.prefix}Ln`);
      f.loops.push({ brk: end, cont, guardDepth: f.guards.length });
      this.block(s.body, f, s.endLine);
      f.loops.pop();
      this.emit(t.label(cont));
      emitEvents(this, s.update, f);
      if (s.loop === 'do' && !s.once && k < rounds - 1) test();
    }
    this.emit(t.label(end));
  }

  private ret(s: Extract<Stmt, { kind: 'return' }>, f: Frame): void {
    const expr = s.expr?.trim() ?? null;
    // `return helper(x);`: the helper's result is the value.
    let callReg: string | null = null;
    if (expr && /^[\w>.-]+\s*\(/.test(expr)) {
      const call = [...s.events].reverse().find((e) => e.kind === 'call' && !e.special && expr.startsWith(e.indirect ? `${e.indirect.base}` : e.callee));
      if (call) f.callRegs.set(call.offset, (callReg = this.fresh(`${f.prefix}rv`)));
    }
    emitEvents(this, s.events, f);
    const v = callReg ?? (expr === null ? null : this.value(f, expr, s.line));
    this.releaseGuards(f, 0, s.line);
    if (f.retReg === null) this.emit(t.ret(v, this.at(f, s.line)));
    else {
      if (f.retReg) this.emit(t.set(f.retReg, v ?? 0, this.at(f, s.line)));
      this.emit(t.goto(f.retLabel!, this.at(f, s.line)));
    }
  }
}

/** `text` with the first call of `api(...)` (balanced parentheses) replaced by `reg`. */
function replaceCall(text: string, api: string, reg: string): string {
  const m = new RegExp(String.raw`\b${api}\s*\(`).exec(text);
  if (!m) return text;
  let depth = 0;
  for (let i = m.index + m[0].length - 1; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(0, m.index) + reg + text.slice(i + 1);
  }
  return text;
}
