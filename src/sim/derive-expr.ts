/**
 * C expression text (as the C model records it) to the simulator's expression language, when the
 * model can follow it: integer literals, errno and enum constants, and local variables the
 * derivation tracks in registers, joined by comparisons, `&& || !` and `+ -`. Field paths are
 * returned separately so the caller can load them from shared cells first. Anything else (calls,
 * casts, untracked variables, pointer arithmetic) makes the expression untranslatable: the caller
 * then treats a condition as unknown and a value as `?`.
 */

/** A field path in an expression, replaced by a placeholder register the caller loads. */
export interface FieldRef {
  text: string;
  placeholder: string;
}

/** The translated expression and the field paths it reads. */
export interface Translated {
  expr: string;
  fields: FieldRef[];
}

const TOKEN = /\s*(?:(?<path>[A-Za-z_]\w*(?:\s*(?:->|\.)\s*[A-Za-z_]\w*)+)|(?<num>0[xX][0-9a-fA-F]+|\d+)[uUlL]*|(?<id>[A-Za-z_]\w*)|(?<op>\+\+|--|<<|>>|==|!=|<=|>=|&&|\|\||[-+<>!()]))/y;

/** Constants: errno names, enum-style UPPER_CASE names, NULL/true/false. */
function isConstant(id: string): boolean {
  return /^(?:NULL|true|false)$/.test(id) || /^[A-Z][A-Z0-9_]*$/.test(id);
}

/**
 * Translate `text`. `reg(name)` gives the register of a tracked local (or null); `placeholder()`
 * names a fresh register for a field path.
 */
export function translate(text: string, reg: (name: string) => string | null, placeholder: () => string): Translated | null {
  const src = text.trim();
  if (!src) return null;
  const out: string[] = [];
  const fields: FieldRef[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < src.length) {
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(src);
    if (!m || m[0].length === 0) return null;
    pos = TOKEN.lastIndex;
    const g = m.groups!;
    // A call: `name(` or `path(`.
    if ((g.id || g.path) && /^\s*\(/.test(src.slice(pos))) return null;
    if (g.path) {
      const norm = g.path.replace(/\s+/g, '');
      let f = fields.find((x) => x.text === norm);
      if (!f) fields.push((f = { text: norm, placeholder: placeholder() }));
      out.push(f.placeholder);
    } else if (g.num) out.push(String(Number(g.num) | 0));
    else if (g.id) {
      const r = reg(g.id);
      if (r) out.push(r);
      else if (isConstant(g.id)) out.push(g.id);
      else return null;
    } else if (g.op === '++' || g.op === '--' || g.op === '<<' || g.op === '>>') return null; // side effects, shifts: not followed
    else out.push(g.op!);
  }
  return { expr: out.join(' '), fields };
}

/** Normalised text of a condition, variables renamed by `rename`, for correlating repeated unknown conditions. */
export function conditionKey(text: string, rename: (name: string) => string): string {
  return text.replace(/\s+/g, '').replace(/[A-Za-z_]\w*/g, (w, off: number, all: string) => {
    // Members after `->`/`.` are not variables.
    const before = all.slice(Math.max(0, off - 2), off);
    if (before.endsWith('->') || before.endsWith('.')) return w;
    return rename(w);
  });
}

/**
 * Kernel helpers that are pure functions of their argument, with errors as negative values
 * (ERR_PTR(-ENOMEM) is -12; valid pointers are positive; NULL is 0), so error paths correlate:
 * `p = alloc(); if (IS_ERR(p)) return PTR_ERR(p);`.
 */
export const PURE: Readonly<Record<string, (a: string) => string>> = {
  IS_ERR: (a) => `(${a}) < 0`,
  IS_ERR_OR_NULL: (a) => `(${a}) <= 0`,
  PTR_ERR: (a) => `(${a})`,
  ERR_PTR: (a) => `(${a})`,
  ERR_CAST: (a) => `(${a})`,
  likely: (a) => `(${a})`,
  unlikely: (a) => `(${a})`,
  WARN_ON: (a) => `(${a}) != 0`,
  WARN_ON_ONCE: (a) => `(${a}) != 0`,
  // The element of an rb-tree node: the same pointer (an abstracted container's slot holds elements).
  rb_entry: (a) => `(${a})`,
};

/** `text` with calls of {@link PURE} helpers replaced by their expressions (innermost first). */
export function rewritePure(text: string): string {
  let out = text;
  for (let guard = 0; guard < 16; guard++) {
    const m = /\b(IS_ERR_OR_NULL|IS_ERR|PTR_ERR|ERR_PTR|ERR_CAST|likely|unlikely|WARN_ON_ONCE|WARN_ON)\s*\(/.exec(out);
    if (!m) return out;
    let depth = 0;
    let end = -1;
    for (let i = m.index + m[0].length - 1; i < out.length; i++) {
      if (out[i] === '(') depth++;
      else if (out[i] === ')' && --depth === 0) {
        end = i;
        break;
      }
    }
    if (end < 0) return out;
    const arg = out.slice(m.index + m[0].length, end);
    out = out.slice(0, m.index) + PURE[m[1]!]!(arg) + out.slice(end + 1);
  }
  return out;
}
