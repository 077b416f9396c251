import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Rule, RuleFinding } from '../../src/rules/types.js';
import { viewFromSources } from '../../src/rules/context.js';
import { runRules } from '../../src/rules/run.js';
import { kernelTree } from './kernel-tree.js';

/**
 * A hand-written header in the style of include/uapi/linux/vfio.h (not a copy of it): the
 * type/base defines, one capability header, one classic ioctl with argsz/flags, the
 * VFIO_DEVICE_FEATURE multiplexer and one container ioctl. Tests append to it.
 */
export const MINI_VFIO_H = `/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _UAPI_DEMO_VFIO_H
#define _UAPI_DEMO_VFIO_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define VFIO_TYPE	(';')
#define VFIO_BASE	100

struct vfio_info_cap_header {
	__u16	id;
	__u16	version;
	__u32	next;
};

/**
 * VFIO_DEVICE_GET_INFO - _IOR(VFIO_TYPE, VFIO_BASE + 7,
 *				struct vfio_device_info)
 *
 * Caller sets argsz.
 */
struct vfio_device_info {
	__u32	argsz;
	__u32	flags;
#define VFIO_DEVICE_FLAGS_RESET	(1 << 0)
#define VFIO_DEVICE_FLAGS_PCI	(1 << 1)
	__u32	num_regions;
	__u32	num_irqs;
};
#define VFIO_DEVICE_GET_INFO		_IO(VFIO_TYPE, VFIO_BASE + 7)

/**
 * VFIO_DEVICE_FEATURE - _IOWR(VFIO_TYPE, VFIO_BASE + 17,
 *			       struct vfio_device_feature)
 */
struct vfio_device_feature {
	__u32	argsz;
	__u32	flags;
#define VFIO_DEVICE_FEATURE_MASK	(0xffff)
#define VFIO_DEVICE_FEATURE_GET		(1 << 16)
#define VFIO_DEVICE_FEATURE_SET		(1 << 17)
	__u8	data[];
};
#define VFIO_DEVICE_FEATURE		_IO(VFIO_TYPE, VFIO_BASE + 17)

enum vfio_device_mig_state {
	VFIO_DEVICE_STATE_ERROR = 0,
	VFIO_DEVICE_STATE_STOP = 1,
	VFIO_DEVICE_STATE_RUNNING = 2,
};

/**
 * VFIO_IOMMU_MAP_DMA - _IOW(VFIO_TYPE, VFIO_BASE + 13, struct vfio_dma_map)
 */
struct vfio_iommu_type1_dma_map {
	__u32	argsz;
	__u32	flags;
	__u64	vaddr;
	__u64	iova;
	__u64	size;
};
#define VFIO_IOMMU_MAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 13)
`;

/** A hand-written header in the style of include/uapi/linux/iommufd.h (kernel-doc, enum of command numbers). */
export const MINI_IOMMUFD_H = `/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _UAPI_DEMO_IOMMUFD_H
#define _UAPI_DEMO_IOMMUFD_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define IOMMUFD_TYPE (';')

enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC,
};

/**
 * struct iommu_destroy - ioctl(IOMMU_DESTROY)
 * @size: sizeof(struct iommu_destroy)
 * @id: object to destroy
 */
struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

/**
 * struct iommu_ioas_alloc - ioctl(IOMMU_IOAS_ALLOC)
 * @size: sizeof(struct iommu_ioas_alloc)
 * @flags: Must be 0
 * @out_ioas_id: the new IOAS
 */
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)
`;

/** `header` with `text` inserted before its last line matching `before` (default: appended). */
export function withLines(header: string, text: string, before?: string): string {
  if (!before) return header + text;
  const i = header.lastIndexOf(before);
  if (i < 0) throw new Error(`marker not found: ${before}`);
  return header.slice(0, i) + text + header.slice(i);
}

/**
 * One rule's findings when the series did not apply: `after()` is null, and `before()` too
 * unless `keepBefore` (then the post-image can be rebuilt from the diff).
 */
export async function notApplied(
  rule: Rule,
  files: Record<string, { before: string | null; after: string | null }>,
  keepBefore = false,
): Promise<RuleFinding[]> {
  const view = viewFromSources({ msgid: 'not-applied@example.org', index: 1, subject: 'not applied' }, files);
  const degraded = { ...view, applied: false, after: () => null, before: (p: string) => (keepBefore ? (files[p]?.before ?? null) : null) };
  return (await runRules([rule], [degraded])).filter((f) => f.rule === rule.id);
}

export const REAL_HEADERS = ['include/uapi/linux/vfio.h', 'include/uapi/linux/vfio_ccw.h', 'include/uapi/linux/vfio_zdev.h'] as const;

/**
 * Against the real 6.1 headers: a patch that changes nothing raises nothing, and a patch that
 * adds the whole file as new raises exactly `whenNew[path]` (lines), which is [] unless the
 * real header genuinely has what the rule looks for.
 */
export function realHeaderTests(rule: Rule, whenNew: Partial<Record<(typeof REAL_HEADERS)[number], number[]>>): void {
  describe(`${rule.id} on the real linux-6.1 uAPI headers`, () => {
    let tree = '';
    beforeAll(async () => {
      tree = await kernelTree();
    }, 30 * 60_000);
    const run = async (path: string, before: string | null): Promise<RuleFinding[]> => {
      const src = readFileSync(join(tree, path), 'utf8');
      const view = viewFromSources({ msgid: 'real@example.org', index: 1, subject: path }, { [path]: { before: before === null ? null : src, after: src } });
      return (await runRules([rule], [view])).filter((f) => f.rule === rule.id);
    };
    for (const path of REAL_HEADERS) {
      it(`${path}: a patch that changes nothing raises nothing`, async () => {
        expect((await run(path, 'same')).map((f) => `${f.line}: ${f.message}`)).toEqual([]);
      });
      it(`${path}: the whole file as new raises only its genuine cases`, async () => {
        const found = await run(path, null);
        expect(found.filter((f) => f.severity === 'info')).toEqual([]);
        expect(found.map((f) => f.line).sort((a, b) => a - b)).toEqual(whenNew[path] ?? []);
      });
    }
    it('include/uapi/linux/iommufd.h is not in 6.1 (it came with 6.2): iommufd cases use a hand-written header', () => {
      expect(existsSync(join(tree, 'include/uapi/linux/iommufd.h'))).toBe(false);
    });
  });
}
