/**
 * The expression language of {@link Expr}, compiled to closures over the state vector. A closure
 * reads the thread's registers at `rb + index`; an unknown operand (`?`, or a register holding
 * UNKNOWN) makes the whole value UNKNOWN, which a branch explores both ways.
 */
import type { Expr } from './model.js';

/** The "don't know" value: conditions on it are nondeterministic. */
export const UNKNOWN = -0x80000000;

/** Object pointers are values at and above this base (object index added). */
export const OBJ_BASE = 0x40000000;

/** Identifiers that are neither registers nor errno names are interned from here (enum constants). */
const CONST_BASE = 1_000_000;

/** Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h, linux/errno.h). */
export const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, EBADF: 9, EAGAIN: 11, ENOMEM: 12,
  EACCES: 13, EFAULT: 14, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, ENOSPC: 28, ERANGE: 34,
  EDEADLK: 35, ENOSYS: 38, ENOTTY: 25, EOPNOTSUPP: 95, EADDRINUSE: 98, EADDRNOTAVAIL: 99,
  ETIMEDOUT: 110, ERESTARTSYS: 512, ENOTSUPP: 524, EOVERFLOW: 75, ENOTCONN: 107, ECANCELED: 125,
};

/** A compiled expression: the value, or {@link UNKNOWN}. */
export type ExprFn = (s: Int32Array, rb: number) => number;

/** How identifiers resolve while compiling one thread's expressions. */
export interface ExprScope {
  /** Register name -> index in the thread's register file. */
  regs: Map<string, number>;
  /** Object name -> index. */
  objects: Map<string, number>;
  /** Shared interning of other identifiers (per scenario, so `STANDBY` means one value everywhere). */
  consts: Map<string, number>;
}

type Node =
  | { k: 'num'; v: number }
  | { k: 'reg'; i: number }
  | { k: 'unknown' }
  | { k: 'un'; op: '!' | '-' | '@'; a: Node }
  | { k: 'bin'; op: string; a: Node; b: Node };

const TOKEN = /\s*(?:(?<num>0x[0-9a-fA-F]+|\d+)|(?<id>&?[A-Za-z_]\w*)|(?<op>==|!=|<=|>=|&&|\|\||[-+<>!()?@]))/y;

function tokenize(text: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(text);
    if (!m || m[0].length === 0) throw new Error(`bad expression '${text}' at ${pos}`);
    out.push((m.groups!.num ?? m.groups!.id ?? m.groups!.op)!);
    pos = TOKEN.lastIndex;
  }
  return out;
}

const PREC: Record<string, number> = { '||': 1, '&&': 2, '==': 3, '!=': 3, '<': 4, '<=': 4, '>': 4, '>=': 4, '+': 5, '-': 5 };

/** Parse `text` into a tree, resolving identifiers through `scope`. */
function parse(text: string, scope: ExprScope): Node {
  const toks = tokenize(text);
  let i = 0;
  const primary = (): Node => {
    const t = toks[i++];
    if (t === undefined) throw new Error(`unexpected end of expression '${text}'`);
    if (t === '(') {
      const e = binary(0);
      if (toks[i++] !== ')') throw new Error(`missing ) in '${text}'`);
      return e;
    }
    // `@e` is 1 when e is known, 0 when it is unknown (derive-fn.ts decides unknown conditions once).
    if (t === '!' || t === '-' || t === '@') return { k: 'un', op: t, a: primary() };
    if (t === '?') return { k: 'unknown' };
    if (/^(?:0x[0-9a-fA-F]+|\d+)$/.test(t)) return { k: 'num', v: Number(t) | 0 };
    return ident(t, scope);
  };
  const binary = (min: number): Node => {
    let left = primary();
    for (;;) {
      const op = toks[i];
      const p = op !== undefined ? PREC[op] : undefined;
      if (p === undefined || p <= min) return left;
      i++;
      left = { k: 'bin', op: op!, a: left, b: binary(p) };
    }
  };
  const e = binary(0);
  if (i !== toks.length) throw new Error(`trailing tokens in '${text}'`);
  return e;
}

function ident(t: string, scope: ExprScope): Node {
  if (t.startsWith('&')) {
    const o = scope.objects.get(t.slice(1));
    if (o === undefined) throw new Error(`unknown object ${t}`);
    return { k: 'num', v: OBJ_BASE + o };
  }
  const r = scope.regs.get(t);
  if (r !== undefined) return { k: 'reg', i: r };
  if (t === 'NULL' || t === 'false' || t === 'null') return { k: 'num', v: 0 };
  if (t === 'true') return { k: 'num', v: 1 };
  const e = ERRNO[t];
  if (e !== undefined) return { k: 'num', v: e };
  let c = scope.consts.get(t);
  if (c === undefined) scope.consts.set(t, (c = CONST_BASE + scope.consts.size));
  return { k: 'num', v: c };
}

function truth(v: number): number {
  return v === UNKNOWN ? UNKNOWN : v !== 0 ? 1 : 0;
}

function apply(op: string, a: number, b: number): number {
  // && and || decide on one known side even when the other is unknown.
  if (op === '&&') {
    if (a === 0 || b === 0) return 0;
    return a === UNKNOWN || b === UNKNOWN ? UNKNOWN : 1;
  }
  if (op === '||') {
    if ((a !== UNKNOWN && a !== 0) || (b !== UNKNOWN && b !== 0)) return 1;
    return a === UNKNOWN || b === UNKNOWN ? UNKNOWN : 0;
  }
  if (a === UNKNOWN || b === UNKNOWN) return UNKNOWN;
  switch (op) {
    case '==': return a === b ? 1 : 0;
    case '!=': return a !== b ? 1 : 0;
    case '<': return a < b ? 1 : 0;
    case '<=': return a <= b ? 1 : 0;
    case '>': return a > b ? 1 : 0;
    case '>=': return a >= b ? 1 : 0;
    case '+': return (a + b) | 0;
    case '-': return (a - b) | 0;
    default: throw new Error(`operator ${op}`);
  }
}

function closure(n: Node): ExprFn {
  switch (n.k) {
    case 'num': {
      const v = n.v;
      return () => v;
    }
    case 'unknown':
      return () => UNKNOWN;
    case 'reg': {
      const i = n.i;
      return (s, rb) => s[rb + i]!;
    }
    case 'un': {
      const a = closure(n.a);
      if (n.op === '@') return (s, rb) => (a(s, rb) === UNKNOWN ? 0 : 1);
      if (n.op === '!') return (s, rb) => {
        const v = truth(a(s, rb));
        return v === UNKNOWN ? UNKNOWN : 1 - v;
      };
      return (s, rb) => {
        const v = a(s, rb);
        return v === UNKNOWN ? UNKNOWN : -v | 0;
      };
    }
    case 'bin': {
      const a = closure(n.a);
      const b = closure(n.b);
      const op = n.op;
      // The common shapes get direct closures: conditions run at every step of the search.
      if (op === '==') return (s, rb) => {
        const x = a(s, rb);
        const y = b(s, rb);
        return x === UNKNOWN || y === UNKNOWN ? UNKNOWN : x === y ? 1 : 0;
      };
      return (s, rb) => apply(op, a(s, rb), b(s, rb));
    }
  }
}

/** Compile `e` for a thread whose identifiers resolve through `scope`. */
export function compileExpr(e: Expr, scope: ExprScope): ExprFn {
  if (typeof e === 'number') {
    const v = e | 0;
    return () => v;
  }
  return closure(parse(e, scope));
}

/** The identifiers of an expression (to find which are registers before compiling). */
export function identifiers(e: Expr): string[] {
  if (typeof e === 'number') return [];
  return tokenize(e).filter((t) => /^[A-Za-z_]/.test(t));
}

/** A value as shown in traces and views: errno names, object names, interned constant names. */
export function showValue(v: number, objects: readonly string[], consts: ReadonlyMap<string, number>): string {
  if (v === UNKNOWN) return '?';
  if (v >= OBJ_BASE && v < OBJ_BASE + objects.length) return `&${objects[v - OBJ_BASE]}`;
  if (v >= CONST_BASE) for (const [k, c] of consts) if (c === v) return k;
  if (v < 0) for (const [k, c] of Object.entries(ERRNO)) if (c === -v) return `-${k}`;
  return String(v);
}
