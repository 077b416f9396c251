/**
 * Declarations of a uAPI header: structs/unions with their members (nested
 * ones, bit-fields, arrays, attributes), enums and typedefs. Tolerant: a token
 * it does not understand is skipped up to the next `;` or the next line that
 * starts a struct/union/enum/typedef.
 */
import type { Aggregate, EnumConst, Field, UapiEnum } from '../uapi-model.js';
import { GAP, cText, ws, type Tok } from './c-tokens.js';

/** A top-level item, in file order (the ioctl-argument heuristics look at neighbours). */
export interface Item { kind: 'define' | 'aggregate' | 'enum' | 'other'; line: number; endLine: number; agg?: Aggregate }

const QUALIFIERS = new Set(['const', 'volatile', '__user', '__kernel', '__iomem', '__force', 'register', 'static', 'extern', 'inline', '__extension__', 'restrict', '__restrict']);
const BUILTIN = new Set(['unsigned', 'signed', 'int', 'long', 'short', 'char', 'float', 'double', 'void', '_Bool']);

/** `unsigned long int` -> 'unsigned long'; `signed int` -> 'int'. */
function canonicalBuiltin(words: string[]): string {
  const longs = words.filter((w) => w === 'long').length;
  const uns = words.includes('unsigned');
  const base = words.includes('char') ? 'char' : words.includes('short') ? 'short' : longs === 2 ? 'long long' : longs === 1 ? 'long' : words.find((w) => ['float', 'double', 'void', '_Bool'].includes(w)) ?? 'int';
  if (base === 'char') return uns ? 'unsigned char' : words.includes('signed') ? 'signed char' : 'char';
  return uns ? `unsigned ${base}` : base;
}

/** Reads `__attribute__((...))`, `__aligned(N)`, `__packed` at t[p]; returns the new index, or p when none. */
function readAttribute(t: Tok[], p: number, out: { packed: boolean; aligned: number | null }, evaluate: (e: string) => bigint | null): number {
  const v = t[p]?.v;
  if (v === '__packed') { out.packed = true; return p + 1; }
  if ((v === '__attribute__' || v === '__attribute' || v === '__aligned') && t[p + 1]?.v === '(') {
    let depth = 0;
    let q = p + 1;
    const inner: string[] = [];
    do {
      const x = t[q]!.v;
      if (x === GAP) break;
      if (x === '(') depth++;
      else if (x === ')') depth--;
      inner.push(x);
      q++;
    } while (q < t.length && depth > 0);
    const text = inner.join(' ');
    if (/\b(?:__)?packed(?:__)?\b/.test(text)) out.packed = true;
    const m = v === '__aligned' ? /^\(\s*(?<n>.+)\s*\)$/.exec(text) : /\b(?:__)?aligned(?:__)?\s*\(\s*(?<n>[^)]*?)\s*\)/.exec(text);
    if (m?.groups) {
      const a = evaluate(m.groups.n!.replace(/\s+/g, ''));
      out.aligned = a === null ? 8 : Number(a);
    } else if (/\baligned\b/.test(text)) out.aligned = 16;
    return q;
  }
  return p;
}

export class Parser {
  p = 0;
  readonly aggregates = new Map<string, Aggregate>();
  readonly typedefs = new Map<string, Field>();
  readonly enums: UapiEnum[] = [];
  readonly items: Item[] = [];
  constructor(readonly t: Tok[], readonly evaluate: (e: string) => bigint | null) {}

  private v(o = 0): string | undefined { return this.t[this.p + o]?.v; }

  /** Skips a balanced (), [] or {} group starting at p. */
  private skipGroup(): void {
    let depth = 0;
    do {
      const x = this.v();
      if (x === GAP) return;
      if (x === '(' || x === '[' || x === '{') depth++;
      else if (x === ')' || x === ']' || x === '}') depth--;
      this.p++;
    } while (this.p < this.t.length && depth > 0);
  }

  /** A token that starts a new top-level item when first on its line (stops junk skipping). */
  private startsItem(tok: Tok): boolean {
    return tok.first && (tok.v === 'struct' || tok.v === 'union' || tok.v === 'enum' || tok.v === 'typedef');
  }

  parseFile(): void {
    while (this.p < this.t.length) {
      const start = this.t[this.p]!;
      if (start.v === GAP) { this.p++; continue; }
      const kw = start.v === 'typedef' ? this.v(1) : start.v;
      const off = start.v === 'typedef' ? 1 : 0;
      if ((kw === 'struct' || kw === 'union') && (this.v(off + 1) === '{' || (this.t[this.p + off + 1]?.k === 'id' && this.v(off + 2) === '{'))) {
        this.p += off;
        const agg = this.parseAggregate();
        this.items.push({ kind: 'aggregate', line: agg.line, endLine: agg.endLine, agg });
        const alias = this.t[this.p];
        if (off === 1 && alias?.k === 'id' && this.v(1) === ';' && !this.typedefs.has(alias.v)) {
          this.typedefs.set(alias.v, { name: alias.v, type: agg.name ? `${agg.kind} ${agg.name}` : agg.kind, pointer: 0, dims: [], bits: null, aligned: null, nested: agg, line: alias.line, text: alias.v });
        }
        this.skipToSemicolon();
        continue;
      }
      if (kw === 'enum' && (this.v(off + 1) === '{' || this.v(off + 2) === '{')) {
        this.p += off;
        const e = this.parseEnum();
        this.items.push({ kind: 'enum', line: e.line, endLine: e.endLine });
        this.skipToSemicolon();
        continue;
      }
      const line = start.line;
      if (start.v === 'typedef') {
        this.p++;
        for (const f of this.parseMember()) if (f.name && !this.typedefs.has(f.name)) this.typedefs.set(f.name, f);
        this.items.push({ kind: 'other', line, endLine: this.t[this.p - 1]?.endLine ?? line });
        continue;
      }
      this.p++;
      this.skipToSemicolon();
      this.items.push({ kind: 'other', line, endLine: this.t[this.p - 1]?.endLine ?? line });
    }
  }

  /** Skips to just past the next `;` at depth 0, or past a top-level `{...}` body, or to the next item start. */
  private skipToSemicolon(): void {
    while (this.p < this.t.length) {
      const tok = this.t[this.p]!;
      if (tok.v === ';') { this.p++; return; }
      if (this.startsItem(tok) || tok.v === GAP) return;
      if (tok.v === '}') { this.p++; continue; }
      if (tok.v === '{') {
        this.skipGroup();
        if (this.v() === ';') this.p++;
        return;
      }
      if (tok.v === '(' || tok.v === '[') { this.skipGroup(); continue; }
      this.p++;
    }
  }

  parseAggregate(): Aggregate {
    const head = this.t[this.p]!;
    const kind = head.v as 'struct' | 'union';
    this.p++;
    const attrs = { packed: false, aligned: null as number | null };
    while (this.readAttr(attrs)) { /* attributes before the tag */ }
    let name: string | null = null;
    if (this.t[this.p]?.k === 'id' && this.v() !== '{') name = this.t[this.p++]!.v;
    this.p++; // '{'
    const fields: Field[] = [];
    while (this.p < this.t.length && this.v() !== '}' && this.v() !== GAP) {
      const before = this.p;
      fields.push(...this.parseMember());
      if (this.p === before) this.p++;
    }
    // Cut off by unknown text: endLine is the gap's line, so the struct never counts as wholly added.
    const endLine = this.t[this.p]?.line ?? head.line;
    if (this.v() === '}') this.p++;
    while (this.readAttr(attrs)) { /* trailing attributes */ }
    const agg: Aggregate = { kind, name, fields, line: head.line, endLine, packed: attrs.packed, aligned: attrs.aligned };
    if (name) {
      const key = `${kind} ${name}`;
      if (!this.aggregates.has(key)) this.aggregates.set(key, agg);
    }
    return agg;
  }

  private readAttr(out: { packed: boolean; aligned: number | null }): boolean {
    const q = readAttribute(this.t, this.p, out, this.evaluate);
    if (q === this.p) return false;
    this.p = q;
    return true;
  }

  /** One member declaration up to its `;` (possibly several declarators). */
  private parseMember(): Field[] {
    const start = this.t[this.p]!;
    if (start.v === ';') { this.p++; return []; }
    // __DECLARE_FLEX_ARRAY(type, name): the kernel's flexible array in a union.
    if (start.v === '__DECLARE_FLEX_ARRAY' && this.v(1) === '(') {
      const from = this.p + 2;
      this.skipGroup();
      const inner = this.t.slice(from, this.p - 1);
      const comma = inner.findIndex((x) => x.v === ',');
      if (this.v() === ';') this.p++;
      const type = ws(inner.slice(0, comma).map((x) => x.v).join(' '));
      const name = inner[comma + 1]?.v ?? null;
      return [{ name, type, pointer: 0, dims: [null], bits: null, aligned: null, nested: null, line: start.line, text: `${type} ${name}[]` }];
    }
    let nested: Aggregate | null = null;
    const words: string[] = [];
    let type: string | null = null;
    const attrs = { packed: false, aligned: null as number | null };
    while (this.p < this.t.length) {
      const x = this.v()!;
      if (this.readAttr(attrs)) continue;
      if (QUALIFIERS.has(x)) { this.p++; continue; }
      if ((x === 'struct' || x === 'union') && (this.v(1) === '{' || this.v(2) === '{')) {
        nested = this.parseAggregate();
        type = nested.name ? `${nested.kind} ${nested.name}` : nested.kind;
        break;
      }
      if (x === 'struct' || x === 'union' || x === 'enum') {
        if (x === 'enum' && (this.v(1) === '{' || this.v(2) === '{')) {
          const e = this.parseEnum();
          type = e.name ? `enum ${e.name}` : 'enum';
          break;
        }
        type = `${x} ${this.v(1) ?? ''}`;
        this.p += 2;
        break;
      }
      if (BUILTIN.has(x)) { words.push(x); this.p++; continue; }
      if (words.length === 0 && this.t[this.p]!.k === 'id') { type = x; this.p++; break; }
      break;
    }
    if (words.length > 0) type = canonicalBuiltin(words);
    type ??= 'int';
    if (!nested && this.v() === '(' && this.v(1) !== '*') {
      // A macro that expands to members (__struct_group and the like): opaque, so the layout stops here.
      const from = this.p - 1;
      while (this.p < this.t.length && this.v() !== ';' && this.v() !== '}' && this.v() !== GAP) {
        if (this.v() === '(') this.skipGroup(); else this.p++;
      }
      const text = cText(this.t.slice(from, this.p).map((y) => y.v).join(' '));
      if (this.v() === ';') this.p++;
      return [{ name: null, type: `macro ${type}`, pointer: 0, dims: [], bits: null, aligned: null, nested: null, line: start.line, text }];
    }
    const fields: Field[] = [];
    // Declarators, separated by commas at depth 0.
    for (;;) {
      while (this.readAttr(attrs) || (this.v() !== undefined && QUALIFIERS.has(this.v()!))) { if (this.v() && QUALIFIERS.has(this.v()!)) this.p++; }
      const declStart = this.p;
      let pointer = 0;
      let name: string | null = null;
      const dims: (string | null)[] = [];
      let bits: number | null = null;
      const fattrs = { packed: false, aligned: attrs.aligned };
      while (this.p < this.t.length) {
        const x = this.v()!;
        const tok = this.t[this.p]!;
        if (x === ';' || x === ',' || x === '}' || x === GAP) break;
        if (this.readAttr(fattrs)) continue;
        if (x === '*') { pointer++; this.p++; continue; }
        if (x === '(' && this.v(1) === '*') { // function pointer: void (*fn)(...)
          pointer++;
          this.p += 2;
          if (this.t[this.p]?.k === 'id') name = this.t[this.p++]!.v;
          while (this.p < this.t.length && this.v() !== ';' && this.v() !== '}' && this.v() !== GAP) {
            if (this.v() === '(') this.skipGroup(); else this.p++;
          }
          break;
        }
        if (x === '[') {
          const from = this.p + 1;
          this.skipGroup();
          const inner = this.t.slice(from, this.p - 1).map((y) => y.v).join(' ');
          dims.push(inner.trim() === '' ? null : ws(inner));
          continue;
        }
        if (x === ':') {
          this.p++;
          const from = this.p;
          while (this.p < this.t.length && ![';', ',', '}', GAP].includes(this.v()!)) this.p++;
          const w = this.evaluate(this.t.slice(from, this.p).map((y) => y.v).join(' '));
          bits = w === null ? 0 : Number(w);
          continue;
        }
        if (tok.k === 'id' && !QUALIFIERS.has(x) && name === null) { name = x; this.p++; continue; }
        if (x === '(') { this.skipGroup(); continue; }
        this.p++;
      }
      const declText = this.t.slice(declStart, this.p).map((y) => y.v).join(' ');
      const line = name ? (this.t.slice(declStart, this.p).find((y) => y.v === name)?.line ?? start.line) : start.line;
      if (name !== null || nested) {
        const tText = nested ? `${type} {...}` : type;
        fields.push({ name, type, pointer, dims, bits, aligned: fattrs.aligned, nested, line: nested && !name ? nested.line : line, text: cText(`${tText} ${declText}`) });
      }
      if (this.v() === ',') { this.p++; continue; }
      if (this.v() === ';') this.p++;
      break;
    }
    return fields;
  }

  parseEnum(): UapiEnum {
    const head = this.t[this.p]!;
    this.p++;
    let name: string | null = null;
    if (this.v() !== '{') name = this.t[this.p++]!.v;
    this.p++;
    const constants: EnumConst[] = [];
    while (this.p < this.t.length && this.v() !== '}' && this.v() !== GAP) {
      const tok = this.t[this.p]!;
      if (tok.k !== 'id') { this.p++; continue; }
      this.p++;
      let expr: string | null = null;
      if (this.v() === '=') {
        this.p++;
        const from = this.p;
        let depth = 0;
        while (this.p < this.t.length) {
          const x = this.v()!;
          if ((depth === 0 && (x === ',' || x === '}')) || x === GAP) break;
          if (x === '(') depth++;
          if (x === ')') depth--;
          this.p++;
        }
        expr = this.t.slice(from, this.p).map((y) => y.v).join(' ');
      }
      constants.push({ name: tok.v, expr, value: null, line: tok.line, enumName: name });
      if (this.v() === ',') this.p++;
    }
    const endLine = this.t[this.p]?.line ?? head.line;
    if (this.v() === '}') this.p++;
    const e: UapiEnum = { name, line: head.line, endLine, constants };
    this.enums.push(e);
    return e;
  }
}
