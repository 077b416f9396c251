import { fdLifetime } from '../../src/rules/fd-lifetime.js';
import { expect, it } from 'vitest';
import { describeRealTree, runOnReal } from '../helpers/real-functions.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** A device file whose read touches the device, handed out with or without a reference. */
const DEVICE_FD = (get: boolean, put: boolean): string => `struct demo_vdev {
	struct vfio_device vdev;
	struct device dev;
	void __iomem *regs;
};

static ssize_t demo_read(struct file *filp, char __user *buf, size_t len, loff_t *pos)
{
	struct demo_vdev *dv = filp->private_data;
	u32 v = readl(dv->regs);

	return simple_read_from_buffer(buf, len, pos, &v, sizeof(v));
}

static int demo_release(struct inode *inode, struct file *filp)
{
	struct demo_vdev *dv = filp->private_data;

${put ? '\tput_device(&dv->dev);\n' : ''}	return 0;
}

static const struct file_operations demo_fops = {
	.read = demo_read,
	.release = demo_release,
};

static int demo_open_fd(struct demo_vdev *dv)
{
	int fd;

${get ? '\tget_device(&dv->dev);\n' : ''}	fd = anon_inode_getfd("[demo]", &demo_fops, dv, O_RDONLY);
	return fd;
}
`;

/** A migration file with its own private struct; `back` makes its read follow a pointer to the device. */
const MIG = (back: boolean, revoke: boolean): string => `struct demo_mig_file {
	struct file *filp;
	struct mutex lock;
	struct demo_dev *ddev;
	bool disabled;
	size_t total;
};

struct demo_dev {
	struct vfio_pci_core_device core_device;
	struct demo_mig_file *saving;
	u32 state;
};

static ssize_t demo_save_read(struct file *filp, char __user *buf, size_t len, loff_t *pos)
{
	struct demo_mig_file *migf = filp->private_data;
	ssize_t done;

	mutex_lock(&migf->lock);
	if (migf->disabled) {
		mutex_unlock(&migf->lock);
		return -ENODEV;
	}
	done = migf->total;
${back ? '\tif (migf->ddev->state != 1)\n\t\tdone = -EINVAL;\n' : ''}	mutex_unlock(&migf->lock);
	return done;
}

static const struct file_operations demo_save_fops = {
	.read = demo_save_read,
};

static struct demo_mig_file *demo_save(struct demo_dev *ddev)
{
	struct demo_mig_file *migf;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	migf->filp = anon_inode_getfile("demo_mig", &demo_save_fops, migf, O_RDONLY);
	if (IS_ERR(migf->filp)) {
		kfree(migf);
		return ERR_PTR(-ENOMEM);
	}
	migf->ddev = ddev;
	return migf;
}

static void demo_disable_fd(struct demo_mig_file *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	mutex_unlock(&migf->lock);
}

static void demo_close_device(struct vfio_device *vdev)
{
	struct demo_dev *ddev = container_of(vdev, struct demo_dev, core_device.vdev);

${revoke ? '\tif (ddev->saving)\n\t\tdemo_disable_fd(ddev->saving);\n' : ''}	vfio_pci_core_close_device(vdev);
}

static const struct vfio_device_ops demo_ops = {
	.close_device = demo_close_device,
};
`;

/** A dma-buf exported for a device region. */
const DMABUF = `struct demo_vdev {
	struct vfio_device vdev;
	phys_addr_t bar;
};

static struct sg_table *demo_map(struct dma_buf_attachment *at, enum dma_data_direction dir)
{
	struct demo_vdev *dv = at->dmabuf->priv;

	return demo_sgt(dv->bar);
}

static const struct dma_buf_ops demo_dmabuf_ops = {
	.map_dma_buf = demo_map,
};

static int demo_export(struct demo_vdev *dv)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);
	struct dma_buf *buf;

	exp_info.ops = &demo_dmabuf_ops;
	exp_info.priv = dv;
	buf = dma_buf_export(&exp_info);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	return dma_buf_fd(buf, O_CLOEXEC);
}
`;

const strip = (text: string, needle: string): string => text.split('\n').filter((l) => !l.includes(needle)).join('\n');

runRuleTests(fdLifetime, {
  valid: [
    { name: 'a reference taken at creation and dropped in .release', before: strip(DEVICE_FD(true, true), 'anon_inode_getfd'), after: DEVICE_FD(true, true) },
    { name: 'a .release that drops the reference a caller took', before: strip(DEVICE_FD(false, true), 'anon_inode_getfd'), after: DEVICE_FD(false, true) },
    { name: 'a migration file whose f_ops touch only the file (the mlx5 shape)', before: strip(MIG(false, false), 'anon_inode_getfile'), after: MIG(false, false) },
    { name: 'a migration file reaching the device, disabled from close_device()', before: strip(MIG(true, true), 'anon_inode_getfile'), after: MIG(true, true) },
    { name: 'an unguarded device file that was already there', before: DEVICE_FD(false, false), after: DEVICE_FD(false, false).replace('int fd;', 'int fd = -1;') },
  ],
  invalid: [
    { name: 'a device status file with no reference and no revoke', fixture: 'fd-lifetime.c' },
    {
      name: 'anon_inode_getfd() on the device itself, nothing held',
      before: strip(DEVICE_FD(false, false), 'anon_inode_getfd'),
      after: DEVICE_FD(false, false),
      findings: [{ line: lineOf(DEVICE_FD(false, false), 'anon_inode_getfd'), message: /anon_inode_getfd\(\) in demo_open_fd\(\) .*demo_fops reach device state \(demo_read\(\) reads demo_vdev\.regs\)/ }],
    },
    {
      name: 'a migration file following a back pointer to the device, never disabled',
      before: strip(MIG(true, false), 'anon_inode_getfile'),
      after: MIG(true, false),
      findings: [{ line: lineOf(MIG(true, false), 'anon_inode_getfile'), message: /demo_save_read\(\) reads demo_dev\.state/ }],
    },
    {
      name: 'a dma-buf whose map callback reads the device',
      before: strip(DMABUF, 'dma_buf_fd'),
      after: DMABUF,
      findings: [{ line: lineOf(DMABUF, 'dma_buf_fd'), message: /dma_buf_fd\(\) in demo_export\(\) .*demo_dmabuf_ops reach device state \(demo_map\(\) reads demo_vdev\.bar\)/ }],
    },
  ],
});

describeRealTree(fdLifetime, [], ({ root, text }) => {
  const file = 'drivers/vfio/pci/mlx5/main.c';
  /** mlx5's save f_ops made to look at the device (`migf->mvdev`), with the creator touched by the same patch. */
  const reaching = (real: string): string => {
    const lock = '\tmutex_lock(&migf->lock);\n\tif ((filp->f_flags & O_NONBLOCK) && !READ_ONCE(migf->total_length)) {';
    const creator = 'mlx5vf_pci_save_device_data(struct mlx5vf_pci_core_device *mvdev)\n{\n\tstruct mlx5_vf_migration_file *migf;\n\tint ret;\n';
    expect(real).toContain(lock);
    expect(real).toContain(creator);
    return real
      .replace(lock, lock.replace('\n', '\n\tif (migf->mvdev->mig_state == VFIO_DEVICE_STATE_ERROR) {\n\t\tdone = -EIO;\n\t\tgoto out_unlock;\n\t}\n'))
      .replace(creator, `${creator}\n\t/* the file reads mvdev state */\n`);
  };
  it('mlx5 save f_ops reaching the device stay quiet: close_device() disables the file (mlx5vf_disable_fds)', async () => {
    const real = text(file);
    expect(await runOnReal(fdLifetime, root(), file, real, reaching(real))).toEqual([]);
  });
  it('the same without the revoke in close_device() is reported at anon_inode_getfile()', async () => {
    const real = text(file);
    const close = '\tmlx5vf_cmd_close_migratable(mvdev);\n\tvfio_pci_core_close_device(core_vdev);';
    expect(real).toContain(close);
    const after = reaching(real).replace(close, '\tvfio_pci_core_close_device(core_vdev);');
    const found = await runOnReal(fdLifetime, root(), file, real, after);
    expect(found.map((f) => `${f.function}: ${f.message}`)).toEqual([
      expect.stringMatching(/^mlx5vf_pci_save_device_data: anon_inode_getfile\(\) .* mlx5vf_save_fops reach device state \(mlx5vf_save_read\(\) reads mlx5vf_pci_core_device\.mig_state\)/),
    ]);
  });
});
