import { beforeAll, describe, expect, it } from 'vitest';
import { kernelTree } from '../helpers/kernel-tree.js';
import { CORPUS, HAS_CORPUS } from '../helpers/corpus.js';
import { formatEval, runEval, type EvalResult } from '../../src/eval/run.js';

// A missing unlock on an error path (locking), a KASAN use-after-free, and a fix that is neither.
const LOCKING = '20210820074949.1946576-1-yangyingliang@huawei.com';
const UAF = '20191126175413.4350-1-eric.auger@redhat.com';
const OTHER = '20190617133101.2817807-1-arnd@arndb.de';

describe.skipIf(!HAS_CORPUS)('eval --part stable: concurrency fixes reviewed in their buggy state', () => {
  let r: EvalResult;
  beforeAll(async () => {
    const tree = await kernelTree();
    r = await runEval(CORPUS, tree, { parts: ['stable'], msgids: [LOCKING, UAF, OTHER] });
  }, 30 * 60_000);

  it('classifies every Fixes: patch and reviews only the concurrency ones', () => {
    const s = r.stable!;
    expect(r.patchesIn).toBeNull();
    const cls = Object.fromEntries(s.fixes.map((f) => [f.msgid, f.class]));
    expect(cls).toEqual({ [LOCKING]: 'locking', [UAF]: 'use-after-free', [OTHER]: 'other' });
    expect(s.fixes.find((f) => f.msgid === UAF)!.keywords).toContain('use-after-free:use-after-free');
    expect(s.rows.map((x) => x.msgid).sort()).toEqual([LOCKING, UAF].sort());
  });

  it('reviews each buggy state as a patch that re-adds what the fix removed', () => {
    for (const row of r.stable!.rows) {
      expect(['hit', 'miss']).toContain(row.outcome);
      expect(row.added + row.removed).toBeGreaterThan(0);
      expect(row.functions.length).toBeGreaterThan(0);
      expect(row.outcome === 'hit').toBe(row.findings.some((f) => f.near !== 'elsewhere'));
      if (row.onTopic) expect(row.outcome).toBe('hit');
    }
    expect(r.stable!.rows.find((x) => x.msgid === LOCKING)!.functions).toContain('arm_smmu_device_group');
  });

  it('keeps the per-class counts and the hit rate consistent with the rows', () => {
    const s = r.stable!;
    const total = Object.values(s.perClass).reduce((a, v) => ({ fixes: a.fixes + v.fixes, reviewed: a.reviewed + v.reviewed, hits: a.hits + v.hits, misses: a.misses + v.misses }), { fixes: 0, reviewed: 0, hits: 0, misses: 0 });
    expect(total.fixes).toBe(s.rows.length);
    expect(total.reviewed).toBe(total.hits + total.misses);
    expect(s.perClass.locking!.fixes).toBe(1);
    expect(s.perClass['use-after-free']!.fixes).toBe(1);
    expect(s.hitRate).toBeCloseTo(total.hits / total.reviewed);
  });

  it('prints the classification, the per-class table and a row per reviewed fix', () => {
    const text = formatEval(r);
    expect(text).toMatch(/^Stable fixes among the merged patches: 3 patches with Fixes:/);
    for (const id of [LOCKING, UAF, OTHER]) expect(text).toContain(id);
    expect(text).toMatch(/\nlocking +1 +1 +\d +\d +\d +\d+%/);
    expect(text).toMatch(/\noverall hit rate: \d+% \(\d\/2\)/);
    expect(text).toMatch(new RegExp(`\\n(hit|miss)[^\\n]* +use-after-free +${UAF.replace(/[.+]/g, '\\$&')} `));
  });
});
