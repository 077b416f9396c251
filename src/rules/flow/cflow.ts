/**
 * Control-flow helpers shared by the rules that follow a function's error handling
 * (publish-before-init, unwind-mismatch, errno-contract): which edge of an `if` is its then-edge,
 * whether a branch decides that a call failed, which lines of a file the patch left alone, and
 * which functions a patch touched.
 *
 * Why not the model's path walker: it remembers only conditions that matter for locks, and an `if`
 * whose condition contains a call has no assumption on its edges (so `if (register(...))` cannot
 * tell its failure edge from its success edge). Here we map each CFG branch back to its `if`
 * statement and read the condition text ourselves.
 */
import { cfgOf, normaliseCondition, structTag, textPath, type Cfg, type CfgEdge, type Event, type FunctionModel, type Stmt, type TreeModel } from '../../cmodel/index.js';
import type { ChangedFile } from '../types.js';

type IfStmt = Extract<Stmt, { kind: 'if' }>;

/** Every statement of a body, depth first, in source order. */
export function allStmts(stmts: Stmt[], out: Stmt[] = []): Stmt[] {
  for (const s of stmts) {
    out.push(s);
    if (s.kind === 'if') {
      allStmts(s.then, out);
      if (s.else) allStmts(s.else, out);
    } else if (s.kind === 'switch') for (const c of s.cases) allStmts(c.body, out);
    else if (s.kind === 'loop' || s.kind === 'block' || s.kind === 'scoped') allStmts(s.body, out);
  }
  return out;
}

/** The line of the CFG node a statement list starts with (a goto jumps to its label). */
function firstNodeLine(stmts: Stmt[], labels: Map<string, number>): number | null {
  const s = stmts[0];
  if (!s) return null;
  if (s.kind === 'goto') return labels.get(s.label) ?? null;
  if (s.kind === 'block') return firstNodeLine(s.body, labels);
  return s.line;
}

/** Per function: each CFG branch node built from an `if`, with its statement and then-edge target line. */
export interface Branches {
  cfg: Cfg;
  ifs: Map<number, { stmt: IfStmt; thenLine: number | null }>;
}

const branchCache = new WeakMap<FunctionModel, Branches>();

/** The `if` statements behind the CFG branch nodes of `fn`. */
export function branchesOf(fn: FunctionModel): Branches {
  const hit = branchCache.get(fn);
  if (hit) return hit;
  const cfg = cfgOf(fn);
  const stmts = allStmts(fn.body);
  const labels = new Map<string, number>();
  for (const s of stmts) if (s.kind === 'label') labels.set(s.label, s.line);
  const byLine = new Map<number, IfStmt[]>();
  for (const s of stmts) if (s.kind === 'if') byLine.set(s.line, [...(byLine.get(s.line) ?? []), s]);
  const ifs = new Map<number, { stmt: IfStmt; thenLine: number | null }>();
  for (const n of cfg.nodes) {
    if (n.kind !== 'branch') continue;
    const cands = (byLine.get(n.line) ?? []).filter((s) => n.events.every((e) => s.condEvents.includes(e)));
    if (cands.length !== 1) continue;
    const stmt = cands[0]!;
    ifs.set(n.id, { stmt, thenLine: firstNodeLine(stmt.then, labels) });
  }
  const out = { cfg, ifs };
  branchCache.set(fn, out);
  return out;
}

/** Whether taking `edge` out of branch node `from` means the `if` condition was true; null when unknown. */
export function edgeTruth(b: Branches, from: number, edge: CfgEdge): boolean | null {
  const info = b.ifs.get(from);
  if (!info) return null;
  if (edge.assume) {
    const t = normaliseCondition(info.stmt.cond, true);
    if (edge.assume.cond === t.cond) return edge.assume.truth === t.truth;
  }
  const node = b.cfg.nodes[from]!;
  if (node.succ.length !== 2 || info.thenLine === null) return null;
  const lines = node.succ.map((e) => b.cfg.nodes[e.to]!.line);
  if (lines[0] === lines[1]) return null;
  return b.cfg.nodes[edge.to]!.line === info.thenLine;
}

/**
 * What a producing call returns: an int error code (non-zero fails), or something truthy on success
 * (a pointer, NULL or ERR_PTR on failure; a bool like try_module_get()).
 */
export type ResultKind = 'int' | 'pointer';

/** A call whose success a later test decides. */
export interface Producer {
  /** The call event. */
  call: Event & { kind: 'call' };
  /** The variable its result is stored in, when it is (`ret = f(...)`). */
  resultVar: string | null;
  kind: ResultKind;
}

/** How one branch edge bears on a producer: failed, succeeded, tested in a way we cannot read, or not at all. */
export type Verdict = 'fail' | 'ok' | 'unknown' | 'unrelated';

const WRAPPERS = /^(?:likely|unlikely|WARN_ON|WARN_ON_ONCE)\s*\((?<inner>.*)\)$/s;

function stripParens(s: string): string {
  let t = s.trim();
  for (let g = 0; g < 8; g++) {
    const w = WRAPPERS.exec(t);
    if (w && balanced(w.groups!.inner!)) {
      t = w.groups!.inner!.trim();
      continue;
    }
    if (t.startsWith('(') && t.endsWith(')') && balanced(t.slice(1, -1))) {
      t = t.slice(1, -1).trim();
      continue;
    }
    break;
  }
  return t;
}

function balanced(s: string): boolean {
  let d = 0;
  for (const c of s) {
    if (c === '(') d++;
    else if (c === ')' && --d < 0) return false;
  }
  return d === 0;
}

/** `s` as a literal inside a regular expression. */
export function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether `text` mentions `name` as a whole word (not as a member). */
export function mentions(text: string, name: string): boolean {
  return new RegExp(String.raw`(?<![\w>.])${esc(name)}(?!\w)`).test(text);
}

/**
 * Reads an if condition against a producer: `ret`, `ret < 0`, `!ptr`, `IS_ERR(ptr)`,
 * `register(...)` (the call itself), with `!`, parentheses, likely/unlikely and WARN_ON around.
 * Returns whether the condition being `truth` means the producer failed.
 */
export function judge(cond: string, truth: boolean, p: Producer): Verdict {
  let c = stripParens(cond);
  let t = truth;
  for (let g = 0; g < 4 && c.startsWith('!') && !c.startsWith('!='); g++) {
    c = stripParens(c.slice(1));
    t = !t;
  }
  const isSubject = (x: string): boolean => {
    const s = stripParens(x).replace(/\s+/g, '');
    if (p.resultVar && s === p.resultVar) return true;
    return new RegExp(String.raw`^${esc(p.call.callee)}\s*\(`).test(s) && balanced(s.slice(s.indexOf('(')));
  };
  // `if (copy_from_user(buf, ...))` tests another call's result, not `buf`.
  const call = /^(?<f>[A-Za-z_]\w*)\s*\((?<args>.*)\)$/s.exec(c);
  if (call && balanced(call.groups!.args!) && call.groups!.f !== p.call.callee && !/^IS_ERR(?:_OR_NULL)?$/.test(call.groups!.f!)) return 'unrelated';
  const mentioned = (p.resultVar !== null && mentions(c, p.resultVar)) || new RegExp(String.raw`\b${esc(p.call.callee)}\s*\(`).test(c);
  if (!mentioned) return 'unrelated';
  // A truthy subject: an int result fails when non-zero, a pointer when NULL.
  const truthy = (v: boolean): Verdict => (p.kind === 'int' ? (v ? 'fail' : 'ok') : v ? 'ok' : 'fail');
  if (isSubject(c)) return truthy(t);
  const err = /^(?<fn>IS_ERR|IS_ERR_OR_NULL)\s*\((?<arg>.*)\)$/s.exec(c);
  if (err && isSubject(err.groups!.arg!)) return t ? 'fail' : 'ok';
  const cmp = /^(?<lhs>.+?)\s*(?<op><=|>=|==|!=|<|>)\s*(?<rhs>0|NULL)$/s.exec(c);
  if (cmp && isSubject(cmp.groups!.lhs!)) {
    const op = cmp.groups!.op!;
    if (op === '<') return t ? 'fail' : 'ok';
    if (op === '!=') return truthy(t);
    if (op === '==') return truthy(!t);
    return 'unknown';
  }
  return 'unknown';
}

/** Whether an assignment or store event writes the result of `call` (`ret = f(x)`, `vfio.class = f(x)`). */
export function storesResultOf(e: Event, call: Event & { kind: 'call' }): boolean {
  // The assignment expression starts at its target, just before the call (`ret =\n\t\tf(...)` spans lines).
  if (e.offset > call.offset || call.offset - e.offset > 400) return false;
  if (e.kind === 'assign') return e.fromCall === call.callee;
  return e.kind === 'store' && new RegExp(String.raw`^${esc(call.callee)}\s*\(`).test(e.value.trim());
}

/** The variable the result of `call` is assigned to in the same statement (`ret = f(x)`). */
export function resultVarOf(fn: FunctionModel, call: Event & { kind: 'call' }): string | null {
  const i = fn.events.indexOf(call);
  for (let j = i + 1; j >= 1 && j < Math.min(fn.events.length, i + 12); j++) {
    const e = fn.events[j]!;
    if (e.line > call.line + 4) break;
    const fromCall = e.kind === 'assign' ? e.fromCall === call.callee : e.kind === 'store' && new RegExp(String.raw`^${esc(call.callee)}\s*\(`).test(e.value.trim());
    if ((e.kind === 'assign' || e.kind === 'store') && fromCall) {
      // `ret`, `vfio.class`, `migf->filp`: anything a later test can name the same way.
      const t = e.target.replace(/\s+/g, '');
      return /^[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*|\[[\w+-]+\])*$/.test(t) ? t : null;
    }
    if (e.kind === 'call' && !e.special && e.offset > call.offset && e.line !== call.line) break;
  }
  return null;
}

/** The declared type of a name seen from `fn`: local, parameter, file static or global. */
export function typeOfName(model: TreeModel, fn: FunctionModel, name: string): string | null {
  for (let i = fn.locals.length - 1; i >= 0; i--) if (fn.locals[i]!.name === name) return fn.locals[i]!.type;
  const p = fn.params.find((x) => x.name === name);
  if (p) return p.type;
  return model.env.fileGlobals.get(fn.file)?.get(name) ?? model.env.globals.get(name) ?? null;
}

/** The declared type of a simple lvalue (`ret`, `vfio.class`, `parent->kset`) through struct fields. */
export function typeOfExpr(model: TreeModel, fn: FunctionModel, text: string): string | null {
  const p = textPath(text);
  if (!p || p.root.kind !== 'var') return null;
  let type = typeOfName(model, fn, p.root.name);
  for (const st of p.steps) {
    if (!type) return null;
    if (st.op === '[]' || st.op === '*') {
      type = type.replace(/\s*(?:\*|\[\])\s*$/, '');
      continue;
    }
    let tag = structTag(type);
    for (let g = 0; !tag && g < 4; g++) {
      const td = model.env.typedefs.get(type.replace(/\b(?:const|volatile)\b|\*/g, '').trim());
      if (!td) break;
      type = td;
      tag = structTag(type);
    }
    type = tag ? (model.env.structs.get(tag)?.get(st.member) ?? null) : null;
  }
  return type;
}

/** A producer for a call event of `fn`; `kind` overrides what the declarations say. */
export function producerOf(model: TreeModel, fn: FunctionModel, call: Event & { kind: 'call' }, kind?: ResultKind): Producer {
  const resultVar = resultVarOf(fn, call);
  if (kind) return { call, resultVar, kind };
  const declared = resultVar ? typeOfExpr(model, fn, resultVar) : null;
  const ret = model.env.returns.get(call.callee) ?? null;
  const type = declared ?? ret ?? '';
  return { call, resultVar, kind: /\*|\bbool\b/.test(type) ? 'pointer' : 'int' };
}

/** Whether a line of `fn` lies in the patch's added lines. */
export function touches(fn: Pick<FunctionModel, 'line' | 'endLine'>, lines: Set<number>): boolean {
  for (const l of lines) if (l >= fn.line && l <= fn.endLine) return true;
  return false;
}

/** The functions of `file` in `model` that contain an added line. */
export function touchedFunctions(model: TreeModel, file: ChangedFile): FunctionModel[] {
  const fm = model.files.get(file.path);
  if (!fm) return [];
  return fm.functions.filter((fn) => touches(fn, file.added));
}

/** The function of the same name in the before model, in the file's old path. */
export function beforeFunction(model: TreeModel | null, file: ChangedFile, name: string): FunctionModel | null {
  if (!model) return null;
  const fm = model.files.get(file.oldPath ?? file.path);
  return fm?.functions.find((f) => f.name === name) ?? null;
}

/**
 * After-line -> before-line for the lines the patch left alone (both files walk in step
 * over unchanged lines; added lines exist only after, removed ones only before). A view rebuilt
 * from the diff alone counts every line the diff changes here, shown or not (`diffAdded`), or one
 * added `#include` outside any function would shift every line after it.
 */
export function unchangedLineMap(file: ChangedFile, afterLines: number, beforeLines: number): Map<number, number> {
  const map = new Map<number, number>();
  const added = file.diffAdded ?? file.added;
  const removed = file.diffRemoved ?? file.removed;
  let i = 1;
  let j = 1;
  while (i <= beforeLines && j <= afterLines) {
    if (added.has(j)) j++;
    else if (removed.has(i)) i++;
    else map.set(j++, i++);
  }
  return map;
}

/** Literal error codes: `-EINVAL`, `(-EINVAL)`, `ERR_PTR(-EINVAL)`. Returns the name or null. */
export function errnoOf(expr: string | null): string | null {
  if (expr === null) return null;
  const m = /^\(?\s*(?:ERR_PTR\s*\(\s*)?-\s*(?<e>E[A-Z0-9]+)\s*\)?\s*\)?$/.exec(expr.trim());
  return m?.groups?.e ?? null;
}

/** Whether a return expression says failure: a literal errno, ERR_PTR(...), PTR_ERR(...), ERR_CAST(...). */
export function isErrorExpr(expr: string | null): boolean {
  if (expr === null) return false;
  const e = expr.trim();
  return errnoOf(e) !== null || /^(?:ERR_PTR|PTR_ERR|ERR_CAST)\s*\(/.test(e);
}

/**
 * The functions of `file` the patch changed: those with an added line, and those whose
 * before-version lost a line (a patch that only deletes an unwind call touches no added line).
 */
export function changedFunctions(after: TreeModel, before: TreeModel | null, file: ChangedFile): FunctionModel[] {
  const fm = after.files.get(file.path);
  if (!fm) return [];
  const out = fm.functions.filter((fn) => touches(fn, file.added));
  const old = before?.files.get(file.oldPath ?? file.path);
  if (old && file.removed.size) {
    for (const b of old.functions) {
      if (!touches(b, file.removed)) continue;
      const a = fm.functions.find((f) => f.name === b.name);
      if (a && !out.includes(a)) out.push(a);
    }
  }
  return out;
}
