/**
 * Per-function model: parameters, locals, a structured statement tree with control flow, and the
 * flat event list. Everything here is plain data (no tree-sitter nodes), so models
 * can be cached, compared between base and patched trees, and handed to other processes.
 */
import type { Node } from 'web-tree-sitter';
import { baseTypeText, declaratorName, endLineOf, fieldNode, kids, lineOf, typeText } from './ast.js';
import type { Event } from './events.js';
import type { LockAnnotation } from './prefilter.js';
import { FunctionBuilder } from './statements.js';

/** A named, typed variable: parameter, local or global. */
export interface Var {
  name: string;
  /** Normalised type text: `struct ap_matrix_mdev *`. */
  type: string;
  line: number;
}

/** Where a statement starts and ends (1-based lines). */
export interface StmtBase {
  line: number;
  endLine: number;
}

/** One `case`/`default` group of a switch, with the statements up to the next label. */
export interface SwitchCase {
  line: number;
  /** Case value texts; empty for `default`. */
  values: string[];
  isDefault: boolean;
  body: Stmt[];
}

/** Statements with control flow; events of each statement are in evaluation order. */
export type Stmt =
  | (StmtBase & { kind: 'expr'; text: string; events: Event[] })
  | (StmtBase & { kind: 'decl'; text: string; events: Event[]; names: string[] })
  | (StmtBase & {
      kind: 'if';
      cond: string;
      condEvents: Event[];
      /** Conditional acquires called in the condition (by event offset) and the truth value that means "acquired". */
      condLocks: { offset: number; acquiredIf: boolean }[];
      /**
       * Calls whose result alone decides the condition (`if (!helper(x))`): the truth value of the
       * condition when the call returns non-zero. Lets the walker match a helper's outcome to the branch.
       */
      condCalls: { offset: number; truthyIf: boolean }[];
      then: Stmt[];
      else: Stmt[] | null;
    })
  | (StmtBase & { kind: 'switch'; cond: string; condEvents: Event[]; cases: SwitchCase[] })
  | (StmtBase & {
      kind: 'loop';
      loop: 'for' | 'while' | 'do' | 'macro';
      /** The iterator macro for `list_for_each_entry(...)`-style loops. */
      macro: string | null;
      cond: string;
      init: Event[];
      condEvents: Event[];
      update: Event[];
      body: Stmt[];
      /** `for (;;)`, `while (1)`: leaves only by break, return or goto. */
      infinite: boolean;
      /** `do { } while (0)`: the body runs once. */
      once: boolean;
    })
  | (StmtBase & { kind: 'block'; body: Stmt[] })
  | (StmtBase & { kind: 'scoped'; macro: string; header: Event[]; body: Stmt[] })
  | (StmtBase & { kind: 'return'; expr: string | null; events: Event[] })
  | (StmtBase & { kind: 'goto'; label: string })
  | (StmtBase & { kind: 'label'; label: string })
  | (StmtBase & { kind: 'break' })
  | (StmtBase & { kind: 'continue' })
  | (StmtBase & { kind: 'unparsed'; text: string; events: Event[] });

/** One function definition of a file. */
export interface FunctionModel {
  name: string;
  file: string;
  line: number;
  endLine: number;
  offset: number;
  endOffset: number;
  isStatic: boolean;
  returnType: string;
  params: Var[];
  locals: Var[];
  body: Stmt[];
  /**
   * All events: statements in source order, each statement's events in evaluation order (a call's
   * arguments before the call); a `for` loop's update comes after its body. The statement tree
   * holds the same objects, so identity links the two.
   */
  events: Event[];
  /** `__must_hold`/`__acquires`/`__releases` written on the definition. */
  annotations: LockAnnotation[];
  /** True when tree-sitter left an ERROR node inside; events there are best-effort. */
  hasError: boolean;
  /** Digest of the definition's text, set when extracted from a file (the summary cache's key). */
  digest?: string;
}

/** The function_declarator inside a definition's declarator chain. */
function functionDeclarator(node: Node | null): Node | null {
  let n = node;
  for (let guard = 0; n && guard < 16; guard++) {
    if (n.type === 'function_declarator') return n;
    n = fieldNode(n, 'declarator');
  }
  return null;
}

/** Parameters of a function declarator. */
export function paramsOf(source: string, fnDecl: Node): Var[] {
  const list = fieldNode(fnDecl, 'parameters');
  const out: Var[] = [];
  for (const p of list ? kids(list) : []) {
    if (p.type !== 'parameter_declaration') continue;
    const d = fieldNode(p, 'declarator');
    const name = declaratorName(d);
    if (!name) continue;
    out.push({ name, type: typeText(source, fieldNode(p, 'type'), d), line: lineOf(p) });
  }
  return out;
}

/** Name, return type and parameters of a function definition or prototype, or null if none. */
export function signatureOf(source: string, node: Node): { name: string; returnType: string; params: Var[]; isStatic: boolean } | null {
  const decl = fieldNode(node, 'declarator');
  const fnDecl = functionDeclarator(decl);
  if (!fnDecl) return null;
  const name = declaratorName(fieldNode(fnDecl, 'declarator'));
  if (!name) return null;
  const typeNode = fieldNode(node, 'type');
  // The return type's pointer stars sit between the definition's declarator and the function declarator.
  let stars = '';
  for (let d = decl; d && d !== fnDecl; d = fieldNode(d, 'declarator')) if (d.type === 'pointer_declarator') stars += '*';
  const base = typeNode ? baseTypeText(source, typeNode) : 'int';
  const isStatic = kids(node).some((k) => k.type === 'storage_class_specifier' && k.text === 'static');
  return { name, returnType: stars ? `${base} ${stars}` : base, params: paramsOf(source, fnDecl), isStatic };
}

/**
 * Build the model of one function definition node. `annotations` are the file's blanked lock
 * annotations; those between the definition's start and its body belong to it.
 */
export function extractFunction(source: string, file: string, node: Node, annotations: LockAnnotation[]): FunctionModel | null {
  const sig = signatureOf(source, node);
  const bodyNode = fieldNode(node, 'body');
  if (!sig || !bodyNode) return null;
  const builder = new FunctionBuilder(source);
  const body = builder.body(bodyNode);
  const own = annotations.filter((a) => a.offset >= node.startIndex && a.offset < bodyNode.startIndex);
  return {
    name: sig.name, file, line: lineOf(node), endLine: endLineOf(node), offset: node.startIndex, endOffset: node.endIndex,
    isStatic: sig.isStatic, returnType: sig.returnType, params: sig.params, locals: builder.locals, body,
    events: builder.events, annotations: own, hasError: node.hasError,
  };
}
