import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { viewFromSources } from '../../src/rules/context.js';
import { flattenFields, headerImages, layoutOf, parseUapi, preToPost, rebuildAfter, type UapiModel } from '../../src/rules/uapi-model.js';
import { kernelTree } from '../helpers/kernel-tree.js';
import { MINI_IOMMUFD_H, MINI_VFIO_H } from '../helpers/uapi.js';

const sizes = (m: UapiModel, key: string): [number, number] => {
  const agg = m.aggregates.get(key);
  if (!agg) throw new Error(`no ${key}`);
  return [layoutOf(agg, m, 'lp64').size, layoutOf(agg, m, 'i386').size];
};
const offsets = (m: UapiModel, key: string, abi: 'lp64' | 'i386'): Record<string, number | null> =>
  Object.fromEntries(flattenFields(m.aggregates.get(key)!, m, abi).map((x) => [x.path, x.offset]));

describe('uapi-model: defines and expressions', () => {
  const m = parseUapi(`#define A 1
#define B (A << 4) /* a comment */
#define C (B | \\
	   0x2)	// trailing
#define CH (';')
#define F(x) ((x) + A)
#define BIG 0xffffffffffffffffULL
#define S "vfio-pci"
#define E (DEMO_Y + 1)
enum { DEMO_X = 5, DEMO_Y, DEMO_Z = DEMO_X * 3 };
`);
  it('reads object-like and function-like defines, continuation lines and comments', () => {
    expect(m.defines.get('C')).toMatchObject({ body: '(B | 0x2)', line: 3, endLine: 4, params: null });
    expect(m.defines.get('F')).toMatchObject({ params: ['x'], body: '((x) + A)' });
  });
  it('evaluates integer expressions over defines and enum constants', () => {
    expect(m.evaluate('C')).toBe(18n);
    expect(m.evaluate('CH')).toBe(59n);
    expect(m.evaluate('BIG')).toBe(0xffffffffffffffffn);
    expect(m.evaluate('E')).toBe(7n);
    expect(m.evaluate('DEMO_Z')).toBe(15n);
    expect(m.evaluate('S')).toBeNull();
    expect(m.evaluate('F(2)')).toBeNull();
    expect(m.evaluate('UNKNOWN + 1')).toBeNull();
  });
  it('numbers enum constants, implicit and explicit', () => {
    expect(m.enums[0]!.constants.map((c) => [c.name, c.value])).toEqual([['DEMO_X', 5n], ['DEMO_Y', 6n], ['DEMO_Z', 15n]]);
  });
});

describe('uapi-model: ioctls and their argument structs', () => {
  it('reads VFIO ioctls and finds the struct from the doc comment', () => {
    const m = parseUapi(MINI_VFIO_H);
    expect(m.ioctls.map((io) => [io.name, io.dir, io.typeValue, io.nrValue, io.arg, io.argVia])).toEqual([
      ['VFIO_DEVICE_GET_INFO', 'IO', 59n, 107n, 'vfio_device_info', 'doc'],
      ['VFIO_DEVICE_FEATURE', 'IO', 59n, 117n, 'vfio_device_feature', 'doc'],
      // the doc says struct vfio_dma_map; the struct between the comment and the define is the one
      ['VFIO_IOMMU_MAP_DMA', 'IO', 59n, 113n, 'vfio_iommu_type1_dma_map', 'doc-near'],
    ]);
  });
  it('reads iommufd ioctls: enum command numbers, kernel-doc "struct x - ioctl(X)"', () => {
    const m = parseUapi(MINI_IOMMUFD_H);
    expect(m.ioctls.map((io) => [io.name, io.nrValue, io.arg, io.argVia])).toEqual([
      ['IOMMU_DESTROY', 0x80n, 'iommu_destroy', 'doc'],
      ['IOMMU_IOAS_ALLOC', 0x81n, 'iommu_ioas_alloc', 'doc'],
    ]);
  });
  it('takes the struct from _IOx(), the name, or the struct right above; none for a scalar argument', () => {
    const m = parseUapi(`#define T 'x'
struct demo_get { __u32 argsz; };
#define DEMO_GET _IOWR(T, 1, struct demo_get)
struct demo_set { __u32 argsz; };
#define DEMO_SET _IO(T, 2)
struct demo_other { __u32 argsz; };

#define DEMO_PUT _IO(T, 3)
struct demo_helper { __u32 x; };
/**
 * DEMO_COUNT - _IOR(T, 4, __u32)
 */
#define DEMO_COUNT _IO(T, 4)
`);
    expect(m.ioctls.map((io) => [io.name, io.arg, io.argVia])).toEqual([
      ['DEMO_GET', 'demo_get', 'macro'],
      ['DEMO_SET', 'demo_set', 'name'],
      ['DEMO_PUT', 'demo_other', 'adjacent'],
      ['DEMO_COUNT', null, null],
    ]);
  });
  it('ignores a kernel-doc "ioctl(X)" on a helper struct when X is no ioctl', () => {
    const m = parseUapi('/**\n * struct iommu_range - ioctl(IOMMU_RANGE)\n */\nstruct iommu_range { __u64 a; };\n');
    expect(m.ioctls).toEqual([]);
  });
});

describe('uapi-model: structs and layout', () => {
  const m = parseUapi(`#define N 4
typedef __u64 demo_id_t;
struct demo {
	__u32	argsz;
	__u32	flags;
#define DEMO_FLAG_A	(1 << 0)
	__u32	a, b[N];
	__u64 __user *ptr;
	union {
		__u32 id;
		__aligned_u64 cookie;
	};
	struct {
		__u16 lo;
		__u8 hi;
	} part;
	demo_id_t ident;
	unsigned long word;
	__u8	data[];
};
struct demo_bits { __u32 a : 3, b : 5; __u32 c : 30; };
struct demo_packed { __u8 a; __u64 b; } __attribute__((packed));
struct demo_aligned { __u32 a; __u32 b __attribute__((aligned(8))); };
struct demo_ext { struct sockaddr sa; __u32 x; };
#ifdef __BIG_ENDIAN_BITFIELD
struct demo_endian { __u8 hi : 4, lo : 4; };
#else
struct demo_endian { __u8 lo : 4, hi : 4; };
#endif
`);
  it('reads fields: arrays, several declarators, pointers, nested anonymous and named aggregates, flexible arrays', () => {
    const d = m.aggregates.get('struct demo')!;
    expect(d.fields.map((f) => [f.name, f.type, f.pointer, f.dims])).toEqual([
      ['argsz', '__u32', 0, []], ['flags', '__u32', 0, []], ['a', '__u32', 0, []], ['b', '__u32', 0, ['N']],
      ['ptr', '__u64', 1, []], [null, 'union', 0, []], ['part', 'struct', 0, []], ['ident', 'demo_id_t', 0, []],
      ['word', 'unsigned long', 0, []], ['data', '__u8', 0, [null]],
    ]);
    expect(d.fields[4]!.text).toBe('__u64 *ptr');
    expect(m.defines.has('DEMO_FLAG_A')).toBe(true);
  });
  it('lays a struct out for x86_64 and i386', () => {
    expect(offsets(m, 'struct demo', 'lp64')).toEqual({ argsz: 0, flags: 4, a: 8, b: 12, ptr: 32, id: 40, cookie: 40, 'part.lo': 48, 'part.hi': 50, ident: 56, word: 64, data: 72 });
    expect(offsets(m, 'struct demo', 'i386')).toEqual({ argsz: 0, flags: 4, a: 8, b: 12, ptr: 28, id: 32, cookie: 32, 'part.lo': 40, 'part.hi': 42, ident: 44, word: 52, data: 56 });
    expect(sizes(m, 'struct demo')).toEqual([72, 56]);
  });
  it('handles bit-fields, packed and aligned attributes, and the first branch of an #if', () => {
    expect(sizes(m, 'struct demo_bits')).toEqual([8, 8]);
    expect(sizes(m, 'struct demo_packed')).toEqual([9, 9]);
    expect(sizes(m, 'struct demo_aligned')).toEqual([16, 16]);
    expect(m.aggregates.get('struct demo_endian')!.fields.map((f) => f.name)).toEqual(['hi', 'lo']);
  });
  it('stops at a type from another header instead of guessing', () => {
    const l = layoutOf(m.aggregates.get('struct demo_ext')!, m, 'lp64');
    expect(l.complete).toBe(false);
    expect(l.members).toEqual([]);
  });
});

describe('uapi-model: the two images of a header', () => {
  const before = 'struct a {\n\t__u32 x;\n};\n#define K 1\n#define L 2\n';
  const after = '/* new */\nstruct a {\n\t__u32 x;\n\t__u32 y;\n};\n#define L 2\n#define M 3\n';
  const view = viewFromSources({ msgid: 'm', index: 1, subject: 's' }, { 'include/uapi/linux/a.h': { before, after } });
  const f = view.files[0]!;
  it('rebuilds the post-image from the pre-image and the diff', () => {
    expect(rebuildAfter(before, f)).toBe(after);
  });
  it('maps pre-image lines to where they land', () => {
    expect([1, 2, 3, 4, 5].map((l) => preToPost(f, l))).toEqual([2, 3, 5, 6, 6]);
  });
  it('falls back to the added lines alone, closing a comment at the first unknown line', () => {
    // The new comment's closing line is old text (a context line): only the gap stops it swallowing the struct.
    const v = viewFromSources({ msgid: 'm', index: 1, subject: 's' }, {
      'include/uapi/linux/x.h': { before: '/*\n * old\n */\n', after: '/* new doc\n * more\n */\nstruct demo_x {\n\t__u32 argsz;\n};\n' },
    });
    const f = v.files[0]!;
    expect([...f.added].sort()).toEqual([1, 2, 4, 5, 6]);
    const im = headerImages({ before: () => null, after: () => null }, f);
    expect(im.partial).toBe(true);
    expect([...im.post!.aggregates.keys()]).toEqual(['struct demo_x']);
  });
  it('does not let a struct cut off by unknown text swallow the next one', () => {
    const m = parseUapi('struct demo_a {\n\t__u32 x;\n\nstruct demo_b {\n\t__u32 argsz;\n};\n', new Set([3]));
    expect(m.aggregates.get('struct demo_a')).toMatchObject({ line: 1, endLine: 3 });
    expect(m.aggregates.get('struct demo_b')).toMatchObject({ line: 4, endLine: 6 });
  });
  it('skips junk before a struct (a half comment seen as code)', () => {
    const m = parseUapi(' * the kernel fills this in */\nstruct demo_y {\n\t__u32 argsz;\n};\n', new Set([1]));
    expect(m.aggregates.get('struct demo_y')!.fields.map((x) => x.name)).toEqual(['argsz']);
  });
});

describe('uapi-model on the real linux-6.1 uAPI headers', () => {
  let tree = '';
  beforeAll(async () => {
    tree = await kernelTree();
  }, 30 * 60_000);
  const headers = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? headers(p) : n.endsWith('.h') ? [p] : [];
    });
  it('parses every include/uapi header without throwing', () => {
    const all = headers(join(tree, 'include/uapi'));
    expect(all.length).toBeGreaterThan(800);
    let aggregates = 0;
    for (const p of all) {
      const m = parseUapi(readFileSync(p, 'utf8'));
      for (const a of m.aggregates.values()) {
        aggregates++;
        layoutOf(a, m, 'lp64');
        layoutOf(a, m, 'i386');
      }
    }
    expect(aggregates).toBeGreaterThan(3000);
  });
  it('ties every vfio.h ioctl that takes a struct to the right one', () => {
    const m = parseUapi(readFileSync(join(tree, 'include/uapi/linux/vfio.h'), 'utf8'));
    const args = Object.fromEntries(m.ioctls.map((io) => [io.name, io.arg]));
    expect(m.ioctls).toHaveLength(30);
    expect(args).toMatchObject({
      VFIO_GET_API_VERSION: null, VFIO_CHECK_EXTENSION: null, VFIO_GROUP_GET_DEVICE_FD: null, VFIO_DEVICE_RESET: null,
      VFIO_GROUP_GET_STATUS: 'vfio_group_status', VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: 'vfio_pci_hot_reset_info',
      VFIO_DEVICE_QUERY_GFX_PLANE: 'vfio_device_gfx_plane_info', VFIO_IOMMU_GET_INFO: 'vfio_iommu_type1_info',
      VFIO_IOMMU_UNMAP_DMA: 'vfio_iommu_type1_dma_unmap', VFIO_IOMMU_SPAPR_TCE_GET_INFO: 'vfio_iommu_spapr_tce_info',
      VFIO_EEH_PE_OP: 'vfio_eeh_pe_op', VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: 'vfio_iommu_spapr_register_memory',
    });
    expect(sizes(m, 'struct vfio_device_ioeventfd')).toEqual([32, 28]);
    expect(sizes(m, 'struct vfio_region_info')).toEqual([32, 32]);
  });
});
