import { describe, expect, it } from 'vitest';
import { uapiAbiBreak } from '../../src/rules/uapi-abi-break.js';
import { runRuleTests } from '../helpers/rule-tester.js';
import { MINI_IOMMUFD_H, MINI_VFIO_H, notApplied, realHeaderTests, withLines } from '../helpers/uapi.js';

const VFIO = 'include/uapi/linux/vfio.h';
const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** The v1 migration region as it was before the v2 protocol renamed its state bits (hand-written). */
const MIG_V1 = withLines(MINI_VFIO_H, `
struct vfio_device_migration_info {
\t__u32 device_state;
#define VFIO_DEVICE_STATE_STOP      (0)
#define VFIO_DEVICE_STATE_RUNNING   (1 << 0)
#define VFIO_DEVICE_STATE_SAVING    (1 << 1)
#define VFIO_DEVICE_STATE_MASK      (VFIO_DEVICE_STATE_RUNNING | \\
\t\t\t\t     VFIO_DEVICE_STATE_SAVING)
\t__u32 reserved;
\t__u64 pending_bytes;
};
`).replace(/enum vfio_device_mig_state \{[^}]*\};\n/, '');
const MIG_RENAMED = MIG_V1.replace(/VFIO_DEVICE_STATE_(STOP|RUNNING|SAVING) /g, 'VFIO_DEVICE_STATE_V1_$1 ').replace(/VFIO_DEVICE_STATE_(RUNNING|SAVING)([ )])/g, 'VFIO_DEVICE_STATE_V1_$1$2');

const IMPLICIT = 'enum demo_index {\n\tDEMO_A,\n\tDEMO_B,\n\tDEMO_C,\n};\n';
const inserted = MINI_VFIO_H.replace('\t__u32\tnum_regions;', '\t__u32\tzone;\n\t__u32\tnum_regions;');
const renamedField = MINI_VFIO_H.replace('\t__u32\tnum_irqs;', '\t__u32\tnr_irqs;');
const cmdInserted = MINI_IOMMUFD_H.replace('\tIOMMUFD_CMD_IOAS_ALLOC,', '\tIOMMUFD_CMD_ZAP,\n\tIOMMUFD_CMD_IOAS_ALLOC,');

runRuleTests(uapiAbiBreak, {
  valid: [
    {
      name: 'a mask of valid bits gains a new flag and keeps the old ones',
      path: VFIO,
      before: withLines(MINI_VFIO_H, '#define DEMO_SET_A (1 << 0)\n#define DEMO_SET_B (1 << 1)\n#define DEMO_SET_TYPE_MASK (DEMO_SET_A | \\\n\t\t\t    DEMO_SET_B)\n'),
      after: withLines(MINI_VFIO_H, '#define DEMO_SET_A (1 << 0)\n#define DEMO_SET_B (1 << 1)\n#define DEMO_SET_C (1 << 2)\n#define DEMO_SET_TYPE_MASK (DEMO_SET_A | \\\n\t\t\t    DEMO_SET_B | \\\n\t\t\t    DEMO_SET_C)\n'),
    },
    { name: 'a comment-only change', path: VFIO, before: MINI_VFIO_H, after: MINI_VFIO_H.replace(' * Caller sets argsz.', ' * The caller sets argsz before the call.') },
    {
      name: 'definitions moved within the file',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(
        MINI_VFIO_H.replace(/enum vfio_device_mig_state \{[^}]*\};\n/, ''),
        'enum vfio_device_mig_state {\n\tVFIO_DEVICE_STATE_ERROR = 0,\n\tVFIO_DEVICE_STATE_STOP = 1,\n\tVFIO_DEVICE_STATE_RUNNING = 2,\n};\n\n',
        'struct vfio_info_cap_header',
      ),
    },
    {
      name: 'additions only: a flag, an enum constant at the end, a field at the end, a new ioctl',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(
        MINI_VFIO_H.replace('#define VFIO_DEVICE_FLAGS_PCI\t(1 << 1)\n', '#define VFIO_DEVICE_FLAGS_PCI\t(1 << 1)\n#define VFIO_DEVICE_FLAGS_CAPS\t(1 << 7)\n')
          .replace('\t__u32\tnum_irqs;\n', '\t__u32\tnum_irqs;\n\t__u32\tcap_offset;\n')
          .replace('\tVFIO_DEVICE_STATE_RUNNING = 2,\n', '\tVFIO_DEVICE_STATE_RUNNING = 2,\n\tVFIO_DEVICE_STATE_STOP_COPY = 3,\n'),
        '#define VFIO_DEVICE_RESET _IO(VFIO_TYPE, VFIO_BASE + 11)\n',
      ),
    },
    {
      name: 'a reserved field put to use, and a reserved array shortened',
      path: 'include/uapi/linux/demo.h',
      before: 'struct demo_attach {\n\t__u32 argsz;\n\t__u32 flags;\n\t__u32 reserved;\n\t__u32 __pad[3];\n};\n',
      after: 'struct demo_attach {\n\t__u32 argsz;\n\t__u32 flags;\n\t__u32 pasid;\n\t__u32 domain;\n\t__u32 __pad[2];\n};\n',
    },
    {
      name: 'values spelt differently: (1 << 2) as 0x4, VFIO_BASE + 7 as 107',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace('(1 << 1)', '0x2').replace('_IO(VFIO_TYPE, VFIO_BASE + 7)', '_IO(VFIO_TYPE, 107)'),
    },
    {
      name: '__u64 made __aligned_u64 where the offset is already 8-aligned',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace('\t__u64\tvaddr;\n\t__u64\tiova;', '\t__aligned_u64\tvaddr;\n\t__aligned_u64\tiova;'),
    },
    {
      name: 'a define moved to another uAPI header in the same patch',
      path: VFIO,
      before: withLines(MINI_VFIO_H, '#define VFIO_CCW_ASYNC_CMD_HSCH (1 << 0)\n'),
      after: MINI_VFIO_H,
      extra: { 'include/uapi/linux/vfio_ccw.h': { before: '#include <linux/types.h>\n', after: '#include <linux/types.h>\n#define VFIO_CCW_ASYNC_CMD_HSCH (1 << 0)\n' } },
    },
    {
      name: 'a GET/SET pair sharing a number with different directions (outside VFIO)',
      path: 'include/uapi/linux/demo.h',
      before: '#define DEMO_IOC 0xF3\nstruct demo_pos { __u32 x; __u32 y; };\n#define DEMO_GET_POS _IOR(DEMO_IOC, 3, struct demo_pos)\n',
      after: '#define DEMO_IOC 0xF3\nstruct demo_pos { __u32 x; __u32 y; };\n#define DEMO_GET_POS _IOR(DEMO_IOC, 3, struct demo_pos)\n#define DEMO_SET_POS _IOW(DEMO_IOC, 3, struct demo_pos)\n',
    },
    {
      name: 'a VFIO number reused on another fd (container vs device), as VFIO does',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '#define VFIO_IOMMU_ZAP _IO(VFIO_TYPE, VFIO_BASE + 7)\n'),
    },
    { name: 'the include guard renamed', path: 'include/uapi/linux/demo.h', before: '#ifndef _DEMO_H_\n#define _DEMO_H_\n#endif\n', after: '#ifndef _UAPI_DEMO_H\n#define _UAPI_DEMO_H\n#endif\n' },
  ],
  invalid: [
    {
      name: 'the v2 migration series renames the v1 state defines',
      path: VFIO,
      before: MIG_V1,
      after: MIG_RENAMED,
      findings: [
        { line: lineOf(MIG_RENAMED, 'V1_STOP '), message: 'define VFIO_DEVICE_STATE_STOP is gone from the uAPI header (renamed to VFIO_DEVICE_STATE_V1_STOP?)' },
        { line: lineOf(MIG_RENAMED, 'V1_RUNNING '), message: 'renamed to VFIO_DEVICE_STATE_V1_RUNNING?' },
        { line: lineOf(MIG_RENAMED, 'V1_SAVING '), message: 'renamed to VFIO_DEVICE_STATE_V1_SAVING?' },
      ],
    },
    { name: 'fixture: new ioctls colliding on the device and container fds', fixture: 'uapi-abi-break.h', path: VFIO },
    {
      name: 'a define changes value',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace('VFIO_DEVICE_FLAGS_PCI\t(1 << 1)', 'VFIO_DEVICE_FLAGS_PCI\t(1 << 2)'),
      findings: [{ line: lineOf(MINI_VFIO_H, 'VFIO_DEVICE_FLAGS_PCI'), message: 'define VFIO_DEVICE_FLAGS_PCI changes value ((1 << 1) -> (1 << 2))' }],
    },
    {
      name: 'a mask loses a bit',
      path: VFIO,
      before: withLines(MINI_VFIO_H, '#define DEMO_SET_A (1 << 0)\n#define DEMO_SET_B (1 << 1)\n#define DEMO_SET_TYPE_MASK (DEMO_SET_A | DEMO_SET_B)\n'),
      after: withLines(MINI_VFIO_H, '#define DEMO_SET_A (1 << 0)\n#define DEMO_SET_B (1 << 1)\n#define DEMO_SET_TYPE_MASK (DEMO_SET_A)\n'),
      findings: [{ line: MINI_VFIO_H.split('\n').length + 2, message: 'define DEMO_SET_TYPE_MASK changes value ((DEMO_SET_A | DEMO_SET_B) -> (DEMO_SET_A))' }],
    },
    {
      name: 'a combined value that is not a mask gains a bit',
      path: VFIO,
      before: withLines(MINI_VFIO_H, '#define DEMO_ST_RUN (1 << 0)\n#define DEMO_ST_SAVE (1 << 1)\n#define DEMO_ST_RUN_SAVE (DEMO_ST_RUN)\n'),
      after: withLines(MINI_VFIO_H, '#define DEMO_ST_RUN (1 << 0)\n#define DEMO_ST_SAVE (1 << 1)\n#define DEMO_ST_RUN_SAVE (DEMO_ST_RUN | DEMO_ST_SAVE)\n'),
      findings: [{ line: MINI_VFIO_H.split('\n').length + 2, message: 'define DEMO_ST_RUN_SAVE changes value' }],
    },
    {
      name: 'an ioctl number changes',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace('VFIO_BASE + 7)', 'VFIO_BASE + 8)'),
      findings: [{ line: lineOf(MINI_VFIO_H, '#define VFIO_DEVICE_GET_INFO'), message: 'VFIO_DEVICE_GET_INFO changes value' }],
    },
    {
      name: 'an enum constant inserted in the middle shifts the ones after it',
      path: 'include/uapi/linux/demo.h',
      before: IMPLICIT,
      after: IMPLICIT.replace('\tDEMO_B,\n', '\tDEMO_A2,\n\tDEMO_B,\n'),
      findings: [{ line: 4, message: 'enum constant DEMO_B changes value (1 -> 2)' }, { line: 5, message: 'DEMO_C changes value (2 -> 3)' }],
    },
    {
      name: 'iommufd: a command number inserted before the last shifts its ioctl',
      path: 'include/uapi/linux/iommufd.h',
      before: MINI_IOMMUFD_H,
      after: cmdInserted,
      findings: [
        { line: lineOf(cmdInserted, '\tIOMMUFD_CMD_IOAS_ALLOC,'), message: 'IOMMUFD_CMD_IOAS_ALLOC changes value (129 -> 130)' },
        { line: lineOf(cmdInserted, '#define IOMMU_IOAS_ALLOC'), message: 'IOMMU_IOAS_ALLOC changes value' },
      ],
    },
    {
      name: 'a struct field renamed',
      path: VFIO,
      before: MINI_VFIO_H,
      after: renamedField,
      findings: [{ line: lineOf(renamedField, 'nr_irqs'), message: 'field num_irqs of struct vfio_device_info is removed or renamed (renamed to nr_irqs?)' }],
    },
    {
      name: 'a field inserted in the middle moves the ones after it',
      path: VFIO,
      before: MINI_VFIO_H,
      after: inserted,
      findings: [{ line: lineOf(inserted, '\tzone;'), message: 'field num_regions of struct vfio_device_info moves from offset 8 to 12 (x86_64/arm64) and 1 more field move' }],
    },
    {
      name: 'a struct renamed',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace('struct vfio_iommu_type1_dma_map {', 'struct vfio_dma_map {'),
      findings: [{ line: lineOf(MINI_VFIO_H, 'struct vfio_iommu_type1_dma_map {'), message: 'struct vfio_iommu_type1_dma_map is removed from the uAPI (renamed to struct vfio_dma_map?)' }],
    },
    {
      name: 'an enum constant removed',
      path: VFIO,
      before: MINI_VFIO_H,
      after: MINI_VFIO_H.replace('\tVFIO_DEVICE_STATE_RUNNING = 2,\n', ''),
      findings: [{ line: lineOf(MINI_VFIO_H, 'VFIO_DEVICE_STATE_RUNNING = 2') , message: 'enum constant VFIO_DEVICE_STATE_RUNNING is gone' }],
    },
    { name: 'a uAPI header deleted', path: 'include/uapi/linux/demo.h', before: IMPLICIT, findings: [{ line: 1, message: 'is deleted' }] },
  ],
});

describe('uapi-abi-break when the series did not apply', () => {
  it('cannot see a removal without the pre-image', async () => {
    expect(await notApplied(uapiAbiBreak, { [VFIO]: { before: MIG_V1, after: MIG_RENAMED } })).toEqual([]);
  });
  it('sees a rename when the pre-image is known (post-image rebuilt from the diff)', async () => {
    const found = await notApplied(uapiAbiBreak, { [VFIO]: { before: MIG_V1, after: MIG_RENAMED } }, true);
    expect(found.map((f) => f.line)).toEqual(['V1_STOP ', 'V1_RUNNING ', 'V1_SAVING '].map((n) => lineOf(MIG_RENAMED, n)));
  });
  it('still sees two added ioctls that share a number', async () => {
    const after = withLines(MINI_VFIO_H, '#define VFIO_DEVICE_ZAP _IO(VFIO_TYPE, VFIO_BASE + 30)\n#define VFIO_DEVICE_ZOP _IO(VFIO_TYPE, VFIO_BASE + 30)\n');
    const found = await notApplied(uapiAbiBreak, { [VFIO]: { before: MINI_VFIO_H, after } });
    expect(found.map((f) => f.message)).toEqual([expect.stringContaining('VFIO_DEVICE_ZAP reuses'), expect.stringContaining('VFIO_DEVICE_ZOP reuses')]);
  });
});

realHeaderTests(uapiAbiBreak, {});
