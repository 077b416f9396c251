import { join } from 'node:path';
import { checkedPaths } from '../apply/apply-output.js';
import { git, gitOk, makeWorkspace, type GitOptions, type Workspace } from '../apply/git.js';
import { ObjectReader, Trees } from '../apply/objects.js';
import { checkPatch } from '../apply/safety.js';
import { namedPaths, ScratchIndex } from '../apply/scratch.js';
import { isAlive } from '../apply/tree.js';
import type { PatchInput } from '../apply/types.js';

/** What happened to one patch when the series was taken back out of a tree. */
export type ReverseStatus = 'reversed' | 'failed' | 'missing' | 'no-diff';

/** One patch of a reverse-applied series (1-based `index`, as in `[PATCH n/m]`). */
export interface ReverseStep {
  index: number;
  msgid: string | null;
  status: ReverseStatus;
  /** The commit after this patch was taken out (its parent still has it); null unless 'reversed'. */
  commit: string | null;
  /** The commit this patch was reverse-applied on. */
  from: string;
  /** git's first error line, or the safety check's reason. */
  detail?: string;
}

/** A series taken out of a tree, last patch first. */
export interface ReverseResult {
  /** The commit the series was taken out of. */
  head: string;
  /** The tree minus every patch that reverse-applied (== head when none did). */
  base: string;
  /** One step per patch, in series order (1..n), whatever order they were reversed in. */
  steps: ReverseStep[];
}

const IDENT = { GIT_AUTHOR_NAME: 'vfio-review eval', GIT_AUTHOR_EMAIL: 'vfio-review@localhost', GIT_COMMITTER_NAME: 'vfio-review eval', GIT_COMMITTER_EMAIL: 'vfio-review@localhost' };

async function repoOpts(tree: string, ws: Workspace): Promise<GitOptions> {
  const gitDir = await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: tree, home: ws.home });
  return { gitDir, workTree: ws.workTree, cwd: ws.workTree, home: ws.home };
}

/**
 * Takes `patches` back out of the commit `from` in the repository `tree`: the last patch first,
 * each with `git apply --cached --reverse` on a private index holding only the paths it names,
 * and one `commit-tree` per patch (message `Revert "<subject>"`, date = the mail's date, so ids
 * are reproducible). Like the apply engine it never touches a checkout, index or ref of the
 * tree: the only writes are new objects. A patch that does not reverse-apply stays in (status
 * 'failed') and the earlier patches are still tried, so `base` is the tree minus what could be
 * taken out.
 */
export async function reverseSeries(tree: string, from: string, patches: (PatchInput | null)[]): Promise<ReverseResult> {
  const ws = await makeWorkspace('vfio-review-reverse-');
  let reader: ObjectReader | null = null;
  try {
    const opts = await repoOpts(tree, ws);
    reader = new ObjectReader(opts);
    const trees = new Trees(reader);
    const start = await reader.read(`${from}^{commit}`);
    if (!start || start.type !== 'commit') throw new Error(`${from} does not name a commit in ${tree}`);
    const rootTree = /^tree (?<oid>[0-9a-f]+)\n/.exec(start.data.toString('latin1'))?.groups?.oid;
    if (!rootTree) throw new Error(`commit ${start.oid} has no tree line`);
    let head = start.oid;
    let headTree = rootTree;
    const steps: ReverseStep[] = patches.map((p, i) => ({ index: i + 1, msgid: p?.msgid ?? null, status: p ? 'failed' : 'missing', commit: null, from: head }));
    for (let i = patches.length - 1; i >= 0; i--) {
      const p = patches[i];
      const step = steps[i]!;
      step.from = head;
      if (!p) continue;
      if (p.diff.trim() === '') {
        step.status = 'no-diff';
        continue;
      }
      const verdict = checkPatch(p.diff);
      if (!verdict.ok) {
        step.detail = `rejected by the safety checks: ${verdict.reason}`;
        continue;
      }
      const scratch = new ScratchIndex(trees, opts, join(ws.dir, 'index'), headTree);
      await scratch.load(namedPaths(verdict.files));
      let r = await scratch.apply(['--reverse', '-v'], p.diff);
      if (r.code !== 0 && (await scratch.widen(checkedPaths(r.stderr)))) r = await scratch.apply(['--reverse', '-v'], p.diff);
      if (r.code !== 0) {
        step.detail = r.stderr.split('\n').find((l) => l.startsWith('error:')) ?? `git apply --reverse: exit ${r.code}`;
        continue;
      }
      const t = await scratch.tree();
      if (!('oid' in t)) {
        step.detail = `${t.conflict}: file/directory clash`;
        continue;
      }
      await Trees.write(t.created, opts, ws.dir);
      const t0 = p.date.getTime();
      const date = `@${Number.isFinite(t0) ? Math.floor(t0 / 1000) : 0} +0000`;
      const title = (p.message.split('\n')[0] ?? p.subject).replace(/\0/g, '');
      head = await gitOk(['commit-tree', t.oid, '-p', head], {
        ...opts,
        input: `Revert "${title}"\n\nTaken out for evaluation: ${p.msgid.replace(/[\0\n]/g, '')}\n`,
        env: { ...IDENT, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date },
      });
      headTree = t.oid;
      step.status = 'reversed';
      step.commit = head;
    }
    return { head: start.oid, base: head, steps };
  } finally {
    await reader?.close();
    await ws.dispose();
  }
}

/** `git diff a b` in `tree` (full context of 3 lines, renames detected): a patch from one commit to the other. */
export async function diffCommits(tree: string, a: string, b: string): Promise<string> {
  const ws = await makeWorkspace('vfio-review-diff-');
  try {
    const r = await git(['diff', '--no-color', '--no-ext-diff', '-M', a, b], await repoOpts(tree, ws));
    if (r.code !== 0) throw new Error(`git diff ${a} ${b}: exit ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
    return r.stdout;
  } finally {
    await ws.dispose();
  }
}

/** The namespace of the eval's temporary refs; one sub-namespace per process (`<pid>-`). */
export const EVAL_REF_PREFIX = 'refs/vfio-review/eval/';

let counter = 0;

/**
 * Runs `fn` with a temporary ref `refs/vfio-review/eval/<pid>-<n>-<label>` on `commit` in
 * `tree`, so the check pipeline's base cascade can name it, and deletes the ref afterwards,
 * whatever `fn` does. Only this ref is written; HEAD and branches are never touched. Refs left
 * by an eval that was killed are removed by {@link removeStaleEvalRefs}.
 */
export async function withTempRef<T>(tree: string, commit: string, label: string, fn: (ref: string) => Promise<T>): Promise<T> {
  const ws = await makeWorkspace('vfio-review-ref-');
  const ref = `${EVAL_REF_PREFIX}${process.pid}-${++counter}-${label.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}`;
  try {
    const opts = await repoOpts(tree, ws);
    // The empty old value: create only, never move a ref that someone else made.
    await gitOk(['update-ref', '--no-deref', ref, commit, ''], opts);
    try {
      return await fn(ref);
    } finally {
      await gitOk(['update-ref', '--no-deref', '-d', ref, commit], opts);
    }
  } finally {
    await ws.dispose();
  }
}

/** Deletes eval refs whose process is gone (a killed run); returns how many. */
export async function removeStaleEvalRefs(tree: string): Promise<number> {
  const ws = await makeWorkspace('vfio-review-ref-');
  try {
    const opts = await repoOpts(tree, ws);
    const out = await gitOk(['for-each-ref', '--format=%(refname) %(objectname)', EVAL_REF_PREFIX], opts);
    let n = 0;
    for (const line of out.split('\n')) {
      const m = /^(?<ref>\S+) (?<oid>[0-9a-f]+)$/.exec(line);
      if (!m?.groups) continue;
      const pid = Number(/^(?<pid>\d+)-/.exec(m.groups.ref!.slice(EVAL_REF_PREFIX.length))?.groups?.pid);
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) continue;
      await gitOk(['update-ref', '--no-deref', '-d', m.groups.ref!, m.groups.oid!], opts);
      n++;
    }
    return n;
  } finally {
    await ws.dispose();
  }
}
