/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __VFIO_SAMPLE_H
#define __VFIO_SAMPLE_H

#include <linux/device.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>

#define SAMPLE_REG_CTRL		0x00
#define SAMPLE_REG_STATUS	0x04
#define  SAMPLE_CTRL_RESET	BIT(0)
#define  SAMPLE_STATUS_READY	BIT(0)

#define SAMPLE_RESET_TIMEOUT_MS	100

struct sample_device {
	struct device		*dev;
	void __iomem		*regs;
	struct list_head	node;		/* on sample_devices */
	struct mutex		state_lock;	/* protects the fields below */
	u32			id;
	u32			num_regions;
	bool			enabled;
};

int sample_register(struct sample_device *sdev);
void sample_unregister(struct sample_device *sdev);
long sample_ioctl(struct file *filep, unsigned int cmd, unsigned long arg);

#endif /* __VFIO_SAMPLE_H */
