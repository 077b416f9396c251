import type { ParsedFile } from '../apply/types.js';

/** Where a patch changes one file, on the post-image side. */
export interface TouchedFile {
  path: string;
  /** Post-image lines that are added, or next to a removal (a pure deletion leaves no added line). */
  changed: Set<number>;
  /** Post-image line ranges of the hunks, context included: [start, end]. */
  hunks: [number, number][];
  /** Functions enclosing a changed line. */
  functions: Set<string>;
}

// A function definition starts at column 0 in kernel style (what git's default funcname also
// assumes): a name and '(' on a line that is not a declaration, macro call or preprocessor line.
const DEF = /^(?![#\s{}])[A-Za-z_][^;=]*?\b(?<name>[A-Za-z_]\w*)\s*\((?!.*\)\s*;\s*$)/;

/** The name of the function whose body holds line `line` (1-based) of `lines`, or null. */
export function enclosingFunction(lines: readonly string[], line: number): string | null {
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    const l = lines[i]!;
    // A closing brace at column 0 above the line ends the previous function (the line itself may be ours).
    if (l.startsWith('}') && i !== line - 1) return null;
    const m = DEF.exec(l);
    if (m?.groups) return m.groups.name!;
  }
  return null;
}

/** The post-image positions a patch changes, per file, and the functions around them in `after`. */
export function touchedFiles(files: readonly ParsedFile[], after: (path: string) => string | null): TouchedFile[] {
  const out: TouchedFile[] = [];
  for (const f of files) {
    if (!f.newPath) continue;
    const changed = new Set<number>();
    const hunks: [number, number][] = [];
    for (const h of f.hunks) {
      hunks.push([h.newStart, h.newStart + Math.max(h.newLines, 1) - 1]);
      let n = h.newStart;
      let inRemoval = false;
      for (const l of h.lines) {
        const c = l[0];
        if (c === '+') {
          changed.add(n++);
          inRemoval = false;
        } else if (c === '-') {
          // The surviving lines around a removal: where the removed code used to be.
          if (!inRemoval) {
            if (n > 1) changed.add(n - 1);
            changed.add(n);
          }
          inRemoval = true;
        } else if (c === ' ' || l === '') {
          n++;
          inRemoval = false;
        }
      }
    }
    const text = after(f.newPath);
    const lines = text === null ? [] : text.split('\n');
    const functions = new Set<string>();
    for (const n of changed) {
      const fn = enclosingFunction(lines, n);
      if (fn) functions.add(fn);
    }
    out.push({ path: f.newPath, changed, hunks, functions });
  }
  return out;
}

/** How close a finding is to what a patch changes. */
export type Nearness = 'line' | 'hunk' | 'function' | 'elsewhere';

/** Where finding (`file`, `line`, `function`) sits relative to `touched`; `after` reads the post-image for its enclosing function. */
export function nearness(
  touched: readonly TouchedFile[],
  f: { file: string; line: number; function: string | null },
  after: (path: string) => string | null,
): Nearness {
  const t = touched.find((x) => x.path === f.file);
  if (!t) return 'elsewhere';
  if (t.changed.has(f.line)) return 'line';
  if (t.hunks.some(([a, b]) => f.line >= a && f.line <= b)) return 'hunk';
  const text = after(f.file);
  const fn = f.function ?? (text === null ? null : enclosingFunction(text.split('\n'), f.line));
  return fn && t.functions.has(fn) ? 'function' : 'elsewhere';
}
