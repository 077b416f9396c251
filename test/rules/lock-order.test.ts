import { beforeAll, describe, expect, it } from 'vitest';
import { lockOrder } from '../../src/rules/lock-order.js';
import { kernelTree } from '../helpers/kernel-tree.js';
import { CORRECT_LOCKING_FUNCTIONS, findingsOf, realTreeQuiet, realTreeView, treeFile, withoutFunction } from '../helpers/locking-real-tree.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const HEADER = `#include <linux/mutex.h>

struct demo_dev {
	struct mutex lock;
	struct mutex irq_lock;
	int state;
};
`;

/** The other file of a two-file patch: takes irq_lock, then lock. */
const OTHER = `#include "demo.h"

void demo_irq_update(struct demo_dev *d)
{
	mutex_lock(&d->irq_lock);
	mutex_lock(&d->lock);
	d->state = 1;
	mutex_unlock(&d->lock);
	mutex_unlock(&d->irq_lock);
}
`;

const fn = (name: string, first: string, second: string): string => `
static void ${name}(struct demo_dev *d)
{
	mutex_lock(&d->${first});
	mutex_lock(&d->${second});
	d->state = 2;
	mutex_unlock(&d->${second});
	mutex_unlock(&d->${first});
}
`;

runRuleTests(lockOrder, {
  valid: [
    {
      name: 'the same order as everywhere else',
      before: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}`,
      after: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}${fn('b', 'irq_lock', 'lock')}`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER } },
    },
    {
      name: 'the cycle was already there before the patch',
      before: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}${fn('b', 'lock', 'irq_lock')}`,
      after: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}${fn('b', 'lock', 'irq_lock')}${fn('c', 'lock', 'irq_lock')}`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER } },
    },
    {
      name: 'the reverse order is only a trylock (lockdep ignores it)',
      before: `#include "demo.h"
static void a(struct demo_dev *d)
{
	mutex_lock(&d->irq_lock);
	if (mutex_trylock(&d->lock)) {
		d->state = 1;
		mutex_unlock(&d->lock);
	}
	mutex_unlock(&d->irq_lock);
}
`,
      after: `#include "demo.h"
static void a(struct demo_dev *d)
{
	mutex_lock(&d->irq_lock);
	if (mutex_trylock(&d->lock)) {
		d->state = 1;
		mutex_unlock(&d->lock);
	}
	mutex_unlock(&d->irq_lock);
}
${fn('b', 'lock', 'irq_lock')}`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER } },
    },
    {
      name: 'the new order is a trylock',
      before: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}`,
      after: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}
static int b(struct demo_dev *d)
{
	mutex_lock(&d->lock);
	if (!mutex_trylock(&d->irq_lock)) {
		mutex_unlock(&d->lock);
		return -EAGAIN;
	}
	mutex_unlock(&d->irq_lock);
	mutex_unlock(&d->lock);
	return 0;
}
`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER } },
    },
    {
      name: 'conditional locking, balanced, in the documented order',
      before: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}`,
      after: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}
static void b(struct demo_dev *d, struct kvm *kvm)
{
	mutex_lock(&d->irq_lock);
	if (kvm)
		mutex_lock(&d->lock);
	d->state = 3;
	if (kvm)
		mutex_unlock(&d->lock);
	mutex_unlock(&d->irq_lock);
}
`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER } },
    },
    {
      name: 'rcu_read_lock and srcu read sides are not lock-order edges',
      before: `#include "demo.h"
static void a(struct demo_dev *d, struct srcu_struct *ss)
{
	int idx;

	mutex_lock(&d->lock);
	idx = srcu_read_lock(&d->srcu);
	srcu_read_unlock(&d->srcu, idx);
	rcu_read_lock();
	rcu_read_unlock();
	mutex_unlock(&d->lock);
}
`,
      after: `#include "demo.h"
static void a(struct demo_dev *d, struct srcu_struct *ss)
{
	int idx;

	mutex_lock(&d->lock);
	idx = srcu_read_lock(&d->srcu);
	srcu_read_unlock(&d->srcu, idx);
	rcu_read_lock();
	rcu_read_unlock();
	mutex_unlock(&d->lock);
}
static void b(struct demo_dev *d)
{
	int idx = srcu_read_lock(&d->srcu);

	mutex_lock(&d->lock);
	mutex_unlock(&d->lock);
	srcu_read_unlock(&d->srcu, idx);
}
`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER.replace('int state;', 'int state;\n\tstruct srcu_struct srcu;'), after: HEADER.replace('int state;', 'int state;\n\tstruct srcu_struct srcu;') } },
    },
    { name: 'an ops call cannot reach a function bound to the same member name of another struct', fixture: 'lock-order-ops.c' },
    {
      name: 'a lock a callee leaks on an error path is lock-imbalance\'s finding, not an ordering (fsl_pamu attach)',
      before: `#include "demo.h"\n${fn('a', 'lock', 'irq_lock')}
static void demo_detach(struct demo_dev *d)
{
	mutex_lock(&d->lock);
	d->state = 0;
	mutex_unlock(&d->lock);
}

static void demo_attach(struct demo_dev *d)
{
	mutex_lock(&d->irq_lock);
	if (d->state) {
		mutex_unlock(&d->irq_lock);
		demo_detach(d);
		mutex_lock(&d->irq_lock);
	}
	d->state = 1;
	mutex_unlock(&d->irq_lock);
}

static void demo_attach_all(struct demo_dev *d, int n)
{
	int i;

	for (i = 0; i < n; i++)
		demo_attach(d);
}
`,
      after: `#include "demo.h"\n${fn('a', 'lock', 'irq_lock')}
static void demo_detach(struct demo_dev *d)
{
	mutex_lock(&d->lock);
	d->state = 0;
	mutex_unlock(&d->lock);
}

static void demo_attach(struct demo_dev *d)
{
	mutex_lock(&d->irq_lock);
	if (d->state) {
		mutex_unlock(&d->irq_lock);
		demo_detach(d);
		mutex_lock(&d->irq_lock);
	}
	if (!d->irqs)
		return;
	d->state = 1;
	mutex_unlock(&d->irq_lock);
}

static void demo_attach_all(struct demo_dev *d, int n)
{
	int i;

	for (i = 0; i < n; i++)
		demo_attach(d);
}
`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER } },
    },
    {
      name: 'a patch that changes nothing about locking in a file with a cycle',
      before: `#include "demo.h"\n${fn('a', 'irq_lock', 'lock')}${fn('b', 'lock', 'irq_lock')}`,
      after: `#include "demo.h"\n/* comment */\n${fn('a', 'irq_lock', 'lock')}${fn('b', 'lock', 'irq_lock')}`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER } },
    },
  ],
  invalid: [
    {
      name: 'seed: an adapter store calls a helper taking the permissions mutex under the matrix lock; the bus store takes them the other way round through the in_use ops callback',
      fixture: 'lock-order.c',
      path: 'drivers/s390/crypto/demo_ap_ops.c',
      findings: [{ line: 71, message: 'assign_adapter_store() now takes demo_perms_mutex while holding demo_matrix_dev.lock, but apmask_store() takes demo_matrix_dev.lock while holding demo_perms_mutex' }],
    },
    { name: 'a trylock in the reverse order does not hide a blocking one', fixture: 'lock-order-trylock.c', findings: [{ line: 37, message: 'but demo_flush_table() takes' }] },
    { name: 'an acquire added inside a helper that an old caller calls under the other lock', fixture: 'lock-order-helper.c', findings: [{ line: 20, message: 'demo_group_set_kvm() now takes demo_kvm.lock while holding demo_group.group_lock' }] },
    {
      name: 'two files: the reverse order lives in another file of the tree',
      before: '#include "demo.h"\n',
      after: `#include "demo.h"\n${fn('demo_reset', 'lock', 'irq_lock')}`,
      extra: { 'drivers/vfio/demo.h': { before: HEADER, after: HEADER }, 'drivers/vfio/demo_irq.c': { before: OTHER, after: OTHER } },
      findings: [{ line: 6, message: 'but demo_irq_update() takes demo_dev.lock while holding demo_dev.irq_lock' }],
    },
  ],
});

describe('lock-order on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  for (const [path, fns] of Object.entries(CORRECT_LOCKING_FUNCTIONS)) {
    it(`raises nothing for ${path} unchanged, nor for a patch adding ${fns.join(', ')}`, async () => {
      const { checked, findings } = await realTreeQuiet(root, lockOrder, path);
      expect(checked).toBe(fns.length);
      expect(findings).toEqual([]);
    });
  }

  it('reports assign_adapter_store taking mdevs_lock (through its helper) before ap_perms_mutex', async () => {
    const path = 'drivers/s390/crypto/vfio_ap_ops.c';
    const text = treeFile(root, path);
    const from = '\tmutex_lock(&ap_perms_mutex);\n\tget_update_locks_for_mdev(matrix_mdev);\n\n\tret = kstrtoul(buf, 0, &apid);';
    expect(text).toContain(from);
    const after = text.replace(from, '\tget_update_locks_for_mdev(matrix_mdev);\n\tmutex_lock(&ap_perms_mutex);\n\n\tret = kstrtoul(buf, 0, &apid);');
    const found = await findingsOf([lockOrder], realTreeView(root, 'reversed', { [path]: { before: text, after } }));
    expect(found).toHaveLength(1);
    expect(found[0]!.function).toBe('assign_adapter_store');
    expect(found[0]!.message).toContain('now takes ap_perms_mutex while holding');
    expect(found[0]!.evidence.join('\n')).toMatch(/ap_matrix_dev\.mdevs_lock → ap_perms_mutex.*in assign_domain_store\(\)/s);
  });

  it('finds the 6.1 intel-iommu cycle between dmar_domain->lock and iommu->lock when the coherency path is added', async () => {
    // A real ABBA in 6.1: intel_iommu_enforce_cache_coherency() holds domain->lock and reaches
    // intel_pasid_setup_page_snoop_control() (iommu->lock); domain_attach_iommu() holds iommu->lock and
    // reaches domain_update_device_node() (domain->lock).
    const path = 'drivers/iommu/intel/iommu.c';
    const text = treeFile(root, path);
    const before = await withoutFunction(path, text, 'intel_iommu_enforce_cache_coherency');
    const found = await findingsOf([lockOrder], realTreeView(root, 'intel', { [path]: { before, after: text } }));
    expect(found.map((f) => f.message)).toEqual([expect.stringMatching(/takes intel_iommu\.lock while holding dmar_domain\.lock, but domain_attach_iommu\(\)/)]);
  });
});
