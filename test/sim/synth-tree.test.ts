import { beforeAll, describe, expect, it } from 'vitest';
import { treeReader } from '../../src/sim/fs-reader.js';
import { synthesise } from '../../src/sim/synth.js';
import { kernelTree } from '../helpers/kernel-tree.js';

/**
 * Precision on real code: the unmodified 6.1 functions of a file, presented as if a series had
 * added every one of them (the base tree has the file empty), must raise nothing. Each entry
 * point of the file is then "changed" and paired with every other entry point of the model.
 */
let root: string;
beforeAll(async () => {
  root = await kernelTree();
}, 30 * 60_000);

describe.each([
  ['drivers/vfio/vfio_main.c'],
  ['drivers/s390/crypto/vfio_ap_ops.c'],
  ['drivers/vfio/vfio_iommu_type1.c'],
])('%s added as new', (file) => {
  it('raises nothing', async () => {
    const head = treeReader(root);
    const n = head.readFile(file)!.split('\n').length;
    const lines = new Map([[file, new Map(Array.from({ length: n }, (_, i) => [i + 1, 'new@test'] as [number, string]))]]);
    const r = await synthesise({
      base: treeReader(root, { [file]: '' }), head, files: [file],
      changes: { patches: ['new@test'], lines, removals: new Map() },
    });
    expect(r.findings.map((f) => `${f.kind} ${f.file}:${f.line} ${f.message}\n${f.trace}`)).toEqual([]);
    expect(r.stats.affected).toBeGreaterThan(0);
    console.info(`[sim] ${file} as new: ${r.stats.entries} entries, ${r.stats.affected} affected, ${r.stats.candidates} candidate pairs, ${r.stats.explored} explored, ${r.stats.states} states, ${r.stats.ms.toFixed(0)} ms; notes: ${r.notes.map((x) => `${x.kind} ${x.pair ?? ''}`).join(', ') || 'none'}`);
  }, 60_000);
});

describe('a patch reversing the lock order in assign_adapter_store (seed 002 on the real tree)', () => {
  it('deadlocks with the other stores, apmask_store through the in_use callback among them, attributed to the patch', async () => {
    const file = 'drivers/s390/crypto/vfio_ap_ops.c';
    const text = treeReader(root).readFile(file)!;
    const before = '\tmutex_lock(&ap_perms_mutex);\n\tget_update_locks_for_mdev(matrix_mdev);\n\n\tret = kstrtoul(buf, 0, &apid);';
    expect(text).toContain(before);
    const patched = text.replace(before, '\tget_update_locks_for_mdev(matrix_mdev);\n\tmutex_lock(&ap_perms_mutex);\n\n\tret = kstrtoul(buf, 0, &apid);');
    const at = text.slice(0, text.indexOf(before)).split('\n').length;
    // The patch rewrote the two lines at `at` and `at + 1`.
    const lines = new Map([[file, new Map([[at, 'swap@test'], [at + 1, 'swap@test']])]]);
    const r = await synthesise({
      base: treeReader(root), head: treeReader(root, { [file]: patched }), files: [file],
      changes: { patches: ['swap@test'], lines, removals: new Map() },
    });
    const dl = r.findings.filter((f) => f.kind === 'deadlock');
    expect(dl.length, r.notes.map((n) => n.detail).join('\n')).toBeGreaterThan(0);
    const f = dl[0]!;
    expect(f.patch).toBe('swap@test');
    expect([at, at + 1]).toContain(f.line);
    expect(f.message).toMatch(/ap_perms_mutex/);
    expect(f.pair.map((e) => e.name)).toContain('assign_adapter_store');
    expect([...f.pair, ...f.also].map((e) => e.name)).toContain('apmask_store');
    expect(f.key).toBe('sim:deadlock:ap_matrix_dev.guests_lock+ap_perms_mutex');
    expect(r.findings.every((x) => x.patch === 'swap@test')).toBe(true);
    console.info(`[sim] seed 002 patched: ${r.findings.length} findings, ${r.stats.explored} pairs, ${r.stats.states} states, ${r.stats.ms.toFixed(0)} ms\n${f.message}\n${f.trace}`);
  }, 60_000);
});
