import { expect, it } from 'vitest';
import { publishBeforeInit } from '../../src/rules/publish-before-init.js';
import { describeRealTree, runOnReal } from '../helpers/real-functions.js';
import { runRuleTests } from '../helpers/rule-tester.js';

/** A driver whose mdev ops read `state`, `avail`, `io_work` and `io_mutex` of `struct demo_private`. */
const OPS = `struct demo_private {
	struct mutex io_mutex;
	struct work_struct io_work;
	atomic_t avail;
	int state;
	int debug_id;
	struct mdev_parent parent;
	struct mdev_type *types[1];
};

static int demo_create(struct mdev_device *mdev)
{
	struct demo_private *private = dev_get_drvdata(mdev->dev.parent);

	if (private->state == DEMO_NOT_OPER)
		return -ENODEV;
	if (atomic_dec_if_positive(&private->avail) < 0)
		return -EPERM;
	queue_work(demo_wq, &private->io_work);
	return 0;
}

static struct mdev_driver demo_driver = {
	.probe = demo_create,
};
`;

const probe = (body: string): string => `${OPS}
static int demo_probe(struct subchannel *sch)
{
	struct demo_private *private;
	int ret;

	private = kzalloc(sizeof(*private), GFP_KERNEL);
	if (!private)
		return -ENOMEM;
${body}
	return 0;

out_free:
	kfree(private);
	return ret;
}
`;

const REG = '\tret = mdev_register_parent(&private->parent, &sch->dev, &demo_driver, private->types, 1);\n\tif (ret)\n\t\tgoto out_free;';
const INITS = '\tINIT_WORK(&private->io_work, demo_todo);\n\tatomic_set(&private->avail, 1);\n\tprivate->state = DEMO_STANDBY;';

/** The old vfio-ccw shape: the registration sits in a helper of another file, with create in an ops table. */
const HELPER_FILE = `struct demo_private {
	struct work_struct io_work;
	atomic_t avail;
	int state;
};

static int demo_mdev_create(struct mdev_device *mdev)
{
	struct demo_private *private = dev_get_drvdata(mdev_parent_dev(mdev));

	if (private->state == DEMO_NOT_OPER)
		return -ENODEV;
	if (atomic_dec_if_positive(&private->avail) < 0)
		return -EPERM;
	return 0;
}

static const struct mdev_parent_ops demo_mdev_ops = {
	.create = demo_mdev_create,
};

int demo_mdev_reg(struct subchannel *sch)
{
	return mdev_register_device(&sch->dev, &demo_mdev_ops);
}
`;

const oldProbe = (late: boolean): string => `struct demo_private {
	struct work_struct io_work;
	atomic_t avail;
	int state;
};

int demo_mdev_reg(struct subchannel *sch);

static int demo_sch_probe(struct subchannel *sch)
{
	struct demo_private *private;
	int ret;

	private = kzalloc(sizeof(*private), GFP_KERNEL);
	if (!private)
		return -ENOMEM;
	dev_set_drvdata(&sch->dev, private);
	private->state = DEMO_NOT_OPER;
${late ? '' : '\tINIT_WORK(&private->io_work, demo_todo);\n\tatomic_set(&private->avail, 1);\n'}
	ret = demo_mdev_reg(sch);
	if (ret)
		goto out_free;
${late ? '\tINIT_WORK(&private->io_work, demo_todo);\n\tatomic_set(&private->avail, 1);\n' : ''}
	private->state = DEMO_STANDBY;
	return 0;

out_free:
	kfree(private);
	return ret;
}
`;

const IRQ = `struct demo_dev {
	spinlock_t lock;
	u32 pending;
	int irq;
};

static irqreturn_t demo_irq(int irq, void *arg)
{
	struct demo_dev *d = arg;

	spin_lock(&d->lock);
	d->pending++;
	spin_unlock(&d->lock);
	return IRQ_HANDLED;
}

static int demo_setup(struct demo_dev *d)
{
	int ret;

`;

/** vfio_register_emulated_iommu_dev() with ops bound by vfio_alloc_device(), as in vfio_ap_mdev_probe. */
const VFIO = (late: boolean): string => `struct demo_mdev {
	struct vfio_device vdev;
	struct eventfd_ctx *req_trigger;
	struct list_head node;
};

static void demo_request(struct vfio_device *vdev, unsigned int count)
{
	struct demo_mdev *m = container_of(vdev, struct demo_mdev, vdev);

	if (m->req_trigger)
		eventfd_signal(m->req_trigger, 1);
}

static const struct vfio_device_ops demo_dev_ops = {
	.request = demo_request,
};

static int demo_mdev_probe(struct mdev_device *mdev)
{
	struct demo_mdev *m;
	int ret;

	m = vfio_alloc_device(demo_mdev, vdev, &mdev->dev, &demo_dev_ops);
	if (IS_ERR(m))
		return PTR_ERR(m);
${late ? '' : '\tm->req_trigger = NULL;\n'}
	ret = vfio_register_emulated_iommu_dev(&m->vdev);
	if (ret)
		goto err_put;
${late ? '\tm->req_trigger = NULL;\n' : ''}
	mutex_lock(&demo_lock);
	list_add(&m->node, &demo_list);
	mutex_unlock(&demo_lock);
	return 0;

err_put:
	vfio_put_device(&m->vdev);
	return ret;
}
`;

/** The 1-based line of the first line of `text` containing `needle`. */
const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

const OLD_LATE = oldProbe(true);
const MOVED = probe(`${REG}\n${INITS}`);
const IRQ_LATE = `${IRQ}\tret = request_irq(d->irq, demo_irq, 0, "demo", d);\n\tif (ret)\n\t\treturn ret;\n\tspin_lock_init(&d->lock);\n\treturn 0;\n}\n`;
const VFIO_LATE = VFIO(true);

runRuleTests(publishBeforeInit, {
  valid: [
    {
      name: 'everything initialised before the registration the patch adds',
      before: probe(INITS),
      after: probe(`${INITS}\n${REG}`),
    },
    {
      name: 'a field no callback uses, set after the registration',
      before: probe(`${INITS}\n${REG}`),
      after: probe(`${INITS}\n${REG}\n\tprivate->debug_id = 7;`),
    },
    {
      name: 'a late init that was already there (the patch only touches another line)',
      before: probe(`${REG}\n${INITS}\n\tprivate->debug_id = 1;`),
      after: probe(`${REG}\n${INITS}\n\tprivate->debug_id = 2;`),
    },
    {
      name: 'stores on the failure branch of the registration are teardown',
      before: probe(`${INITS}\n${REG}`),
      after: probe(`${INITS}\n\tret = mdev_register_parent(&private->parent, &sch->dev, &demo_driver, private->types, 1);\n\tif (ret) {\n\t\tprivate->state = DEMO_NOT_OPER;\n\t\tgoto out_free;\n\t}`),
    },
    {
      name: 'stores after the object was unregistered again',
      before: probe(`${INITS}\n${REG}`),
      after: probe(`${INITS}\n${REG}\n\tmdev_unregister_parent(&private->parent);\n\tprivate->state = DEMO_NOT_OPER;`),
    },
    {
      name: 'registering an array in a loop: the next element is set up before its own registration',
      before: `${OPS}\nstatic int demo_all(struct demo_private *privs, int n)\n{\n\tint i, ret;\n\n\tfor (i = 0; i < n; i++) {\n\t\tprivs[i].state = DEMO_STANDBY;\n\t}\n\treturn 0;\n}\n`,
      after: `${OPS}\nstatic int demo_all(struct demo_private *privs, int n, struct device *dev)\n{\n\tint i, ret;\n\n\tfor (i = 0; i < n; i++) {\n\t\tstruct demo_private *p = &privs[i];\n\n\t\tp->state = DEMO_STANDBY;\n\t\tret = mdev_register_parent(&p->parent, dev, &demo_driver, p->types, 1);\n\t\tif (ret)\n\t\t\treturn ret;\n\t}\n\treturn 0;\n}\n`,
    },
    {
      name: 'the old vfio-ccw shape with the inits moved before the helper that registers',
      path: 'drivers/s390/cio/demo_drv.c',
      before: oldProbe(true),
      after: oldProbe(false),
      extra: { 'drivers/s390/cio/demo_ops.c': { before: HELPER_FILE, after: HELPER_FILE } },
    },
    {
      name: 'eventfd trigger cleared before vfio_register_emulated_iommu_dev()',
      before: VFIO(false).replace('\tm->req_trigger = NULL;\n', ''),
      after: VFIO(false),
    },
    {
      name: 'request_irq after the handler state is initialised',
      before: `${IRQ}\treturn 0;\n}\n`,
      after: `${IRQ}\tspin_lock_init(&d->lock);\n\tret = request_irq(d->irq, demo_irq, 0, "demo", d);\n\tif (ret)\n\t\treturn ret;\n\treturn 0;\n}\n`,
    },
  ],
  invalid: [
    { name: 'the seed shape: INIT_WORK/atomic_set/state after mdev_register_parent', fixture: 'publish-before-init.c' },
    {
      name: 'the old vfio-ccw shape: registration through a helper in another file, inits moved after it',
      path: 'drivers/s390/cio/demo_drv.c',
      before: oldProbe(false),
      after: OLD_LATE,
      extra: { 'drivers/s390/cio/demo_ops.c': { before: HELPER_FILE, after: HELPER_FILE } },
      findings: [{ line: lineOf(OLD_LATE, 'atomic_set'), message: /runs after demo_mdev_reg\(\) -> mdev_register_device\(\).*demo_mdev_create\(\)/ }],
    },
    {
      name: 'the patch adds the registration before existing inits: reported at the registration',
      before: probe(INITS),
      after: MOVED,
      findings: [{ line: lineOf(MOVED, 'ret = mdev_register_parent'), message: 'runs after mdev_register_parent()' }],
    },
    {
      name: 'request_irq before the lock its handler takes',
      before: `${IRQ}\treturn 0;\n}\n`,
      after: IRQ_LATE,
      findings: [{ line: lineOf(IRQ_LATE, 'ret = request_irq'), message: /spin_lock_init\(&d->lock\) in demo_setup\(\) runs after request_irq\(\).*demo_irq\(\) locks demo_dev\.lock/ }],
    },
    {
      name: 'eventfd trigger cleared after vfio_register_emulated_iommu_dev() (thread 15 shape)',
      before: VFIO(true).replace('\tm->req_trigger = NULL;\n', ''),
      after: VFIO_LATE,
      findings: [{ line: lineOf(VFIO_LATE, 'm->req_trigger = NULL'), message: /m->req_trigger = NULL.*demo_request\(\) reads demo_mdev\.req_trigger/ }],
    },
  ],
});

describeRealTree(publishBeforeInit, [], ({ root, text }) => {
  it('the seed re-created on the real vfio_ccw_drv.c: io_mutex and state set up after mdev_register_parent()', async () => {
    const file = 'drivers/s390/cio/vfio_ccw_drv.c';
    const real = text(file);
    const moved = ['\tmutex_init(&private->io_mutex);\n', '\tprivate->state = VFIO_CCW_STATE_STANDBY;\n'];
    let after = real;
    for (const m of moved) after = after.replace(m, '');
    const anchor = '\tif (ret)\n\t\tgoto out_free;\n\n\tVFIO_CCW_MSG_EVENT(4, "bound';
    expect(after).toContain(anchor);
    after = after.replace(anchor, anchor.replace('\n\n', `\n${moved.join('')}\n`));
    // The mdev ops live in vfio_ccw_ops.c: the model sees them when the series touches that file too.
    const found = await runOnReal(publishBeforeInit, root(), file, real, after, ['drivers/s390/cio/vfio_ccw_ops.c']);
    expect(found.map((f) => f.message)).toEqual([expect.stringMatching(/^mutex_init\(&private->io_mutex\) in vfio_ccw_sch_probe\(\) runs after mdev_register_parent\(\)/)]);
    expect(found[0]!.evidence.join('\n')).toContain('vfio_ccw_private.state');
  });
});
