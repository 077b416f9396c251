// SPDX-License-Identifier: GPL-2.0-only
/*
 * VFIO sample driver: a list of devices kept under a mutex, an "enable"
 * attribute in sysfs and one ioctl. Written for the vfio-review demo; the
 * hardware behind it is imaginary.
 */

#include <linux/device.h>
#include <linux/iopoll.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/uaccess.h>
#include <uapi/linux/vfio_sample.h>

#include "sample.h"

static LIST_HEAD(sample_devices);
static DEFINE_MUTEX(sample_devices_lock);

static struct sample_device *sample_find(u32 id)
{
	struct sample_device *sdev;

	lockdep_assert_held(&sample_devices_lock);

	list_for_each_entry(sdev, &sample_devices, node)
		if (sdev->id == id)
			return sdev;
	return NULL;
}

static int sample_hw_reset(struct sample_device *sdev, unsigned int timeout_ms)
{
	u32 status;

	writel(SAMPLE_CTRL_RESET, sdev->regs + SAMPLE_REG_CTRL);
	return readl_poll_timeout(sdev->regs + SAMPLE_REG_STATUS, status,
				  status & SAMPLE_STATUS_READY, 1000,
				  timeout_ms * USEC_PER_MSEC);
}

static ssize_t enable_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	struct sample_device *sdev = dev_get_drvdata(dev);
	bool enable;
	int ret;

	ret = kstrtobool(buf, &enable);
	if (ret)
		return ret;

	mutex_lock(&sdev->state_lock);
	sdev->enabled = enable;
	mutex_unlock(&sdev->state_lock);

	return count;
}
static DEVICE_ATTR_WO(enable);

static struct attribute *sample_attrs[] = {
	&dev_attr_enable.attr,
	NULL,
};
ATTRIBUTE_GROUPS(sample);

static long sample_ioctl_get_info(struct sample_device *sdev,
				  void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_sample_info, num_regions);
	struct vfio_sample_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	mutex_lock(&sdev->state_lock);
	info.flags = sdev->enabled ? VFIO_SAMPLE_INFO_ENABLED : 0;
	info.num_regions = sdev->num_regions;
	mutex_unlock(&sdev->state_lock);

	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

long sample_ioctl(struct file *filep, unsigned int cmd, unsigned long arg)
{
	struct sample_device *sdev = filep->private_data;

	switch (cmd) {
	case VFIO_SAMPLE_GET_INFO:
		return sample_ioctl_get_info(sdev, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}
EXPORT_SYMBOL_GPL(sample_ioctl);

int sample_register(struct sample_device *sdev)
{
	int ret;

	mutex_init(&sdev->state_lock);
	ret = sample_hw_reset(sdev, SAMPLE_RESET_TIMEOUT_MS);
	if (ret)
		return ret;

	ret = device_add_groups(sdev->dev, sample_groups);
	if (ret)
		return ret;

	mutex_lock(&sample_devices_lock);
	if (sample_find(sdev->id)) {
		mutex_unlock(&sample_devices_lock);
		device_remove_groups(sdev->dev, sample_groups);
		return -EEXIST;
	}
	list_add_tail(&sdev->node, &sample_devices);
	mutex_unlock(&sample_devices_lock);

	return 0;
}
EXPORT_SYMBOL_GPL(sample_register);

void sample_unregister(struct sample_device *sdev)
{
	mutex_lock(&sample_devices_lock);
	list_del(&sdev->node);
	mutex_unlock(&sample_devices_lock);

	device_remove_groups(sdev->dev, sample_groups);
	mutex_destroy(&sdev->state_lock);
}
EXPORT_SYMBOL_GPL(sample_unregister);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("VFIO sample driver for the vfio-review demo");
