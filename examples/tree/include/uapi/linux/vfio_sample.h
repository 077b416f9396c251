/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * uAPI of the VFIO sample driver (drivers/vfio/sample).
 *
 * Each ioctl follows the VFIO convention: the argument starts with argsz,
 * set by userspace to the size of the structure it passes, and flags, so
 * that fields can be added at the end without a new ioctl number.
 */
#ifndef _UAPI_VFIO_SAMPLE_H
#define _UAPI_VFIO_SAMPLE_H

#include <linux/types.h>
#include <linux/vfio.h>

/**
 * VFIO_SAMPLE_GET_INFO - _IO(VFIO_TYPE, VFIO_BASE + 60, struct vfio_sample_info)
 *
 * Report whether the device is enabled and how many regions it has.
 * Return: 0 on success, -errno on failure.
 */
struct vfio_sample_info {
	__u32	argsz;
	__u32	flags;
#define VFIO_SAMPLE_INFO_ENABLED	(1 << 0)
	__u32	num_regions;
	__u32	__reserved;
};
#define VFIO_SAMPLE_GET_INFO	_IO(VFIO_TYPE, VFIO_BASE + 60)

#endif /* _UAPI_VFIO_SAMPLE_H */
