import { beforeAll, describe, expect, it } from 'vitest';
import { kernelTree } from '../helpers/kernel-tree.js';
import { CORRECT_LOCKING_FUNCTIONS, findingsOf, realTreeQuiet, realTreeView, treeFile, withoutFunction } from '../helpers/locking-real-tree.js';
import { sleepInAtomic } from '../../src/rules/sleep-in-atomic.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const DEV = `#include <linux/spinlock.h>
#include <linux/slab.h>

struct demo_dev {
	spinlock_t lock;
	struct mutex mlock;
	struct srcu_struct srcu;
	void *buf;
	int state;
};
`;

const fnWith = (body: string, extra = ''): string => `${DEV}${extra}
static int demo_op(struct demo_dev *d)
{
	unsigned long flags;
	int idx;

${body}
	return 0;
}
`;

/** A helper the callers below call under the spinlock; the patch makes it sleep. */
const HELPER_BEFORE = `
static void demo_note(struct demo_dev *d)
{
	d->state++;
}
`;
const HELPER_AFTER = `
static void demo_note(struct demo_dev *d)
{
	mutex_lock(&d->mlock);
	d->state++;
	mutex_unlock(&d->mlock);
}
`;
const CALLER = `
static void demo_irq(struct demo_dev *d)
{
	spin_lock(&d->lock);
	demo_note(d);
	spin_unlock(&d->lock);
}
`;

runRuleTests(sleepInAtomic, {
  valid: [
    {
      name: 'spin_lock + kmalloc(GFP_ATOMIC); GFP_KERNEL after the unlock',
      before: fnWith(''),
      after: fnWith('\tspin_lock_irqsave(&d->lock, flags);\n\td->buf = kmalloc(64, GFP_ATOMIC);\n\tspin_unlock_irqrestore(&d->lock, flags);\n\td->buf = kmalloc(64, GFP_KERNEL);'),
    },
    {
      name: 'a mutex and GFP_KERNEL under a mutex or an srcu read side',
      before: fnWith(''),
      after: fnWith('\tmutex_lock(&d->mlock);\n\td->buf = kzalloc(64, GFP_KERNEL);\n\tmutex_unlock(&d->mlock);\n\tidx = srcu_read_lock(&d->srcu);\n\tmutex_lock(&d->mlock);\n\tmutex_unlock(&d->mlock);\n\tsrcu_read_unlock(&d->srcu, idx);'),
    },
    {
      name: 'mutex_trylock and spin_lock under a spinlock do not sleep',
      before: fnWith(''),
      after: fnWith('\tspin_lock(&d->lock);\n\tif (mutex_trylock(&d->mlock))\n\t\tmutex_unlock(&d->mlock);\n\tspin_unlock(&d->lock);'),
    },
    {
      name: 'gfp passed in by the caller is not judged',
      before: DEV,
      after: `${DEV}
static void *demo_alloc(struct demo_dev *d, gfp_t gfp)
{
	void *p;

	spin_lock(&d->lock);
	p = kmalloc(64, gfp);
	spin_unlock(&d->lock);
	return p;
}
`,
    },
    {
      name: 'an old sleep under the lock is not the patch\'s',
      before: fnWith('\tspin_lock(&d->lock);\n\td->buf = kmalloc(64, GFP_KERNEL);\n\tspin_unlock(&d->lock);'),
      after: fnWith('\tspin_lock(&d->lock);\n\td->state = 1;\n\td->buf = kmalloc(64, GFP_KERNEL);\n\tspin_unlock(&d->lock);'),
    },
    {
      name: 'a sleeping callee called after the unlock',
      before: `${DEV}${HELPER_AFTER}`,
      after: `${DEV}${HELPER_AFTER}
static void demo_irq(struct demo_dev *d)
{
	spin_lock(&d->lock);
	d->state = 0;
	spin_unlock(&d->lock);
	demo_note(d);
}
`,
    },
    {
      name: 'a callee that drops the caller\'s spinlock around its wait (vfio_ccw quiesce)',
      before: DEV,
      after: `${DEV}
static int demo_quiesce(struct demo_dev *d)
{
	int ret;

	do {
		ret = demo_hw_cancel(d);
		spin_unlock_irq(&d->lock);
		if (ret == -EBUSY)
			wait_for_completion_timeout(&d->done, HZ);
		spin_lock_irq(&d->lock);
		ret = demo_hw_disable(d);
	} while (ret == -EBUSY);
	return ret;
}

static void demo_close(struct demo_dev *d)
{
	spin_lock_irq(&d->lock);
	if (demo_hw_disable(d) == -EBUSY)
		demo_quiesce(d);
	spin_unlock_irq(&d->lock);
}
`,
    },
  ],
  invalid: [
    { name: 'GFP_KERNEL, a mutex, msleep, a sleeping callee under spinlocks; put_user under rcu_read_lock', fixture: 'sleep-in-atomic.c' },
    {
      name: 'a helper the patch makes sleep, called under a spinlock by an unchanged caller',
      before: `${DEV}${HELPER_BEFORE}${CALLER}`,
      after: `${DEV}${HELPER_AFTER}${CALLER}`,
      findings: [{ line: 22, message: 'demo_note() may sleep, but demo_irq() holds demo_dev.lock (a spinlock, taken at line 21) here' }],
    },
    {
      name: 'a function that holds a spinlock on entry by __must_hold() or lockdep_assert_held()',
      before: `${DEV}
static void demo_locked(struct demo_dev *d) __must_hold(&d->lock)
{
	d->state = 1;
}

static void demo_asserted(struct demo_dev *d)
{
	lockdep_assert_held(&d->lock);
	d->state = 2;
}
`,
      after: `${DEV}
static void demo_locked(struct demo_dev *d) __must_hold(&d->lock)
{
	d->state = 1;
	d->buf = kmalloc(64, GFP_KERNEL);
}

static void demo_asserted(struct demo_dev *d)
{
	lockdep_assert_held(&d->lock);
	d->state = 2;
	msleep(1);
}
`,
      findings: [{ line: 15, message: 'holds demo_dev.lock (a spinlock, held on entry per __must_hold())' }, { line: 22, message: 'msleep() may sleep, but demo_asserted() holds demo_dev.lock (a spinlock, held on entry per lockdep_assert_held())' }],
    },
    {
      name: 'a spinlock added around existing sleeping code',
      before: fnWith('\td->buf = kzalloc(64, GFP_KERNEL);'),
      after: fnWith('\tspin_lock(&d->lock);\n\td->buf = kzalloc(64, GFP_KERNEL);\n\tspin_unlock(&d->lock);'),
      findings: [{ line: 18, message: 'kzalloc(GFP_KERNEL) may sleep' }],
    },
  ],
});

describe('sleep-in-atomic on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  for (const [path, fns] of Object.entries(CORRECT_LOCKING_FUNCTIONS)) {
    it(`raises nothing for ${path} unchanged, nor for a patch adding ${fns.join(', ')}`, async () => {
      const { checked, findings } = await realTreeQuiet(root, sleepInAtomic, path);
      expect(checked).toBe(fns.length);
      expect(findings).toEqual([]);
    });
  }

  it('reports a GFP_KERNEL allocation added under irqlock in vfio_intx_handler', async () => {
    const path = 'drivers/vfio/pci/vfio_pci_intrs.c';
    const text = treeFile(root, path);
    const from = '\tspin_lock_irqsave(&vdev->irqlock, flags);\n\n\tif (!vdev->pci_2_3) {';
    expect(text).toContain(from);
    const after = text.replace(from, '\tspin_lock_irqsave(&vdev->irqlock, flags);\n\tvdev->ctx = kzalloc(sizeof(*vdev->ctx), GFP_KERNEL);\n\n\tif (!vdev->pci_2_3) {');
    const found = await findingsOf([sleepInAtomic], realTreeView(root, 'gfp', { [path]: { before: text, after } }));
    expect(found.map((f) => f.message)).toEqual([expect.stringContaining('kzalloc(GFP_KERNEL) may sleep, but vfio_intx_handler() holds vfio_pci_core_device.irqlock (a spinlock, interrupts off')]);
  });

  it('finds the 6.1 exynos-iommu domain_free calling clk_disable_unprepare() under spinlocks when that function is added', async () => {
    // A real bug in 6.1: exynos_iommu_domain_free() holds domain->lock (irqsave) and data->lock around
    // __sysmmu_disable(), which ends in clk_disable_unprepare(), documented as not for atomic context.
    const path = 'drivers/iommu/exynos-iommu.c';
    const text = treeFile(root, path);
    const before = await withoutFunction(path, text, 'exynos_iommu_domain_free');
    const found = await findingsOf([sleepInAtomic], realTreeView(root, 'exynos', { [path]: { before, after: text } }));
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((f) => f.function === 'exynos_iommu_domain_free' && f.message.startsWith('__sysmmu_disable() may sleep'))).toBe(true);
  });
});
