import { afterEach, describe, expect, it } from 'vitest';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { applySeries, ApplyError, NOT_APPLIED_LABEL } from '../../src/apply/apply.js';
import { selectCandidates } from '../../src/apply/base.js';
import { gitOk } from '../../src/apply/git.js';
import type { ApplyResult } from '../../src/apply/types.js';
import { createRepo, numbered, patchInput, seriesDiffs, snapshot, type TestRepo } from '../helpers/git-repo.js';

const repos: TestRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.dispose()));
});

async function repo(): Promise<TestRepo> {
  const r = await createRepo({ 'a.txt': numbered(30), 'dir/b.txt': numbered(10) });
  repos.push(r);
  return r;
}

/** Everything in the checkout and in .git except the object database, which applying may add to. */
async function state(r: TestRepo): Promise<unknown> {
  return { work: await snapshot(r.dir, ['.git']), git: await snapshot(join(r.dir, '.git'), ['objects']) };
}

const show = (r: TestRepo, commit: string, path: string): Promise<string> => r.git('show', `${commit}:${path}`);
const main = [{ ref: 'main', why: 'default' as const }];

describe('applySeries on small repositories', () => {
  it('applies a 3-patch series as 3 commits without touching the checkout, index, HEAD or refs', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const diffs = await seriesDiffs(r, base, [
      { 'a.txt': numbered(30, { 5: 'five' }) },
      { 'dir/c.txt': 'new file\n' },
      { 'a.txt': numbered(30, { 5: 'five', 25: 'twenty-five' }), 'dir/b.txt': null },
    ]);
    const before = await state(r);
    const res = await applySeries({ tree: r.dir, patches: diffs.map((d, i) => patchInput(d, `p${i + 1}`, i + 1)), candidates: main });
    expect(await state(r)).toEqual(before);

    expect(res).toMatchObject({ status: 'applied', complete: true, base: { ref: 'main', commit: base }, attemptIndex: 0 });
    expect(res.attempts).toEqual([{ ref: 'main', why: 'default', commit: base, result: 'applied' }]);
    expect(res.patches.map((p) => [p.status, p.method])).toEqual([
      ['applied', 'plain'],
      ['applied', 'plain'],
      ['applied', 'plain'],
    ]);
    const [c1, c2, c3] = res.patches.map((p) => p.commit!);
    expect(res.head).toBe(c3);
    expect(await r.git('rev-parse', `${c1}^`, `${c2}^`, `${c3}^`)).toBe([base, c1, c2].join('\n'));
    expect(await show(r, c1!, 'a.txt')).toContain('\nfive\n');
    expect(await show(r, c2!, 'dir/c.txt')).toBe('new file');
    expect(await show(r, c3!, 'a.txt')).toContain('\ntwenty-five\n');
    await expect(show(r, c3!, 'dir/b.txt')).rejects.toThrow();
    expect(await r.git('log', '-1', '--format=%an <%ae>|%cn <%ce>|%aI|%s', c1!)).toBe(
      'Patch Author <patch.author@example.org>|vfio-review <vfio-review@localhost>|2024-01-02T03:04:05+00:00|p1',
    );
    expect(res.patches[2]!.files.map((f) => [f.change, f.oldPath, f.newPath])).toEqual([
      ['modified', 'a.txt', 'a.txt'],
      ['deleted', 'dir/b.txt', null],
    ]);
    expect(res.label).toBe(`applied on main (${base.slice(0, 12)})`);
  });

  it.each([
    ['Patch Author', 'patch.author@example.org'],
    ['"Doe, Jane."', ' <jane@example.org>. '],
  ])('makes each commit byte for byte as git commit-tree would (author %j)', async (authorName, authorEmail) => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 5: 'five' }) }]);
    const res = await applySeries({ tree: r.dir, patches: [{ ...patchInput(d!, 'p1'), authorName, authorEmail }], candidates: main });
    const c = res.patches[0]!.commit!;
    const tree = await r.git('rev-parse', `${c}^{tree}`);
    const body = await r.gitRaw('cat-file', 'commit', c);
    const message = body.slice(body.indexOf('\n\n') + 2);
    const env = {
      GIT_AUTHOR_NAME: authorName, GIT_AUTHOR_EMAIL: authorEmail, GIT_AUTHOR_DATE: '@1704164645 +0000',
      GIT_COMMITTER_NAME: 'vfio-review', GIT_COMMITTER_EMAIL: 'vfio-review@localhost', GIT_COMMITTER_DATE: '@1704164645 +0000',
    };
    const theirs = await gitOk(['commit-tree', tree, '-p', base], { gitDir: join(r.dir, '.git'), cwd: r.dir, home: r.root, env, input: message });
    expect(c).toBe(theirs);
  });

  it('reports the file, hunk header and unmatched context of a conflicting patch', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 15: '15x' }) }]);
    await r.commit({ 'a.txt': numbered(30, { 14: '14y', 16: '16y' }) }, 'moves the context');
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates: main });
    expect(res).toMatchObject({ status: 'not-applied', base: null, head: null, label: NOT_APPLIED_LABEL, attemptIndex: 0 });
    const want = { file: 'a.txt', hunk: '@@ -12,7 +12,7 @@', context: '12\n13\n14\n15\n16\n17\n18' };
    expect(res.patches[0]).toMatchObject({ status: 'failed', commit: null, ...want });
    expect(res.patches[0]!.detail).toMatch(/^patch failed: a\.txt:12; a\.txt: patch does not apply; 3-way: .*conflicts/);
    expect(res.attempts[0]).toMatchObject({ ref: 'main', result: 'failed', failedPatch: 1, ...want });
    const h = res.patches[0]!.files[0]!.hunks[0]!;
    expect(h).toMatchObject({ oldStart: 12, oldLines: 7, newStart: 12, newLines: 7, added: ['15x'], removed: ['15'] });
  });

  it('applies the present patches of an incomplete series and says so', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d1, , d3] = await seriesDiffs(r, base, [
      { 'a.txt': numbered(30, { 2: 'two' }) },
      { 'a.txt': numbered(30, { 2: 'two', 10: 'ten' }) },
      { 'a.txt': numbered(30, { 2: 'two', 10: 'ten', 28: 'twenty-eight' }) },
    ]);
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d1!, 'p1', 1), null, patchInput(d3!, 'p3', 3)], candidates: main });
    expect(res).toMatchObject({ status: 'partial', complete: false });
    expect(res.patches.map((p) => p.status)).toEqual(['applied', 'missing', 'applied']);
    expect(res.patches[1]).toMatchObject({ index: 2, msgid: null, commit: null, files: [] });
    expect(await show(r, res.head!, 'a.txt')).toBe(numbered(30, { 2: 'two', 28: 'twenty-eight' }).trimEnd());
    expect(res.label).toMatch(/; incomplete: patch 2 missing$/);
  });

  it('uses the base-commit when the tree has it', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 3: 'three' }) }]);
    await r.commit({ 'a.txt': numbered(30, { 3: 'THREE' }) }, 'main moves on');
    const candidates = selectCandidates(
      { baseCommit: base, hints: [], list: 'kvm@vger.kernel.org', prefixes: ['vfio'], touchedPaths: ['a.txt'] },
      { rules: [{ prefix: 'vfio', refs: ['vfio/next'] }], default: 'main' },
    );
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates });
    expect(res.base).toEqual({ ref: base, commit: base });
    expect(res.attempts).toEqual([{ ref: base, why: 'base-commit', commit: base, result: 'applied' }]);
  });

  it('records a missing base-commit and falls through to the mapped ref', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 3: 'three' }) }]);
    await r.git('branch', 'vfio/next', base);
    await r.commit({ 'a.txt': numbered(30, { 2: 'X', 3: 'Y', 4: 'Z' }) }, 'main conflicts');
    const absent = 'deadbeef'.repeat(5);
    const candidates = selectCandidates(
      { baseCommit: absent, hints: ['no-such-branch'], list: null, prefixes: ['vfio/pci'], touchedPaths: [] },
      { rules: [{ prefix: 'vfio', refs: ['vfio/next'] }], default: 'main' },
    );
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates });
    expect(res.attempts.map((a) => [a.ref, a.why, a.result])).toEqual([
      [absent, 'base-commit', 'missing'],
      ['no-such-branch', 'hint', 'missing'],
      ['vfio/next', 'mapped', 'applied'],
    ]);
    expect(res.base).toEqual({ ref: 'vfio/next', commit: base });
    expect(res.attemptIndex).toBe(2);
  });

  it('returns not-applied with every attempt and the hunks when no base takes the series', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 3: 'three' }) }]);
    await r.commit({ 'a.txt': numbered(30, { 2: 'X', 3: 'Y', 4: 'Z' }) }, 'main conflicts');
    await r.git('branch', 'other');
    const res = await applySeries({
      tree: r.dir,
      patches: [patchInput(d!, 'p1')],
      candidates: [
        { ref: 'v9.9', why: 'base-commit' },
        { ref: '--output=/tmp/x', why: 'hint' },
        { ref: 'main', why: 'mapped' },
        { ref: 'other', why: 'default' },
      ],
    });
    expect(res.status).toBe('not-applied');
    expect(res.label).toBe('not applied; the diff alone was reviewed');
    expect(res.attempts.map((a) => a.result)).toEqual(['missing', 'rejected', 'failed', 'failed']);
    expect(res.attempts[3]!.detail).toMatch(/^same commit as main; not retried/);
    expect(res.patches[0]!.files[0]!.hunks[0]).toMatchObject({ header: '@@ -1,6 +1,6 @@', added: ['three'], removed: ['3'] });
  });

  it('falls back to a 3-way merge when the context moved and the index blobs exist', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 15: '15x' }) }]);
    await r.commit({ 'a.txt': numbered(30, { 12: '12y' }) }, 'touches the context');
    const before = await state(r);
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates: main });
    expect(await state(r)).toEqual(before);
    expect(res).toMatchObject({ status: 'applied', patches: [{ status: 'applied', method: '3way' }] });
    expect(await show(r, res.head!, 'a.txt')).toBe(numbered(30, { 12: '12y', 15: '15x' }).trimEnd());
    expect(res.label).toMatch(/patch 1 by 3-way merge/);
  });

  it('falls back to fuzz when the blobs are unknown, and labels it', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 15: '15x' }) }]);
    await r.commit({ 'a.txt': numbered(30, { 12: '12y' }) }, 'touches the context');
    const foreign = d!.replace(/^index \w+\.\.\w+/m, 'index 1234567..89abcde');
    const res = await applySeries({ tree: r.dir, patches: [patchInput(foreign, 'p1')], candidates: main });
    expect(res).toMatchObject({ status: 'applied-with-fuzz', patches: [{ status: 'applied-with-fuzz', method: 'fuzz' }] });
    expect(res.attempts[0]!.result).toBe('applied-with-fuzz');
    expect(await show(r, res.head!, 'a.txt')).toBe(numbered(30, { 12: '12y', 15: '15x' }).trimEnd());
  });

  it('reports a patch that is already in the base as already-applied, not as a conflict', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d1, d2] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 7: 'seven' }) }, { 'dir/new.txt': 'x\n' }]);
    const merged = await r.commit({ 'a.txt': numbered(30, { 7: 'seven' }) }, 'picked up already');
    const one = await applySeries({ tree: r.dir, patches: [patchInput(d1!, 'p1')], candidates: main });
    expect(one).toMatchObject({ status: 'already-applied', head: merged, patches: [{ status: 'already-applied', commit: null }] });
    expect(one.attempts[0]!.result).toBe('already-applied');
    expect(one.label).toBe(`already applied on main (${merged.slice(0, 12)})`);

    const both = await applySeries({ tree: r.dir, patches: [patchInput(d1!, 'p1', 1), patchInput(d2!, 'p2', 2)], candidates: main });
    expect(both.status).toBe('applied');
    expect(both.patches.map((p) => p.status)).toEqual(['already-applied', 'applied']);
    expect(await r.git('rev-parse', `${both.head}^`)).toBe(merged);
    expect(both.label).toMatch(/patch 1 already applied/);
  });

  it('reports a merged pure addition that applies again one block down as already applied', async () => {
    const block = ['k1', 'k2', 'k3'];
    const file = (dup: boolean): string => [...'abcdef'.split(''), ...block, ...(dup ? block : []), 'm1', 'm2', 'm3', 'z', ''].join('\n');
    const r = await createRepo({ 'f.txt': file(false) });
    repos.push(r);
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'f.txt': file(true) }]);
    const merged = await r.commit({ 'f.txt': file(true) }, 'merged already');
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates: main });
    // Forward, git matches the context k1 k2 k3 | m1 m2 m3 on the copy of the block the patch added.
    expect(res).toMatchObject({ status: 'already-applied', head: merged, patches: [{ status: 'already-applied', commit: null }] });
    expect(res.patches[0]!.detail).toMatch(/only onto a copy of its own added lines/);
  });

  it('flags a patch that applies forward and also reverse-applies somewhere else', async () => {
    const seg = (x: boolean): string[] => ['a1', 'a2', 'a3', ...(x ? ['X'] : []), 'c1', 'c2', 'c3'];
    const file = (top: boolean, first: boolean): string =>
      [...(top ? ['t1', 't2', 't3', 't4', 't5'] : []), ...seg(first), 'm', ...seg(true), 'z', ''].join('\n');
    const r = await createRepo({ 'f.txt': file(true, false) });
    repos.push(r);
    const base = await r.git('rev-parse', 'HEAD');
    // Adds X to the first segment; the second one already has it, so the post-image exists too.
    const [d] = await seriesDiffs(r, base, [{ 'f.txt': file(true, true) }]);
    await r.commit({ 'f.txt': file(false, false) }, 'drops the top lines, so the hunk moves');
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates: main });
    expect(res).toMatchObject({ status: 'applied', patches: [{ status: 'applied', method: 'plain', reverseApplies: true }] });
    expect(res.label).toMatch(/patch 1 also reverse-applied: possibly already in the base/);
    expect(await show(r, res.head!, 'f.txt')).toBe(file(false, true).trimEnd());
  });

  it('commits a patch without a diff as an empty commit', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const res = await applySeries({ tree: r.dir, patches: [patchInput('', 'notes only')], candidates: main });
    expect(res.status).toBe('applied');
    expect(await r.git('rev-parse', `${res.head}^{tree}`)).toBe(await r.git('rev-parse', `${base}^{tree}`));
  });

  it('applies two series to one repository at the same time without interference', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const s1 = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 1: 'one' }) }, { 'a.txt': numbered(30, { 1: 'one', 2: 'two' }) }]);
    const s2 = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 1: 'uno' }) }, { 'dir/b.txt': numbered(10, { 9: 'nove' }) }]);
    const before = await state(r);
    const run = (s: string[], tag: string): Promise<ApplyResult> =>
      applySeries({ tree: r.dir, patches: s.map((d, i) => patchInput(d, `${tag}${i}`, i + 1)), candidates: main });
    const [a, b, a2] = await Promise.all([run(s1, 'a'), run(s2, 'b'), run(s1, 'a')]);
    expect(await state(r)).toEqual(before);
    expect([a.status, b.status]).toEqual(['applied', 'applied']);
    expect(await show(r, a.head!, 'a.txt')).toBe(numbered(30, { 1: 'one', 2: 'two' }).trimEnd());
    expect(await show(r, b.head!, 'a.txt')).toBe(numbered(30, { 1: 'uno' }).trimEnd());
    expect(await show(r, b.head!, 'dir/b.txt')).toBe(numbered(10, { 9: 'nove' }).trimEnd());
    // Same input, same base: the same commits (author date = committer date, fixed committer).
    expect(a2.head).toBe(a.head);
  });

  it('works on a bare clone too', async () => {
    const r = await repo();
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 9: 'nine' }) }]);
    const bare = join(r.root, 'bare.git');
    // Not `git clone`: protocol.allow=never (the engine's hardening) refuses even file://.
    await cp(join(r.dir, '.git'), bare, { recursive: true });
    await r.git(`--git-dir=${bare}`, 'config', 'core.bare', 'true');
    const res = await applySeries({ tree: bare, patches: [patchInput(d!, 'p1')], candidates: main });
    expect(res.status).toBe('applied');
    expect(res.base?.commit).toBe(base);
  });

  it('writes nothing beside the repository index even when its config asks for a split index', async () => {
    const r = await repo();
    await r.git('config', 'core.splitIndex', 'true');
    const base = await r.git('rev-parse', 'HEAD');
    const [d] = await seriesDiffs(r, base, [{ 'a.txt': numbered(30, { 4: 'four' }) }]);
    const before = await state(r);
    const res = await applySeries({ tree: r.dir, patches: [patchInput(d!, 'p1')], candidates: main });
    expect(res.status).toBe('applied');
    expect(await state(r)).toEqual(before); // no $GIT_DIR/sharedindex.* files
  });

  it('throws APPLY_TREE for a directory that is not a repository', async () => {
    const r = await repo();
    const err = await applySeries({ tree: join(r.root, 'home'), patches: [patchInput('', 'x')], candidates: main }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).code).toBe('APPLY_TREE');
  });
});
