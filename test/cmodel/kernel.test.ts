import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, createModelCache, type SourceReader } from '../../src/cmodel/build.js';
import { extractFile } from '../../src/cmodel/declarations.js';
import type { CallEvent, Event } from '../../src/cmodel/events.js';
import { findFunction, resolveCall, summaryOf, type TreeModel } from '../../src/cmodel/model.js';
import { disposeParsed, functionErrorStats, loadParser, parseC } from '../../src/cmodel/parse.js';
import { exploreOf, pathsOf } from '../../src/cmodel/context.js';
import { kernelTree } from '../helpers/kernel-tree.js';

let root: string;
let reader: SourceReader;
const cache = createModelCache();

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.[ch]$/.test(name)) out.push(relative(root, p));
  }
  return out;
}

/** The line of the first match of `re` inside function `fn` of a tree file. */
function lineIn(path: string, fnHeader: RegExp, re: RegExp): number {
  const lines = readFileSync(join(root, path), 'utf8').split('\n');
  const start = lines.findIndex((l) => fnHeader.test(l));
  const i = lines.findIndex((l, n) => n > start && re.test(l));
  if (start < 0 || i < 0) throw new Error(`not found in ${path}: ${re}`);
  return i + 1;
}

beforeAll(async () => {
  root = await kernelTree();
  reader = {
    readFile: (p) => {
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
  await loadParser();
});

describe('parsing drivers/vfio and drivers/iommu of 6.1', () => {
  it('parses every .c/.h without failing and keeps ERROR functions under 10% after the pre-filter', () => {
    const files = [...walk(join(root, 'drivers/vfio'), []), ...walk(join(root, 'drivers/iommu'), [])];
    expect(files.length).toBeGreaterThan(100);
    const texts = files.map((f) => readFileSync(join(root, f), 'utf8'));
    const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
    const measure = (prefilter: boolean): { fns: number; err: number; missing: number; mbps: number } => {
      let fns = 0;
      let err = 0;
      let missing = 0;
      const t0 = performance.now();
      texts.forEach((t, i) => {
        const p = parseC(t, files[i]!, { prefilter });
        expect(p.failure).toBeNull();
        const s = functionErrorStats(p);
        fns += s.functions;
        err += s.withError;
        missing += s.withMissing;
        disposeParsed(p);
      });
      return { fns, err, missing, mbps: bytes / 1e6 / ((performance.now() - t0) / 1000) };
    };
    const raw = measure(false);
    const filtered = measure(true);
    const pct = (n: number, d: number): string => `${((100 * n) / d).toFixed(1)}%`;
    console.log(
      `[cmodel] ${files.length} files, ${(bytes / 1e6).toFixed(2)} MB, ${filtered.fns} functions\n` +
        `[cmodel] raw:         ERROR ${pct(raw.err, raw.fns)}, ERROR or MISSING ${pct(raw.err + raw.missing, raw.fns)}, ${raw.mbps.toFixed(1)} MB/s\n` +
        `[cmodel] pre-filtered: ERROR ${pct(filtered.err, filtered.fns)}, ERROR or MISSING ${pct(filtered.err + filtered.missing, filtered.fns)}, ${filtered.mbps.toFixed(1)} MB/s (pre-filter included)`,
    );
    expect(filtered.err / filtered.fns).toBeLessThan(0.1);
    expect((filtered.err + filtered.missing) / filtered.fns).toBeLessThan(0.1);
    expect(raw.err + raw.missing).toBeGreaterThan(filtered.err + filtered.missing);
  });

  it('extracts a lock event for every statement-level lock call in drivers/vfio', () => {
    const files = walk(join(root, 'drivers/vfio'), []).filter((f) => f.endsWith('.c'));
    const call = /^\s*(?:mutex_lock|mutex_unlock|spin_lock(?:_irq|_irqsave|_bh)?|spin_unlock(?:_irq|_irqrestore|_bh)?|down_read|down_write|up_read|up_write|device_lock|device_unlock)\(/;
    let checked = 0;
    const lost: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8');
      const parsed = parseC(text, f);
      const model = extractFile(parsed);
      disposeParsed(parsed);
      const lines = new Set(model.functions.flatMap((fn) => fn.events.filter((e) => e.kind === 'lock').map((e) => e.line)));
      text.split('\n').forEach((l, i) => {
        // Lines of a multi-line #define end in a backslash: macro bodies are not code the model walks.
        if (!call.test(l) || l.trimEnd().endsWith('\\')) return;
        checked++;
        if (!lines.has(i + 1)) lost.push(`${f}:${i + 1}: ${l.trim()}`);
      });
    }
    expect(checked).toBeGreaterThan(250);
    expect(lost).toEqual([]);
  });
});

describe('drivers/s390/crypto/vfio_ap_ops.c', () => {
  let model: TreeModel;
  const file = 'drivers/s390/crypto/vfio_ap_ops.c';
  beforeAll(async () => {
    model = await buildModel(reader, [file], { cache });
  });

  it('summarises get_update_locks_for_mdev as guests_lock, kvm->lock (if attached) and mdevs_lock', () => {
    const s = summaryOf(model, findFunction(model, 'get_update_locks_for_mdev', file)!)!;
    expect(s.acquires.map((r) => r.cls).sort()).toEqual(['ap_matrix_dev.guests_lock', 'ap_matrix_dev.mdevs_lock', 'kvm.lock']);
    expect(s.outcomes.map((o) => o.assume.find((a) => a.cond !== '$ret'))).toEqual([
      { cond: 'matrix_mdev && matrix_mdev->kvm', truth: expect.any(Boolean) },
      { cond: 'matrix_mdev && matrix_mdev->kvm', truth: expect.any(Boolean) },
    ]);
    const rel = summaryOf(model, findFunction(model, 'release_update_locks_for_mdev', file)!)!;
    expect(rel.releases.map((r) => r.cls).sort()).toEqual(['ap_matrix_dev.guests_lock', 'ap_matrix_dev.mdevs_lock', 'kvm.lock']);
  });

  it('sees assign_adapter_store take the helper\'s locks under ap_perms_mutex and release them on every path', () => {
    const fn = findFunction(model, 'assign_adapter_store', file)!;
    const s = summaryOf(model, fn)!;
    expect(s.takes.map((t) => `${t.cls}<${t.via.join('>')}`)).toEqual(expect.arrayContaining([
      'ap_perms_mutex<', 'ap_matrix_dev.guests_lock<get_update_locks_for_mdev', 'kvm.lock<get_update_locks_for_mdev',
      'ap_matrix_dev.mdevs_lock<get_update_locks_for_mdev',
    ]));
    expect(s.orderEdges).toContainEqual(expect.objectContaining({ outer: 'ap_perms_mutex', inner: 'ap_matrix_dev.mdevs_lock', via: ['get_update_locks_for_mdev'] }));
    const paths = [...pathsOf(model, fn)];
    expect(paths.length).toBeGreaterThan(1);
    for (const p of paths) {
      expect(p.held).toEqual([]);
      expect(p.issues).toEqual([]);
    }
    const validate = fn.events.find((e): e is CallEvent => e.kind === 'call' && e.callee === 'vfio_ap_mdev_validate_masks')!;
    expect(validate.line).toBe(lineIn(file, /^static ssize_t assign_adapter_store/, /vfio_ap_mdev_validate_masks\(matrix_mdev\)/));
    const held = exploreOf(model, fn).heldAt.get(validate as Event)!;
    expect([...held.must].sort()).toEqual(['ap_matrix_dev.guests_lock', 'ap_matrix_dev.mdevs_lock', 'ap_perms_mutex']);
    expect(held.may.map((h) => h.cls)).toContain('kvm.lock');
  });

  it('leaves no imbalance in the unmodified callers of the lock helpers', () => {
    for (const name of ['assign_domain_store', 'unassign_adapter_store', 'vfio_ap_mdev_probe_queue', 'vfio_ap_mdev_remove_queue', 'vfio_ap_mdev_resource_in_use']) {
      const ex = exploreOf(model, findFunction(model, name, file)!);
      expect(ex.issues, name).toEqual([]);
      expect(ex.exits.filter((e) => e.held.length > 0), name).toEqual([]);
    }
  });
});

describe('ops resolution from drivers/s390/crypto/ap_bus.c', () => {
  it('reaches vfio_ap_mdev_resource_in_use through ap_drv->in_use()', async () => {
    const model = await buildModel(reader, ['drivers/s390/crypto/ap_bus.c'], { cache });
    expect(model.context).toEqual(expect.arrayContaining(['drivers/s390/crypto/vfio_ap_drv.c', 'drivers/s390/crypto/vfio_ap_ops.c']));
    expect(model.ops.get('in_use')).toContainEqual(expect.objectContaining({ structType: 'ap_driver', variable: 'vfio_ap_drv', fn: 'vfio_ap_mdev_resource_in_use' }));
    const fn = findFunction(model, '__verify_card_reservations')!;
    const call = fn.events.find((e): e is CallEvent => e.kind === 'call' && e.indirect?.member === 'in_use')!;
    expect(resolveCall(model, call, fn).map((f) => f.name)).toEqual(['vfio_ap_mdev_resource_in_use']);
    const s = summaryOf(model, fn)!;
    expect(s.takes.map((t) => `${t.cls}<${t.via.join('>')}`)).toEqual(expect.arrayContaining([
      'ap_matrix_dev.guests_lock<vfio_ap_mdev_resource_in_use', 'ap_matrix_dev.mdevs_lock<vfio_ap_mdev_resource_in_use',
    ]));
  });
});

describe('drivers/vfio/vfio_iommu_type1.c', () => {
  it('sees vfio_dma_do_unmap take vfio_iommu.lock and balance it on every path', async () => {
    const file = 'drivers/vfio/vfio_iommu_type1.c';
    const model = await buildModel(reader, [file], { cache });
    const fn = findFunction(model, 'vfio_dma_do_unmap', file)!;
    expect(fn.params[0]).toMatchObject({ name: 'iommu', type: 'struct vfio_iommu *' });
    const line = lineIn(file, /^static int vfio_dma_do_unmap/, /mutex_lock\(&iommu->lock\)/);
    const s = summaryOf(model, fn)!;
    expect(s.takes).toContainEqual(expect.objectContaining({ cls: 'vfio_iommu.lock', lock: 'iommu->lock', line, via: [] }));
    // vfio_notify_dma_unmap() drops iommu->lock and takes device_list_lock: the model sees both.
    expect(s.orderEdges).toContainEqual(expect.objectContaining({ outer: 'vfio_iommu.lock', inner: 'vfio_iommu.device_list_lock', via: ['vfio_notify_dma_unmap'] }));
    const notify = summaryOf(model, findFunction(model, 'vfio_notify_dma_unmap', file)!)!;
    expect(notify.outcomes.some((o) => o.release.some((r) => r.cls === 'vfio_iommu.lock') && o.acquire.some((r) => r.cls === 'vfio_iommu.lock'))).toBe(true);
    const ex = exploreOf(model, fn);
    expect(ex.truncated).toBe(false);
    expect(ex.issues).toEqual([]);
    expect(ex.exits.every((e) => e.held.length === 0)).toBe(true);
  });
});
