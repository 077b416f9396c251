import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { applySeries } from '../../src/apply/apply.js';
import { checkedPaths } from '../../src/apply/apply-output.js';
import { git, gitOk, type GitOptions } from '../../src/apply/git.js';
import { ObjectReader, Trees } from '../../src/apply/objects.js';
import { ScratchIndex } from '../../src/apply/scratch.js';
import { createRepo, numbered, patchInput, seriesDiffs, type TestRepo } from '../helpers/git-repo.js';

const repos: TestRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.dispose()));
});

async function repo(files: Record<string, string>): Promise<TestRepo> {
  const r = await createRepo(files);
  repos.push(r);
  return r;
}

const opts = (r: TestRepo, env: Record<string, string> = {}): GitOptions => ({ gitDir: join(r.dir, '.git'), cwd: r.root, home: r.root, env });

/** What the old engine did: the whole base tree in an index, `git apply --cached`, `git write-tree`. */
async function fullIndex(r: TestRepo, base: string, diff: string): Promise<{ tree: string } | { stderr: string }> {
  const o = opts(r, { GIT_INDEX_FILE: join(r.root, 'full-index') });
  await gitOk(['read-tree', base], o);
  const a = await git(['apply', '--cached'], { ...o, input: diff });
  if (a.code !== 0) return { stderr: a.stderr };
  return { tree: await gitOk(['write-tree'], o) };
}

const main = [{ ref: 'main', why: 'default' as const }];

describe('trees edited without a full index', () => {
  it('gives the tree a full index gives: renames across directories, emptied and new directories, tree order', async () => {
    const r = await repo({
      'a.txt': numbered(20),
      'a-b': 'dash\n',
      'a.c': 'dot\n',
      'a/x': numbered(5),
      'dir/b.txt': numbered(10),
      'old/only.txt': numbered(12),
      'keep/k.txt': 'k\n',
      'dir/ünï cödé.txt': numbered(6),
    });
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [
      {
        'old/only.txt': null,
        'new/deep/er/only.txt': numbered(12), // a rename into a new nested directory; old/ goes away
        'dir/b.txt': numbered(10, { 4: 'four' }),
        'dir/c.txt': 'new\n',
        'a.txt': null,
        'a0': 'between a.c and a/\n',
        'a/x': numbered(5, { 2: 'two' }),
        'dir/ünï cödé.txt': numbered(6, { 6: 'six' }),
      },
    ]);
    expect(d).toMatch(/^rename from old\/only\.txt$/m);
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates: main });
    expect(res.status).toBe('applied');
    const want = await fullIndex(r, base, d!);
    expect(await r.git('rev-parse', `${res.head}^{tree}`)).toBe((want as { tree: string }).tree);
    // git's order: a directory sorts as if named 'a/', after 'a-b' and 'a.c', before 'a0'.
    expect(await r.git('ls-tree', '--name-only', `${res.head}`)).toBe(['a-b', 'a.c', 'a', 'a0', 'dir', 'keep', 'new'].join('\n'));
    expect(await r.git('fsck', '--no-dangling', '--no-progress')).toBe('');
  });

  it('turns a file into a directory and a directory into a file in one patch', async () => {
    const r = await repo({ x: 'file x\n', 'd/e': 'e\n', 'z.txt': 'z\n' });
    const base = await r.git('rev-parse', 'HEAD');
    const file = (path: string, from: string | null, to: string | null): string =>
      `diff --git a/${path} b/${path}\n${from === null ? 'new file mode 100644\n' : to === null ? 'deleted file mode 100644\n' : ''}` +
      `--- ${from === null ? '/dev/null' : `a/${path}`}\n+++ ${to === null ? '/dev/null' : `b/${path}`}\n` +
      `@@ -${from === null ? '0,0' : '1'} +${to === null ? '0,0' : '1'} @@\n${from === null ? '' : `-${from}\n`}${to === null ? '' : `+${to}\n`}`;
    // In git diff's order: `d` (new file) comes before `d/e` (deleted); git apply removes before it adds.
    const d = file('d', null, 'now a file') + file('d/e', 'e', null) + file('x', 'file x', null) + file('x/y', null, 'y');
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d, 'p1')], candidates: main });
    expect(res.status).toBe('applied');
    const want = await fullIndex(r, base, d);
    expect(await r.git('rev-parse', `${res.head}^{tree}`)).toBe((want as { tree: string }).tree);
    expect(await r.git('ls-tree', '-r', '--name-only', `${res.head}`)).toBe('d\nx/y\nz.txt');
  });

  it('keeps a mode change', async () => {
    const r = await repo({ 's.sh': 'echo hi\n' });
    const base = await r.git('rev-parse', 'HEAD');
    const diff = 'diff --git a/s.sh b/s.sh\nold mode 100644\nnew mode 100755\n';
    const res = await applySeries({ tree: r.dir, patches: [patchInput(diff, 'p1')], candidates: main });
    expect(res.status).toBe('applied');
    expect(await r.git('ls-tree', `${res.head}`, 's.sh')).toMatch(/^100755 blob /);
    expect(await r.git('rev-parse', `${res.head}^{tree}`)).toBe(((await fullIndex(r, base, diff)) as { tree: string }).tree);
  });

  it('fails a file added where the tree has a file in the way, in git\'s words', async () => {
    const r = await repo({ 'a.txt': 'a\n', 'd/x': 'x\n' });
    const base = await r.git('rev-parse', 'HEAD');
    const add = (path: string): string =>
      `diff --git a/${path} b/${path}\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/${path}\n@@ -0,0 +1 @@\n+y\n`;
    for (const path of ['a.txt/y', 'd']) {
      const res = await applySeries({ tree: r.dir, patches: [patchInput(add(path), 'p1')], candidates: main });
      expect(res.status).toBe('not-applied');
      const line = `'${path}' appears as both a file and as a directory`;
      expect(res.patches[0]!.detail).toContain(`${line}; unable to add cache entry for ${path}`);
      expect((await fullIndex(r, base, add(path))) as { stderr: string }).toEqual({ stderr: expect.stringContaining(line) });
    }
  });

  it('widens the scratch index to a path git names that it lacks', async () => {
    const r = await repo({ 'a.txt': numbered(10), 'b.txt': 'b\n' });
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(10, { 5: 'five' }) }]);
    const o = opts(r);
    const reader = new ObjectReader(o);
    try {
      const trees = new Trees(reader);
      const root = await r.git('rev-parse', `${base}^{tree}`);
      const scratch = new ScratchIndex(trees, o, join(r.root, 'scratch-index'), root);
      await scratch.load([]); // as if the parser had missed a.txt
      const first = await scratch.apply(['-v'], d!);
      expect(first.stderr).toMatch(/a\.txt: does not exist in index/);
      expect(checkedPaths(first.stderr)).toEqual(['a.txt']);
      expect(await scratch.widen(checkedPaths(first.stderr))).toBe(true);
      expect(await scratch.widen(['a.txt', 'no/such/file'])).toBe(false);
      expect((await scratch.apply(['-v'], d!)).code).toBe(0);
      const t = await scratch.tree();
      expect(t).toMatchObject({ oid: ((await fullIndex(r, base, d!)) as { tree: string }).tree });
    } finally {
      await reader.close();
    }
  });

  it('reads objects through one cat-file process and answers missing names with null', async () => {
    const r = await repo({ 'a.txt': 'a\n' });
    const reader = new ObjectReader(opts(r));
    try {
      const [commit, missing, tree] = await Promise.all([reader.read('main^{commit}'), reader.read('no-such-ref'), reader.read('main^{tree}')]);
      expect(commit).toMatchObject({ oid: await r.git('rev-parse', 'main'), type: 'commit' });
      expect(missing).toBeNull();
      expect(tree?.type).toBe('tree');
      await expect(reader.read('a\nb')).rejects.toThrow(/line break/);
    } finally {
      await reader.close();
    }
    await expect(reader.read('main')).rejects.toThrow(/exited/);
  });
});
