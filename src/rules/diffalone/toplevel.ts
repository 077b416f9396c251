/**
 * Top-level items of kernel C found from lines alone, without a parser: function definitions, struct /
 * union / enum / initialiser blocks, one-statement declarations and #include/#define lines. Used to
 * rebuild a post-image from a diff that did not apply (see reconstruct.ts), where only hunks are known
 * and a parser would see fragments.
 *
 * It leans on kernel style (checkpatch enforces it): a function body opens with `{` alone at column 0
 * and closes with `}` at column 0; an aggregate opens on a column-0 line ending in `{` and closes with
 * `};` at column 0. Anything it cannot bound is not an item: a fragment is left out, never guessed.
 */

export interface TopItem {
  /** 0-based first and last line (inclusive) in the array scanned. */
  start: number;
  end: number;
  /** `fn:<name>`, `agg:<name>`, or `text:<the item's text>` for declarations and preprocessor lines. */
  key: string;
}

/** Removes comments, strings and char literals from one line, carrying block-comment state. */
function codeOf(line: string, state: { inComment: boolean }): string {
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (state.inComment) {
      if (c === '*' && line[i + 1] === '/') {
        state.inComment = false;
        i++;
      }
      continue;
    }
    if (c === '/' && line[i + 1] === '*') {
      state.inComment = true;
      i++;
      continue;
    }
    if (c === '/' && line[i + 1] === '/') break;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < line.length && line[j] !== c) j += line[j] === '\\' ? 2 : 1;
      out += c + c;
      i = j;
      continue;
    }
    out += c;
  }
  return out;
}

const CONDITIONAL = /^#\s*(?:if|ifdef|ifndef|elif|else|endif)\b/;
const LABEL = /^[A-Za-z_]\w*:(?!:)/;
const AGGREGATE_OPEN = /^(?:(?:static|const|extern|typedef|struct|union|enum|__\w+)\b[^;]*|[^;]*=\s*)\{\s*$/;

function nameOfFunction(header: string): string | null {
  if (/[;=]/.test(header.replace(/\([^()]*\)/g, '()'))) return null;
  const m = /\b(?<name>[A-Za-z_]\w*)\s*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*(?:__\w+(?:\([^()]*\))?\s*)*$/.exec(header.trim());
  return m?.groups?.name ?? null;
}

function nameOfAggregate(first: string): string {
  const eq = /\b(?<name>[A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)?=\s*\{/.exec(first);
  if (eq?.groups) return eq.groups.name!;
  const tag = /\b(?<kind>struct|union|enum)\s+(?<name>[A-Za-z_]\w*)\s*\{/.exec(first);
  return tag?.groups ? `${tag.groups.kind} ${tag.groups.name}` : first.trim();
}

/**
 * The complete items among `lines[from..to]` (inclusive). `lines[i] === undefined` is an unknown
 * line: nothing spans it. Items that run past `to` or into an unknown line are left out.
 */
export function topLevelItems(lines: readonly (string | undefined)[], from = 0, to = lines.length - 1): TopItem[] {
  const items: TopItem[] = [];
  let i = from;
  while (i <= to) {
    const line = lines[i];
    if (line === undefined || line.trim() === '' || /^\s/.test(line) || line.startsWith('}')) {
      i++;
      continue;
    }
    if (line.startsWith('/*')) {
      // Skip the comment; an unterminated one ends the scan of this region.
      let j = i;
      while (j <= to && lines[j] !== undefined && !lines[j]!.includes('*/')) j++;
      i = j + 1;
      continue;
    }
    if (line.startsWith('#')) {
      let j = i;
      while (j < to && lines[j] !== undefined && lines[j]!.endsWith('\\')) j++;
      if (lines[j] === undefined || lines[j]!.endsWith('\\')) break;
      if (!CONDITIONAL.test(line)) items.push({ start: i, end: j, key: `text:${lines.slice(i, j + 1).join('\n')}` });
      i = j + 1;
      continue;
    }
    if (LABEL.test(line) || !/^[A-Za-z_]/.test(line)) {
      i++;
      continue;
    }
    const item = scanItem(lines, i, to);
    if (typeof item === 'number') {
      // Ran into an unknown line (or the region's end): go on after it, inside whatever it cut.
      i = item + 1;
      continue;
    }
    if (item) {
      items.push(item);
      i = item.end + 1;
    } else {
      i++;
    }
  }
  return items;
}

/** One item starting at the column-0 line `start`; null when it is not one; the line where it ran out when it is cut. */
function scanItem(lines: readonly (string | undefined)[], start: number, to: number): TopItem | null | number {
  const state = { inComment: false };
  let depth = 0;
  let paren = 0;
  let header = '';
  let kind: 'fn' | 'agg' | null = null;
  for (let j = start; j <= to; j++) {
    const raw = lines[j];
    if (raw === undefined) return j;
    const code = codeOf(raw, state);
    if (depth === 0 && kind === null) {
      if (j > start && raw.trim() === '' && paren === 0) return null;
      if (j === start && AGGREGATE_OPEN.test(code)) {
        kind = 'agg';
        header = code;
      } else if (j > start && code.trim() === '{') {
        const name = nameOfFunction(header);
        if (!name) return null;
        kind = 'fn';
        header = name;
      } else if (code.includes('{')) {
        // `int f(void) {`, `} else {` at column 0, a compound literal: not kernel-style items.
        return null;
      } else {
        header += ` ${code}`;
        for (const c of code) paren += c === '(' ? 1 : c === ')' ? -1 : 0;
        if (paren === 0 && /;\s*$/.test(code)) return { start, end: j, key: `text:${lines.slice(start, j + 1).join('\n')}` };
        if (j - start > 12) return null;
        continue;
      }
    }
    for (const c of code) {
      if (c === '{') depth++;
      else if (c === '}') depth--;
    }
    if (depth < 0) return null;
    if (depth === 0 && raw.startsWith('}')) {
      if (kind === 'fn') return { start, end: j, key: `fn:${header}` };
      if (!/;\s*$/.test(code)) {
        // `} __packed;` / `} __aligned(8);` on the closing line are fine; anything else is not ours.
        return /^\}\s*[\w\s()]*;?\s*$/.test(code) && /;\s*$/.test(code) ? { start, end: j, key: `agg:${nameOfAggregate(header)}` } : null;
      }
      return { start, end: j, key: `agg:${nameOfAggregate(header)}` };
    }
  }
  return to;
}
