import { gitOk } from '../apply/git.js';
import type { SourceReader } from '../cmodel/build.js';
import { loadParser } from '../cmodel/parse.js';
import { baseReader, lazyModel, rulesWorkspace, treeGitDir } from '../rules/context.js';
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
  const { reader } = await baseOf(w);
  const files: ChangedFile[] = w.paths
    .filter((p) => reader.readFile(p) !== null)
    .map((path) => ({ path, oldPath: null, status: 'modified', added: new Set(), removed: new Set(), addedText: new Map() }));
  await lazyModel(files, 'before', reader)();
}

/**
 * The rules' shared reader of `w.ref` (the one a check on that base uses, so what is read here is not
 * read again), with the private HOME of the rules' workspace, which lives as long as the process.
 */
async function baseOf(w: WarmUp): Promise<{ gitDir: string; commit: string; home: string; workTree: string; reader: SourceReader }> {
  const ws = await rulesWorkspace();
  const gitDir = await treeGitDir(w.tree);
  const commit = (await gitOk(['rev-parse', '--verify', '--end-of-options', `${w.ref}^{commit}`], { gitDir, cwd: ws.workTree, home: ws.home })).trim();
  return { gitDir, commit, home: ws.home, workTree: ws.workTree, reader: baseReader(gitDir, commit, ws.home) };
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
  const { gitDir, commit, home, workTree, reader } = await baseOf(w);
  const listed = await gitOk(['ls-tree', '-r', '--name-only', commit, '--', ...w.dirs], { gitDir, cwd: workTree, home });
  const paths = listed.split('\n').filter((p) => p.endsWith('.c'));
  reader.prefetch?.(paths);
  let n = 0;
  for (const path of paths) {
    await idle();
    const file: ChangedFile = { path, oldPath: path, status: 'modified', added: new Set(), removed: new Set(), addedText: new Map() };
    await lazyModel([file], 'before', reader)();
    n++;
  }
  return n;
}
