/**
 * The statement builder: tree-sitter nodes of one function body to the plain {@link Stmt} tree,
 * collecting events in order. Handles the kernel's macro statements: loop macros rewritten by the
 * pre-filter (`list_for_each_entry` as `while`) or left detached by tree-sitter, `scoped_guard`,
 * and the polarity of conditional acquires in if conditions.
 */
import type { Node } from 'web-tree-sitter';
import { guardEvent } from './apis.js';
import { accessPath, declaratorName, endLineOf, fieldNode, kids, lineOf, textOf, typeText, unparen } from './ast.js';
import type { Event, LockEvent } from './events.js';
import { ExpressionEvents } from './expressions.js';
import type { Stmt, StmtBase, SwitchCase, Var } from './functions.js';

/** `nodes` minus the given ones (tree-sitter hands out a fresh object per access, so compare ids). */
function without(nodes: Node[], drop: (Node | null)[]): Node[] {
  const ids = new Set(drop.filter((d): d is Node => d !== null).map((d) => d.id));
  return nodes.filter((k) => !ids.has(k.id));
}

/**
 * Block macros that run their body once (scope helpers). Everything else followed by a block is
 * taken as an iterator (`list_for_each_entry`, `xa_for_each`, `for_each_set_bit`, ...), the common case.
 */
const ONE_SHOT = /^(?:scoped_\w+|with_\w+)$/;

/** Builds the statement tree of one function. */
export class FunctionBuilder {
  readonly events: Event[] = [];
  readonly locals: Var[] = [];
  private readonly expr: ExpressionEvents;

  constructor(private readonly source: string) {
    this.expr = new ExpressionEvents(source);
  }

  private ev(node: Node | null): Event[] {
    const out: Event[] = [];
    this.expr.collect(node, out);
    this.events.push(...out);
    return out;
  }

  private base(node: Node): StmtBase {
    return { line: lineOf(node), endLine: endLineOf(node) };
  }

  /** Statements of a compound statement or any statement used as a body. */
  body(node: Node | null): Stmt[] {
    if (!node) return [];
    if (node.type === 'compound_statement') return this.list(kids(node));
    return this.list([node]);
  }

  /** A statement list, re-attaching `macro(args) {` bodies that tree-sitter left detached. */
  list(nodes: Node[]): Stmt[] {
    const out: Stmt[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const next = nodes[i + 1];
      if (next && this.isDetachedMacroHead(n)) {
        out.push(this.macroBlock(n, kids(n)[0]!, next));
        i++;
        continue;
      }
      out.push(...this.stmt(n));
    }
    return out;
  }

  /** `list_for_each_entry(p, h, m)` followed by a block, with the `;` tree-sitter had to invent. */
  private isDetachedMacroHead(n: Node): boolean {
    if (n.type !== 'expression_statement') return false;
    const call = kids(n)[0];
    if (!call || call.type !== 'call_expression' || fieldNode(call, 'function')?.type !== 'identifier') return false;
    const last = n.child(n.childCount - 1);
    return last?.isMissing === true || !this.source.slice(n.startIndex, n.endIndex).trimEnd().endsWith(';');
  }

  private macroBlock(head: Node, call: Node, bodyNode: Node): Stmt {
    const macro = fieldNode(call, 'function')?.text ?? '?';
    const base = { line: lineOf(head), endLine: endLineOf(bodyNode) };
    const argNodes = kids(fieldNode(call, 'arguments') ?? call);
    return this.macroStmt(macro, argNodes, base, bodyNode);
  }

  /** A loop-like macro or `scoped_guard(class, args) body`, from either the rewritten or the detached form. */
  private macroStmt(macro: string, argNodes: Node[], base: StmtBase, bodyNode: Node | null): Stmt {
    if (macro === 'scoped_guard') {
      const [cls, ...rest] = argNodes;
      const header: Event[] = [];
      for (const a of rest) this.expr.collect(a, header);
      const args = rest.map((a) => ({ text: textOf(this.source, a), path: accessPath(this.source, a) }));
      const g = cls ? guardEvent(cls.text, args, 'scoped_guard') : null;
      if (g && cls) header.push({ ...g, line: base.line, offset: cls.startIndex } as LockEvent);
      this.events.push(...header);
      return { ...base, kind: 'scoped', macro, header, body: this.body(bodyNode) };
    }
    const condEvents: Event[] = [];
    for (const a of argNodes) this.expr.collect(a, condEvents);
    this.events.push(...condEvents);
    const cond = `${macro}(${argNodes.map((a) => textOf(this.source, a)).join(', ')})`;
    return {
      ...base, kind: 'loop', loop: 'macro', macro, cond, init: [], condEvents, update: [], body: this.body(bodyNode),
      infinite: false, once: ONE_SHOT.test(macro),
    };
  }

  private stmt(n: Node): Stmt[] {
    const b = this.base(n);
    switch (n.type) {
      case 'compound_statement':
        return [{ ...b, kind: 'block', body: this.list(kids(n)) }];
      case 'expression_statement': {
        const e = kids(n)[0];
        if (!e) return [];
        return [{ ...b, kind: 'expr', text: textOf(this.source, n), events: this.ev(e) }];
      }
      case 'declaration':
        return [this.declaration(n)];
      case 'if_statement': {
        const cond = fieldNode(n, 'condition');
        const condEvents = this.ev(cond);
        const then = this.body(fieldNode(n, 'consequence'));
        const alt = fieldNode(n, 'alternative');
        const elseBody = alt ? this.body(kids(alt)[0] ?? null) : null;
        const condLocks = cond ? this.condLocks(cond, condEvents) : [];
        const condCalls = cond ? this.condCalls(cond, condEvents) : [];
        return [{ ...b, kind: 'if', cond: cond ? textOf(this.source, unparen(cond)) : '', condEvents, condLocks, condCalls, then, else: elseBody }];
      }
      case 'switch_statement':
        return [this.switchStmt(n)];
      case 'while_statement':
        return [this.whileStmt(n)];
      case 'do_statement': {
        const body = this.body(fieldNode(n, 'body'));
        const cond = fieldNode(n, 'condition');
        const condEvents = this.ev(cond);
        const text = cond ? textOf(this.source, unparen(cond)) : '';
        return [{ ...b, kind: 'loop', loop: 'do', macro: null, cond: text, init: [], condEvents, update: [], body, infinite: text === '1' || text === 'true', once: text === '0' || text === 'false' }];
      }
      case 'for_statement':
        return [this.forStmt(n)];
      case 'return_statement': {
        const e = kids(n)[0] ?? null;
        const events = this.ev(e);
        const ret = { kind: 'return' as const, expr: e ? textOf(this.source, e) : null, line: b.line, offset: n.startIndex };
        events.push(ret);
        this.events.push(ret);
        return [{ ...b, kind: 'return', expr: ret.expr, events }];
      }
      case 'goto_statement':
        return [{ ...b, kind: 'goto', label: fieldNode(n, 'label')?.text ?? kids(n)[0]?.text ?? '?' }];
      case 'labeled_statement': {
        const label = fieldNode(n, 'label')?.text ?? '?';
        const inner = kids(n).filter((k) => k.type !== 'statement_identifier');
        return [{ ...b, endLine: b.line, kind: 'label', label }, ...this.list(inner)];
      }
      case 'break_statement':
        return [{ ...b, kind: 'break' }];
      case 'continue_statement':
        return [{ ...b, kind: 'continue' }];
      case 'preproc_if':
      case 'preproc_ifdef':
      case 'preproc_else':
      case 'preproc_elif':
      case 'preproc_elifdef':
        // Keep the first branch of a conditional block: the model has no kernel configuration, and
        // running both branches in sequence would double locks that each branch takes once.
        return this.list(without(kids(n), [fieldNode(n, 'condition'), fieldNode(n, 'name'), fieldNode(n, 'alternative')]));
      case 'comment':
      case 'preproc_call':
      case 'preproc_def':
      case 'preproc_function_def':
      case 'preproc_include':
      case 'type_definition':
      case 'struct_specifier':
        return [];
      case 'attributed_statement':
        return this.list(kids(n).filter((k) => k.type !== 'attribute_declaration'));
      default:
        return [{ ...b, kind: 'unparsed', text: textOf(this.source, n).slice(0, 200), events: this.ev(n) }];
    }
  }

  /**
   * For each trylock/interruptible acquire called inside an if condition, the truth value of the
   * whole condition that means the lock was taken: walk from the call up to the condition, flipping
   * on `!` and `== 0`; `&&`, `||`, assignments and WARN_ON-style wrappers pass the value through.
   */
  private condLocks(cond: Node, events: Event[]): { offset: number; acquiredIf: boolean }[] {
    const out: { offset: number; acquiredIf: boolean }[] = [];
    for (const e of events) {
      if (e.kind !== 'lock' || e.op !== 'acquire' || !e.acquiredWhen) continue;
      let n: Node | null = cond.descendantForIndex(e.offset, e.offset + 1);
      while (n && n.type !== 'call_expression') n = n.parent;
      if (!n) continue;
      let truthy = e.acquiredWhen === 'nonzero';
      for (let guard = 0; n && n.id !== cond.id && guard < 32; guard++) {
        const p: Node | null = n.parent;
        if (!p) break;
        if (p.type === 'unary_expression' && p.child(0)?.type === '!') truthy = !truthy;
        else if (p.type === 'binary_expression') {
          const op = fieldNode(p, 'operator')?.type;
          const other = fieldNode(p, 'left')?.id === n.id ? fieldNode(p, 'right') : fieldNode(p, 'left');
          if (op === '==' && other?.text === '0') truthy = !truthy;
        }
        n = p;
      }
      out.push({ offset: e.offset, acquiredIf: truthy });
    }
    return out;
  }

  private condCalls(cond: Node, events: Event[]): { offset: number; truthyIf: boolean }[] {
    const out: { offset: number; truthyIf: boolean }[] = [];
    for (const e of events) {
      if (e.kind !== 'call' || e.special || e.indirect) continue;
      let n: Node | null = cond.descendantForIndex(e.offset, e.offset + 1);
      while (n && !(n.type === 'call_expression' && n.startIndex === e.offset)) n = n.parent;
      let truthy = true;
      let exact = n !== null;
      for (let guard = 0; n && n.id !== cond.id && guard < 16; guard++) {
        const p: Node | null = n.parent;
        if (!p) break;
        if (p.type === 'parenthesized_expression') {
          n = p;
          continue;
        }
        if (p.type === 'unary_expression' && p.child(0)?.type === '!') truthy = !truthy;
        else if (p.type === 'binary_expression') {
          const op = fieldNode(p, 'operator')?.type;
          const other = fieldNode(p, 'left')?.id === n.id ? fieldNode(p, 'right') : fieldNode(p, 'left');
          if (other?.text !== '0' || (op !== '==' && op !== '!=')) exact = false;
          else if (op === '==') truthy = !truthy;
        } else exact = false;
        if (!exact) break;
        n = p;
      }
      if (exact) out.push({ offset: e.offset, truthyIf: truthy });
    }
    return out;
  }

  private declaration(n: Node): Stmt {
    const typeNode = fieldNode(n, 'type');
    const events: Event[] = [];
    const names: string[] = [];
    for (const d of n.childrenForFieldName('declarator')) {
      if (!d) continue;
      const name = declaratorName(d);
      if (!name) continue;
      names.push(name);
      this.locals.push({ name, type: typeText(this.source, typeNode, d.type === 'init_declarator' ? fieldNode(d, 'declarator') : d), line: lineOf(d) });
      const value = d.type === 'init_declarator' ? fieldNode(d, 'value') : null;
      const nameNode = d.type === 'init_declarator' ? (fieldNode(d, 'declarator') ?? d) : d;
      if (value) this.expr.initializer(name, nameNode, value, events);
    }
    this.events.push(...events);
    return { ...this.base(n), kind: 'decl', text: textOf(this.source, n), events, names };
  }

  private switchStmt(n: Node): Stmt {
    const cond = fieldNode(n, 'condition');
    const condEvents = this.ev(cond);
    const cases: SwitchCase[] = [];
    const bodyNode = fieldNode(n, 'body');
    for (const c of bodyNode ? kids(bodyNode) : []) {
      if (c.type !== 'case_statement') {
        // Statements before the first label are unreachable; keep their events in a default-less group.
        cases.push({ line: lineOf(c), values: [], isDefault: false, body: this.stmt(c) });
        continue;
      }
      const value = fieldNode(c, 'value');
      const isDefault = c.child(0)?.type === 'default';
      const stmts = without(kids(c), [value]);
      // The pre-filter blanked `... 5` of a case range: read the label back from the source up to its `:`.
      const label = value ? this.source.slice(value.startIndex, Math.max(value.endIndex, this.source.indexOf(':', value.endIndex))).replace(/\s+/g, ' ').trim() : '';
      cases.push({ line: lineOf(c), values: value ? [label] : [], isDefault, body: this.list(stmts) });
    }
    return { ...this.base(n), kind: 'switch', cond: cond ? textOf(this.source, unparen(cond)) : '', condEvents, cases };
  }

  private whileStmt(n: Node): Stmt {
    const b = this.base(n);
    const cond = fieldNode(n, 'condition');
    const bodyNode = fieldNode(n, 'body');
    // The pre-filter spells `list_for_each_entry(a, b, c) {` as `while (a, b, c) {`: recover the macro.
    const written = /^\w+/.exec(this.source.slice(n.startIndex, n.startIndex + 80))?.[0] ?? 'while';
    if (written !== 'while') {
      const inner = cond ? unparen(cond) : null;
      const argNodes = inner ? this.commaList(inner) : [];
      return this.macroStmt(written, argNodes, b, bodyNode);
    }
    const condEvents = this.ev(cond);
    const text = cond ? textOf(this.source, unparen(cond)) : '';
    return { ...b, kind: 'loop', loop: 'while', macro: null, cond: text, init: [], condEvents, update: [], body: this.body(bodyNode), infinite: text === '1' || text === 'true', once: false };
  }

  private commaList(n: Node): Node[] {
    if (n.type !== 'comma_expression') return [n];
    const left = fieldNode(n, 'left');
    const right = fieldNode(n, 'right');
    return [...(left ? this.commaList(left) : []), ...(right ? this.commaList(right) : [])];
  }

  private forStmt(n: Node): Stmt {
    const initNode = fieldNode(n, 'initializer');
    let init: Event[] = [];
    if (initNode?.type === 'declaration') {
      const d = this.declaration(initNode);
      init = d.kind === 'decl' ? d.events : [];
    } else init = this.ev(initNode);
    const cond = fieldNode(n, 'condition');
    const condEvents = this.ev(cond);
    const bodyNode = fieldNode(n, 'body');
    const body = this.body(bodyNode);
    const update = this.ev(fieldNode(n, 'update'));
    const text = cond ? textOf(this.source, cond) : '';
    return { ...this.base(n), kind: 'loop', loop: 'for', macro: null, cond: text, init, condEvents, update, body, infinite: text === '' || text === '1', once: false };
  }
}

