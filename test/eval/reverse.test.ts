import { afterEach, describe, expect, it } from 'vitest';
import { createRepo, numbered, patchInput, type TestRepo } from '../helpers/git-repo.js';
import { diffCommits, reverseSeries, withTempRef, EVAL_REF_PREFIX } from '../../src/eval/reverse.js';

let repo: TestRepo | null = null;
afterEach(async () => {
  await repo?.dispose();
  repo = null;
});

describe('reverseSeries: a merged series taken back out, git objects only', () => {
  it('takes the patches out last first, skips one that does not reverse, and leaves HEAD, refs and the checkout alone', async () => {
    repo = await createRepo({ 'a.txt': numbered(20) });
    const base = await repo.git('rev-parse', 'HEAD');
    const c1 = await repo.commit({ 'a.txt': numbered(20, { 3: 'three' }) }, 'one');
    const d1 = await repo.gitRaw('diff', base, c1);
    const c2 = await repo.commit({ 'a.txt': numbered(20, { 3: 'three', 15: 'fifteen' }) }, 'two');
    const d2 = await repo.gitRaw('diff', c1, c2);
    const refsBefore = await repo.git('for-each-ref');
    const stray = patchInput('diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -9,1 +9,1 @@\n-9\n+nine\n', 'not in the tree', 3);

    const r = await reverseSeries(repo.dir, 'HEAD', [patchInput(d1, 'one', 1), patchInput(d2, 'two', 2), null, stray]);
    expect(r.head).toBe(c2);
    expect(r.steps.map((s) => s.status)).toEqual(['reversed', 'reversed', 'missing', 'failed']);
    expect(r.steps[3]!.detail).toMatch(/error:/);
    // Patch 2 was reversed on HEAD, patch 1 on the result: the series' own history, backwards.
    expect(r.steps[1]!.from).toBe(c2);
    expect(r.steps[0]!.from).toBe(r.steps[1]!.commit);
    expect(r.base).toBe(r.steps[0]!.commit);
    expect(await repo.gitRaw('diff', base, r.base)).toBe('');
    expect(await diffCommits(repo.dir, r.steps[1]!.from, r.steps[1]!.commit!)).toContain('-fifteen\n+15');
    expect(await repo.git('rev-parse', 'HEAD')).toBe(c2);
    expect(await repo.git('for-each-ref')).toBe(refsBefore);
    expect(await repo.git('status', '--porcelain')).toBe('');
  });

  it('withTempRef names the commit while the callback runs and deletes the ref after, also when it throws', async () => {
    repo = await createRepo({ 'a.txt': numbered(5) });
    const head = await repo.git('rev-parse', 'HEAD');
    let seen = '';
    await withTempRef(repo.dir, head, 'x/y z', async (ref) => {
      seen = ref;
      expect(ref.startsWith(`${EVAL_REF_PREFIX}${process.pid}-`)).toBe(true);
      expect(await repo!.git('rev-parse', ref)).toBe(head);
    });
    await expect(withTempRef(repo.dir, head, 'boom', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(seen).not.toBe('');
    expect(await repo.git('for-each-ref', EVAL_REF_PREFIX)).toBe('');
  });
});
