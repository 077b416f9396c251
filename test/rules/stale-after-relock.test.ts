import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { staleAfterRelock } from '../../src/rules/stale-after-relock.js';
import { runRules } from '../../src/rules/run.js';
import { kernelTree } from '../helpers/kernel-tree.js';
import { realView, itStaysQuietOnTheRealTree } from '../helpers/race-real-tree.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const helperBefore = `#include "toy.h"

void toy_flush(struct toy_tracker *t, unsigned long start)
{
	toy_hw_flush(t, start);
}
`;
const helperAfter = `#include "toy.h"

void toy_flush(struct toy_tracker *t, unsigned long start)
{
	mutex_unlock(&t->lock);
	blocking_notifier_call_chain(&t->chain, 0, &start);
	mutex_lock(&t->lock);
}
`;
const header = `struct toy_map { unsigned long start; int pins; };
struct toy_tracker { struct mutex lock; struct blocking_notifier_head chain; };
struct toy_map *toy_find(struct toy_tracker *t, unsigned long start);
void toy_flush(struct toy_tracker *t, unsigned long start);
void toy_erase(struct toy_tracker *t, struct toy_map *m);
`;
const caller = `#include "toy.h"

int toy_unmap(struct toy_tracker *t, unsigned long start)
{
	struct toy_map *m;

	mutex_lock(&t->lock);
	m = toy_find(t, start);
	if (m) {
		toy_flush(t, start);
		toy_erase(t, m);
	}
	mutex_unlock(&t->lock);
	return 0;
}
`;
const staleInBase = `int f(struct toy_tracker *t)
{
	struct toy_map *m;

	mutex_lock(&t->lock);
	m = toy_find(t, 0);
	mutex_unlock(&t->lock);
	schedule();
	mutex_lock(&t->lock);
	m->pins = 0;
	mutex_unlock(&t->lock);
	return 0;
}
`;

runRuleTests(staleAfterRelock, {
  valid: [
    { name: 'restart, reference, other lock held across, value copied out', fixture: 'stale-after-relock-ok.c' },
    {
      name: 'a stale use already in the base is not the patch\'s',
      before: staleInBase,
      after: staleInBase.replace('\treturn 0;', '\tpr_debug("done\\n");\n\treturn 0;'),
    },
    {
      name: 'a callee that drops the lock, but the caller looks up again',
      path: 'drivers/vfio/toy_main.c',
      before: caller,
      after: caller.replace('\t\ttoy_erase(t, m);', '\t\tm = toy_find(t, start);\n\t\tif (m)\n\t\t\ttoy_erase(t, m);'),
      extra: { 'drivers/vfio/toy_flush.c': { before: helperAfter, after: helperAfter }, 'drivers/vfio/toy.h': { before: header, after: header } },
    },
  ],
  invalid: [
    { name: 'explicit relock and a relocking callee in one file', fixture: 'stale-after-relock.c' },
    { name: 'a list walk that carries on after dropping the lock', fixture: 'stale-after-relock-loop.c' },
    {
      name: 'a helper in another file now drops and retakes the caller\'s lock',
      path: 'drivers/vfio/toy_main.c',
      before: caller,
      after: caller,
      extra: { 'drivers/vfio/toy_flush.c': { before: helperBefore, after: helperAfter }, 'drivers/vfio/toy.h': { before: header, after: header } },
      findings: [{ line: 11, message: 'dropped and retaken by toy_flush()' }],
    },
  ],
});

describe('stale-after-relock on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  itStaysQuietOnTheRealTree(staleAfterRelock, () => root);

  it('flags vfio_dma_do_unmap() if the restart after vfio_notify_dma_unmap() is dropped', async () => {
    const path = 'drivers/vfio/vfio_iommu_type1.c';
    const text = readFileSync(join(root, path), 'utf8');
    const after = text.replace(/(vfio_notify_dma_unmap\(iommu, dma\);)\n\t\t\tgoto again;/, '$1\n\t\t\tdma_last = dma;');
    expect(after).not.toBe(text);
    const found = await runRules([staleAfterRelock], [realView(root, { path, fn: 'vfio_dma_do_unmap', before: text, after })]);
    expect(found).toHaveLength(1);
    expect(found[0]!.function).toBe('vfio_dma_do_unmap');
    expect(found[0]!.message).toContain('dropped and retaken by vfio_notify_dma_unmap()');
    const lines = after.split('\n');
    const notify = lines.findIndex((l) => l.includes('vfio_notify_dma_unmap(iommu, dma);'));
    expect(found[0]!.line).toBe(lines.findIndex((l, i) => i > notify && l.includes('update_user_bitmap(')) + 1);
  });
});
