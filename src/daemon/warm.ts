import { gitOk, makeWorkspace } from '../apply/git.js';
import { loadParser } from '../cmodel/parse.js';
import { lazyModel, treeReader } from '../rules/context.js';
import type { ChangedFile } from '../rules/types.js';

/** What a fresh check worker prepares before its first series. */
export interface WarmUp {
  tree: string;
  /** The ref most series apply to (apply.default). */
  ref: string;
  /** Files whose C model (and the headers they reach) is built into the process's model cache. */
  paths: readonly string[];
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
    const reader = treeReader(gitDir, commit, ws.home);
    const files: ChangedFile[] = w.paths
      .filter((p) => reader.readFile(p) !== null)
      .map((path) => ({ path, oldPath: null, status: 'modified', added: new Set(), removed: new Set(), addedText: new Map() }));
    await lazyModel(files, 'before', reader)();
  } finally {
    await ws.dispose();
  }
}
