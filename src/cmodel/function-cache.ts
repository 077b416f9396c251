/**
 * Function models carried from one version of a file to the next. A patch changes a few functions
 * of a file; the others have the same text, only maybe further down. Extracting a function (its
 * statements, events, locals) is most of the cost of modelling a file, so a function whose exact
 * text was extracted before in the same file is taken from that extraction instead: as is when it
 * starts at the same offset and line, or as a copy with every line and offset moved by the
 * distance it moved. Tree-sitter still parses the whole file (the nodes give each function's span).
 *
 * A function's model depends only on its own text (and the lock annotations inside it, which are
 * part of that text), so the copy equals a fresh extraction; VFIO_REVIEW_VERIFY_REUSE=1 checks it.
 */
import { createHash } from 'node:crypto';
import type { FunctionModel } from './functions.js';

/** Per path, the functions of its recent versions by exact text. */
const byPath = new Map<string, Map<string, FunctionModel>>();
const MAX_PATHS = 400;
const MAX_PER_PATH = 4000;

/** The digest of a function's text: with its file and name, the key its summaries are stored under. */
export function digestOf(text: string): string {
  return createHash('sha1').update(text).digest('base64');
}

/** A function of `path` extracted before with exactly `text`, placed at `line`/`offset`; null when none. */
export function priorFunction(path: string, text: string, line: number, offset: number): FunctionModel | null {
  const fns = byPath.get(path);
  const hit = fns?.get(text);
  if (!hit) return null;
  // Most recently used last.
  byPath.delete(path);
  byPath.set(path, fns!);
  if (hit.line === line && hit.offset === offset) return hit;
  return shifted(hit, line - hit.line, offset - hit.offset);
}

/** Remember `fn`, extracted from `text` in `path`. */
export function rememberFunction(path: string, text: string, fn: FunctionModel): void {
  let fns = byPath.get(path);
  if (!fns) {
    fns = new Map();
    byPath.set(path, fns);
    if (byPath.size > MAX_PATHS) byPath.delete(byPath.keys().next().value!);
  }
  fns.delete(text);
  fns.set(text, fn);
  if (fns.size > MAX_PER_PATH) fns.delete(fns.keys().next().value!);
}

const LINE_KEYS = new Set(['line', 'endLine', 'outerLine']);
const OFFSET_KEYS = new Set(['offset', 'endOffset']);

/**
 * A deep copy of plain data with every `line`/`endLine`/`outerLine` moved by `dl` and every
 * `offset`/`endOffset` by `doff`. Shared objects stay shared (a function's events are both in its
 * statement tree and in its event list).
 */
export function shifted<T>(x: T, dl: number, doff: number, seen = new Map<object, unknown>()): T {
  if (x === null || typeof x !== 'object') return x;
  const known = seen.get(x as object);
  if (known !== undefined) return known as T;
  if (Array.isArray(x)) {
    const out: unknown[] = new Array(x.length);
    seen.set(x, out);
    for (let i = 0; i < x.length; i++) {
      const v: unknown = x[i];
      out[i] = v === null || typeof v !== 'object' ? v : shifted(v, dl, doff, seen);
    }
    return out as T;
  }
  const src = x as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  seen.set(src, out);
  for (const k in src) {
    const v = src[k];
    if (typeof v === 'number') out[k] = LINE_KEYS.has(k) ? v + dl : OFFSET_KEYS.has(k) ? v + doff : v;
    else out[k] = v === null || typeof v !== 'object' ? v : shifted(v, dl, doff, seen);
  }
  return out as T;
}
