/**
 * Small helpers over tree-sitter nodes shared by the extractors. Text is always taken from the
 * original source (not the pre-filtered text), so evidence shows what the author wrote.
 */
import type { Node } from 'web-tree-sitter';
import type { AccessPath, AccessStep } from './events.js';

const fieldIds = new Map<string, number | null>();

/**
 * `field(node, name)` with the field id cached: the library looks the name up in the
 * language's field list on every call, which is a visible share of extraction time.
 */
export function fieldNode(node: Node, name: string): Node | null {
  let id = fieldIds.get(name);
  if (id === undefined) {
    id = node.tree.language.fieldIdForName(name);
    fieldIds.set(name, id);
  }
  return id === null ? null : node.childForFieldId(id);
}

/** The original text of a node, whitespace collapsed. */
export function textOf(source: string, node: Node): string {
  return source.slice(node.startIndex, node.endIndex).replace(/\s+/g, ' ').trim();
}

/** 1-based line of a node's start. */
export function lineOf(node: Node): number {
  return node.startPosition.row + 1;
}

/** 1-based line of a node's end. */
export function endLineOf(node: Node): number {
  return node.endPosition.row + 1;
}

/** Named children, skipping comments. */
export function kids(node: Node): Node[] {
  const out: Node[] = [];
  for (const c of node.namedChildren) if (c && c.type !== 'comment') out.push(c);
  return out;
}

/** Strip redundant parentheses. */
export function unparen(node: Node): Node {
  let n = node;
  while (n.type === 'parenthesized_expression') {
    const inner = kids(n)[0];
    if (!inner) break;
    n = inner;
  }
  return n;
}

/** The access path of an lvalue-ish expression; a leading `&` is looked through. */
export function accessPath(source: string, node: Node): AccessPath | null {
  const steps: AccessStep[] = [];
  let n = unparen(node);
  if (n.type === 'pointer_expression' && n.child(0)?.type === '&') n = unparen(fieldNode(n, 'argument') ?? n);
  for (let guard = 0; guard < 64; guard++) {
    switch (n.type) {
      case 'identifier':
        return { root: { kind: 'var', name: n.text }, steps: steps.reverse() };
      case 'field_expression': {
        const field = fieldNode(n, 'field');
        const op = fieldNode(n, 'operator')?.type ?? n.child(1)?.type;
        steps.push({ op: op === '.' ? '.' : '->', member: field?.text ?? '?' });
        const arg = fieldNode(n, 'argument');
        if (!arg) return null;
        n = unparen(arg);
        break;
      }
      case 'subscript_expression': {
        steps.push({ op: '[]' });
        const arg = fieldNode(n, 'argument');
        if (!arg) return null;
        n = unparen(arg);
        break;
      }
      case 'pointer_expression': {
        const arg = fieldNode(n, 'argument');
        if (!arg) return null;
        if (n.child(0)?.type === '*') steps.push({ op: '*' });
        n = unparen(arg);
        break;
      }
      case 'cast_expression': {
        const type = fieldNode(n, 'type');
        return { root: { kind: 'cast', type: type ? textOf(source, type) : '?' }, steps: steps.reverse() };
      }
      case 'call_expression': {
        const fn = fieldNode(n, 'function');
        const args = fieldNode(n, 'arguments');
        const callee = fn?.type === 'identifier' ? fn.text : fn ? textOf(source, fn) : '?';
        return { root: { kind: 'call', callee, args: args ? kids(args).map((a) => textOf(source, a)) : [] }, steps: steps.reverse() };
      }
      default:
        return { root: { kind: 'other', text: textOf(source, n) }, steps: steps.reverse() };
    }
  }
  return null;
}

/** Render an access path back to C-like text (for messages and keys). */
export function pathText(path: AccessPath): string {
  let s: string;
  switch (path.root.kind) {
    case 'var':
      s = path.root.name;
      break;
    case 'call':
      s = `${path.root.callee}(${path.root.args.join(', ')})`;
      break;
    case 'cast':
      s = `((${path.root.type})…)`;
      break;
    default:
      s = path.root.text;
  }
  for (const st of path.steps) {
    if (st.op === '[]') s += '[]';
    else if (st.op === '*') s = `*${s}`;
    else s += `${st.op}${st.member}`;
  }
  return s;
}

/** The declared name inside a declarator (`*p`, `a[3]`, `(*fn)(...)`, `x = 1`). */
export function declaratorName(node: Node | null): string | null {
  let n = node;
  for (let guard = 0; n && guard < 32; guard++) {
    if (n.type === 'identifier' || n.type === 'field_identifier' || n.type === 'type_identifier') return n.text;
    const inner = fieldNode(n, 'declarator') ?? kids(n).find((k) => k.type.endsWith('declarator') || k.type === 'identifier');
    n = inner ?? null;
  }
  return null;
}

/** The pointer/array suffix a declarator adds to its base type: `**`, `[]`. */
export function declaratorSuffix(node: Node | null): string {
  let suffix = '';
  let n = node;
  for (let guard = 0; n && guard < 32; guard++) {
    if (n.type === 'pointer_declarator' || n.type === 'abstract_pointer_declarator') suffix += '*';
    else if (n.type === 'array_declarator') suffix += '[]';
    else if (n.type === 'function_declarator') suffix += '()';
    n = fieldNode(n, 'declarator');
  }
  return suffix;
}

/**
 * The base type of a declaration as short text: `struct foo`, `u32`, `const char`. A struct or
 * union defined in place without a tag gets a synthetic tag from its offset, `struct @1234`, so its
 * fields can still be looked up.
 */
export function baseTypeText(_source: string, typeNode: Node | null): string {
  if (!typeNode) return '?';
  if (typeNode.type === 'struct_specifier' || typeNode.type === 'union_specifier' || typeNode.type === 'enum_specifier') {
    const kw = typeNode.type.slice(0, typeNode.type.indexOf('_'));
    const name = fieldNode(typeNode, 'name');
    return `${kw} ${name ? name.text : `@${typeNode.startIndex}`}`;
  }
  // Types come from the pre-filtered text the tree was built from: DECLARE_BITMAP(x, n) is
  // `unsigned long x[n]` there, and attributes between type tokens are gone.
  return typeNode.text.replace(/\s+/g, ' ').trim();
}

/** `base` + declarator suffix as a normalised type text: `struct foo *`. */
export function typeText(source: string, typeNode: Node | null, declarator: Node | null): string {
  const base = baseTypeText(source, typeNode);
  const suffix = declaratorSuffix(declarator);
  return suffix ? `${base} ${suffix}` : base;
}
