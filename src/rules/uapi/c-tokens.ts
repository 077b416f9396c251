/**
 * The C tokenizer and integer-expression evaluator under the uAPI model
 * (src/rules/uapi-model.ts). Comments are collected, not tokenized, so doc
 * comments can name ioctl arguments; preprocessor lines come out whole.
 */
import type { Comment, Define, EnumConst } from '../uapi-model.js';

/** A token; `pp` is a whole preprocessor line (continuations joined), `first` = first on its line. */
export interface Tok { k: 'id' | 'num' | 'str' | 'punct' | 'pp'; v: string; line: number; endLine: number; first: boolean }
/** Stands for the unknown text at a gap (diff-alone mode): nothing continues across it. */
export const GAP = '\u0000gap';
const PUNCT3 = ['...', '<<=', '>>='];
const PUNCT2 = ['<<', '>>', '->', '&&', '||', '==', '!=', '<=', '>=', '##', '++', '--'];

/** Tokens and comments; `gaps` are lines that end any open comment or directive (unknown text between added chunks). */
export function tokenize(src: string, gaps?: ReadonlySet<number>): { toks: Tok[]; comments: Comment[] } {
  const toks: Tok[] = [];
  const comments: Comment[] = [];
  let i = 0;
  let line = 1;
  let lineStart = true;
  let firstOnLine = true;
  const n = src.length;
  const skipBlockComment = (): { text: string; start: number } => {
    const start = line;
    const from = i;
    i += 2;
    while (i < n && !(src[i] === '*' && src[i + 1] === '/')) {
      if (src[i] === '\n') {
        line++;
        if (gaps?.has(line)) {
          const text = src.slice(from, i++);
          lineStart = true;
          firstOnLine = true;
          if (!gaps.has(line - 1)) toks.push({ k: 'punct', v: GAP, line, endLine: line, first: true });
          return { text, start };
        }
      }
      i++;
    }
    const text = src.slice(from, Math.min(n, i + 2));
    i = Math.min(n, i + 2);
    return { text, start };
  };
  while (i < n) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
      lineStart = true;
      firstOnLine = true;
      if (gaps?.has(line) && !gaps.has(line - 1)) toks.push({ k: 'punct', v: GAP, line, endLine: line, first: true });
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') { i++; continue; }
    if (c === '\\' && src[i + 1] === '\n') {
      i += 2;
      line++;
      if (gaps?.has(line) && !gaps.has(line - 1)) toks.push({ k: 'punct', v: GAP, line, endLine: line, first: true });
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const { text, start } = skipBlockComment();
      comments.push({ line: start, endLine: line, text: cleanComment(text) });
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      comments.push({ line, endLine: line, text: src.slice(i + 2, stop).trim() });
      i = stop;
      continue;
    }
    if (c === '#' && lineStart) {
      const start = line;
      let text = '';
      i++;
      while (i < n && src[i] !== '\n') {
        if (src[i] === '\\' && src[i + 1] === '\n') {
          if (gaps?.has(line + 1)) break;
          text += ' ';
          i += 2;
          line++;
        } else if (src[i] === '/' && src[i + 1] === '*') {
          const { text: ct, start: cs } = skipBlockComment();
          comments.push({ line: cs, endLine: line, text: cleanComment(ct) });
          text += ' ';
        } else if (src[i] === '/' && src[i + 1] === '/') {
          while (i < n && src[i] !== '\n') i++;
        } else text += src[i++];
      }
      toks.push({ k: 'pp', v: text.trim(), line: start, endLine: line, first: true });
      continue;
    }
    lineStart = false;
    const first = firstOnLine;
    firstOnLine = false;
    const m = /^(?:[A-Za-z_]\w*|\.?[0-9][\w.]*|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)/.exec(src.slice(i, i + 256));
    if (m) {
      const v = m[0];
      const k = /^[A-Za-z_]/.test(v) ? 'id' : /^["']/.test(v) ? 'str' : 'num';
      toks.push({ k, v, line, endLine: line, first });
      i += v.length;
      continue;
    }
    const p = PUNCT3.find((x) => src.startsWith(x, i)) ?? PUNCT2.find((x) => src.startsWith(x, i)) ?? c;
    toks.push({ k: 'punct', v: p, line, endLine: line, first });
    i += p.length;
  }
  return { toks, comments };
}

function cleanComment(raw: string): string {
  return raw
    .replace(/^\/\*+/, '')
    .replace(/\*+\/$/, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\*?\s?/, ''))
    .join('\n')
    .trim();
}

export const ws = (s: string): string => s.replace(/\s+/g, ' ').trim();
/** Tokens back to C as a person writes it: `__u64 *data`, `b[16]`. */
export const cText = (s: string): string => ws(s).replace(/\* /g, '*').replace(/ ([[\]),])/g, '$1').replace(/([[(]) /g, '$1');
const exprTokens = (s: string): Tok[] => tokenize(s).toks;

const ESC: Record<string, number> = { n: 10, t: 9, r: 13, '0': 0, '\\': 92, "'": 39, '"': 34 };

/** An evaluator of integer C expressions over a header's object-like defines and enum constants (null when unknown). */
export function makeEvaluator(defines: Map<string, Define>, constants: Map<string, EnumConst>): (expr: string) => bigint | null {
  const memo = new Map<string, bigint | null>();
  const active = new Set<string>();
  const ident = (name: string): bigint | null => {
    if (memo.has(name)) return memo.get(name)!;
    if (active.has(name)) return null;
    active.add(name);
    const d = defines.get(name);
    const v = d ? (d.params ? null : evalExpr(d.body)) : (constants.get(name)?.value ?? null);
    active.delete(name);
    memo.set(name, v);
    return v;
  };
  function evalExpr(expr: string): bigint | null {
    const t = exprTokens(expr);
    let p = 0;
    const peek = (): string | undefined => t[p]?.v;
    const BIN = [['|'], ['^'], ['&'], ['<<', '>>'], ['+', '-'], ['*', '/', '%']];
    const apply = (op: string, a: bigint, b: bigint): bigint | null => {
      switch (op) {
        case '|': return a | b;
        case '^': return a ^ b;
        case '&': return a & b;
        case '<<': return b < 0n || b > 127n ? null : a << b;
        case '>>': return b < 0n || b > 127n ? null : a >> b;
        case '+': return a + b;
        case '-': return a - b;
        case '*': return a * b;
        case '/': return b === 0n ? null : a / b;
        case '%': return b === 0n ? null : a % b;
        default: return null;
      }
    };
    const level = (l: number): bigint | null => {
      if (l >= BIN.length) return unary();
      let a = level(l + 1);
      while (BIN[l]!.includes(peek() ?? '')) {
        const op = t[p++]!.v;
        const b = level(l + 1);
        a = a === null || b === null ? null : apply(op, a, b);
      }
      return a;
    };
    const unary = (): bigint | null => {
      const tok = t[p];
      if (!tok) return null;
      if (tok.v === '-' || tok.v === '~' || tok.v === '+' || tok.v === '!') {
        p++;
        const v = unary();
        if (v === null) return null;
        return tok.v === '-' ? -v : tok.v === '~' ? ~v : tok.v === '!' ? (v === 0n ? 1n : 0n) : v;
      }
      p++;
      if (tok.v === '(') {
        const v = level(0);
        if (peek() !== ')') return null;
        p++;
        return v;
      }
      if (tok.k === 'num') {
        const m = /^(?<digits>0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[uUlL]*$/.exec(tok.v);
        if (!m?.groups) return null;
        const s = m.groups.digits!;
        return /^0[0-7]+$/.test(s) ? BigInt('0o' + s.slice(1)) : BigInt(s);
      }
      if (tok.k === 'str' && tok.v.startsWith("'")) {
        const body = tok.v.slice(1, -1);
        if (body.length === 1) return BigInt(body.charCodeAt(0));
        if (body.startsWith('\\') && body.length === 2 && body[1]! in ESC) return BigInt(ESC[body[1]!]!);
        return null;
      }
      if (tok.k === 'id') return peek() === '(' ? null : ident(tok.v);
      return null;
    };
    const v = level(0);
    return p === t.length ? v : null;
  }
  return evalExpr;
}
