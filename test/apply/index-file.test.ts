/**
 * The scratch index is read directly (src/apply/scratch.ts parseIndex) instead of through
 * `git ls-files --stage`: the two must agree on every index git writes in the versions we read,
 * and anything else must fall back to git.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitOk } from '../../src/apply/git.js';
import { parseIndex, serializeIndex } from '../../src/apply/scratch.js';
import { createRepo, type TestRepo } from '../helpers/git-repo.js';

let repo: TestRepo;
const files: Record<string, string> = {
  'a.c': 'int a;\n',
  'drivers/vfio/pci/vfio_pci_core.c': 'int b;\n',
  [`deep/${'d'.repeat(120)}/${'e'.repeat(200)}.h`]: 'int c;\n',
  'ünïcode/ß.c': 'int d;\n',
  'x/y': 'int e;\n',
};

beforeAll(async () => {
  repo = await createRepo(files);
});
afterAll(async () => {
  await repo.dispose();
});

/** `git ls-files --stage -z` as records. */
async function lsFiles(): Promise<{ mode: string; oid: string; stage: number; path: string }[]> {
  const out = await repo.gitRaw('-c', 'core.quotePath=false', 'ls-files', '--stage', '-z');
  return out.split('\0').filter(Boolean).map((rec) => {
    const m = /^(\d+) ([0-9a-f]+) (\d)\t(.*)$/s.exec(rec)!;
    return { mode: m[1]!, oid: m[2]!, stage: Number(m[3]), path: m[4]! };
  });
}

describe('reading the index file', () => {
  it.each([2, 3])('agrees with git ls-files on a version %i index, modes and long and non-ASCII paths included', async (version) => {
    await repo.git('update-index', '--chmod=+x', 'a.c');
    await repo.git('update-index', `--index-version=${version}`);
    if (version === 3) await repo.git('update-index', '--skip-worktree', 'x/y'); // an extended-flags entry
    const parsed = parseIndex(await readFile(join(repo.dir, '.git', 'index')));
    expect(parsed).not.toBeNull();
    expect(parsed).toEqual(await lsFiles());
    expect(parsed!.find((r) => r.path === 'a.c')!.mode).toBe('100755');
  });

  it('returns null for a version 4 index and for what is not an index, so the caller asks git', async () => {
    await repo.git('update-index', '--index-version=4');
    expect(parseIndex(await readFile(join(repo.dir, '.git', 'index')))).toBeNull();
    expect(parseIndex(Buffer.from('not an index at all'))).toBeNull();
    const v2 = Buffer.alloc(12);
    v2.write('DIRC', 0, 'latin1');
    v2.writeUInt32BE(2, 4);
    v2.writeUInt32BE(3, 8); // three entries promised, none there
    expect(parseIndex(v2)).toBeNull();
  });
});

describe('writing the scratch index', () => {
  it('writes byte for byte what git update-index --index-info writes, and git reads it back the same', async () => {
    const records = (await lsFiles()).map((r) => ({ ...r, mode: r.path === 'a.c' ? '100755' : r.mode }));
    const ours = serializeIndex([...records].reverse())!; // unsorted input: sorted by path bytes on the way
    expect(ours).not.toBeNull();
    const index = join(repo.dir, '.git', 'index');
    await rm(index);
    const input = records.map((r) => `${r.mode} ${r.oid}\t${r.path}\0`).join('');
    await gitOk(['update-index', '-z', '--index-info'], { gitDir: join(repo.dir, '.git'), workTree: repo.dir, cwd: repo.dir, home: repo.root, input });
    expect(ours.equals(await readFile(index))).toBe(true);
    await writeFile(index, ours);
    expect(await lsFiles()).toEqual(records);
  });

  it('leaves to git what it does not write itself: paths with dot components, a duplicate, an odd id', () => {
    const ok = { mode: '100644', oid: 'a'.repeat(40), stage: 0, path: 'x.c' };
    expect(serializeIndex([{ ...ok, path: 'a/../b' }])).toBeNull();
    expect(serializeIndex([{ ...ok, path: '.git/config' }])).toBeNull();
    expect(serializeIndex([{ ...ok, path: 'a//b' }])).toBeNull();
    expect(serializeIndex([ok, ok])).toBeNull();
    expect(serializeIndex([{ ...ok, oid: 'xyz' }])).toBeNull();
    expect(serializeIndex([ok])).not.toBeNull();
  });
});
