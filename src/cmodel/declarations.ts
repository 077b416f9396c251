/**
 * The file-level model: functions plus the declarations the type environment needs (structs,
 * typedefs, globals, prototypes with their lock annotations, ops-structure initialisers, includes).
 */
import type { Node } from 'web-tree-sitter';
import { baseTypeText, declaratorName, fieldNode, kids, lineOf, typeText, unparen } from './ast.js';
import { extractFunction, signatureOf, type FunctionModel, type Var } from './functions.js';
import { digestOf, priorFunction, rememberFunction } from './function-cache.js';
import { disposeParsed, parseC, type ParsedFile } from './parse.js';
import type { LockAnnotation } from './prefilter.js';

/** A struct or union with its fields; anonymous members' fields are flattened into the parent. */
export interface StructDef {
  /** Tag, or `@<offset>` for an untagged one. */
  name: string;
  fields: Var[];
  line: number;
}

/** A global variable declaration or definition. */
export interface GlobalVar extends Var {
  isExtern: boolean;
  isStatic: boolean;
}

/** A function declaration without a body. */
export interface Prototype {
  name: string;
  returnType: string;
  params: Var[];
  annotations: LockAnnotation[];
  line: number;
}

/** `.member = function` inside an initialiser: how an ops call `x->member(...)` reaches `fn`. */
export interface OpsBinding {
  /** The struct tag of the initialised object when it is the outermost one (`ap_driver`), else null. */
  structType: string | null;
  /** The initialised variable (`vfio_ap_drv`), null for nested initialisers. */
  variable: string | null;
  member: string;
  fn: string;
  line: number;
}

/** An `#include`. */
export interface Include {
  path: string;
  system: boolean;
  line: number;
}

/** Everything the model keeps of one file, as plain data. */
export interface FileModel {
  path: string;
  functions: FunctionModel[];
  globals: GlobalVar[];
  structs: StructDef[];
  typedefs: { name: string; type: string }[];
  prototypes: Prototype[];
  ops: OpsBinding[];
  includes: Include[];
  /** Set when tree-sitter failed on the whole file. */
  failure: string | null;
  functionsWithErrors: number;
}

/** The struct tag named by a type text (`const struct foo *` -> `foo`), or null. */
export function structTag(type: string): string | null {
  const m = /\b(?:struct|union)\s+(?<tag>[@\w]+)/.exec(type);
  return m?.groups?.tag ?? null;
}

class DeclarationCollector {
  readonly model: FileModel;

  constructor(private readonly file: ParsedFile) {
    this.model = {
      path: file.path, functions: [], globals: [], structs: [], typedefs: [], prototypes: [], ops: [], includes: [],
      failure: file.failure, functionsWithErrors: 0,
    };
  }

  private get src(): string {
    return this.file.source;
  }

  /**
   * The model of a function definition: taken from an earlier version of the file when the same text
   * was extracted there (function-cache.ts), else extracted.
   */
  private functionAt(n: Node): FunctionModel | null {
    const text = this.src.slice(n.startIndex, n.endIndex);
    const line = lineOf(n);
    const prior = priorFunction(this.file.path, text, line, n.startIndex);
    if (prior && process.env.VFIO_REVIEW_VERIFY_REUSE !== '1') return prior;
    const fn = extractFunction(this.src, this.file.path, n, this.file.annotations);
    if (!fn) return null;
    // Macro-defined objects inside the body (`LIST_HEAD(x);`) are locals: part of the function's own text.
    for (const g of this.file.macroGlobals) {
      if (g.offset >= fn.offset && g.offset < fn.endOffset) fn.locals.push({ name: g.name, type: g.type, line: this.src.slice(0, g.offset).split('\n').length });
    }
    fn.digest = digestOf(text);
    if (prior && JSON.stringify(prior) !== JSON.stringify(fn)) {
      throw new Error(`function model of ${fn.name} (${this.file.path}:${line}) taken from an earlier version differs from a fresh extraction`);
    }
    rememberFunction(this.file.path, text, fn);
    return fn;
  }

  /** Walk top-level items (descending into preprocessor conditionals and `extern "C"`-like blocks). */
  topLevel(node: Node): void {
    for (const n of kids(node)) {
      switch (n.type) {
        case 'function_definition': {
          const fn = this.functionAt(n);
          if (fn) {
            this.model.functions.push(fn);
            if (fn.hasError) this.model.functionsWithErrors++;
          }
          this.structsIn(fieldNode(n, 'type'));
          break;
        }
        case 'declaration':
          this.declaration(n);
          break;
        case 'type_definition':
          this.typedef(n);
          break;
        case 'struct_specifier':
        case 'union_specifier':
          this.structsIn(n);
          break;
        case 'preproc_include': {
          const p = fieldNode(n, 'path');
          if (p) this.model.includes.push({ path: p.text.replace(/^["<]|[">]$/g, ''), system: p.type === 'system_lib_string', line: lineOf(n) });
          break;
        }
        case 'preproc_if':
        case 'preproc_ifdef':
        case 'preproc_else':
        case 'preproc_elif':
        case 'preproc_elifdef':
        case 'linkage_specification':
        case 'declaration_list':
          // Headers define both branches of `#ifdef CONFIG_X ... #else stub #endif`; keep all declarations.
          this.topLevel(n);
          break;
        case 'expression_statement':
        case 'ERROR':
          this.opsIn(n, null, null);
          break;
        default:
          break;
      }
    }
  }

  private declaration(n: Node): void {
    const typeNode = fieldNode(n, 'type');
    this.structsIn(typeNode);
    const storage = kids(n).filter((k) => k.type === 'storage_class_specifier').map((k) => k.text);
    for (const d of n.childrenForFieldName('declarator')) {
      if (!d) continue;
      const inner = d.type === 'init_declarator' ? fieldNode(d, 'declarator') : d;
      if (inner && this.isFunctionDeclarator(inner)) {
        const sig = signatureOf(this.src, n);
        if (sig) {
          const annotations = this.file.annotations.filter((a) => a.offset >= n.startIndex && a.offset < n.endIndex);
          this.model.prototypes.push({ name: sig.name, returnType: sig.returnType, params: sig.params, annotations, line: lineOf(n) });
        }
        continue;
      }
      const name = declaratorName(inner);
      if (!name || /^(?:DEFINE|DECLARE)_|^LIST_HEAD$/.test(baseTypeText(this.src, typeNode))) continue;
      this.model.globals.push({
        name, type: typeText(this.src, typeNode, inner), line: lineOf(d),
        isExtern: storage.includes('extern'), isStatic: storage.includes('static'),
      });
      const value = d.type === 'init_declarator' ? fieldNode(d, 'value') : null;
      if (value?.type === 'initializer_list') this.opsIn(value, structTag(baseTypeText(this.src, typeNode)), name);
    }
  }

  private isFunctionDeclarator(d: Node): boolean {
    let n: Node | null = d;
    for (let guard = 0; n && guard < 16; guard++) {
      if (n.type === 'function_declarator') return true;
      if (n.type === 'parenthesized_declarator') return false;
      n = fieldNode(n, 'declarator');
    }
    return false;
  }

  private typedef(n: Node): void {
    const typeNode = fieldNode(n, 'type');
    this.structsIn(typeNode);
    for (const d of n.childrenForFieldName('declarator')) {
      const name = d ? declaratorName(d) : null;
      if (name) this.model.typedefs.push({ name, type: typeText(this.src, typeNode, d) });
    }
  }

  /** Record struct/union definitions found in a type node, including nested ones. */
  private structsIn(typeNode: Node | null): void {
    if (!typeNode || (typeNode.type !== 'struct_specifier' && typeNode.type !== 'union_specifier')) return;
    const body = fieldNode(typeNode, 'body');
    if (!body) return;
    const fields: Var[] = [];
    this.fieldsOf(body, fields);
    this.model.structs.push({ name: structTag(baseTypeText(this.src, typeNode)) ?? '?', fields, line: lineOf(typeNode) });
  }

  private fieldsOf(body: Node, fields: Var[]): void {
    for (const f of kids(body)) {
      if (f.type.startsWith('preproc_')) {
        this.fieldsOf(f, fields);
        continue;
      }
      if (f.type !== 'field_declaration') continue;
      const typeNode = fieldNode(f, 'type');
      this.structsIn(typeNode);
      const declarators = f.childrenForFieldName('declarator').filter((d): d is Node => d !== null);
      if (declarators.length === 0 && typeNode && (typeNode.type === 'struct_specifier' || typeNode.type === 'union_specifier')) {
        // An anonymous member: its fields are accessed as if they were the parent's.
        const inner = fieldNode(typeNode, 'body');
        if (inner) this.fieldsOf(inner, fields);
        continue;
      }
      for (const d of declarators) {
        const name = declaratorName(d);
        if (name) fields.push({ name, type: typeText(this.src, typeNode, d), line: lineOf(d) });
      }
    }
  }

  /** Designated initialisers `.member = fn` / `.member = &fn` anywhere under `node`. */
  private opsIn(node: Node, structType: string | null, variable: string | null, depth = 0): void {
    for (const c of kids(node)) {
      if (c.type === 'initializer_pair') {
        const designator = c.childrenForFieldName('designator').find((d) => d?.type === 'field_designator');
        const value = fieldNode(c, 'value');
        const member = designator ? kids(designator)[0]?.text : undefined;
        if (member && value) {
          const v = unparen(value);
          const target = v.type === 'pointer_expression' ? unparen(fieldNode(v, 'argument') ?? v) : v;
          if (target.type === 'identifier') {
            this.model.ops.push({ structType: depth === 0 ? structType : null, variable: depth === 0 ? variable : null, member, fn: target.text, line: lineOf(c) });
          } else if (v.type === 'initializer_list') this.opsIn(v, null, null, depth + 1);
        }
      } else if (c.type === 'initializer_list') this.opsIn(c, null, null, depth + 1);
      else if (c.type !== 'string_literal') this.opsIn(c, structType, variable, depth);
    }
  }

  /** Macro-defined objects (`static DEFINE_MUTEX(x);`) outside functions become globals (inside, {@link functionAt} made them locals). */
  macroGlobals(): void {
    for (const g of this.file.macroGlobals) {
      if (this.model.functions.some((f) => g.offset >= f.offset && g.offset < f.endOffset)) continue;
      const line = this.src.slice(0, g.offset).split('\n').length;
      this.model.globals.push({ name: g.name, type: g.type, line, isExtern: false, isStatic: true });
    }
  }
}

/** Extract the file model from a parsed file (the tree stays alive; the caller disposes it). */
export function extractFile(file: ParsedFile): FileModel {
  const c = new DeclarationCollector(file);
  if (file.tree) c.topLevel(file.tree.rootNode);
  c.macroGlobals();
  return c.model;
}

/** Parse and extract one file, releasing the tree-sitter tree. Requires `loadParser()` first. */
export function modelFile(source: string, path: string): FileModel {
  const parsed = parseC(source, path);
  try {
    return extractFile(parsed);
  } finally {
    disposeParsed(parsed);
  }
}

