import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { git, gitOk, makeWorkspace } from '../apply/git.js';
import { VrError } from '../errors.js';

/** The hand-written kernel-like tree `npm start` reviews the example series against. */
export const DEMO_TREE_SOURCE = fileURLToPath(new URL('../../examples/tree/', import.meta.url));
export const DEMO_BRANCH = 'demo';

// Fixed identity, date and message: the same files give the same commit id on every machine, so
// the example mbox can name it in `base-commit:` the way b4 would, and the test can hold it to that.
const IDENT = {
  GIT_AUTHOR_NAME: 'vfio-review',
  GIT_AUTHOR_EMAIL: 'vfio-review@localhost',
  GIT_AUTHOR_DATE: '@1709251200 +0000',
  GIT_COMMITTER_NAME: 'vfio-review',
  GIT_COMMITTER_EMAIL: 'vfio-review@localhost',
  GIT_COMMITTER_DATE: '@1709251200 +0000',
};
const MESSAGE = 'vfio-review demo tree\n\nBuilt from examples/tree by `vfio-review demo`.\n';

export interface DemoTree {
  dir: string;
  commit: string;
  /** False when the directory already held this commit and nothing changed. */
  created: boolean;
}

/**
 * Makes `dir` a git repository whose branch `demo` (checked out) is one commit holding exactly the
 * files of `source`. The commit is built in `dir`'s own object store from a private index that
 * reads `source` as its work tree, so nothing touches the repository `source` lives in. When the
 * branch already points at that commit, nothing else happens; when it points elsewhere (the example
 * tree was edited), the branch moves and the files are checked out again. Refuses a non-empty `dir`
 * that is not a git repository.
 */
export async function buildDemoTree(dir: string, source = DEMO_TREE_SOURCE): Promise<DemoTree> {
  const target = resolve(dir);
  const gitDir = join(target, '.git');
  const ws = await makeWorkspace('vfio-review-demo-');
  try {
    if (!existsSync(gitDir)) {
      if (existsSync(target) && (await readdir(target)).length > 0) {
        throw new VrError('USAGE', `${target} exists and is not a git repository; remove it or give another --db directory`);
      }
      await mkdir(target, { recursive: true });
      await gitOk(['init', '-q', `--initial-branch=${DEMO_BRANCH}`, target], { cwd: target, home: ws.home });
    }
    // A private index over the example files: `add -A -f` takes every file, ignore rules or not.
    const fromSource = { gitDir, workTree: resolve(source), cwd: resolve(source), home: ws.home, env: { GIT_INDEX_FILE: join(ws.dir, 'index'), ...IDENT } };
    await gitOk(['add', '-A', '-f', '.'], fromSource);
    const tree = await gitOk(['write-tree'], fromSource);
    const commit = await gitOk(['commit-tree', tree, '-m', MESSAGE], fromSource);
    const inDir = { gitDir, workTree: target, cwd: target, home: ws.home };
    const have = await git(['rev-parse', '--verify', '--quiet', `refs/heads/${DEMO_BRANCH}^{commit}`], inDir);
    if (have.code === 0 && have.stdout.trim() === commit) return { dir: target, commit, created: false };
    await gitOk(['update-ref', `refs/heads/${DEMO_BRANCH}`, commit], inDir);
    await gitOk(['symbolic-ref', 'HEAD', `refs/heads/${DEMO_BRANCH}`], inDir);
    await gitOk(['read-tree', '-u', '--reset', commit], inDir);
    return { dir: target, commit, created: true };
  } finally {
    await ws.dispose();
  }
}

/** Every `base-commit:` value in an mbox, in order (the demo warns when one is not the tree's commit). */
export function baseCommitsIn(mbox: string): string[] {
  return [...readFileSync(mbox, 'utf8').matchAll(/^base-commit: (?<id>[0-9a-f]{7,64})\s*$/gm)].map((m) => m.groups!.id!);
}
