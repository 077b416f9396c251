import { describe, expect, it } from 'vitest';
import { uapiLayout } from '../../src/rules/uapi-layout.js';
import { runRuleTests } from '../helpers/rule-tester.js';
import { MINI_IOMMUFD_H, MINI_VFIO_H, notApplied, realHeaderTests, withLines } from '../helpers/uapi.js';

const UAPI = 'include/uapi/linux/demo.h';
const VFIO = 'include/uapi/linux/vfio.h';

const OLD = `#include <linux/types.h>

/* An old struct with a compiler hole: known, not this patch's doing. */
struct demo_old {
\t__u32 a;
\t__u64 b;
\t__u32 c;
\t__u32 d;
};
`;
const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

const grown = OLD.replace('\t__u32 d;\n', '\t__u32 d;\n\t__u16 e;\n\t__aligned_u64 f;\n');
const nestedAdded = withLines(OLD, '\nstruct demo_ev {\n\t__u32 argsz;\n\t__u32 flags;\n\tstruct {\n\t\t__u32 kind;\n\t\t__u64 when;\n\t} ev;\n};\n');

runRuleTests(uapiLayout, {
  valid: [
    { name: 'an old struct with a hole, untouched', path: UAPI, before: OLD, after: OLD.replace('known, not', 'known and accepted, not') },
    { name: 'a comment changed on a field line of an old struct with a hole', path: UAPI, before: OLD, after: OLD.replace('\t__u64 b;', '\t__u64 b;\t/* bytes */') },
    {
      name: 'a field appended to an old struct with a hole (the old hole is not re-reported)',
      path: UAPI,
      before: OLD,
      after: OLD.replace('\t__u32 d;\n', '\t__u32 d;\n\t__u32 e;\n\t__u32 f;\n'),
    },
    {
      name: 'an old struct moved within the file',
      path: UAPI,
      before: `${OLD}\nstruct demo_x {\n\t__u32 x;\n};\n`,
      after: `#include <linux/types.h>\n\nstruct demo_x {\n\t__u32 x;\n};\n${OLD.replace('#include <linux/types.h>\n', '')}`,
    },
    {
      name: 'a new struct done right: explicit padding, __aligned_u64, __u8 arrays, char name',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\nstruct vfio_device_zone {\n\t__u32 argsz;\n\t__u32 flags;\n\t__aligned_u64 user_va;\n\t__u32 index;\n\t__u32 __reserved;\n\t__u8 uuid[16];\n\tchar name[8];\n\t__u8 data[];\n};\n'),
    },
    {
      name: 'a packed struct of 32-bit fields',
      path: UAPI,
      before: OLD,
      after: withLines(OLD, '\nstruct demo_region {\n\t__u8 area[12];\n\t__u32 ret_code;\n} __packed;\n'),
    },
    {
      name: 'a new iommufd command struct',
      path: 'include/uapi/linux/iommufd.h',
      before: MINI_IOMMUFD_H,
      after: withLines(MINI_IOMMUFD_H, '\nstruct iommu_ioas_zap {\n\t__u32 size;\n\t__u32 flags;\n\t__u32 ioas_id;\n\t__u32 __reserved;\n\t__aligned_u64 iova;\n\t__aligned_u64 length;\n};\n'),
    },
    {
      name: 'long and pointers in a kernel-internal header',
      path: 'drivers/vfio/pci/demo.h',
      before: '',
      after: 'struct demo_priv {\n\tunsigned long flags;\n\tvoid *buf;\n\tint count;\n};\n',
    },
    { name: 'a struct with a field of a type from another header (layout unknown: no guess)', path: UAPI, before: OLD, after: withLines(OLD, '\nstruct demo_addr {\n\tstruct sockaddr_storage ss;\n\t__u32 len;\n};\n') },
  ],
  invalid: [
    { name: 'fixture: types, holes, ABI-dependent offsets, tail padding, bit-fields, packed, nested, embedded', fixture: 'uapi-layout.h', path: UAPI },
    {
      name: 'fields added to an old struct make a new hole',
      path: UAPI,
      before: OLD,
      after: grown,
      // f is 8-aligned on both ABIs, but the old hole before b already shifted x86_64 by 4: 32 vs 24.
      findings: [{ line: lineOf(grown, '__aligned_u64 f'), message: '`f` is at offset 32 on x86_64/arm64 but 24 on i386' }],
    },
    {
      name: 'a named nested struct with a __u64 after a __u32',
      path: UAPI,
      before: OLD,
      after: nestedAdded,
      findings: [{ line: lineOf(nestedAdded, '__u64 when'), message: '`when` is at offset 8 on x86_64/arm64 but 4 on i386' }],
    },
    {
      name: 'an old field changed to unsigned long',
      path: UAPI,
      before: OLD,
      after: OLD.replace('\t__u32 c;', '\tunsigned long c;'),
      // Two findings on the one changed line: the type, and the x86_64-only tail padding it creates.
      findings: [
        { line: lineOf(OLD, '__u32 c'), message: '`unsigned long c` in uAPI struct demo_old' },
        { line: lineOf(OLD, '__u32 c') }, // (the tester matches messages by line: the size finding is checked below)
      ],
    },
  ],
});

describe('uapi-layout when the series did not apply', () => {
  it('judges a struct wholly inside the added lines', async () => {
    const after = withLines(OLD, '\nstruct demo_new {\n\t__u32 argsz;\n\t__u64 offset;\n\tsize_t len;\n};\n');
    const found = await notApplied(uapiLayout, { [UAPI]: { before: OLD, after } });
    expect(found.map((f) => [f.line, f.message.slice(0, 40)])).toEqual([
      [lineOf(after, 'size_t len'), '`size_t len` in uAPI struct demo_new: `s'],
      [lineOf(after, '__u64 offset'), '`offset` is at offset 8 on x86_64/arm64 '],
    ]);
  });
  it('a changed field reports its type and the tail padding it creates', async () => {
    const after = OLD.replace('\t__u32 c;', '\tunsigned long c;');
    const found = await notApplied(uapiLayout, { [UAPI]: { before: OLD, after } }, true);
    expect(found.map((f) => f.message)).toEqual([
      expect.stringContaining('`unsigned long c` in uAPI struct demo_old'),
      expect.stringContaining('struct demo_old is 32 bytes on x86_64/arm64 but 20 on i386'),
    ]);
  });
  it('leaves a struct alone when only some of its lines are known', async () => {
    const after = OLD.replace('\t__u32 d;\n', '\t__u32 d;\n\tunsigned long e;\n');
    expect(await notApplied(uapiLayout, { [UAPI]: { before: OLD, after } })).toEqual([]);
  });
  it('with the pre-image known, sees a field added to an old struct', async () => {
    const after = OLD.replace('\t__u32 d;\n', '\t__u32 d;\n\tunsigned long e;\n');
    const found = await notApplied(uapiLayout, { [UAPI]: { before: OLD, after } }, true);
    expect(found.map((f) => f.line)).toEqual([lineOf(after, 'unsigned long e')]);
  });
});

/*
 * Real 6.1 headers, whole file as new: these are genuine (and long-standing) layout issues.
 * vfio.h: vfio_device_gfx_plane_info (712) and vfio_device_ioeventfd (761) and vfio_iommu_type1_info (1145)
 * are 4 bytes larger on x86_64 than on i386 (tail padding; mainline later added explicit reserved fields to
 * the first two); vfio_iommu_type1_info_cap_migration.pgsize_bitmap (1195) and the union in vfio_eeh_pe_op
 * (1412) sit at 16 on x86_64 but 12 on i386; vfio_bitmap.data (1246) is a `__u64 __user *` pointer, so
 * vfio_iommu_type1_dirty_bitmap_get.bitmap (1343) changes size with the ABI.
 * vfio_zdev.h: vfio_device_info_cap_zpci_base (23) and _group (43) have 64-bit-only tail padding
 * (s390x-only structs, so harmless in practice). vfio_ccw.h: packed regions, nothing.
 */
realHeaderTests(uapiLayout, {
  'include/uapi/linux/vfio.h': [712, 761, 1145, 1195, 1246, 1343, 1412],
  'include/uapi/linux/vfio_zdev.h': [23, 43],
});
