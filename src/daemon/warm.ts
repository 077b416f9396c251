import { gitOk, makeWorkspace } from '../apply/git.js';
import { loadParser } from '../cmodel/parse.js';
import { baseReader, lazyModel } from '../rules/context.js';
import type { ChangedFile } from '../rules/types.js';

/** What a fresh check worker prepares before its first series. */
export interface WarmUp {
  tree: string;
  /** The ref most series apply to (apply.default). */
  ref: string;
  /** Files whose C model (and the headers they reach) is built into the process's model cache. */
  paths: readonly string[];
  /** Directories whose every .c file is modelled afterwards, while the worker is idle ({@link warmDirectories}). */
  dirs?: readonly string[];
}

/**
 * Loads the C parser and builds the models of `paths` at `ref`, so they and the headers they
 * include sit in the rules' model cache (keyed by content) before the first series comes: the first
 * check of a cold worker otherwise parses every reached header and takes several times longer than
 * the next. Best effort: any failure only means a slower first check.
 */
export async function warmUp(w: WarmUp): Promise<void> {
  await loadParser();
  if (w.paths.length === 0) return;
  const ws = await makeWorkspace('vfio-review-warm-');
  try {
    const gitDir = (await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: w.tree, home: ws.home })).trim();
    const commit = (await gitOk(['rev-parse', '--verify', '--end-of-options', `${w.ref}^{commit}`], { gitDir, cwd: ws.workTree, home: ws.home })).trim();
    const reader = baseReader(gitDir, commit, ws.home);
    const files: ChangedFile[] = w.paths
      .filter((p) => reader.readFile(p) !== null)
      .map((path) => ({ path, oldPath: null, status: 'modified', added: new Set(), removed: new Set(), addedText: new Map() }));
    await lazyModel(files, 'before', reader)();
  } finally {
    await ws.dispose();
  }
}

/**
 * The second stage, run while the worker has nothing to check: the model of every .c file under
 * `w.dirs` at `w.ref` (with the headers and siblings each reaches), so their file models and
 * function summaries sit in the caches a check reuses (src/cmodel/incremental.ts). A series then
 * costs mostly its own changed files. `idle()` is awaited before each file: it returns when no check
 * is running. Returns the number of files modelled. Best effort, like {@link warmUp}.
 */
export async function warmDirectories(w: WarmUp, idle: () => Promise<void>): Promise<number> {
  if (!w.dirs?.length) return 0;
  const ws = await makeWorkspace('vfio-review-warm-');
  try {
    const gitDir = (await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: w.tree, home: ws.home })).trim();
    const commit = (await gitOk(['rev-parse', '--verify', '--end-of-options', `${w.ref}^{commit}`], { gitDir, cwd: ws.workTree, home: ws.home })).trim();
    const listed = await gitOk(['ls-tree', '-r', '--name-only', commit, '--', ...w.dirs], { gitDir, cwd: ws.workTree, home: ws.home });
    const paths = listed.split('\n').filter((p) => p.endsWith('.c'));
    // The rules' base reader: what is read here is what a check on this base reads again.
    const reader = baseReader(gitDir, commit, ws.home);
    reader.prefetch?.(paths);
    let n = 0;
    for (const path of paths) {
      await idle();
      const file: ChangedFile = { path, oldPath: path, status: 'modified', added: new Set(), removed: new Set(), addedText: new Map() };
      await lazyModel([file], 'before', reader)();
      n++;
    }
    return n;
  } finally {
    await ws.dispose();
  }
}
