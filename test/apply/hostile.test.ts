import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applySeries } from '../../src/apply/apply.js';
import type { SafetyLimits } from '../../src/apply/types.js';
import { createRepo, numbered, patchInput, seriesDiffs, snapshot, type TestRepo } from '../helpers/git-repo.js';

const newFile = (path: string, mode = '100644', body = '+pwned'): string =>
  `diff --git a/${path} b/${path}\nnew file mode ${mode}\nindex 0000000..1111111\n--- /dev/null\n+++ b/${path}\n@@ -0,0 +1 @@\n${body}\n`;

const many = (n: number): string => Array.from({ length: n }, (_, i) => newFile(`f${i}.txt`)).join('');

let r: TestRepo;
let binaryDiffs: string[];

beforeAll(async () => {
  r = await createRepo({ 'a.txt': numbered(5) });
  const base = await r.git('rev-parse', 'HEAD');
  const bin = Buffer.from(Array.from({ length: 6000 }, (_, i) => (i * 7919) % 251));
  // 1: a new 6000-byte binary (a literal); 2: the same binary repeated 20 times (a small delta).
  binaryDiffs = await seriesDiffs(r, base, [{ 'bin2.bin': bin }, { 'bin2.bin': Buffer.concat(Array(20).fill(bin)) }]);
  await writeFile(join(r.root, 'sentinel.txt'), 'untouched\n');
});
afterAll(() => r.dispose());

interface Case {
  name: string;
  diff: () => string;
  reason: RegExp;
  limits?: Partial<SafetyLimits>;
}

const cases: Case[] = [
  { name: "'..' component (path traversal)", diff: () => newFile('../outside.txt'), reason: /'\.\.' component: "a\/\.\.\/outside\.txt"/ },
  { name: "'..' inside a path", diff: () => newFile('drivers/../../outside.txt'), reason: /'\.\.' component/ },
  { name: 'absolute path on +++', diff: () => '--- /dev/null\n+++ /tmp/abs-outside.txt\n@@ -0,0 +1 @@\n+x\n', reason: /absolute path/ },
  {
    name: 'absolute rename target',
    diff: () => 'diff --git a/a.txt b/a.txt\nsimilarity index 100%\nrename from a.txt\nrename to /tmp/abs-outside.txt\n',
    reason: /absolute path: "\/tmp\/abs-outside\.txt" \(rename to\)/,
  },
  {
    name: '.git/config',
    diff: () => 'diff --git a/.git/config b/.git/config\n--- a/.git/config\n+++ b/.git/config\n@@ -1 +1,2 @@\n [core]\n+\thooksPath = /tmp\n',
    reason: /'\.git' component/,
  },
  { name: '.GIT/hooks/x (case)', diff: () => newFile('.GIT/hooks/post-commit', '100755', '+#!/bin/sh'), reason: /'\.git' component/ },
  { name: 'quoted .git path', diff: () => newFile('"sub/.Git /hooks/x"').replace(/a\/"sub/g, '"a/sub').replace(/b\/"sub/g, '"b/sub'), reason: /'\.git' component/ },
  { name: 'symlink mode', diff: () => 'diff --git a/l b/l\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n', reason: /symlink mode 120000/ },
  { name: 'symlink in index line', diff: () => 'diff --git a/l b/l\nindex 1111111..2222222 120000\n--- a/l\n+++ b/l\n@@ -1 +1 @@\n-x\n+/etc\n', reason: /symlink mode 120000 \(index\)/ },
  { name: 'gitlink mode', diff: () => 'diff --git a/sub b/sub\nnew file mode 160000\nindex 0000000..1111111\n--- /dev/null\n+++ b/sub\n@@ -0,0 +1 @@\n+Subproject commit 1111111111111111111111111111111111111111\n', reason: /gitlink \(submodule\) mode 160000/ },
  { name: 'oversized binary (literal)', diff: () => binaryDiffs[0]!, limits: { maxBinaryBytes: 4096 }, reason: /binary literal of 6000 bytes exceeds 4096/ },
  { name: 'oversized binary (small delta, big result)', diff: () => binaryDiffs[1]!, limits: { maxBinaryBytes: 100_000 }, reason: /binary delta producing 120000 bytes exceeds 100000/ },
  { name: 'oversized binary at the default limit', diff: () => 'diff --git a/b.bin b/b.bin\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 2000000\nzcmeIu0Sy2E0K%a6Pi+hzh(KY$fB^#r3>YwAz<>b*1`HT5V8DO@0|pEjFkrxd0Rsm9\n\nliteral 0\nHcmV?d00001\n\n', reason: /binary literal of 2000000 bytes exceeds 1048576/ },
  { name: 'too many files (default 500)', diff: () => many(501), reason: /touches 501 files, more than 500/ },
  { name: 'oversized patch (default 5 MiB)', diff: () => newFile('big.txt', '100644', `+${'x'.repeat(5 * 1024 * 1024)}`), reason: /patch of \d+ bytes exceeds 5242880/ },
];

describe('hostile patches are rejected before git runs', () => {
  it.each(cases)('$name', async (c) => {
    const before = { repo: await snapshot(r.dir, ['.git']), git: await snapshot(join(r.dir, '.git'), ['objects']), root: await snapshot(r.root, ['repo']) };
    const objects = await r.git('count-objects', '-v');
    const ok = patchInput('', 'harmless', 1);
    const res = await applySeries({
      tree: r.dir,
      patches: [ok, patchInput(c.diff(), 'hostile', 2)],
      candidates: [{ ref: 'main', why: 'default' }],
      ...(c.limits ? { limits: c.limits } : {}),
    });
    expect(res.status).toBe('rejected');
    expect(res.attempts).toEqual([]);
    expect(res.patches.map((p) => p.status)).toEqual(['skipped', 'rejected']);
    expect(res.patches[1]!.detail).toMatch(c.reason);
    expect(res.label).toMatch(/^rejected by the safety checks \(patch 2: /);
    // Nothing written: checkout, .git (objects too: git never ran), the directory around the repo.
    expect({ repo: await snapshot(r.dir, ['.git']), git: await snapshot(join(r.dir, '.git'), ['objects']), root: await snapshot(r.root, ['repo']) }).toEqual(before);
    expect(await r.git('count-objects', '-v')).toBe(objects);
    expect(existsSync(join(r.root, 'outside.txt'))).toBe(false);
    expect(existsSync('/tmp/abs-outside.txt')).toBe(false);
  });

  it('still applies a harmless binary within the limits', async () => {
    const res = await applySeries({ tree: r.dir, patches: [patchInput(binaryDiffs[0]!, 'bin')], candidates: [{ ref: 'main', why: 'default' }] });
    expect(res.status).toBe('applied');
    expect(res.patches[0]!.files[0]).toMatchObject({ newPath: 'bin2.bin', change: 'added', binary: true });
  });
});
