import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, createModelCache, type SourceReader, type TreeModel } from '../../src/cmodel/index.js';
import type { PatchView } from '../../src/rules/context.js';
import { lineDiff } from '../../src/rules/linediff.js';
import { runRules } from '../../src/rules/run.js';
import type { Rule, RuleFinding } from '../../src/rules/types.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { kernelTree } from './kernel-tree.js';

/**
 * Real-tree rule tests: a pretend patch over one file of the 6.1 tree, read through the real tree
 * (headers, siblings), so a rule sees exactly what it would see on a series touching that file.
 */

const cache = createModelCache();

/** A reader over the real tree in which `path` reads as `text`. */
function overlay(root: string, path: string, text: string | null): SourceReader {
  return {
    readFile: (p) => {
      if (p === path) return text;
      try {
        return readFileSync(join(root, p), 'utf8');
      } catch {
        return null;
      }
    },
    list: (d) => {
      try {
        return readdirSync(join(root, d));
      } catch {
        return [];
      }
    },
  };
}

/**
 * The view of a patch that turns `before` into `after` in tree file `path`. `alsoTouched` are tree
 * files the patch touches without changing them (the model then includes them, as it would the
 * files of a series touching both).
 */
export function realView(root: string, path: string, before: string, after: string, alsoTouched: string[] = []): PatchView {
  const d = lineDiff(before, after);
  const lines = after.split('\n');
  const addedText = new Map<number, string>();
  for (const n of d.added) addedText.set(n, lines[n - 1] ?? '');
  const models = new Map<string, Promise<TreeModel | null>>();
  const model = (side: 'before' | 'after'): Promise<TreeModel | null> => {
    let m = models.get(side);
    if (!m) {
      m = buildModel(overlay(root, path, side === 'before' ? before : after), [path, ...alsoTouched], { cache });
      models.set(side, m);
    }
    return m;
  };
  return {
    patch: { msgid: `real-${path}@test`, index: 1, subject: `pretend patch to ${path}` },
    applied: true,
    files: [
      { path, oldPath: path, status: 'modified', added: d.added, removed: d.removed, addedText },
      ...alsoTouched.map((p) => ({ path: p, oldPath: p, status: 'modified' as const, added: new Set<number>(), removed: new Set<number>(), addedText: new Map<number, string>() })),
    ],
    before: (p) => (p === path ? before : alsoTouched.includes(p) ? readFileSync(join(root, p), 'utf8') : null),
    after: (p) => (p === path ? after : alsoTouched.includes(p) ? readFileSync(join(root, p), 'utf8') : null),
    model,
  };
}

/**
 * `text` without the definition of function `name` (its header lines through the closing `}` at
 * column 0), as if a patch added the whole function. Throws when the function is not found.
 */
export function withoutFunction(text: string, name: string): string {
  const lines = text.split('\n');
  const header = new RegExp(String.raw`^(?!\s)(?:[\w\s*]*[\s*])?${name}\s*\(`);
  let start = -1;
  for (let i = 0; i < lines.length; i++) {
    if (!header.test(lines[i]!)) continue;
    // A definition: the body opens at column 0 before any `;` ends a prototype.
    let j = i;
    while (j < lines.length && !lines[j]!.startsWith('{') && !lines[j]!.trimEnd().endsWith(';')) j++;
    if (j < lines.length && lines[j]!.startsWith('{')) {
      start = i;
      break;
    }
  }
  if (start < 0) throw new Error(`function ${name} not found`);
  // Return types on their own line (`static struct file *\nname(...)`) belong to the definition.
  while (start > 0 && /^(?:static\s+|inline\s+|const\s+)*(?:struct\s+)?\w+[\s*]*$/.test(lines[start - 1]!) && lines[start - 1]!.trim() !== '') start--;
  let end = start;
  while (end < lines.length && lines[end] !== '}') end++;
  return [...lines.slice(0, start), ...lines.slice(end + 1)].join('\n');
}

/** Runs `rule` over the pretend patch and returns its findings. */
export async function runOnReal(rule: Rule, root: string, path: string, before: string, after: string, alsoTouched: string[] = []): Promise<RuleFinding[]> {
  const found = await runRules([rule], [realView(root, path, before, after, alsoTouched)]);
  return found.filter((f) => f.rule === rule.id);
}

/** Real files of the 6.1 tree the rule tests use. */
export const REAL_FILES = [
  'drivers/s390/cio/vfio_ccw_drv.c',
  'drivers/s390/crypto/vfio_ap_drv.c',
  'drivers/s390/crypto/vfio_ap_ops.c',
  'drivers/vfio/pci/vfio_pci_core.c',
  'drivers/vfio/pci/mlx5/main.c',
  'drivers/vfio/vfio_main.c',
  'drivers/iommu/iommu.c',
] as const;

/** Real functions, each made all-added by a pretend patch: probes, registrations, ioctls, fops, teardown. */
export const REAL_FUNCTIONS: [file: (typeof REAL_FILES)[number], fn: string][] = [
  ['drivers/s390/cio/vfio_ccw_drv.c', 'vfio_ccw_sch_probe'],
  ['drivers/s390/cio/vfio_ccw_drv.c', 'vfio_ccw_alloc_private'],
  ['drivers/s390/cio/vfio_ccw_drv.c', 'vfio_ccw_sch_init'],
  ['drivers/s390/cio/vfio_ccw_drv.c', 'vfio_ccw_debug_init'],
  ['drivers/s390/crypto/vfio_ap_drv.c', 'vfio_ap_matrix_dev_create'],
  ['drivers/s390/crypto/vfio_ap_drv.c', 'vfio_ap_init'],
  ['drivers/s390/crypto/vfio_ap_ops.c', 'vfio_ap_mdev_probe'],
  ['drivers/s390/crypto/vfio_ap_ops.c', 'vfio_ap_mdev_ioctl'],
  ['drivers/s390/crypto/vfio_ap_ops.c', 'assign_adapter_store'],
  ['drivers/s390/crypto/vfio_ap_ops.c', 'vfio_ap_mdev_set_kvm'],
  ['drivers/vfio/pci/vfio_pci_core.c', 'vfio_pci_core_register_device'],
  ['drivers/vfio/pci/vfio_pci_core.c', 'vfio_pci_core_enable'],
  ['drivers/vfio/pci/vfio_pci_core.c', 'vfio_pci_ioctl_get_irq_info'],
  ['drivers/vfio/pci/vfio_pci_core.c', 'vfio_pci_core_ioctl'],
  ['drivers/vfio/pci/mlx5/main.c', 'mlx5vf_pci_save_device_data'],
  ['drivers/vfio/pci/mlx5/main.c', 'mlx5vf_pci_resume_device_data'],
  ['drivers/vfio/pci/mlx5/main.c', 'mlx5vf_pci_probe'],
  ['drivers/vfio/pci/mlx5/main.c', 'mlx5vf_pci_step_device_state_locked'],
  ['drivers/vfio/vfio_main.c', 'vfio_device_open'],
  ['drivers/vfio/vfio_main.c', 'vfio_group_ioctl_set_container'],
  ['drivers/vfio/vfio_main.c', 'vfio_group_ioctl_get_device_fd'],
  ['drivers/vfio/vfio_main.c', '__vfio_register_dev'],
  ['drivers/vfio/vfio_main.c', 'vfio_init'],
  ['drivers/vfio/vfio_main.c', 'vfio_create_group'],
  ['drivers/iommu/iommu.c', 'iommu_group_alloc'],
  ['drivers/iommu/iommu.c', 'iommu_subsys_init'],
  ['drivers/iommu/iommu.c', 'iommu_group_add_device'],
  ['drivers/iommu/iommu.c', '__iommu_probe_device'],
  ['drivers/iommu/iommu.c', 'iommu_device_register'],
  ['drivers/iommu/iommu.c', 'iommu_sva_bind_device'],
];

/** A finding a real-tree test expects, with the reason it is real. */
export interface KnownFinding {
  file: string;
  fn: string;
  /** A fragment of the finding's message. */
  message: string;
  why: string;
}

/**
 * The real-tree tests of one rule: the unmodified files raise nothing, and each function of
 * {@link REAL_FUNCTIONS} made all-added raises exactly the `known` findings (real issues).
 */
export function describeRealTree(rule: Rule, known: KnownFinding[] = [], extra?: (ctx: { root: () => string; text: (f: string) => string }) => void): void {
  describe(`${rule.id} on the real 6.1 tree`, () => {
    let root: string;
    const texts = new Map<string, string>();
    beforeAll(async () => {
      root = await kernelTree();
      for (const f of REAL_FILES) texts.set(f, readFileSync(join(root, f), 'utf8'));
    });
    it('a patch that changes nothing raises nothing', async () => {
      for (const f of REAL_FILES) expect(await runOnReal(rule, root, f, texts.get(f)!, texts.get(f)!)).toEqual([]);
    });
    for (const [file, fn] of REAL_FUNCTIONS) {
      it(`${fn}() made all-added raises ${known.some((k) => k.fn === fn) ? 'only its known real findings' : 'nothing'}`, async () => {
        const after = texts.get(file)!;
        const found = await runOnReal(rule, root, file, withoutFunction(after, fn), after);
        const want = known.filter((k) => k.file === file && k.fn === fn);
        expect(found.map((f) => `${f.function}: ${f.message}`)).toHaveLength(want.length);
        for (const k of want) expect(found.some((f) => f.function === fn && f.message.includes(k.message)), k.message).toBe(true);
      });
    }
    extra?.({ root: () => root, text: (f) => texts.get(f) ?? readFileSync(join(root, f), 'utf8') });
  });
}
