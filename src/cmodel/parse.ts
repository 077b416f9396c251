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
      old.edit(editBetween(prior.text, text));
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

/** The single edit turning `a` into `b`: their common prefix and suffix kept (indices and columns in UTF-16 units, as the trees use). */
function editBetween(a: string, b: string): Edit {
  const min = Math.min(a.length, b.length);
  let start = 0;
  while (start < min && a.charCodeAt(start) === b.charCodeAt(start)) start++;
  let tail = 0;
  while (tail < min - start && a.charCodeAt(a.length - 1 - tail) === b.charCodeAt(b.length - 1 - tail)) tail++;
  return new Edit({
    startIndex: start, oldEndIndex: a.length - tail, newEndIndex: b.length - tail,
    startPosition: pointAt(a, start), oldEndPosition: pointAt(a, a.length - tail), newEndPosition: pointAt(b, b.length - tail),
  });
}

function pointAt(text: string, index: number): { row: number; column: number } {
  let row = 0;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) {
    row++;
    lineStart = i + 1;
  }
  return { row, column: index - lineStart };
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
