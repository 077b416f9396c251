/**
 * Events from one expression, in evaluation order (operands before the operation): `f(g(x))`
 * yields g then f; `a->b = h()` yields h, then the store. Short-circuit and ternary operands are
 * taken in source order; the path walker treats a condition's events as one step.
 */
import type { Node } from 'web-tree-sitter';
import { classifyCall, guardEvent, IS_LOCKED_PREDICATES, type Arg, type EventBody } from './apis.js';
import { accessPath, fieldNode, kids, lineOf, textOf, unparen } from './ast.js';
import type { Event } from './events.js';

/** Calls whose direct field argument is a marked access, not a plain load. */
const MARKED_ARG = /^(?:READ_ONCE|WRITE_ONCE|rcu_dereference\w*|srcu_dereference|rcu_assign_pointer|rcu_access_pointer|smp_load_acquire|smp_store_release|xchg|cmpxchg|try_cmpxchg)$/;

/** Node types whose operands are never evaluated. */
const UNEVALUATED = new Set([
  'sizeof_expression', 'alignof_expression', 'offsetof_expression', 'type_descriptor', 'macro_type_specifier',
  'string_literal', 'concatenated_string', 'char_literal', 'number_literal', 'comment', 'primitive_type',
  'type_identifier', 'struct_specifier', 'true', 'false', 'null', 'gnu_asm_expression',
]);

type Mode = 'value' | 'addr';

/** Collects events for expressions of one file. */
export class ExpressionEvents {
  constructor(private readonly source: string) {}

  /** Append the events of `node` (an expression or anything containing expressions) to `out`. */
  collect(node: Node | null, out: Event[]): void {
    if (node) this.walk(node, 'value', out);
  }

  private push(out: Event[], node: Node, body: EventBody): void {
    out.push({ ...body, line: lineOf(node), offset: node.startIndex } as Event);
  }

  private text(node: Node): string {
    return textOf(this.source, node);
  }

  private walk(node: Node, mode: Mode, out: Event[]): void {
    if (UNEVALUATED.has(node.type)) return;
    switch (node.type) {
      case 'call_expression':
        this.call(node, out);
        return;
      case 'assignment_expression':
        this.assignment(node, out);
        return;
      case 'update_expression': {
        const arg = fieldNode(node, 'argument');
        if (arg) this.lvalue(arg, node.text.replace(arg.text, '').trim() || '++', null, out, true);
        return;
      }
      case 'field_expression': {
        const arg = fieldNode(node, 'argument');
        const op = fieldNode(node, 'operator')?.type;
        if (arg) this.walk(arg, op === '.' ? 'addr' : 'value', out);
        if (mode === 'value') this.load(node, out);
        return;
      }
      case 'pointer_expression': {
        const arg = fieldNode(node, 'argument');
        if (arg) this.walk(arg, node.child(0)?.type === '&' ? 'addr' : 'value', out);
        return;
      }
      case 'parenthesized_expression': {
        const inner = kids(node)[0];
        if (inner) this.walk(inner, mode, out);
        return;
      }
      case 'subscript_expression': {
        const index = fieldNode(node, 'index');
        const arg = fieldNode(node, 'argument');
        if (arg) this.walk(arg, 'value', out);
        if (index) this.walk(index, 'value', out);
        return;
      }
      case 'cast_expression': {
        const value = fieldNode(node, 'value');
        if (value) this.walk(value, mode, out);
        return;
      }
      default:
        for (const c of kids(node)) this.walk(c, 'value', out);
    }
  }

  private load(node: Node, out: Event[]): void {
    const arg = fieldNode(node, 'argument');
    const field = fieldNode(node, 'field');
    if (!arg || !field) return;
    this.push(out, node, { kind: 'load', target: this.text(node), base: this.text(arg), member: field.text, path: accessPath(this.source, node) });
  }

  private args(node: Node | null): Node[] {
    return node ? kids(node) : [];
  }

  private call(node: Node, out: Event[]): void {
    const fn = fieldNode(node, 'function');
    const argNodes = this.args(fieldNode(node, 'arguments'));
    const args: Arg[] = argNodes.map((a) => ({ text: this.text(a), path: accessPath(this.source, a) }));
    // guard(mutex)(&x): the callee is itself a call naming the guard class.
    if (fn?.type === 'call_expression' && fieldNode(fn, 'function')?.text === 'guard') {
      for (const a of argNodes) this.walk(a, 'value', out);
      const name = this.args(fieldNode(fn, 'arguments'))[0]?.text ?? '';
      const ev = guardEvent(name, args, 'guard');
      this.push(out, node, { kind: 'call', callee: 'guard', indirect: null, args: args.map((a) => a.text), special: ev !== null });
      if (ev) this.push(out, node, ev);
      return;
    }
    let callee = fn ? this.text(fn) : '?';
    let indirect: { base: string; member: string; path: ReturnType<typeof accessPath> } | null = null;
    const f = fn ? unparen(fn) : null;
    if (f?.type === 'identifier') callee = f.text;
    else if (f?.type === 'field_expression') {
      const base = fieldNode(f, 'argument');
      const member = fieldNode(f, 'field')?.text ?? '?';
      if (base) this.walk(base, fieldNode(f, 'operator')?.type === '.' ? 'addr' : 'value', out);
      indirect = { base: base ? this.text(base) : '?', member, path: base ? accessPath(this.source, base) : null };
      callee = member;
    } else if (f) this.walk(f, 'value', out);
    const marked = MARKED_ARG.test(callee);
    argNodes.forEach((a, i) => {
      // The direct field argument of READ_ONCE(x->f) is the marked access itself, not a plain load.
      const target = unparen(a);
      if (marked && i === 0 && target.type === 'field_expression') {
        const base = fieldNode(target, 'argument');
        if (base) this.walk(base, fieldNode(target, 'operator')?.type === '.' ? 'addr' : 'value', out);
      } else this.walk(a, 'value', out);
    });
    const specials = indirect ? [] : classifyCall(callee, args);
    this.push(out, node, { kind: 'call', callee, indirect, args: args.map((a) => a.text), special: specials.length > 0 });
    for (const s of specials) this.push(out, node, s);
    if (specials.some((s) => s.kind === 'bug') && argNodes[0]) this.assertHeld(argNodes[0], out);
  }

  /** `WARN_ON(!mutex_is_locked(&l))` and `WARN_ON_ONCE(!lockdep_is_held(&l))` state a lock requirement. */
  private assertHeld(cond: Node, out: Event[]): void {
    const c = unparen(cond);
    if (c.type !== 'unary_expression' || c.child(0)?.type !== '!') return;
    const inner = unparen(fieldNode(c, 'argument') ?? c);
    if (inner.type !== 'call_expression') return;
    const name = fieldNode(inner, 'function')?.text ?? '';
    if (!IS_LOCKED_PREDICATES.has(name)) return;
    const arg = this.args(fieldNode(inner, 'arguments'))[0];
    if (!arg) return;
    const text = this.text(arg);
    const flavor = name.startsWith('spin') || name.startsWith('raw_spin') ? 'spinlock' : name.startsWith('rwsem') ? 'rwsem' : 'mutex';
    this.push(out, inner, {
      kind: 'lock', op: 'assert_held', api: name, flavor, mode: 'exclusive',
      lock: text.startsWith('&') ? text.slice(1).trim() : `*${text}`, path: accessPath(this.source, arg), acquiredWhen: null, scope: null,
    });
  }

  private assignment(node: Node, out: Event[]): void {
    const left = fieldNode(node, 'left');
    const right = fieldNode(node, 'right');
    const op = fieldNode(node, 'operator')?.type ?? '=';
    if (right) this.walk(right, 'value', out);
    if (left) this.lvalue(left, op, right, out, op !== '=');
  }

  /** A write to `lhs` (after its value operands were walked); `alsoLoad` for `+=` and `++`. */
  private lvalue(lhs: Node, operator: string, right: Node | null, out: Event[], alsoLoad: boolean): void {
    const l = unparen(lhs);
    let field: Node | null = null;
    if (l.type === 'field_expression') field = l;
    else if (l.type === 'subscript_expression') {
      const base = unparen(fieldNode(l, 'argument') ?? l);
      if (base.type === 'field_expression') field = base;
      const index = fieldNode(l, 'index');
      if (index) this.walk(index, 'value', out);
    }
    if (field) {
      const arg = fieldNode(field, 'argument');
      const member = fieldNode(field, 'field')?.text ?? '?';
      if (arg) this.walk(arg, fieldNode(field, 'operator')?.type === '.' ? 'addr' : 'value', out);
      if (alsoLoad) this.load(field, out);
      this.push(out, lhs, {
        kind: 'store', target: this.text(l), base: arg ? this.text(arg) : '?', member, path: accessPath(this.source, l),
        value: right ? this.text(right) : '', operator,
      });
      return;
    }
    if (l.type === 'pointer_expression' || l.type === 'subscript_expression') {
      const arg = l.type === 'pointer_expression' ? fieldNode(l, 'argument') : fieldNode(l, 'argument');
      if (arg) this.walk(arg, 'value', out);
    }
    const r = right ? unparen(right) : null;
    const call = r?.type === 'call_expression' ? r : r?.type === 'cast_expression' ? unparen(fieldNode(r, 'value') ?? r) : null;
    const fromCall = call?.type === 'call_expression' ? (fieldNode(call, 'function')?.text ?? null) : null;
    this.push(out, lhs, { kind: 'assign', target: this.text(l), value: right ? this.text(right) : operator, fromCall });
  }

  /** Events for a declarator's initialiser: the value's events, then an assign to the declared name. */
  initializer(name: string, nameNode: Node, value: Node, out: Event[]): void {
    this.walk(value, 'value', out);
    const r = unparen(value);
    const call = r.type === 'call_expression' ? r : r.type === 'cast_expression' ? unparen(fieldNode(r, 'value') ?? r) : null;
    const fromCall = call?.type === 'call_expression' ? (fieldNode(call, 'function')?.text ?? null) : null;
    this.push(out, nameNode, { kind: 'assign', target: name, value: this.text(value), fromCall });
  }
}
