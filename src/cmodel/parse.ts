import { createRequire } from 'node:module';
import { Edit, Language, Parser, type Node, type Tree } from 'web-tree-sitter';
import { prefilter, type LockAnnotation, type MacroGlobal } from './prefilter.js';

/** One C file parsed by tree-sitter after the offset-preserving pre-filter. */
export interface ParsedFile {
  path: string;
  /** The file as read. */
  source: string;
  /** The pre-filtered text the tree was built from: same length and lines as `source`. */
  text: string;
  /** Null only when tree-sitter itself failed on the file; `failure` then says why. */
  tree: Tree | null;
  failure: string | null;
  annotations: LockAnnotation[];
  macroGlobals: MacroGlobal[];
}

let parser: Parser | null = null;
let loading: Promise<Parser> | null = null;

/**
 * Load tree-sitter and the C grammar once per process; later calls return the same parser.
 * Must be awaited before {@link parseC}: the WebAssembly runtime has no synchronous start-up.
 */
export function loadParser(): Promise<void> {
  loading ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('tree-sitter-c/tree-sitter-c.wasm');
    const lang = await Language.load(wasm);
    const p = new Parser();
    p.setLanguage(lang);
    parser = p;
    return p;
  })();
  return loading.then(() => undefined);
}

/**
 * Parse one file. Never throws for the file's content: macros the pre-filter does not know end up
 * as local ERROR nodes, and a failure of tree-sitter itself is reported in `failure`. Throws only
 * when {@link loadParser} has not completed, which is a programming error.
 * The tree lives in WebAssembly memory: call {@link disposeParsed} when done with it.
 */
export function parseC(source: string, path: string, opts: ParseOptions = {}): ParsedFile {
  if (!parser) throw new Error('cmodel: parseC called before loadParser() resolved');
  const filtered = opts.prefilter === false ? { text: source, annotations: [], macroGlobals: [] } : prefilter(source);
  let tree: Tree | null = null;
  let failure: string | null = null;
  try {
    tree = reparse(path, filtered.text);
    if (!tree) failure = 'tree-sitter returned no tree';
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
    // A wasm trap can leave the parser mid-parse; reset so the next file starts clean.
    parser.reset();
    forget(path);
  }
  return { path, source, text: filtered.text, tree, failure, annotations: filtered.annotations, macroGlobals: filtered.macroGlobals };
}

/**
 * The last tree parsed for each recent path, with its text. A patch changes a file in a few
 * places; tree-sitter's incremental parse from the previous version's tree (edited to the new text)
 * reuses every untouched subtree and gives the same tree as a fresh parse, 3-4x faster on a 70 KB
 * file. VFIO_REVIEW_VERIFY_REUSE=1 parses afresh too and throws on a difference.
 *
 * Bounded by the text they cover, least recently parsed out first. A daemon worker's warm-up
 * (drivers/vfio, drivers/iommu and the headers and siblings they read) parses 297 files, 4.6 MB;
 * keeping all their trees costs about 50 MB of RSS more than keeping 13 (measured on the 6.1 tree),
 * and lets the first patch of a series to any of those files reparse instead of parsing afresh.
 */
const recentTrees = new Map<string, { text: string; tree: Tree }>();
const RECENT_TREE_CHARS = 8_000_000;
let recentChars = 0;

function reparse(path: string, text: string): Tree | null {
  const prior = recentTrees.get(path);
  let tree: Tree | null;
  if (prior && prior.text !== text) {
    const old = prior.tree.copy();
    try {
      // Last edit first: each then lies in text the later ones did not move.
      for (const e of editsBetween(prior.text, text).reverse()) old.edit(e);
      tree = parser!.parse(text, old);
    } finally {
      old.delete();
    }
    if (tree && process.env.VFIO_REVIEW_VERIFY_REUSE === '1') {
      const fresh = parser!.parse(text);
      const same = fresh?.rootNode.toString() === tree.rootNode.toString();
      fresh?.delete();
      if (!same) throw new Error(`incremental parse of ${path} differs from a fresh parse`);
    }
  } else {
    tree = parser!.parse(text);
  }
  if (tree) {
    forget(path);
    recentTrees.set(path, { text, tree: tree.copy() });
    recentChars += text.length;
    while (recentChars > RECENT_TREE_CHARS && recentTrees.size > 1) forget(recentTrees.keys().next().value!);
  }
  return tree;
}

function forget(path: string): void {
  const t = recentTrees.get(path);
  if (!t) return;
  t.tree.delete();
  recentChars -= t.text.length;
  recentTrees.delete(path);
}

/** Start offsets of the lines of `text` (UTF-16 indices). */
function lineStarts(text: string): number[] {
  const out = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) out.push(i + 1);
  return out;
}

/**
 * The edits turning `a` into `b`, in order, each in `a`'s coordinates: unchanged lines that occur
 * once in each (in the same order) anchor the texts, and every stretch between anchors that
 * differs is one edit. A patch with hunks at the top and the bottom of a file is two edits rather
 * than one spanning it, so tree-sitter reuses what lies between them. Edits closer than a few
 * lines merge.
 */
export function editsBetween(a: string, b: string): Edit[] {
  if (a === b) return [];
  const la = lineStarts(a);
  const lb = lineStarts(b);
  const lineText = (t: string, starts: number[], k: number): string => t.slice(starts[k], k + 1 < starts.length ? starts[k + 1] : t.length);
  // The differing middle in whole lines: lines [a0, a1) of `a` against [b0, b1) of `b`.
  let a0 = 0;
  while (a0 < la.length && a0 < lb.length && lineText(a, la, a0) === lineText(b, lb, a0)) a0++;
  const b0 = a0;
  let a1 = la.length, b1 = lb.length;
  while (a1 > a0 && b1 > b0 && lineText(a, la, a1 - 1) === lineText(b, lb, b1 - 1)) a1--, b1--;
  // Anchors: lines unique in both middles, long enough to mean something, kept in increasing order
  // of both sides (longest increasing subsequence by patience sorting).
  const count = (t: string, starts: number[], from: number, to: number): Map<string, number> => {
    const m = new Map<string, number>();
    for (let k = from; k <= to; k++) {
      const l = lineText(t, starts, k);
      if (l.trim().length < 4) continue;
      m.set(l, m.has(l) ? -1 : k);
    }
    return m;
  };
  const ua = count(a, la, a0, a1 - 1);
  const ub = count(b, lb, b0, b1 - 1);
  const pairs: [number, number][] = [];
  for (const [l, ka] of ua) {
    const kb = ub.get(l);
    if (ka >= 0 && kb !== undefined && kb >= 0) pairs.push([ka, kb]);
  }
  pairs.sort((x, y) => x[0] - y[0]);
  const tops: number[] = [];
  const prev: number[] = new Array(pairs.length).fill(-1);
  pairs.forEach(([, kb], i) => {
    let lo = 0, hi = tops.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pairs[tops[mid]!]![1] < kb) lo = mid + 1;
      else hi = mid;
    }
    prev[i] = lo > 0 ? tops[lo - 1]! : -1;
    tops[lo] = i;
  });
  const anchors: [number, number][] = [];
  for (let i = tops.length ? tops[tops.length - 1]! : -1; i >= 0; i = prev[i]!) anchors.push(pairs[i]!);
  anchors.reverse();
  // Gaps between anchors (in lines), trimmed of equal lines at both ends, as character ranges.
  const ranges: { aFrom: number; aTo: number; bFrom: number; bTo: number }[] = [];
  const gap = (ka: number, kaEnd: number, kb: number, kbEnd: number): void => {
    while (ka < kaEnd && kb < kbEnd && lineText(a, la, ka) === lineText(b, lb, kb)) ka++, kb++;
    while (ka < kaEnd && kb < kbEnd && lineText(a, la, kaEnd - 1) === lineText(b, lb, kbEnd - 1)) kaEnd--, kbEnd--;
    if (ka === kaEnd && kb === kbEnd) return;
    const off = (starts: number[], t: string, k: number): number => (k < starts.length ? starts[k]! : t.length);
    ranges.push({ aFrom: off(la, a, ka), aTo: off(la, a, kaEnd), bFrom: off(lb, b, kb), bTo: off(lb, b, kbEnd) });
  };
  let pa = a0, pb = b0;
  for (const [ka, kb] of anchors) {
    gap(pa, ka, pb, kb);
    pa = ka + 1;
    pb = kb + 1;
  }
  gap(pa, a1, pb, b1);
  // Merge edits less than ~3 lines apart (the same in both texts between them).
  const merged: typeof ranges = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r.aFrom - last.aTo < 240) {
      last.aTo = r.aTo;
      last.bTo = r.bTo;
    } else merged.push({ ...r });
  }
  return merged.map((r) => editOf(la, b, r));
}

/**
 * The edit replacing a[aFrom, aTo) by b[bFrom, bTo), placed at `aFrom` in a text that equals `a`
 * up to there (`la`: the line starts of `a`; later edits are applied first).
 */
function editOf(la: number[], b: string, r: { aFrom: number; aTo: number; bFrom: number; bTo: number }): Edit {
  const startPosition = pointIn(la, r.aFrom);
  // The new end: the start point advanced over the inserted text.
  const inserted = b.slice(r.bFrom, r.bTo);
  const nl = inserted.lastIndexOf('\n');
  let rows = 0;
  for (let i = inserted.indexOf('\n'); i >= 0; i = inserted.indexOf('\n', i + 1)) rows++;
  const newEndPosition = nl < 0 ? { row: startPosition.row, column: startPosition.column + inserted.length } : { row: startPosition.row + rows, column: inserted.length - nl - 1 };
  return new Edit({
    startIndex: r.aFrom, oldEndIndex: r.aTo, newEndIndex: r.aFrom + inserted.length,
    startPosition, oldEndPosition: pointIn(la, r.aTo), newEndPosition,
  });
}

function pointIn(starts: number[], index: number): { row: number; column: number } {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= index) lo = mid;
    else hi = mid - 1;
  }
  return { row: lo, column: index - starts[lo]! };
}

/** Free the tree-sitter tree of a parsed file; the rest of the object stays usable. */
export function disposeParsed(file: ParsedFile): void {
  file.tree?.delete();
  file.tree = null;
}

/** Options of {@link parseC}. */
export interface ParseOptions {
  /** Run the pre-filter (default true); false parses the raw text, for measuring what it buys. */
  prefilter?: boolean;
}

/** How many function definitions a file has and how many contain an ERROR node, or only MISSING ones. */
export interface ErrorStats {
  functions: number;
  /** Functions containing at least one ERROR node. */
  withError: number;
  /** Functions without ERROR nodes but with a MISSING token the parser invented (`;` after a loop macro). */
  withMissing: number;
}

/** Count function definitions and those containing ERROR or MISSING nodes (the parse-quality metric). */
export function functionErrorStats(file: ParsedFile): ErrorStats {
  const stats: ErrorStats = { functions: 0, withError: 0, withMissing: 0 };
  if (!file.tree) return stats;
  const scan = (node: Node, found: { error: boolean; missing: boolean }): void => {
    if (node.isError) found.error = true;
    if (node.isMissing) found.missing = true;
    if (!node.hasError) return;
    for (const child of node.children) if (child) scan(child, found);
  };
  const visit = (node: Node): void => {
    if (node.type === 'function_definition') {
      stats.functions++;
      if (!node.hasError) return;
      const found = { error: false, missing: false };
      scan(node, found);
      if (found.error) stats.withError++;
      else if (found.missing) stats.withMissing++;
      return;
    }
    for (const child of node.namedChildren) if (child) visit(child);
  };
  visit(file.tree.rootNode);
  return stats;
}

export type { Node, Tree };
