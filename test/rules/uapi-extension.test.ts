import { describe, expect, it } from 'vitest';
import { uapiExtension } from '../../src/rules/uapi-extension.js';
import { runRuleTests } from '../helpers/rule-tester.js';
import { MINI_IOMMUFD_H, MINI_VFIO_H, notApplied, realHeaderTests, withLines } from '../helpers/uapi.js';

const VFIO = 'include/uapi/linux/vfio.h';
const IOMMU = 'include/uapi/linux/iommu.h';
const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** The shape of the 2020 IOMMU uAPI version proposal (hand-written after it): one version, an inline getter. */
const VERSIONED = withLines(
  MINI_IOMMUFD_H,
  '#define IOMMU_UAPI_VERSION\t1\nstatic inline int iommu_get_uapi_version(void)\n{\n\treturn IOMMU_UAPI_VERSION;\n}\n\n',
  'enum {',
);
const SIZE_HELPER = withLines(MINI_VFIO_H, 'static inline __u32 vfio_region_info_size(const struct vfio_region_info *info) {\n\treturn info->argsz;\n}\n');

runRuleTests(uapiExtension, {
  valid: [
    { name: 'a comment-only change', path: VFIO, before: MINI_VFIO_H, after: MINI_VFIO_H.replace(' * Caller sets argsz.', ' * The caller sets argsz.') },
    {
      name: 'a new feature number, a flags bit and a payload struct',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\n#define VFIO_DEVICE_FLAGS_ZONE\t(1 << 9)\nstruct vfio_device_feature_zone {\n\t__u32 zone;\n\t__u32 reserved;\n};\n#define VFIO_DEVICE_FEATURE_ZONE 12\n'),
    },
    { name: 'the version value of one structure', path: IOMMU, before: MINI_IOMMUFD_H, after: withLines(MINI_IOMMUFD_H, '#define IOMMU_PAGE_RESP_VERSION_1\t1\n') },
    { name: 'a function-like macro', path: VFIO, before: MINI_VFIO_H, after: withLines(MINI_VFIO_H, '#define VFIO_REGION_SIZE(info) ((info)->argsz)\n') },
    { name: 'a new uAPI header with its own version constant', path: 'include/uapi/linux/vfio_demo.h', before: null, after: '#ifndef _UAPI_VFIO_DEMO_H\n#define _UAPI_VFIO_DEMO_H\n#define VFIO_DEMO_API_VERSION 1\n#endif\n' },
    { name: 'an inline helper in a kernel-internal header', path: 'include/linux/vfio.h', before: '', after: 'static inline int vfio_demo(void)\n{\n\treturn 0;\n}\n' },
    { name: 'an inline helper in another subsystem\'s uAPI header', path: 'include/uapi/linux/swab.h', before: '', after: 'static inline __u16 __demo_swab16(__u16 x)\n{\n\treturn x;\n}\n' },
  ],
  invalid: [
    {
      name: 'the 2020 IOMMU uAPI version proposal: a global version and an inline getter',
      path: IOMMU,
      before: MINI_IOMMUFD_H,
      after: VERSIONED,
      findings: [
        { line: lineOf(VERSIONED, '#define IOMMU_UAPI_VERSION'), message: 'IOMMU_UAPI_VERSION is a version number for the whole interface' },
        { line: lineOf(VERSIONED, 'static inline int iommu_get_uapi_version'), message: 'iommu_get_uapi_version() is a function body in a uAPI header' },
      ],
    },
    { name: 'a size helper with its brace on the same line', path: VFIO, before: MINI_VFIO_H, after: SIZE_HELPER, findings: [{ line: lineOf(SIZE_HELPER, 'vfio_region_info_size'), message: 'vfio_region_info_size() is a function body' }] },
  ],
});

describe('uapi-extension when the series did not apply', () => {
  it('judges the added lines alone', async () => {
    const found = await notApplied(uapiExtension, { [IOMMU]: { before: MINI_IOMMUFD_H, after: VERSIONED } });
    expect(found.map((f) => f.line).sort((a, b) => a - b)).toEqual([lineOf(VERSIONED, '#define IOMMU_UAPI_VERSION'), lineOf(VERSIONED, 'static inline int')]);
  });
});

// 6.1's vfio uAPI headers carry no function bodies; VFIO_API_VERSION belongs to a header seen as new, which is quiet.
realHeaderTests(uapiExtension, {});
