/**
 * What the locking rules share about one patch: the models before and after, which functions the
 * patch touches, how a function maps to its pre-image, and whether a callee's lock or sleep
 * behaviour changed (a caller's new finding can come from a helper the patch edited).
 */
import { allFunctions, resolveCall, summaryOf, type FunctionModel, type FunctionSummary, type TreeModel } from '../../cmodel/index.js';
import type { ChangedFile, RuleContext } from '../types.js';

export interface PatchScope {
  after: TreeModel;
  /** Null for a patch that only adds files (nothing to compare with). */
  before: TreeModel | null;
  /** Changed files by post-image path. */
  files: Map<string, ChangedFile>;
  /** Whether post-image `line` of `path` was added by the patch. */
  added(path: string, line: number): boolean;
  /** Whether `fn` (after) lies in a file the patch changes. */
  inChangedFile(fn: FunctionModel): boolean;
  /** Whether the patch adds or removes lines inside `fn` (after), or adds `fn` itself. */
  touches(fn: FunctionModel): boolean;
  /** The pre-image of an after function (same name in the old path of its file), or null when new. */
  beforeOf(fn: FunctionModel): FunctionModel | null;
  /** Whether a function's lock/sleep summary differs between before and after (new functions: true). */
  summaryChanged(fn: FunctionModel): boolean;
  /** Added lines of `fn` (after). */
  addedIn(fn: FunctionModel): number[];
}

const isC = (p: string): boolean => /\.[ch]$/.test(p);

/** The lock-relevant signature of a summary: what callers and the lock rules see of it. */
function lockSignature(s: FunctionSummary | undefined): string {
  if (!s) return '';
  const outs = s.outcomes.map((o) => `${o.acquire.map((r) => r.cls).sort().join(',')}/${o.release.map((r) => r.cls).sort().join(',')}`).sort();
  const takes = s.takes.map((t) => `${t.cls}|${t.trylock}`).sort();
  return JSON.stringify([outs, takes, s.sleeps?.api ?? null]);
}

/** The scope of one patch, or null when there is no applied C to look at. */
export async function patchScope(ctx: RuleContext): Promise<PatchScope | null> {
  if (!ctx.applied) return null;
  const cFiles = ctx.files.filter((f) => isC(f.path) && f.status !== 'deleted');
  if (cFiles.length === 0) return null;
  const after = await ctx.model('after');
  if (!after) return null;
  const before = await ctx.model('before');
  const files = new Map(cFiles.map((f) => [f.path, f]));
  const oldPath = new Map(cFiles.map((f) => [f.path, f.oldPath ?? f.path]));
  const beforeByFile = new Map<string, Map<string, FunctionModel>>();
  if (before) {
    for (const fn of allFunctions(before)) {
      let m = beforeByFile.get(fn.file);
      if (!m) beforeByFile.set(fn.file, (m = new Map()));
      if (!m.has(fn.name)) m.set(fn.name, fn);
    }
  }
  const beforeOf = (fn: FunctionModel): FunctionModel | null => beforeByFile.get(oldPath.get(fn.file) ?? fn.file)?.get(fn.name) ?? null;
  const addedIn = (fn: FunctionModel): number[] => {
    const f = files.get(fn.file);
    if (!f) return [];
    return [...f.added].filter((l) => l >= fn.line && l <= fn.endLine).sort((a, b) => a - b);
  };
  const changed = new Map<FunctionModel, boolean>();
  return {
    after,
    before,
    files,
    added: (path, line) => files.get(path)?.added.has(line) ?? false,
    inChangedFile: (fn) => files.has(fn.file),
    touches(fn) {
      const f = files.get(fn.file);
      if (!f) return false;
      if (addedIn(fn).length > 0) return true;
      const b = beforeOf(fn);
      if (!b) return f.status === 'added';
      return [...f.removed].some((l) => l >= b.line && l <= b.endLine);
    },
    beforeOf,
    summaryChanged(fn) {
      let c = changed.get(fn);
      if (c === undefined) {
        const b = beforeOf(fn);
        c = !b || !before ? true : lockSignature(summaryOf(after, fn)) !== lockSignature(summaryOf(before, b));
        changed.set(fn, c);
      }
      return c;
    },
    addedIn,
  };
}

/**
 * Functions of the changed files whose lock behaviour the patch may change: those it touches, and
 * callers of touched functions whose summary changed (a helper that now keeps a lock, or sleeps).
 */
export function affectedFunctions(scope: PatchScope): FunctionModel[] {
  const out: FunctionModel[] = [];
  for (const file of scope.files.keys()) {
    for (const fn of scope.after.files.get(file)?.functions ?? []) {
      if (scope.touches(fn)) {
        out.push(fn);
        continue;
      }
      const viaHelper = fn.events.some((e) => e.kind === 'call' && !e.special && resolveCall(scope.after, e, fn).some((t) => changedHelper(scope, t)));
      if (viaHelper) out.push(fn);
    }
  }
  return out;
}

/** A callee the patch edits and whose lock/sleep summary is different for it. */
export function changedHelper(scope: PatchScope, fn: FunctionModel): boolean {
  return scope.inChangedFile(fn) && scope.touches(fn) && scope.summaryChanged(fn);
}
