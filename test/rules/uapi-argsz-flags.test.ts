import { describe, expect, it } from 'vitest';
import { uapiArgszFlags } from '../../src/rules/uapi-argsz-flags.js';
import { runRuleTests } from '../helpers/rule-tester.js';
import { MINI_IOMMUFD_H, MINI_VFIO_H, notApplied, realHeaderTests, withLines } from '../helpers/uapi.js';

const VFIO = 'include/uapi/linux/vfio.h';
const IOMMUFD = 'include/uapi/linux/iommufd.h';

/** A new ioctl appended to the mini header; returns the text and the struct's line. */
function addIoctl(doc: string, body: string, define: string): { after: string; line: number } {
  const after = withLines(MINI_VFIO_H, `\n${doc}${body}${define}`);
  const line = after.split('\n').findIndex((l) => l.startsWith('struct ') && body.startsWith(l)) + 1;
  return { after, line };
}

const migSetState = addIoctl(
  '/**\n * VFIO_DEVICE_MIG_SET_STATE - _IO(VFIO_TYPE, VFIO_BASE + 21,\n *\t\t\t\t   struct vfio_device_mig_set_state)\n */\n',
  'struct vfio_device_mig_set_state {\n\t__u32 argsz;\n\t__u32 device_state;\n\t__s32 data_fd;\n\t__u32 flags;\n};\n',
  '#define VFIO_DEVICE_MIG_SET_STATE _IO(VFIO_TYPE, VFIO_BASE + 21)\n',
);

runRuleTests(uapiArgszFlags, {
  valid: [
    {
      name: 'a comment-only change to an ioctl doc comment',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace(' * Caller sets argsz.', ' * Caller sets argsz; the kernel fills the rest.'),
    },
    {
      name: 'a new ioctl struct with argsz and flags first',
      path: VFIO,
      before: MINI_VFIO_H,
      after: addIoctl(
        '/**\n * VFIO_DEVICE_SET_WIDGET - _IOW(VFIO_TYPE, VFIO_BASE + 22,\n *\t\t\t\tstruct vfio_device_set_widget)\n */\n',
        'struct vfio_device_set_widget {\n\t__u32\targsz;\n\t__u32\tflags;\n\t__u32\twidget;\n};\n',
        '#define VFIO_DEVICE_SET_WIDGET _IO(VFIO_TYPE, VFIO_BASE + 22)\n',
      ).after,
    },
    {
      name: 'a VFIO_DEVICE_FEATURE payload struct without argsz',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\nstruct vfio_device_feature_mig_state {\n\t__u32 device_state;\n\t__s32 data_fd;\n};\n#define VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE 2\n'),
    },
    {
      name: 'a capability struct that starts with the cap header',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\n#define VFIO_DEVICE_INFO_CAP_ZONE 6\nstruct vfio_device_info_cap_zone {\n\tstruct vfio_info_cap_header header;\n\t__u32 zone;\n\t__u32 reserved;\n};\n'),
    },
    {
      name: 'a helper struct that no ioctl takes directly',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\nstruct vfio_dma_range {\n\t__u64 iova;\n\t__u64 length;\n};\n'),
    },
    {
      name: 'moving an ioctl and its struct within the file',
      path: VFIO,
      before: withLines(MINI_VFIO_H, '\nstruct vfio_device_zap {\n\t__u32 argsz;\n\t__u32 flags;\n};\n#define VFIO_DEVICE_ZAP _IO(VFIO_TYPE, VFIO_BASE + 25)\n'),
      after: withLines(MINI_VFIO_H, 'struct vfio_device_zap {\n\t__u32 argsz;\n\t__u32 flags;\n};\n#define VFIO_DEVICE_ZAP _IO(VFIO_TYPE, VFIO_BASE + 25)\n\n', 'enum vfio_device_mig_state'),
    },
    {
      name: 'an existing ioctl struct that already lacked flags (not this patch)',
      path: VFIO,
      before: withLines(MINI_VFIO_H, '\nstruct vfio_device_old {\n\t__u32 argsz;\n\t__u32 index;\n};\n#define VFIO_DEVICE_OLD _IO(VFIO_TYPE, VFIO_BASE + 26)\n'),
      after: withLines(MINI_VFIO_H, '\nstruct vfio_device_old {\n\t__u32 argsz;\n\t__u32 index;\n\t__u32 count;\n};\n#define VFIO_DEVICE_OLD _IO(VFIO_TYPE, VFIO_BASE + 26)\n'),
    },
    {
      name: 'iommufd: size and flags first',
      path: IOMMUFD,
      before: MINI_IOMMUFD_H,
      after: withLines(MINI_IOMMUFD_H, '\n/**\n * struct iommu_ioas_zap - ioctl(IOMMU_IOAS_ZAP)\n * @size: sizeof(struct iommu_ioas_zap)\n * @flags: Must be 0\n */\nstruct iommu_ioas_zap {\n\t__u32 size;\n\t__u32 flags;\n\t__u32 ioas_id;\n\t__u32 __reserved;\n};\n#define IOMMU_IOAS_ZAP _IO(IOMMUFD_TYPE, 0x90)\n'),
    },
    {
      name: 'iommufd: size first and no flags, like IOMMU_DESTROY',
      path: IOMMUFD,
      before: null,
      after: MINI_IOMMUFD_H,
    },
    {
      name: 'a new ioctl struct in a uAPI header outside vfio/iommufd',
      path: 'include/uapi/linux/kvm.h',
      before: '#define KVMIO 0xAE\n',
      after: '#define KVMIO 0xAE\nstruct kvm_widget {\n\t__u32 widget;\n\t__u32 pad;\n};\n#define KVM_SET_WIDGET _IOW(KVMIO, 0xf0, struct kvm_widget)\n',
    },
  ],
  invalid: [
    {
      name: 'the v2 migration proposal: argsz then device_state, flags last',
      path: VFIO,
      before: MINI_VFIO_H,
      after: migSetState.after,
      findings: [{ line: migSetState.line, message: 'starts with `__u32 argsz; __u32 device_state;`' }],
    },
    { name: 'vfio fixture: doc comment, _IOx() argument, feature payload, capability, helper', fixture: 'uapi-argsz-flags.h', path: VFIO },
    { name: 'iommufd fixture: size must come first', fixture: 'uapi-argsz-flags-iommufd.h', path: IOMMUFD },
    {
      name: 'no doc comment: the struct right above the define',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\nstruct vfio_device_zone_info {\n\t__u32 zone;\n\t__u32 flags;\n};\n#define VFIO_DEVICE_GET_ZONE _IO(VFIO_TYPE, VFIO_BASE + 27)\n'),
      findings: [{ line: MINI_VFIO_H.split('\n').length + 1, message: 'VFIO_DEVICE_GET_ZONE' }],
    },
    {
      name: 'the doc comment spells the struct differently (vfio_dma_map vs vfio_iommu_type1_dma_map)',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\n/**\n * VFIO_IOMMU_ZAP_DMA - _IOW(VFIO_TYPE, VFIO_BASE + 18, struct vfio_zap_dma)\n */\nstruct vfio_iommu_type1_zap_dma {\n\t__u64 iova;\n\t__u32 argsz;\n\t__u32 flags;\n};\n#define VFIO_IOMMU_ZAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 18)\n'),
      findings: [{ line: MINI_VFIO_H.split('\n').length + 4, message: 'struct vfio_iommu_type1_zap_dma is the argument of VFIO_IOMMU_ZAP_DMA' }],
    },
    {
      name: 'a patch moves flags away from the front of an existing ioctl struct',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace('\t__u32\targsz;\n\t__u32\tflags;\n#define VFIO_DEVICE_FLAGS_RESET', '\t__u32\targsz;\n\t__u32\tindex;\n\t__u32\tflags;\n#define VFIO_DEVICE_FLAGS_RESET'),
      findings: [{ line: MINI_VFIO_H.split('\n').findIndex((l) => l.includes('struct vfio_device_info {')) + 3, message: 'moves argsz/flags away from the front of struct vfio_device_info' }],
    },
  ],
});

describe('uapi-argsz-flags when the series did not apply', () => {
  it('judges a struct and its ioctl wholly inside the added lines', async () => {
    const found = await notApplied(uapiArgszFlags, { [VFIO]: { before: MINI_VFIO_H, after: migSetState.after } });
    expect(found.map((f) => f.line)).toEqual([migSetState.line]);
  });
  it('says nothing about a struct only partly inside the added lines', async () => {
    // Only the flags line is added: the struct head is unknown text, so there is nothing to judge.
    const after = MINI_VFIO_H.replace('\t__u32\tnum_irqs;\n};\n#define VFIO_DEVICE_GET_INFO', '\t__u32\tnum_irqs;\n\t__u32\tcap_offset;\n};\n#define VFIO_DEVICE_GET_INFO');
    expect(await notApplied(uapiArgszFlags, { [VFIO]: { before: MINI_VFIO_H, after } })).toEqual([]);
  });
  it('with the pre-image known, rebuilds the post-image and sees a moved flags field', async () => {
    const after = MINI_VFIO_H.replace('\t__u32\targsz;\n\t__u32\tflags;\n#define VFIO_DEVICE_FLAGS_RESET', '\t__u32\targsz;\n\t__u32\tindex;\n\t__u32\tflags;\n#define VFIO_DEVICE_FLAGS_RESET');
    const found = await notApplied(uapiArgszFlags, { [VFIO]: { before: MINI_VFIO_H, after } }, true);
    expect(found.map((f) => f.message)).toEqual([expect.stringContaining('moves argsz/flags')]);
  });
  it('keeps quiet on a feature payload in the added lines', async () => {
    const after = withLines(MINI_VFIO_H, '\nstruct vfio_device_feature_zone {\n\t__u32 zone;\n\t__u32 reserved;\n};\n#define VFIO_DEVICE_FEATURE_ZONE 12\n');
    expect(await notApplied(uapiArgszFlags, { [VFIO]: { before: MINI_VFIO_H, after } })).toEqual([]);
  });
});

realHeaderTests(uapiArgszFlags, {});
