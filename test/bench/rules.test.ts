import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { benchRules } from '../../src/bench/rules.js';
import { RULES } from '../../src/rules/index.js';
import { CORPUS, HAS_CORPUS } from '../helpers/corpus.js';
import { kernelTree } from '../helpers/kernel-tree.js';

// Three small files of the real tree: a .c of each directory and a header.
const FILES = ['drivers/iommu/iommu-sva-lib.c', 'drivers/vfio/mdev/mdev_driver.c', 'drivers/vfio/mdev/mdev_private.h'];
const log = (): void => undefined;

let tree: string;
beforeAll(async () => {
  tree = await kernelTree();
}, 30 * 60_000);

/** The lines of the first table of the output: its header, then one row per tool. */
function firstTable(out: string): string[] {
  const lines = out.split('\n');
  const head = lines.findIndex((l) => /^tool\s+files\s+MB\s+seconds\s+files\/s\s+MB\/s\s+peak RSS MB\s*$/.test(l));
  expect(head, out).toBeGreaterThan(0);
  return lines.slice(head, head + 3);
}

describe('bench rules on the real 6.1 tree', () => {
  it('has a row per tool over the same files, the ratio and target lines, a per-rule table, and skips the series without a corpus', async () => {
    const out = await benchRules({ tree, corpus: join(tmpdir(), 'vr-no-such-corpus'), log }, { paths: FILES });
    const [, ours, peer] = firstTable(out);
    expect(ours).toMatch(new RegExp(`^vfio-review: C model \\+ ${RULES.length} rules .*\\s3\\s+0\\.0\\d\\s`));
    expect(peer).toMatch(/^checkpatch\.pl --file --terse --no-summary --no-tree .*\s3\s+0\.0\d\s/);
    expect(out).toMatch(/^ratio: vfio-review is \d+\.\d\dx (?:faster|slower) than checkpatch\.pl/m);
    expect(out).toMatch(/^ {2}target "whole pass faster than checkpatch alone": (?:met|NOT met)$/m);
    expect(out).toMatch(/^series: skipped: no corpus file .*patches-applying-6\.1\.192\.mbox\.gz$/m);
    expect(out).toMatch(/^ {2}target "one series in under a second": not measured$/m);
    // The per-rule table: every rule exactly once.
    const ruleRows = out.split('\n').filter((l) => RULES.some((r) => l.startsWith(`${r.id} `)));
    expect(ruleRows.map((l) => l.split(/\s+/)[0]).sort()).toEqual(RULES.map((r) => r.id).sort());
    expect(out).toMatch(/^phase\s+seconds\s+share of wall/m);
    expect(out).toContain(`(${FILES.length} checked + `);
  }, 600_000);

  it.skipIf(!HAS_CORPUS)('times corpus series cold, then warm after a daemon worker\'s warm-up, with checkpatch.pl\'s share', async () => {
    const out = await benchRules({ tree, corpus: CORPUS, log }, { paths: FILES.slice(0, 2), series: 2 });
    expect(firstTable(out)).toHaveLength(3);
    expect(out).toMatch(/^ {2}cold, the process's first check: series \d+ \(\d+ of \d+ patches, \w+\) \d+\.\d\d s = \d\.\d{3} s\/patch; x 10: \d+\.\d\d s$/m);
    expect(out).toMatch(/^ {2}warm-up as a daemon worker does it \(src\/daemon\/warm\.ts\): \d+ \.c files under drivers\/vfio, drivers\/iommu in /m);
    const lines = out.split('\n');
    const head = lines.findIndex((l) => /^series\s+patches\s+apply\s+findings\s+seconds\s+s\/patch\s+checkpatch\.pl s\/patch\s+subject/.test(l));
    expect(head, out).toBeGreaterThan(0);
    expect(lines.slice(head + 1, head + 3).every((l) => /^\d+\s+\d+ of \d+\s+\w+\s+\d+\s+\d/.test(l)), out).toBe(true);
    expect(out).toMatch(/^ {2}median \d\.\d{3} s\/patch; x 10: \d+\.\d\d s \(checkpatch\.pl adds \d\.\d{3} s\/patch: /m);
    expect(out).toMatch(/^ {2}a 10-patch series assembled from real patches \(the first patch of 10 other corpus series, different files, re-threaded; new to the process; apply, \d+ rules and checkpatch\.pl, as a worker checks it\): \d+\.\d\d s, \d+ findings$/m);
    expect(out).toMatch(/^ {2}target "one series in under a second" \(warm worker\): assembled 10-patch series with checkpatch\.pl (?:met|NOT met); per patch x 10 (?:met|NOT met), with checkpatch\.pl's share (?:met|NOT met); cold first check: (?:met|NOT met)$/m);
  }, 600_000);
});
