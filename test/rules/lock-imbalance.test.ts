import { beforeAll, describe, expect, it } from 'vitest';
import { kernelTree } from '../helpers/kernel-tree.js';
import { CORRECT_LOCKING_FUNCTIONS, findingsOf, realTreeQuiet, realTreeView, treeFile } from '../helpers/locking-real-tree.js';
import { lockImbalance } from '../../src/rules/lock-imbalance.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const DEV = `#include <linux/mutex.h>

struct demo_kvm {
	struct mutex lock;
};

struct demo_dev {
	struct mutex lock;
	struct mutex guests_lock;
	struct demo_kvm *kvm;
	int state;
};
`;

/** Lock helpers in the vfio_ap style: the kvm lock only when a guest is attached. */
const HELPERS = `
static void demo_get_update_locks(struct demo_dev *d)
{
	mutex_lock(&d->guests_lock);
	if (d && d->kvm)
		mutex_lock(&d->kvm->lock);
	mutex_lock(&d->lock);
}

static void demo_release_update_locks(struct demo_dev *d)
{
	mutex_unlock(&d->lock);
	if (d && d->kvm)
		mutex_unlock(&d->kvm->lock);
	mutex_unlock(&d->guests_lock);
}
`;

const UNLOCK_LABEL_BEFORE = `${DEV}
static int demo_store(struct demo_dev *d, int v)
{
	int ret = 0;

	mutex_lock(&d->lock);
	if (v < 0) {
		ret = -EINVAL;
		goto out_unlock;
	}
	d->state = v;
out_unlock:
	mutex_unlock(&d->lock);
	return ret;
}
`;

runRuleTests(lockImbalance, {
  valid: [
    { name: 'conditional locking, guard(), scoped_guard(), helpers returning locked by design, __must_hold, drop-and-retake in a retry loop, trylock and interruptible', fixture: 'lock-imbalance-ok.c' },
    {
      name: 'get/release helper pair with a conditional kvm lock',
      before: `${DEV}${HELPERS}`,
      after: `${DEV}${HELPERS}
static int demo_assign(struct demo_dev *d, int v)
{
	int ret = 0;

	demo_get_update_locks(d);
	if (v < 0) {
		ret = -EINVAL;
		goto done;
	}
	d->state = v;
done:
	demo_release_update_locks(d);
	return ret;
}
`,
    },
    {
      name: 'an old leak in the function the patch touches is not the patch\'s',
      before: `${DEV}
static int demo_store(struct demo_dev *d, int v)
{
	mutex_lock(&d->lock);
	if (v < 0)
		return -EINVAL;
	d->state = v;
	mutex_unlock(&d->lock);
	return 0;
}
`,
      after: `${DEV}
static int demo_store(struct demo_dev *d, int v)
{
	mutex_lock(&d->lock);
	if (v < 0)
		return -EINVAL;
	d->state = v + 1;
	mutex_unlock(&d->lock);
	return 0;
}
`,
    },
    {
      name: 'an unlock helper the model cannot see (defined in a file it did not load)',
      before: DEV,
      after: `${DEV}
static void demo_close(struct demo_dev *d)
{
	if (!d->state)
		return;
	mutex_lock(&d->lock);
	d->state = 0;
	demo_state_mutex_unlock(d);
}
`,
    },
    {
      name: 'the goto moved after the lock, to the unlock label',
      before: UNLOCK_LABEL_BEFORE,
      after: UNLOCK_LABEL_BEFORE.replace('\tif (v < 0) {', '\tif (v > 100) {\n\t\tret = -ERANGE;\n\t\tgoto out_unlock;\n\t}\n\tif (v < 0) {'),
    },
  ],
  invalid: [
    { name: 'error path returning with the mutex held, void path with the spinlock held, double acquire', fixture: 'lock-imbalance.c' },
    {
      // The vfio_ap SET_KVM rework: the old function ran under its caller's lock (dropped and retook
      // it); the new one takes the lock itself and one path returns without releasing it.
      name: 'a function that now takes the lock itself leaks it, where the old one only dropped and retook its caller\'s',
      before: `${DEV}
static void demo_unset_kvm(struct demo_dev *d)
{
	if (d->kvm) {
		mutex_unlock(&d->lock);
		demo_clear(d->kvm);
		mutex_lock(&d->lock);
		d->kvm = NULL;
	}
}
`,
      after: `${DEV}
static void demo_unset_kvm(struct demo_dev *d)
{
	mutex_lock(&d->lock);
	if (d->kvm) {
		mutex_unlock(&d->lock);
		demo_clear(d->kvm);
		mutex_lock(&d->lock);
		d->kvm = NULL;
		mutex_unlock(&d->lock);
	}
}
`,
      findings: [{ line: 24, message: 'demo_dev.lock (taken by mutex_lock() at line 16) is still held when demo_unset_kvm() returns at line 24, while other paths release it' }],
    },
    {
      name: 'a goto to the unlock label added before the lock is taken',
      before: UNLOCK_LABEL_BEFORE,
      after: UNLOCK_LABEL_BEFORE.replace('\tmutex_lock(&d->lock);\n', '\tif (!d->kvm) {\n\t\tret = -ENODEV;\n\t\tgoto out_unlock;\n\t}\n\tmutex_lock(&d->lock);\n'),
      findings: [{ line: 29, message: 'demo_store() releases demo_dev.lock at line 29 on a path that did not take it' }],
    },
    {
      name: 'an error return added to a helper under its lock',
      before: `${DEV}
static int demo_check(struct demo_dev *d)
{
	int bad;

	mutex_lock(&d->lock);
	bad = d->state < 0;
	mutex_unlock(&d->lock);
	return bad;
}
`,
      after: `${DEV}
static int demo_check(struct demo_dev *d)
{
	int bad;

	mutex_lock(&d->lock);
	bad = d->state < 0;
	if (bad)
		return -EIO;
	mutex_unlock(&d->lock);
	return bad;
}
`,
      findings: [{ line: 21, message: 'demo_dev.lock (taken by mutex_lock() at line 18) is still held when demo_check() returns at line 21' }],
    },
  ],
});

describe('lock-imbalance on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  for (const [path, fns] of Object.entries(CORRECT_LOCKING_FUNCTIONS)) {
    it(`raises nothing for ${path} unchanged, nor for a patch adding ${fns.join(', ')}`, async () => {
      const { checked, findings } = await realTreeQuiet(root, lockImbalance, path);
      expect(checked).toBe(fns.length);
      expect(findings).toEqual([]);
    });
  }

  it('reports an early return added under iommu->lock in vfio_dma_do_unmap', async () => {
    const path = 'drivers/vfio/vfio_iommu_type1.c';
    const text = treeFile(root, path);
    const from = '\t\tret = -EBUSY;\n\t\tgoto unlock;\n\t}\n\n\tpgshift = __ffs(iommu->pgsize_bitmap);';
    expect(text).toContain(from);
    const after = text.replace(from, '\t\treturn -EBUSY;\n\t}\n\n\tpgshift = __ffs(iommu->pgsize_bitmap);');
    const found = await findingsOf([lockImbalance], realTreeView(root, 'leak', { [path]: { before: text, after } }));
    expect(found.map((f) => [f.function, f.message])).toEqual([['vfio_dma_do_unmap', expect.stringMatching(/^vfio_iommu\.lock \(taken by mutex_lock\(\) at line \d+\) is still held/)]]);
  });

  it('reports a return that skips release_update_locks_for_mdev() in assign_adapter_store, once for all its locks', async () => {
    const path = 'drivers/s390/crypto/vfio_ap_ops.c';
    const text = treeFile(root, path);
    const from = '\tret = kstrtoul(buf, 0, &apid);\n\tif (ret)\n\t\tgoto done;';
    expect(text).toContain(from);
    const after = text.replace(from, '\tret = kstrtoul(buf, 0, &apid);\n\tif (ret)\n\t\treturn ret;');
    const found = await findingsOf([lockImbalance], realTreeView(root, 'leak-helper', { [path]: { before: text, after } }));
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toMatch(/^ap_perms_mutex \(taken by mutex_lock\(\) at line \d+\), ap_matrix_dev\.guests_lock, kvm\.lock and ap_matrix_dev\.mdevs_lock \(taken by get_update_locks_for_mdev\(\) at line \d+\) are still held when assign_adapter_store\(\) returns/);
  });
});
