import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, createModelCache, disposeParsed, extractFile, loadParser, parseC, type SourceReader, type TreeModel } from '../../src/cmodel/index.js';
import type { PatchView } from '../../src/rules/context.js';
import { lineDiff } from '../../src/rules/linediff.js';
import { runRules } from '../../src/rules/run.js';
import type { ChangedFile, Rule, RuleFinding } from '../../src/rules/types.js';

const cache = createModelCache();
const models = new Map<string, Promise<TreeModel | null>>();

/**
 * A patch view over the real kernel tree at `root`, for the locking rules' real-tree tests. Like
 * `viewFromSources` with the tree as context, but its reader lists a directory by entry names as
 * `SourceReader.list` is specified, so sibling files defining callees and ops bindings are found
 * (`viewFromSources` lists full paths, which the model builder prefixes with the directory again).
 */
export function realTreeView(root: string, name: string, files: Record<string, { before: string | null; after: string | null }>): PatchView {
  const changed: ChangedFile[] = Object.entries(files).map(([path, v]) => {
    const d = lineDiff(v.before ?? '', v.after ?? '');
    const lines = (v.after ?? '').split('\n');
    return {
      path, oldPath: v.before === null ? null : path, status: v.before === null ? 'added' : v.after === null ? 'deleted' : 'modified',
      added: d.added, removed: d.removed, addedText: new Map([...d.added].map((n) => [n, lines[n - 1] ?? ''])),
    };
  });
  const reader = (side: 'before' | 'after'): SourceReader => ({
    readFile: (p) => {
      if (p in files) return files[p]![side];
      try {
        return readFileSync(join(root, p), 'utf8');
      } catch {
        return null;
      }
    },
    list: (dir) => {
      try {
        return readdirSync(join(root, dir));
      } catch {
        return [];
      }
    },
  });
  const model = (side: 'before' | 'after'): Promise<TreeModel | null> => {
    const paths = changed.filter((f) => (side === 'before' ? f.status !== 'added' : f.status !== 'deleted')).map((f) => f.path).filter((p) => /\.[ch]$/.test(p));
    // Views of one tree state share one model (the patched file is the same for every function cut out of it).
    const key = createHash('sha1').update(JSON.stringify(paths.map((p) => [p, files[p]![side]]))).digest('hex');
    let m = models.get(key);
    if (!m) {
      m = paths.length ? buildModel(reader(side), paths, { cache }) : Promise.resolve(null);
      models.set(key, m);
    }
    return m;
  };
  return {
    patch: { msgid: `${name}@real-tree`, index: 1, subject: name },
    applied: true,
    files: changed,
    before: (p) => files[p]?.before ?? null,
    after: (p) => files[p]?.after ?? null,
    model,
  };
}

/** The real file with function `fn` cut out (so that a "patch" adding the real file adds exactly `fn`). */
export async function withoutFunction(path: string, text: string, fn: string): Promise<string> {
  await loadParser();
  const parsed = parseC(text, path);
  const model = extractFile(parsed);
  disposeParsed(parsed);
  const f = model.functions.find((x) => x.name === fn);
  if (!f) throw new Error(`${fn} not found in ${path}`);
  const lines = text.split('\n');
  return [...lines.slice(0, f.line - 1), ...lines.slice(f.endLine)].join('\n');
}

/** Runs `rules` over a view and returns the findings of those rules. */
export async function findingsOf(rules: Rule[], view: PatchView): Promise<RuleFinding[]> {
  return (await runRules(rules, [view])).filter((f) => rules.some((r) => r.id === f.rule));
}

/**
 * Real 6.1 functions that take locks (directly or through helpers) and are correct as far as the
 * locking rules are concerned: a patch adding any one of them must raise nothing.
 */
export const CORRECT_LOCKING_FUNCTIONS: Record<string, string[]> = {
  'drivers/s390/crypto/vfio_ap_ops.c': [
    'assign_adapter_store', 'assign_domain_store', 'unassign_adapter_store', 'vfio_ap_mdev_set_kvm', 'vfio_ap_mdev_unset_kvm',
    'vfio_ap_mdev_resource_in_use', 'vfio_ap_mdev_remove', 'get_update_locks_for_mdev', 'release_update_locks_for_mdev',
    'get_update_locks_by_apqn',
  ],
  'drivers/vfio/vfio_iommu_type1.c': ['vfio_dma_do_unmap', 'vfio_dma_do_map', 'vfio_iommu_type1_pin_pages', 'vfio_iommu_type1_unpin_pages', 'vfio_iommu_type1_attach_group'],
  'drivers/vfio/container.c': ['vfio_pin_pages'],
  'drivers/vfio/vfio_main.c': ['vfio_device_open', 'vfio_assign_device_set'],
  'drivers/vfio/pci/vfio_pci_intrs.c': ['vfio_intx_handler', 'vfio_pci_intx_mask'],
  'drivers/vfio/pci/vfio_pci_core.c': ['vfio_pci_zap_and_down_write_memory_lock', 'vfio_pci_mmap_fault'],
  'drivers/vfio/pci/mlx5/main.c': ['mlx5vf_pci_set_device_state', 'mlx5vf_state_mutex_unlock'],
  'drivers/iommu/iommu.c': ['iommu_attach_group', 'iommu_group_add_device'],
  'drivers/s390/cio/vfio_ccw_drv.c': ['vfio_ccw_sch_quiesce'],
  'drivers/s390/cio/vfio_ccw_fsm.c': ['fsm_close'],
};

/** Reads a tree file. */
export function treeFile(root: string, path: string): string {
  return readFileSync(join(root, path), 'utf8');
}

/**
 * The real-tree checks every locking rule runs: an unchanged patch to each file, and a patch that
 * adds each correct function (its file without it, then the real file), raise nothing.
 */
export async function realTreeQuiet(root: string, rule: Rule, only?: string): Promise<{ checked: number; findings: string[] }> {
  const findings: string[] = [];
  let checked = 0;
  for (const [path, fns] of Object.entries(CORRECT_LOCKING_FUNCTIONS)) {
    if (only && path !== only) continue;
    const text = treeFile(root, path);
    for (const f of await findingsOf([rule], realTreeView(root, `${path}-unchanged`, { [path]: { before: text, after: text } }))) findings.push(`${path}:${f.line} (unchanged): ${f.message}`);
    for (const fn of fns) {
      const before = await withoutFunction(path, text, fn);
      checked++;
      for (const f of await findingsOf([rule], realTreeView(root, `${path}-${fn}`, { [path]: { before, after: text } }))) findings.push(`${path}:${f.line} (adding ${fn}): ${f.message}`);
    }
  }
  return { checked, findings };
}
