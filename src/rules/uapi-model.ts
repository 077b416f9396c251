/**
 * A small model of a uAPI header, enough for the uapi-* rules to compare a
 * pre-image with a post-image: defines, ioctl numbers and their argument
 * structs, enums, structs/unions with fields, and their layout on the two
 * ABIs that matter for uAPI review (LP64: x86_64/arm64, and i386, where
 * `__u64` is only 4-aligned). Written for robustness, not completeness: junk
 * (a half comment when only the added lines are known) is skipped, an unknown
 * type makes the layout incomplete rather than wrong.
 */
import type { ChangedFile, RuleContext } from './types.js';
import { Parser, type Item } from './uapi/c-decls.js';
import { makeEvaluator, tokenize, ws, type Tok } from './uapi/c-tokens.js';

export { ABIS, U64_LIKE, flattenFields, layoutOf, type Abi, type Layout, type Placed } from './uapi/layout.js';

/** A comment, `*` margins stripped. */
export interface Comment { line: number; endLine: number; text: string }
/** `#define NAME[(params)] body`, continuation lines joined, comments removed. */
export interface Define { name: string; params: string[] | null; body: string; line: number; endLine: number }
/** An enum constant with its value when it can be computed. */
export interface EnumConst { name: string; expr: string | null; value: bigint | null; line: number; enumName: string | null }
/** An enum, tagged or not. */
export interface UapiEnum { name: string | null; line: number; endLine: number; constants: EnumConst[] }
/** A struct/union member. */
export interface Field {
  /** null for an anonymous struct/union member. */
  name: string | null;
  /** '__u32', 'unsigned long', 'struct foo', 'enum bar'; 'struct'/'union' for an untagged nested one. */
  type: string;
  pointer: number;
  /** Array dimensions as written; null is a flexible `[]`. */
  dims: (string | null)[];
  bits: number | null;
  aligned: number | null;
  nested: Aggregate | null;
  line: number;
  /** The declaration as written, whitespace collapsed. */
  text: string;
}
/** A struct or union (nested ones hang off `Field.nested`). */
export interface Aggregate { kind: 'struct' | 'union'; name: string | null; fields: Field[]; line: number; endLine: number; packed: boolean; aligned: number | null }
/** Which `_IOx()` macro defines an ioctl. */
export type IoctlDir = 'IO' | 'IOR' | 'IOW' | 'IOWR';
/** An ioctl define: `#define NAME _IOx(type, nr[, arg])`. */
export interface Ioctl {
  name: string; dir: IoctlDir; type: string; nr: string;
  typeValue: bigint | null; nrValue: bigint | null;
  /** Third `_IOx()` argument as written, if any. */
  argType: string | null;
  /** The struct the ioctl takes (resolved), and how it was found. */
  arg: string | null;
  argVia: 'macro' | 'doc' | 'doc-near' | 'name' | 'adjacent' | null;
  line: number; endLine: number;
}
/** What one header defines. */
export interface UapiModel {
  defines: Map<string, Define>;
  enums: UapiEnum[];
  constants: Map<string, EnumConst>;
  /** Keyed `struct name` / `union name`; tagged nested aggregates included. */
  aggregates: Map<string, Aggregate>;
  /** `typedef <field-like> name;` declared in the header. */
  typedefs: Map<string, Field>;
  ioctls: Ioctl[];
  comments: Comment[];
  items: Item[];
  /** Integer value of a C expression over this header's defines and enum constants. */
  evaluate(expr: string): bigint | null;
}

const IOCTL = /^_IO(?<dir>R|W|WR)?\s*\((?<args>.*)\)$/s;

/** `((x))` -> `x` when the outer parentheses enclose the whole text. */
export function unparen(s: string): string {
  let t = s.trim();
  while (t.startsWith('(') && t.endsWith(')')) {
    let depth = 0;
    let closesAtEnd = true;
    for (let i = 0; i < t.length; i++) {
      if (t[i] === '(') depth++;
      else if (t[i] === ')' && --depth === 0 && i < t.length - 1) { closesAtEnd = false; break; }
    }
    if (!closesAtEnd) break;
    t = t.slice(1, -1).trim();
  }
  return t;
}

/** `s` split at `sep` outside parentheses, each piece trimmed: macro arguments, or the terms of `A | B`. */
export function splitTopLevel(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === sep && depth === 0) { out.push(cur.trim()); cur = ''; } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

const splitArgs = (s: string): string[] => splitTopLevel(s, ',');

/**
 * Parses a header. `gaps` (diff-alone mode) are the lines whose text is unknown: a comment
 * or directive open at one of them is closed there.
 */
export function parseUapi(src: string, gaps?: ReadonlySet<number>): UapiModel {
  const { toks, comments } = tokenize(src, gaps);
  const defines = new Map<string, Define>();
  const constants = new Map<string, EnumConst>();
  const items: Item[] = [];
  // Conditionals: keep the first branch of every #if, so a field is not seen twice.
  const code: Tok[] = []; // tokens outside preprocessor lines, first #if branches only
  const stack: boolean[] = [];
  const taking = (): boolean => stack.every(Boolean);
  for (const t of toks) {
    if (t.k !== 'pp') { if (taking()) code.push(t); continue; }
    const m = /^(?<dir>\w+)\s*(?<rest>.*)$/s.exec(t.v);
    const dir = m?.groups?.dir ?? '';
    if (/^if/.test(dir)) stack.push(true);
    else if (dir === 'else' || dir === 'elif' || dir === 'elifdef' || dir === 'elifndef') { if (stack.length) stack[stack.length - 1] = false; }
    else if (dir === 'endif') stack.pop();
    else if (dir === 'define' && taking()) {
      const d = /^(?<name>[A-Za-z_]\w*)(?<params>\([^)]*\))?\s*(?<body>.*)$/s.exec(m!.groups!.rest!);
      if (d?.groups && !defines.has(d.groups.name!)) {
        const params = d.groups.params ? d.groups.params.slice(1, -1).split(',').map((x) => x.trim()).filter(Boolean) : null;
        defines.set(d.groups.name!, { name: d.groups.name!, params, body: ws(d.groups.body ?? ''), line: t.line, endLine: t.endLine });
        items.push({ kind: 'define', line: t.line, endLine: t.endLine });
      }
    }
  }
  // Enum constants become known only after parsing; each stage gets a fresh (memoizing) evaluator.
  const parser = new Parser(code, makeEvaluator(defines, constants));
  parser.parseFile();
  for (const e of parser.enums) {
    let next: bigint | null = 0n;
    for (const c of e.constants) {
      c.value = c.expr !== null ? makeEvaluator(defines, constants)(c.expr) : next;
      next = c.value === null ? null : c.value + 1n;
      if (!constants.has(c.name)) constants.set(c.name, c);
    }
  }
  items.push(...parser.items);
  items.sort((a, b) => a.line - b.line);
  const evaluate = makeEvaluator(defines, constants);
  const model: UapiModel = { defines, enums: parser.enums, constants, aggregates: parser.aggregates, typedefs: parser.typedefs, ioctls: [], comments, items, evaluate };
  for (const d of defines.values()) {
    const m = d.params ? null : IOCTL.exec(unparen(d.body));
    if (!m?.groups) continue;
    const args = splitArgs(m.groups.args!);
    if (args.length < 2) continue;
    const dir = `IO${m.groups.dir ?? ''}` as IoctlDir;
    model.ioctls.push({
      name: d.name, dir, type: args[0]!, nr: args[1]!, typeValue: evaluate(args[0]!), nrValue: evaluate(args[1]!),
      argType: args[2] ?? null, arg: null, argVia: null, line: d.line, endLine: d.endLine,
    });
  }
  model.ioctls.sort((a, b) => a.line - b.line);
  for (const io of model.ioctls) resolveArg(model, io);
  return model;
}

/** Which struct an ioctl takes: `_IOx(..., struct T)`, the doc comment, the name, or the struct right above it. */
function resolveArg(model: UapiModel, io: Ioctl): void {
  const has = (s: string): boolean => model.aggregates.has(`struct ${s}`);
  const set = (arg: string, via: Ioctl['argVia']): void => { io.arg = arg; io.argVia = via; };
  const macro = io.argType ? /^struct\s+(?<s>\w+)$/.exec(io.argType) : null;
  if (macro?.groups) return set(macro.groups.s!, 'macro');
  const name = io.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // VFIO: "VFIO_X - _IOR(VFIO_TYPE, VFIO_BASE + n, struct T)"; iommufd kernel-doc: "struct T - ioctl(IOMMU_X)".
  const vfioDoc = new RegExp(`\\b${name}\\s*-\\s*_IO\\w*\\s*\\((?<args>[^)]*)\\)`);
  const kdoc = new RegExp(`\\bstruct\\s+(?<s>\\w+)\\s*-\\s*ioctl\\(\\s*${name}\\s*\\)`);
  let doc: Comment | null = null;
  let docArg: string | null = null;
  for (const c of model.comments) {
    if (c.line > io.line) break;
    const k = kdoc.exec(c.text);
    if (k?.groups && has(k.groups.s!)) return set(k.groups.s!, 'doc');
    const m = vfioDoc.exec(c.text);
    if (m?.groups) {
      doc = c;
      docArg = splitArgs(ws(m.groups.args!))[2] ?? null;
    }
  }
  if (doc) {
    const s = docArg ? /^struct\s+(?<s>\w+)$/.exec(docArg) : null;
    if (!s?.groups) return; // documented as taking a scalar, a string, or nothing
    if (has(s.groups.s!)) return set(s.groups.s!, 'doc');
    // The doc names a struct that is spelt differently (vfio_dma_map vs vfio_iommu_type1_dma_map):
    // the first struct defined between the comment and the define is the one.
    const near = model.items.find((it) => it.kind === 'aggregate' && it.agg!.kind === 'struct' && it.agg!.name && it.line > doc.endLine && it.endLine < io.line);
    if (near) return set(near.agg!.name!, 'doc-near');
    return;
  }
  const lower = io.name.toLowerCase();
  if (has(lower)) return set(lower, 'name');
  let prev: Item | undefined;
  for (const it of model.items) {
    if (it.kind === 'other' || it.endLine >= io.line) continue;
    if (!prev || it.endLine > prev.endLine || (it.endLine === prev.endLine && it.kind === 'aggregate')) prev = it;
  }
  if (prev?.kind === 'aggregate' && prev.agg!.kind === 'struct' && prev.agg!.name && io.line - prev.endLine <= 2) set(prev.agg!.name, 'adjacent');
}

// ---------------------------------------------------------------- the two images of a header

/** A uAPI header (where the rules apply). */
export const isUapiHeader = (path: string): boolean => /^(?:arch\/[^/]+\/)?include\/uapi\/.+\.h$/.test(path);
export const isVfioHeader = (path: string): boolean => /^include\/uapi\/linux\/vfio[\w-]*\.h$/.test(path);
export const isIommufdHeader = (path: string): boolean => path === 'include/uapi/linux/iommufd.h';

export interface Images {
  pre: UapiModel | null;
  post: UapiModel | null;
  /** True when only the added lines are known: trust only items wholly inside them. */
  partial: boolean;
}

/** Parsed headers by text: the four uAPI rules read the same images of a patch, and the next patch's pre-image is this one's post-image. */
const parsed = new Map<string, UapiModel>();
const PARSED_KEPT = 32;

/** {@link parseUapi} of a whole header, remembered for the last few texts (models are not modified by the rules). */
function parsedUapi(src: string): UapiModel {
  let m = parsed.get(src);
  if (m) return m;
  m = parseUapi(src);
  parsed.set(src, m);
  if (parsed.size > PARSED_KEPT) parsed.delete(parsed.keys().next().value!);
  return m;
}

/**
 * The post-image from git when the series applied; rebuilt from the pre-image and the
 * diff when only `after()` is missing; else the added lines alone (partial).
 */
export function headerImages(ctx: Pick<RuleContext, 'before' | 'after'>, f: ChangedFile): Images {
  const beforeText = f.status === 'added' ? null : ctx.before(f.path);
  const pre = beforeText === null ? null : parsedUapi(beforeText);
  if (f.status === 'deleted') return { pre, post: null, partial: false };
  const after = ctx.after(f.path);
  if (after !== null) return { pre, post: parsedUapi(after), partial: false };
  if (beforeText !== null) return { pre, post: parsedUapi(rebuildAfter(beforeText, f)), partial: false };
  const max = Math.max(0, ...f.addedText.keys());
  const lines: string[] = [];
  const gaps = new Set<number>();
  for (let n = 1; n <= max; n++) {
    const t = f.addedText.get(n);
    lines.push(t ?? '');
    if (t === undefined) gaps.add(n);
  }
  return { pre, post: parseUapi(lines.join('\n'), gaps), partial: true };
}

/** The post-image from the pre-image, the removed line numbers and the added lines. */
export function rebuildAfter(before: string, f: ChangedFile): string {
  const old = before.split('\n');
  const out: string[] = [];
  let o = 0;
  const total = old.length - f.removed.size + f.addedText.size;
  for (let n = 1; n <= total; n++) {
    const added = f.addedText.get(n);
    if (added !== undefined) { out.push(added); continue; }
    while (o < old.length && f.removed.has(o + 1)) o++;
    out.push(old[o++] ?? '');
  }
  return out.join('\n');
}

/** Every line of [line, endLine] is an added line (the item is known from the diff alone). */
export function whollyAdded(f: ChangedFile, line: number, endLine: number): boolean {
  for (let l = line; l <= endLine; l++) if (!f.added.has(l)) return false;
  return true;
}

/** Some line of [line, endLine] is added. */
export function touched(f: ChangedFile, line: number, endLine: number): boolean {
  for (const l of f.added) if (l >= line && l <= endLine) return true;
  return false;
}

/** Where a pre-image line lands in the post-image: a kept line exactly; a removed one at the first added line of its hunk (or the next kept line). */
export function preToPost(f: ChangedFile, preLine: number): number {
  let kept = 0;
  for (let o = 1; o < preLine; o++) if (!f.removed.has(o)) kept++;
  let n = 1;
  for (let seen = 0; seen < kept; n++) if (!f.added.has(n)) seen++;
  if (!f.removed.has(preLine)) while (f.added.has(n)) n++;
  return n;
}
