import { unwindMismatch } from '../../src/rules/unwind-mismatch.js';
import { expect, it } from 'vitest';
import { describeRealTree, runOnReal } from '../helpers/real-functions.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

const HEAD = `struct demo {
	struct miscdevice misc;
	struct device dev;
	struct demo_buf *buf;
	int irq;
	bool irq_on;
};

static irqreturn_t demo_irq(int irq, void *arg);
static int demo_hw_init(struct demo *d);
`;

const fn = (body: string): string => `${HEAD}
static int demo_probe(struct demo *d)
{
	int ret;

${body}
}
`;

const IRQ = '\tret = request_irq(d->irq, demo_irq, 0, "demo", d);\n\tif (ret)\n\t\treturn ret;\n';
const MISC = '\tret = misc_register(&d->misc);\n\tif (ret)\n\t\tgoto err_irq;\n';
const TAIL = '\treturn 0;\n\nerr_irq:\n\tfree_irq(d->irq, d);\n\treturn ret;';

/** The old vfio-ccw shape: a helper in the same file registers the mdev parent. */
const HELPER = `struct demo_private {
	struct subchannel *sch;
	struct mdev_parent parent;
};

static int demo_mdev_reg(struct demo_private *p)
{
	return mdev_register_parent(&p->parent, &p->sch->dev, &demo_driver, p->types, 1);
}

static void demo_mdev_unreg(struct demo_private *p)
{
	mdev_unregister_parent(&p->parent);
}

static int demo_enable(struct demo_private *p);

static int demo_probe(struct demo_private *p)
{
	int ret;

	ret = demo_mdev_reg(p);
	if (ret)
		return ret;
`;

const LEAK_BEFORE = `${HEAD}
static long demo_ioctl(struct demo *d, void __user *arg)
{
	struct demo_buf *buf;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	d->buf = buf;
	return 0;
}
`;
const LEAK_AFTER = `${HEAD}
static long demo_ioctl(struct demo *d, void __user *arg)
{
	struct demo_buf *buf;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (copy_from_user(buf, arg, sizeof(*buf)))
		return -EFAULT;
	d->buf = buf;
	return 0;
}
`;

const REMOVED_BEFORE = fn(`${IRQ}${MISC}\tret = demo_hw_init(d);\n\tif (ret)\n\t\tgoto err_misc;\n\treturn 0;\n\nerr_misc:\n\tmisc_deregister(&d->misc);\nerr_irq:\n\tfree_irq(d->irq, d);\n\treturn ret;`);
const REMOVED_AFTER = fn(`${IRQ}${MISC}\tret = demo_hw_init(d);\n\tif (ret)\n\t\tgoto err_misc;\n\treturn 0;\n\nerr_misc:\nerr_irq:\n\tfree_irq(d->irq, d);\n\treturn ret;`);
const HELPER_AFTER = `${HELPER}\tret = demo_enable(p);\n\tif (ret)\n\t\treturn ret;\n\treturn 0;\n}\n`;

runRuleTests(unwindMismatch, {
  valid: [
    {
      name: 'a new step whose failure unwinds in reverse order',
      before: fn(`${IRQ}${MISC}${TAIL}`),
      after: REMOVED_BEFORE,
    },
    {
      name: 'device_register() failure answered by put_device() only',
      before: `${HEAD}\nstatic int demo_add(struct demo *d)\n{\n\treturn 0;\n}\n`,
      after: `${HEAD}\nstatic int demo_add(struct demo *d)\n{\n\tint ret;\n\n\tret = device_register(&d->dev);\n\tif (ret) {\n\t\tput_device(&d->dev);\n\t\treturn ret;\n\t}\n\treturn 0;\n}\n`,
    },
    {
      name: 'devm registrations need no unwinding',
      before: fn(`${TAIL}`),
      after: fn(`\tret = devm_request_irq(d->dev.parent, d->irq, demo_irq, 0, "demo", d);\n\tif (ret)\n\t\treturn ret;\n\tret = demo_hw_init(d);\n\tif (ret)\n\t\treturn ret;\n${TAIL}`),
    },
    {
      name: 'an allocation handed over before the failure is not a leak',
      before: LEAK_BEFORE,
      after: LEAK_BEFORE.replace('\td->buf = buf;\n\treturn 0;', '\td->buf = buf;\n\tif (copy_from_user(buf, arg, sizeof(*buf)))\n\t\treturn -EFAULT;\n\treturn 0;'),
    },
    {
      name: 'a conditional undo the walk cannot correlate is not judged',
      before: fn(`${IRQ}\td->irq_on = true;\n${MISC}${TAIL}`),
      after: fn(`${IRQ}\td->irq_on = true;\n${MISC}\tret = demo_hw_init(d);\n\tif (ret)\n\t\tgoto err_misc;\n\treturn 0;\n\nerr_misc:\n\tmisc_deregister(&d->misc);\nerr_irq:\n\tif (d->irq_on)\n\t\tfree_irq(d->irq, d);\n\treturn ret;`),
    },
    {
      name: 'an array registered in a loop and unwound in a loop',
      before: `${HEAD}\nstatic int demo_all(struct demo *ds, int n)\n{\n\treturn 0;\n}\n`,
      after: `${HEAD}\nstatic int demo_all(struct demo *ds, int n)\n{\n\tint i, ret;\n\n\tfor (i = 0; i < n; i++) {\n\t\tret = misc_register(&ds[i].misc);\n\t\tif (ret)\n\t\t\tgoto err;\n\t}\n\treturn 0;\nerr:\n\twhile (--i >= 0)\n\t\tmisc_deregister(&ds[i].misc);\n\treturn ret;\n}\n`,
    },
    {
      name: 'a leak that was already there (the patch touches another line)',
      before: fn(`${IRQ}${MISC}\tret = demo_hw_init(d);\n\tif (ret)\n\t\tgoto err_irq;\n${TAIL}`),
      after: fn(`${IRQ}${MISC}\tret = demo_hw_init(d);\n\tif (ret < 0)\n\t\tgoto err_irq;\n${TAIL}`),
    },
    {
      name: 'a leaking failure branch that was there before, with the acquisition renamed by the patch',
      before: `${HEAD}\nstatic int demo_attach(struct demo *d, struct iommu_domain *dom, struct iommu_group *g)\n{\n\tint ret;\n\n\tret = iommu_attach_group(dom, g);\n\tif (ret)\n\t\treturn ret;\n\tif (d->irq < 0)\n\t\treturn -EBUSY;\n\treturn 0;\n}\n`,
      after: `${HEAD}\nstatic int demo_attach(struct demo *d, struct iommu_domain *dom, struct iommu_group *g)\n{\n\tint ret;\n\n\tret = iommu_attach_device(dom, &d->dev);\n\tif (ret)\n\t\treturn ret;\n\tif (d->irq < 0)\n\t\treturn -EBUSY;\n\treturn 0;\n}\n`,
    },
    {
      name: 'the helper registration undone by its helper counterpart',
      before: `${HELPER}\treturn 0;\n}\n`,
      after: `${HELPER}\tret = demo_enable(p);\n\tif (ret) {\n\t\tdemo_mdev_unreg(p);\n\t\treturn ret;\n\t}\n\treturn 0;\n}\n`,
    },
  ],
  invalid: [
    { name: 'a missing undo and a ladder in setup order', fixture: 'unwind-mismatch.c' },
    {
      name: 'a local allocation leaked when copy_from_user() fails',
      before: LEAK_BEFORE,
      after: LEAK_AFTER,
      findings: [{ line: lineOf(LEAK_AFTER, 'copy_from_user'), message: `kzalloc() into buf (line ${lineOf(LEAK_AFTER, 'kzalloc')}) is not undone when demo_ioctl() fails at line ${lineOf(LEAK_AFTER, 'copy_from_user')}` }],
    },
    {
      name: 'the patch deletes the misc_deregister() from the ladder',
      before: REMOVED_BEFORE,
      after: REMOVED_AFTER,
      findings: [{ line: REMOVED_AFTER.split('\n').findIndex((l, i, a) => l === '\tif (ret)' && a[i + 1] === '\t\tgoto err_misc;') + 1, message: /misc_register\(&d->misc\) .* without misc_deregister\(\)/ }],
    },
    {
      name: 'a helper that registers, not undone when the next step fails',
      before: `${HELPER}\treturn 0;\n}\n`,
      after: HELPER_AFTER,
      findings: [{ line: HELPER_AFTER.split('\n').findIndex((l, i, a) => l === '\tif (ret)' && a[i - 1]!.includes('demo_enable')) + 1, message: 'demo_mdev_reg() (mdev_register_parent)' }],
    },
  ],
});

describeRealTree(unwindMismatch, [
  {
    file: 'drivers/s390/crypto/vfio_ap_drv.c',
    fn: 'vfio_ap_init',
    message: 'vfio_ap_dbf_info_init() (debug_register) (line 164) is not undone when vfio_ap_init() fails',
    why:
      'real: module init registers the "vfio_ap" s390dbf area first and returns -ENODEV / the create or register ' +
      'error without debug_unregister(vfio_ap_dbf_info); only vfio_ap_exit() releases it, which never runs after a failed init',
  },
  {
    file: 'drivers/iommu/iommu.c',
    fn: 'iommu_sva_bind_device',
    message: 'iommu_group_get() (line 2798) is not undone when iommu_sva_bind_device() fails',
    why: 'real: the 6.1 stable `if (IS_ENABLED(CONFIG_X86)) return ERR_PTR(-EOPNOTSUPP);` sits after iommu_group_get() and leaks the group reference on every bind attempt on x86',
  },
], ({ root, text }) => {
  it('dropping bus_unregister() from the real vfio_ap_matrix_dev_create() ladder is reported', async () => {
    const file = 'drivers/s390/crypto/vfio_ap_drv.c';
    const real = text(file);
    const undo = 'matrix_alloc_err:\n\tbus_unregister(&matrix_bus);\n';
    expect(real).toContain(undo);
    const found = await runOnReal(unwindMismatch, root(), file, real, real.replace(undo, 'matrix_alloc_err:\n'));
    // Paths through put_device() are not judged (its release may undo anything); the allocation failure path is.
    expect(found.map((f) => `${f.function}: ${f.message}`)).toEqual([
      expect.stringMatching(/^vfio_ap_matrix_dev_create: bus_register\(&matrix_bus\) \(line \d+\) is not undone .* without bus_unregister\(\)/),
    ]);
  });
});
