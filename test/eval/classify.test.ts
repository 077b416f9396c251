import { describe, expect, it } from 'vitest';
import { classifyFix, hasFixesTag } from '../../src/eval/classify.js';
import { enclosingFunction, touchedFiles, nearness } from '../../src/eval/touched.js';
import { parseDiff } from '../../src/apply/safety.js';

describe('classifyFix: stable fixes by keywords', () => {
  it('names the class and the words that decided it', () => {
    const c = classifyFix('iommu/vt-d: Fix a deadlock in SVM', 'This may cause an ABBA deadlock: pasid_mutex is held while flushing.\n');
    expect(c.class).toBe('deadlock');
    expect(c.keywords).toContain('deadlock:abba');
  });

  it('ignores identifiers, trailers and the quoted subject of the commit being fixed', () => {
    const msg = 'warning: symbol \'msm_iommu_lock\' was not declared; locked_vm and DEFINE_SPINLOCK too.\n\n' +
      'Fixes: 0123456789ab ("iommu: Fix race condition during group creation")\nReported-by: A Racer <race@example.org>\n';
    expect(classifyFix('iommu/msm: Make msm_iommu_lock static', msg).class).toBe('other');
    expect(classifyFix('x: y', 'Commit 0123456789ab ("iommu/dma: Relax locking in foo") broke it.\n').class).toBe('other');
  });

  it('takes the first class in priority order and keeps the others', () => {
    const c = classifyFix('vfio: Fix use-after-free', 'A race with the release path frees the group while a mutex holder uses it.\n');
    expect(c.class).toBe('use-after-free');
    expect(c.classes).toEqual(['use-after-free', 'race', 'locking']);
  });

  it('recognises a Fixes: trailer only with a commit id', () => {
    expect(hasFixesTag('Body.\n\nFixes: 0123456789ab ("x")\n')).toBe(true);
    expect(hasFixesTag('This Fixes: the thing\n')).toBe(false);
  });
});

describe('touched: where a patch changes code, and which function holds it', () => {
  const after = ['#include <x.h>', '', 'static int foo(int a,', '\t       int b)', '{', '\tint c = a;', '', '\treturn c + b;', '}', '', 'int bar(void);', 'void baz(void)', '{', '}', ''].join('\n');
  it('finds the enclosing function of a line, and none between functions', () => {
    const lines = after.split('\n');
    expect(enclosingFunction(lines, 8)).toBe('foo');
    expect(enclosingFunction(lines, 9)).toBe('foo');
    expect(enclosingFunction(lines, 10)).toBeNull();
    expect(enclosingFunction(lines, 13)).toBe('baz');
  });

  it('marks added lines and the lines around a removal, and rates findings by nearness', () => {
    const diff = 'diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -5,5 +5,4 @@\n {\n \tint c = a;\n-\tspin_lock(&l);\n \n \treturn c + b;\n';
    const [t] = touchedFiles(parseDiff(diff).files, () => after);
    expect([...t!.changed].sort()).toEqual([6, 7]);
    expect([...t!.functions]).toEqual(['foo']);
    const read = (): string => after;
    expect(nearness([t!], { file: 'f.c', line: 7, function: null }, read)).toBe('line');
    expect(nearness([t!], { file: 'f.c', line: 8, function: null }, read)).toBe('hunk');
    expect(nearness([t!], { file: 'f.c', line: 3, function: null }, read)).toBe('function');
    expect(nearness([t!], { file: 'f.c', line: 13, function: null }, read)).toBe('elsewhere');
    expect(nearness([t!], { file: 'g.c', line: 7, function: null }, read)).toBe('elsewhere');
  });
});
