import { errnoContract } from '../../src/rules/errno-contract.js';
import { expect, it } from 'vitest';
import { describeRealTree, runOnReal } from '../helpers/real-functions.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

const HEAD = `struct demo_group {
	struct mutex lock;
	struct demo_container *container;
	struct demo_ctx *ictx;
	int users;
};
`;

/** An ioctl with three failure cases; `last` is the errno of the last one. */
const ioctl = (last: string, extra = ''): string => `${HEAD}
static long demo_group_ioctl(struct demo_group *g, unsigned int cmd, unsigned long arg)
{
	if (cmd != DEMO_SET_CONTAINER)
		return -ENOTTY;
	if (!arg)
		return -EFAULT;
${extra}	if (g->users > 8)
		return ${last};
	return 0;
}
`;

/** The thread-17 shape: the fall-through case for an unrecognised fd. */
const setContainer = (iommufd: boolean): string => `${HEAD}
static int demo_ioctl_set_container(struct demo_group *g, int __user *arg)
{
	struct demo_container *container;
${iommufd ? '\tstruct demo_ctx *ictx;\n' : ''}	struct fd f;
	int ret;
	int fd;

	if (get_user(fd, arg))
		return -EFAULT;

	f = fdget(fd);
	if (!f.file)
		return -EBADF;

	mutex_lock(&g->lock);
	if (g->container) {
		ret = -EINVAL;
		goto out_unlock;
	}
	container = demo_container_from_file(f.file);
${iommufd ? '' : '\tret = -EINVAL;\n'}	if (container) {
		ret = demo_container_attach(container, g);
		goto out_unlock;
	}
${iommufd ? '\n\tictx = demo_ctx_from_file(f.file);\n\tif (!IS_ERR(ictx)) {\n\t\tg->ictx = ictx;\n\t\tret = 0;\n\t\tgoto out_unlock;\n\t}\n\n\t/* The FD passed is not recognized. */\n\tret = -EBADF;\n' : ''}
out_unlock:
	mutex_unlock(&g->lock);
	fdput(f);
	return ret;
}
`;

/** A helper whose errno the ioctl passes on, or swallows. */
const helper = (errno: string, propagate: boolean): string => `${HEAD}
static int demo_check(struct demo_group *g)
{
	if (!g->container)
		return ${errno};
	return 0;
}

static long demo_ioctl(struct demo_group *g, unsigned int cmd, unsigned long arg)
{
	int ret;

	ret = demo_check(g);
	if (ret)
		return ${propagate ? 'ret' : '-EINVAL'};
	return 0;
}
`;

const T17 = setContainer(true);
const CHANGED = ioctl('-EOVERFLOW');

runRuleTests(errnoContract, {
  valid: [
    { name: 'the errno stays while the code around it changes', before: ioctl('-ENOSPC'), after: ioctl('-ENOSPC').replace('g->users > 8', 'g->users >= 8') },
    { name: 'a new check with its own errno is a new path', before: ioctl('-ENOSPC'), after: ioctl('-ENOSPC', '\tif (!g->container)\n\t\treturn -ENXIO;\n') },
    {
      name: 'an errno change in a function userspace cannot reach',
      before: `${HEAD}\nstatic int demo_internal(struct demo_group *g)\n{\n\tif (!g->container)\n\t\treturn -EINVAL;\n\treturn 0;\n}\n`,
      after: `${HEAD}\nstatic int demo_internal(struct demo_group *g)\n{\n\tif (!g->container)\n\t\treturn -ENODEV;\n\treturn 0;\n}\n`,
    },
    { name: 'a helper errno the ioctl replaces by its own', before: helper('-EINVAL', false), after: helper('-ENODEV', false) },
    {
      name: 'a trylock failure that was already -EINVAL before the patch',
      before: `${HEAD}\nstatic ssize_t x_store(struct device *dev, struct device_attribute *a, const char *buf, size_t n)\n{\n\tstruct demo_group *g = dev_get_drvdata(dev);\n\n\tif (!mutex_trylock(&g->lock))\n\t\treturn -EINVAL;\n\tmutex_unlock(&g->lock);\n\treturn n;\n}\n`,
      after: `${HEAD}\nstatic ssize_t x_store(struct device *dev, struct device_attribute *a, const char *buf, size_t n)\n{\n\tstruct demo_group *g = dev_get_drvdata(dev);\n\n\tif (!mutex_trylock(&g->lock))\n\t\treturn -EINVAL;\n\tg->users = 0;\n\tmutex_unlock(&g->lock);\n\treturn n;\n}\n`,
    },
  ],
  invalid: [
    { name: 'trylock failure and busy flag reported as -EINVAL/-ENODEV (and -EBUSY/-EAGAIN left alone)', fixture: 'errno-contract.c' },
    {
      name: 'an ioctl case that changes its errno',
      before: ioctl('-ENOSPC'),
      after: CHANGED,
      findings: [{ line: lineOf(CHANGED, '-EOVERFLOW'), message: `demo_group_ioctl() now returns -EOVERFLOW (line ${lineOf(CHANGED, '-EOVERFLOW')}) where it returned -ENOSPC for the same case` }],
    },
    {
      name: 'the thread-17 shape: an unusable fd now gets -EBADF instead of -EINVAL',
      before: setContainer(false),
      after: T17,
      findings: [{ line: lineOf(T17, 'ret = -EBADF'), message: /returns -EBADF .* where it returned -EINVAL/ }],
    },
    {
      name: 'a helper whose changed errno the ioctl passes on',
      before: helper('-EINVAL', true),
      after: helper('-ENODEV', true),
      findings: [{ line: lineOf(helper('-ENODEV', true), 'return -ENODEV'), message: /demo_check\(\) now returns -ENODEV .*demo_ioctl\(\) -> demo_check\(\)/ }],
    },
  ],
});

describeRealTree(errnoContract, [], ({ root, text }) => {
  it('the thread-17 errno change made on the real vfio_main.c: an unusable fd gets -EBADF instead of -EINVAL', async () => {
    const file = 'drivers/vfio/vfio_main.c';
    const real = text(file);
    const anchor = '\tcontainer = vfio_container_from_file(f.file);\n\tret = -EINVAL;\n';
    expect(real).toContain(anchor);
    const after = real.replace(anchor, anchor.replace('-EINVAL', '-EBADF'));
    const found = await runOnReal(errnoContract, root(), file, real, after);
    expect(found.map((f) => `${f.function}: ${f.message}`)).toEqual([
      expect.stringMatching(/^vfio_group_ioctl_set_container: vfio_group_ioctl_set_container\(\) now returns -EBADF \(line \d+\) where it returned -EINVAL/),
    ]);
  });
  it('a real edit that keeps every errno raises nothing', async () => {
    const file = 'drivers/vfio/vfio_main.c';
    const real = text(file);
    const after = real.replace('\tif (!group->iommu_group) {\n\t\tret = -ENODEV;', '\tif (WARN_ON(!group->iommu_group)) {\n\t\tret = -ENODEV;');
    expect(after).not.toBe(real);
    expect(await runOnReal(errnoContract, root(), file, real, after)).toEqual([]);
  });
});
