/**
 * The sibling index (src/cmodel/build.ts siblingIndex) answers "does this file seem to define `f`"
 * and "does it assign `.m =`" exactly as the per-name regular expressions it replaced did.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { siblingIndex } from '../../src/cmodel/build.js';
import { kernelTree } from '../helpers/kernel-tree.js';

const DEFINITION = (name: string): RegExp => new RegExp(String.raw`^[A-Za-z_][^;{}()=]*\b${name}\s*\([^;]*$`, 'm');
const ASSIGNED = (member: string): RegExp => new RegExp(String.raw`\.(?:${member})\s*=`);

let tree: string;
beforeAll(async () => {
  tree = await kernelTree();
}, 30 * 60_000);

describe('sibling index', () => {
  it('finds definitions split over two lines and ignores prototypes and calls', () => {
    const idx = siblingIndex('static int\nsplit_def(int a)\n{\n\treturn helper(a);\n}\nint proto(int a);\nint one_line(void) {\n}\n');
    expect([...idx.defined].sort()).toEqual(['one_line', 'split_def']);
  });

  it.each(['drivers/vfio/vfio_main.c', 'drivers/vfio/vfio_iommu_type1.c', 'drivers/iommu/intel/iommu.c', 'drivers/s390/crypto/vfio_ap_ops.c'])(
    'agrees with the per-name regular expressions on every name in the real %s',
    (path) => {
      const text = readFileSync(join(tree, path), 'utf8');
      const idx = siblingIndex(text);
      for (const n of new Set([...text.matchAll(/\b([A-Za-z_]\w*)\s*\(/g)].map((m) => m[1]!))) expect(idx.defined.has(n), n).toBe(DEFINITION(n).test(text));
      for (const m of new Set([...text.matchAll(/\.([A-Za-z_]\w*)/g)].map((x) => x[1]!))) expect(idx.assigned.has(m), m).toBe(ASSIGNED(m).test(text));
    },
  );
});
