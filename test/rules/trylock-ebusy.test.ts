import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { kernelTree } from '../helpers/kernel-tree.js';
import { CORRECT_LOCKING_FUNCTIONS, findingsOf, realTreeQuiet, realTreeView, treeFile } from '../helpers/locking-real-tree.js';
import { fileURLToPath } from 'node:url';
import { trylockEbusy } from '../../src/rules/trylock-ebusy.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const SEED = readFileSync(fileURLToPath(new URL('../fixtures/c/trylock-ebusy.c', import.meta.url)), 'utf8').replace(/ \/\/ (?:ruleid|ok): [\w-]+$/gm, '');
/** The seed before the "fix": both paths block on the matrix lock. */
const SEED_BEFORE = SEED
  .replace('\tif (!mutex_trylock(&matrix_dev->lock))\n\t\treturn -EBUSY;\n\trc =', '\tmutex_lock(&matrix_dev->lock);\n\trc =')
  .replace('\tif (!mutex_trylock(&matrix_dev->lock))\n\t\treturn -EBUSY;\n\tif (demo_owned', '\tmutex_lock(&matrix_dev->lock);\n\tif (demo_owned');

const DEV = `#include <linux/mutex.h>
#include <linux/fs.h>

struct demo_dev {
	struct mutex lock;
	int state;
};
`;

const store = (body: string): string => `${DEV}
static ssize_t demo_state_store(struct device *dev, struct device_attribute *attr, const char *buf, size_t count)
{
	struct demo_dev *d = dev_get_drvdata(dev);
${body}
	return count;
}
`;

runRuleTests(trylockEbusy, {
  valid: [
    {
      name: 'a trylock in a worker that is no userspace entry point',
      before: DEV,
      after: `${DEV}
static int demo_work(struct demo_dev *d)
{
	if (!mutex_trylock(&d->lock))
		return -EBUSY;
	d->state = 1;
	mutex_unlock(&d->lock);
	return 0;
}
`,
    },
    {
      name: 'a failed trylock that skips optional work and still succeeds',
      before: store(''),
      after: store('\tif (mutex_trylock(&d->lock)) {\n\t\td->state++;\n\t\tmutex_unlock(&d->lock);\n\t}'),
    },
    {
      name: 'O_NONBLOCK: -EAGAIN is what the caller asked for',
      before: DEV,
      after: `${DEV}
static ssize_t demo_read(struct file *filep, char __user *buf, size_t count, loff_t *ppos)
{
	struct demo_dev *d = filep->private_data;

	if (filep->f_flags & O_NONBLOCK) {
		if (!mutex_trylock(&d->lock))
			return -EAGAIN;
	} else {
		mutex_lock(&d->lock);
	}
	d->state = 0;
	mutex_unlock(&d->lock);
	return count;
}

static const struct file_operations demo_fops = {
	.read = demo_read,
};
`,
    },
    {
      name: 'a trylock that was already there',
      before: store('\tif (!mutex_trylock(&d->lock))\n\t\treturn -EBUSY;\n\td->state = 1;\n\tmutex_unlock(&d->lock);'),
      after: store('\tif (!mutex_trylock(&d->lock))\n\t\treturn -EBUSY;\n\td->state = 2;\n\tmutex_unlock(&d->lock);'),
    },
    {
      name: 'a blocking mutex_lock_interruptible returning -EINTR is not a trylock',
      before: store(''),
      after: store('\tif (mutex_lock_interruptible(&d->lock))\n\t\treturn -EINTR;\n\td->state = 1;\n\tmutex_unlock(&d->lock);'),
    },
  ],
  invalid: [
    {
      name: 'seed: the v12 "fix" in the adapter store (the callback is no entry point); names the ordering it dodges',
      fixture: 'trylock-ebusy.c',
      path: 'drivers/s390/crypto/demo_ap_ops.c',
      findings: [{ line: 71, message: /mutex_trylock\(&matrix_dev->lock\) in sysfs store assign_adapter_store\(\): on failure userspace gets -EBUSY .* order demo_matrix_dev\.lock vs demo_perms_mutex/ }],
    },
    {
      name: 'seed as a real diff: mutex_lock replaced by mutex_trylock; the dodged order is read from the base',
      path: 'drivers/s390/crypto/demo_ap_ops.c',
      before: SEED_BEFORE,
      after: SEED,
      findings: [{ line: 71, message: /-EBUSY .*demo_matrix_dev\.lock vs demo_perms_mutex/ }],
    },
    { name: 'an ioctl handler returning -EAGAIN through a variable, a DEVICE_ATTR store returning -EBUSY', fixture: 'trylock-ebusy-ioctl.c' },
  ],
});

describe('trylock-ebusy on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  for (const [path, fns] of Object.entries(CORRECT_LOCKING_FUNCTIONS)) {
    it(`raises nothing for ${path} unchanged, nor for a patch adding ${fns.join(', ')}`, async () => {
      const { checked, findings } = await realTreeQuiet(root, trylockEbusy, path);
      expect(checked).toBe(fns.length);
      expect(findings).toEqual([]);
    });
  }

  it('reports ap_perms_mutex turned into a trylock with -EBUSY in assign_adapter_store', async () => {
    const path = 'drivers/s390/crypto/vfio_ap_ops.c';
    const text = treeFile(root, path);
    const from = '\tmutex_lock(&ap_perms_mutex);\n\tget_update_locks_for_mdev(matrix_mdev);\n\n\tret = kstrtoul(buf, 0, &apid);';
    expect(text).toContain(from);
    const after = text.replace(from, '\tif (!mutex_trylock(&ap_perms_mutex))\n\t\treturn -EBUSY;\n\tget_update_locks_for_mdev(matrix_mdev);\n\n\tret = kstrtoul(buf, 0, &apid);');
    const found = await findingsOf([trylockEbusy], realTreeView(root, 'trylock', { [path]: { before: text, after } }));
    expect(found.map((f) => [f.function, f.message])).toEqual([['assign_adapter_store', expect.stringContaining('mutex_trylock(&ap_perms_mutex) in sysfs store assign_adapter_store(): on failure userspace gets -EBUSY')]]);
  });
});
