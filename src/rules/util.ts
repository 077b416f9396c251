/**
 * Small text helpers shared by rules that do not need the full C model.
 */

/** The source with comments and string/char literals blanked (same length, newlines kept). */
export function stripCommentsAndStrings(src: string): string {
  let out = '';
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    const d = src[i + 1];
    if (c === '/' && d === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === '/' && d === '/') {
      let stop = src.indexOf('\n', i);
      if (stop < 0) stop = n;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      const stop = Math.min(n, j + 1);
      out += c + ' '.repeat(Math.max(0, stop - i - 2)) + (stop - i >= 2 ? c : '');
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * The function enclosing a line, kernel style: a definition starts at column 0
 * with `name(` and its body opens with `{` at column 0.
 */
export function enclosingFunction(src: string, line: number): string | null {
  const lines = src.split('\n');
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (l.startsWith('}') && i < line - 1) return null;
    if (l.startsWith('{')) {
      for (let j = i - 1; j >= Math.max(0, i - 8); j--) {
        const m = /^(?:[\w\s*]+?[\s*])?(?<name>[A-Za-z_]\w*)\s*\(/.exec(lines[j]!);
        if (m?.groups && !/^(?:if|for|while|switch|return|sizeof)$/.test(m.groups.name!)) return m.groups.name!;
      }
      return null;
    }
  }
  return null;
}
